"""scripts.train on moto: the runner really trains (tests/codebuild_standin.py), the version
published for the run really serves its artifact (tests/lambda_standin.py)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from botocore.stub import Stubber

from infra import config, naming
from infra.training import PUBLISHED_METRICS_KEY, PUBLISHED_TAG, SOURCE_KEY
from model import train as model_train
from scripts import evaluation, events, train
from scripts.lib import aws, runner
from tests.codebuild_standin import CodeBuildRunner, StandInCodeBuild
from tests.lambda_standin import VersionedLambda
from tests.moto_stack import ACCOUNT, ROOT, build_deployed_stack

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def commit_model(repo: Path, spec_changes: dict | None = None) -> str:
    """The repository's model/ (optionally with spec changes) committed; returns the sha."""
    if (repo / "model").exists():
        shutil.rmtree(repo / "model")
    shutil.copytree(ROOT / "model", repo / "model", ignore=shutil.ignore_patterns("__pycache__"))
    if spec_changes:
        spec = json.loads((repo / "model/spec.json").read_text()) | spec_changes
        (repo / "model/spec.json").write_text(json.dumps(spec))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "model")
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    monkeypatch.setattr(train, "ROOT", path)
    return path


class World:
    """A deployed branch stack in moto whose runner runs and whose versions serve their code."""

    def __init__(self, branch: str, tmp_path: Path, endpoint: str, monkeypatch) -> None:
        self.stack = build_deployed_stack(branch)
        self.stack.outputs_file = tmp_path / f"outputs-{naming.slugify(branch)}.json"
        self.stack.outputs_file.write_text(json.dumps(self.stack.outputs))
        self.settings = config.settings_for_stack(naming.slugify(branch))
        self.runner = CodeBuildRunner(endpoint)
        self.s3 = self.stack.client("s3")
        self.lam = VersionedLambda(self.stack.client("lambda"), self.s3)
        self.codebuild = StandInCodeBuild(self.stack.client("codebuild"), self.runner)
        self.tmp = tmp_path
        overrides = {"codebuild": self.codebuild, "lambda": self.lam}
        real = aws.client
        monkeypatch.setattr(
            aws, "client", lambda service, region=None: overrides.get(service) or real(service)
        )

    @property
    def function(self) -> str:
        return self.stack.names.model_function

    def main_bucket(self) -> str:
        return train.default_branch_bucket(self.settings, ACCOUNT)

    def publish_main_metrics(self, metrics: dict) -> None:
        bucket = self.main_bucket()
        if bucket != self.stack.names.artifact_bucket:
            self.s3.create_bucket(Bucket=bucket)
        self.s3.put_object(Bucket=bucket, Key=PUBLISHED_METRICS_KEY, Body=json.dumps(metrics))

    def run(self, *extra: str) -> int:
        return train.main(
            [
                "--outputs", str(self.stack.outputs_file),
                "--results", str(self.tmp / "results"),
                "--outputs-out", str(self.tmp / "trained" / "outputs.json"),
                "--comparison", str(self.tmp / "comparison.json"),
                "--poll-seconds", "0",
                *extra,
            ]
        )  # fmt: skip

    def versions(self) -> list[str]:
        listing = self.stack.client("lambda").list_versions_by_function(FunctionName=self.function)
        return [v["Version"] for v in listing["Versions"] if v["Version"] != "$LATEST"]


@pytest.fixture
def world(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World("feature/x", tmp_path, aws, monkeypatch)


def local_training(repo: Path) -> tuple[dict, dict]:
    spec = model_train.load_spec(repo / "model/spec.json")
    return model_train.train(spec, (repo / spec["dataset"]).read_bytes())


def worse(metrics: dict, by: float) -> dict:
    """`metrics` moved `by` in each metric's worse direction (a baseline to beat or lose to)."""
    moved = {
        name: value - by if metrics["higher_is_better"][name] else value + by
        for name, value in metrics["metrics"].items()
    }
    return {**metrics, "metrics": moved, "commit": "0" * 40, "run_id": "main-run:1"}


def test_a_push_trains_on_the_runner_publishes_that_run_and_beats_main(
    world: World, repo: Path, monkeypatch, capsys
) -> None:
    commit = commit_model(repo)
    _, expected = local_training(repo)
    world.publish_main_metrics(worse(expected, 0.01))
    summary_file = world.tmp / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    before = world.versions()

    assert world.run("--commit", commit) == 0, capsys.readouterr().err

    # The runner ran on exactly the source uploaded for this commit.
    (started,) = world.runner.started
    source = world.s3.head_object(
        Bucket=world.stack.names.artifact_bucket, Key=SOURCE_KEY, VersionId=started["sourceVersion"]
    )
    assert source["Metadata"] == {"commit": commit}
    run_id = next(iter(world.runner.outcomes))
    # Runner and local training agree (same code, same data): the metrics are the model's.
    fetched = json.loads((world.tmp / "results/metrics.json").read_text())
    assert fetched["metrics"] == expected["metrics"]
    assert fetched["commit"] == commit and fetched["run_id"] == run_id

    # One new version: it is the candidate, names commit and run, and holds that run's artifact.
    trained = json.loads((world.tmp / "trained/outputs.json").read_text())
    (version,) = set(world.versions()) - set(before)
    assert trained["model_candidate_version"] == version
    assert trained["training_run"] == run_id
    configuration = world.stack.client("lambda").get_function_configuration(
        FunctionName=world.function, Qualifier=version
    )
    assert commit[:12] in configuration["Description"]
    assert train.run_of(configuration["Description"]) == run_id
    code = world.lam.code[configuration["CodeSha256"]]
    run_artifact = world.s3.get_object(
        Bucket=world.stack.names.artifact_bucket, Key=f"runs/{run_id}/model.json"
    )["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(code)).read("model.json") == run_artifact
    # The smoke check ran that version's own code.
    assert (world.function, version) in world.lam.invoked

    # History: trained and evaluated, with commit, run and metrics; fold knows the run.
    history = world.stack.history()
    kinds = {d["kind"]: d for d in history}
    assert kinds["trained"]["run_id"] == kinds["evaluated"]["run_id"] == run_id
    assert kinds["trained"]["commit"] == commit and kinds["trained"]["version"] == version
    assert kinds["evaluated"]["metrics"] == expected["metrics"]
    assert kinds["evaluated"]["gate"] == "passed"
    assert events.fold([{"detail": d, "id": str(i), "time": ""} for i, d in enumerate(history)])[
        "runs"
    ] == {version: run_id}

    # The comparison: against main's published metrics, every delta the better way.
    comparison = json.loads((world.tmp / "comparison.json").read_text())
    assert comparison["passed"] is True
    assert comparison["baseline"].startswith(f"{world.settings.default_branch} @ 000000000000")
    for name, row in comparison["metrics"].items():
        assert row["delta"] == pytest.approx(0.01 if expected["higher_is_better"][name] else -0.01)
    markdown = summary_file.read_text()
    assert "quality gate passed" in markdown and "▲ better" in markdown
    # The pull request's comment reads the same comparison back from the branch's bucket.
    fetched_evaluation = world.tmp / "evaluation.json"
    assert evaluation.fetch(world.s3, world.stack.client("sts"), "feature/x", fetched_evaluation)
    assert json.loads(fetched_evaluation.read_text()) == comparison
    # A branch never writes what others compare with.
    published = world.s3.list_objects_v2(
        Bucket=world.stack.names.artifact_bucket, Prefix="published/"
    )
    assert published.get("KeyCount", 0) == 0


def test_a_push_that_reproduces_the_live_model_publishes_nothing_to_promote(
    world: World, repo: Path, capsys
) -> None:
    first = commit_model(repo)
    _, expected = local_training(repo)
    world.publish_main_metrics(worse(expected, 0.01))
    assert world.run("--commit", first) == 0, capsys.readouterr().err
    trained_file = world.tmp / "trained" / "outputs.json"
    live = json.loads(trained_file.read_text())["model_candidate_version"]
    alias = world.stack.outputs["model_alias"]
    lam = world.stack.client("lambda")
    lam.update_alias(FunctionName=world.function, Name=alias, FunctionVersion=live)
    before = world.versions()

    # A docs-only push: another run, another commit, the same model served by the same code.
    (repo / "NOTES.md").write_text("docs only\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "docs")
    assert world.run("--commit", _git(repo, "rev-parse", "HEAD")) == 0, capsys.readouterr().err

    assert world.versions() == before
    assert json.loads(trained_file.read_text())["model_candidate_version"] == live
    assert "nothing new to publish" in capsys.readouterr().err

    # A changed model is new content: the next run publishes it.
    changed = commit_model(
        repo, {"hyperparameters": {"learning_rate": 0.4, "epochs": 300, "l2": 0.001}}
    )
    assert world.run("--commit", changed) == 0, capsys.readouterr().err
    (published,) = set(world.versions()) - set(before)
    assert json.loads(trained_file.read_text())["model_candidate_version"] == published


def test_the_content_digest_ignores_provenance_and_sees_the_model(tmp_path: Path) -> None:
    handler = tmp_path / "handler"
    handler.mkdir()
    (handler / "handler.py").write_text("def handler(event, context): ...\n")
    artifact = json.loads((train.HANDLER_DIR / "model.json").read_text())
    one = {**artifact, "training": {"commit": "a" * 40, "run_id": "run:1"}}
    two = {**artifact, "training": {"commit": "b" * 40, "run_id": "run:2"}}
    digest = runner.content_digest(handler, json.dumps(one).encode(), None)
    assert runner.content_digest(handler, json.dumps(two).encode(), None) == digest
    reweighted = {**one, "weights": [w + 0.5 for w in one["weights"]]}
    assert runner.content_digest(handler, json.dumps(reweighted).encode(), None) != digest
    (handler / "handler.py").write_text("def handler(event, context): return 1\n")
    assert runner.content_digest(handler, json.dumps(one).encode(), None) != digest


def test_a_regression_past_the_gate_stops_with_the_reason(
    world: World, repo: Path, monkeypatch, capsys
) -> None:
    commit = commit_model(repo)
    _, expected = local_training(repo)
    gate = world.settings.quality_gate["auc"]["maxRegression"]
    better_main = worse(expected, -(gate + 0.03))  # main is better by more than allowed
    world.publish_main_metrics(better_main)
    summary_file = world.tmp / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))

    assert world.run("--commit", commit) == 1
    err = capsys.readouterr().err
    assert "train: quality gate failed: auc regressed by" in err
    markdown = summary_file.read_text()
    assert "quality gate FAILED" in markdown and "Promotion stops here" in markdown
    assert "▼ worse" in markdown
    evaluated = [d for d in world.stack.history() if d["kind"] == "evaluated"]
    assert evaluated[0]["gate"] == "failed"
    assert json.loads((world.tmp / "comparison.json").read_text())["passed"] is False


def test_a_failed_run_fails_with_its_log_excerpt_and_deploys_nothing(
    world: World, repo: Path, capsys
) -> None:
    commit = commit_model(repo, {"features": ["tenure_months", "no_such_column"]})
    before = world.versions()
    assert world.run("--commit", commit) == 1
    err = capsys.readouterr().err
    assert "ended FAILED; nothing is deployed from it" in err
    # The excerpt is the runner's log: the training's own error, streamed from CloudWatch.
    assert "dataset lacks column(s) no_such_column" in err
    assert world.versions() == before
    assert not (world.tmp / "trained/outputs.json").exists()
    assert [d["kind"] for d in world.stack.history()] == []


def test_a_run_past_the_timeout_is_stopped_and_fails(world: World, repo: Path, capsys) -> None:
    commit = commit_model(repo)
    world.runner.hang = True
    before = world.versions()
    assert world.run("--commit", commit, "--timeout-minutes", "0.0001") == 1
    err = capsys.readouterr().err
    assert "did not finish within 0s and was stopped" in err
    # moto reports every build SUCCEEDED whatever happened, so the stop is read off the call.
    assert world.runner.stopped == list(world.runner.outcomes)
    assert world.versions() == before


def test_on_the_default_branch_the_gate_compares_with_the_live_version(
    aws: str, repo: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    world = World("main", tmp_path, aws, monkeypatch)
    commit = commit_model(repo)
    # The first run has nothing live to compare with; its bounds pass, so main publishes.
    assert world.run("--commit", commit) == 0, capsys.readouterr().err
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["baseline"] is None
    assert "no training run recorded" in comparison["notes"][0]
    first = comparison["version"]
    published = json.loads(
        world.s3.get_object(Bucket=world.main_bucket(), Key=PUBLISHED_METRICS_KEY)["Body"].read()
    )
    assert published["run_id"] == comparison["run_id"] and published["version"] == first
    # Marked published: the one object other branches' roles may read (docs/access.md).
    tags = world.s3.get_object_tagging(Bucket=world.main_bucket(), Key=PUBLISHED_METRICS_KEY)
    assert {(t["Key"], t["Value"]) for t in tags["TagSet"]} == {PUBLISHED_TAG}

    # Promoted; the next push on main is compared with what is live, run for run.
    world.stack.set_alias(first, {})
    assert world.run("--commit", commit) == 0
    again = json.loads((tmp_path / "comparison.json").read_text())
    assert again["baseline"] == f"live version {first} (run {comparison['run_id']})"
    assert all(row["delta"] == 0 for row in again["metrics"].values())


def test_bad_input_exits_2_and_changes_nothing(world: World, repo: Path, capsys) -> None:
    commit_model(repo)
    assert world.run("--commit", "f" * 40) == 2
    assert "cannot archive commit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        world.run("--timeout-minutes", "0")
    assert exited.value.code == 2
    assert "--timeout-minutes 0 must be in (0, 480]" in capsys.readouterr().err
    assert world.runner.started == []


def test_a_branch_not_trained_yet_has_no_evaluation(world: World, capsys) -> None:
    out = world.tmp / "evaluation.json"
    assert not evaluation.fetch(world.s3, world.stack.client("sts"), "feature/x", out)
    assert not out.exists()
    assert evaluation.main(["--branch", "feature/x", "--output", str(out)]) == 0
    assert "none yet for branch feature/x" in capsys.readouterr().err
    assert evaluation.main(["--branch", "bad..name", "--output", str(out)]) == 2


def test_a_default_branch_that_published_nothing_is_no_baseline_even_when_s3_says_denied() -> None:
    # A role that may read only the published object, not list the bucket, gets
    # AccessDenied for a missing key (S3's answer without s3:ListBucket).
    s3 = aws.client("s3", "us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
        baseline, label = train.branch_baseline(s3, "bucket", "main")
    assert baseline is None and "main" in label
    with Stubber(s3) as stub, pytest.raises(aws.ScriptError):
        stub.add_client_error("get_object", "InvalidObjectState", http_status_code=403)
        train.branch_baseline(s3, "bucket", "main")
