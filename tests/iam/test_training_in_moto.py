"""The train job against moto, every AWS call decided for the deploy role first.

The same guard as the traffic tier (tests/iam/test_traffic_in_moto.py): each call
is mapped to its IAM action and resource and decided against the synthesized
role policy before moto serves it, and an unmapped call fails the test, so a new
call in scripts/train.py, lib/runner.py or smoke.py cannot ship without its grant.
The stand-ins for CodeBuild's build and Lambda's runtime act as those services,
so their own calls are not the role's.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from infra.components.ci_duties import DEPLOY
from infra.training import PUBLISHED_METRICS_KEY, PUBLISHED_TAG
from tests.iam.test_traffic_in_moto import Guard, holding
from tests.scripts.test_train import World, commit_model, local_training, worse
from tests.scripts.test_train import repo as repo  # noqa: PLC0414 - the fixture, used by name

pytestmark = pytest.mark.moto


@pytest.fixture
def world(aws: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World("feature/x", tmp_path, aws, monkeypatch)


@contextlib.contextmanager
def as_deploy(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    with holding(DEPLOY, world.stack, monkeypatch) as guard:

        @contextlib.contextmanager
        def service() -> Iterator[None]:
            guard.paused = True
            try:
                yield
            finally:
                guard.paused = False

        execute, invoke = world.runner.execute, world.lam.invoke

        def run_build(*args: Any, **kwargs: Any) -> None:
            with service():
                execute(*args, **kwargs)

        def run_function(**params: Any) -> dict:
            guard.check("lambda", "Invoke", params)  # the caller's call...
            with service():  # ...then Lambda's own work
                return invoke(**params)

        monkeypatch.setattr(world.runner, "execute", run_build)
        monkeypatch.setattr(world.lam, "invoke", run_function)
        yield guard


def publish_main(world: World, metrics: dict, *, tagged: bool) -> None:
    """What the default branch's train job leaves in its bucket (with its deploy role)."""
    bucket = world.main_bucket()
    world.s3.create_bucket(Bucket=bucket)
    extra = {"Tagging": urllib.parse.urlencode([PUBLISHED_TAG])} if tagged else {}
    world.s3.put_object(Bucket=bucket, Key=PUBLISHED_METRICS_KEY, Body=json.dumps(metrics), **extra)


def test_a_branch_trains_and_compares_with_main_under_its_deploy_role(
    world: World, repo, monkeypatch, tmp_path
) -> None:
    commit = commit_model(repo)
    _, metrics = local_training(repo)
    publish_main(world, worse(metrics, 0.05), tagged=True)
    with as_deploy(world, monkeypatch) as guard:
        assert world.run("--commit", commit) == 0
    assert guard.refused() == []
    assert {
        "codebuild:StartBuild",
        "codebuild:BatchGetBuilds",
        "logs:GetLogEvents",
        "lambda:UpdateFunctionCode",
        "lambda:PublishVersion",
        "lambda:InvokeFunction",
        "events:PutEvents",
    } <= guard.allowed()
    # The baseline is main's published metrics, read by this ephemeral role.
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["baseline"] is not None


def test_main_s_unmarked_objects_stay_out_of_an_ephemeral_branch_s_reach(
    world: World, repo, monkeypatch, tmp_path
) -> None:
    commit = commit_model(repo)
    _, metrics = local_training(repo)
    publish_main(world, worse(metrics, 0.05), tagged=False)
    with as_deploy(world, monkeypatch) as guard:
        # Refused, which S3 also answers for a missing object: no baseline, bounds only.
        assert world.run("--commit", commit) == 0
    (refusal,) = guard.refused()
    assert refusal.action == "s3:GetObject"
    assert refusal.resource.endswith(f"{world.main_bucket()}/{PUBLISHED_METRICS_KEY}")
    assert json.loads((tmp_path / "comparison.json").read_text())["baseline"] is None
