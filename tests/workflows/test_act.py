"""The real workflow files, run by act in host mode against stand-ins (see conftest.py).

act ignores `environment:` (no approval gate), `concurrency` and OIDC: test_static.py
checks those from the files. Everything else here runs for real: the jobs, their order
and outputs, the composite setup action, every nox session and script, boto3 against
moto, and the artifacts handed from job to job.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from infra import config, naming
from infra.training import PUBLISHED_METRICS_KEY
from scripts import events, train
from scripts.lib import outputs
from tests import model_packages
from tests.moto_stack import ACCOUNT, build_deployed_stack
from tests.workflows.conftest import (
    ACT_TIMEOUT_SECONDS,
    FAILING_SUITE,
    ROLES,
    ROOT,
    SECRETS,
    Act,
    ActRun,
    project_name,
    seed_deployed_stack,
    state_objects,
)

BRANCH = "feature/Fancy_Model"
# The slug infra.naming gives the branch (README: "Branches, stacks and names");
# test_static.py checks it, so a naming change fails there, not here obscurely.
STACK = "feature-fancy-mode-c084cfc5"
PIPELINE = ["unit", "integration", "preview", "deploy", "train", "promote", "release"]

pytestmark = pytest.mark.act
REPOSITORY = {
    "full_name": "acme/mlship",
    "name": "mlship",
    "owner": {"login": "acme"},
    "default_branch": "main",
}


def push_event(branch: str) -> dict:
    return {"ref": f"refs/heads/{branch}", "repository": REPOSITORY, "created": False}


def delete_event(branch: str, default_branch: str = "main") -> dict:
    return {
        "ref": branch,
        "ref_type": "branch",
        "repository": {**REPOSITORY, "default_branch": default_branch},
    }


def assert_no_secret_leaked(run: ActRun) -> None:
    for value in SECRETS.values():
        assert value not in run.text


def deployed_in_moto(act: Act, branch: str):
    """What `pulumi up` leaves in AWS, plus the candidate this deploy published (v2)."""
    stack = build_deployed_stack(branch)
    stack.publish_candidate()
    act.pulumi_answers["stack output"] = json.dumps(stack.outputs)
    return stack


def publish_default_branch_metrics(stack, metrics: dict) -> None:
    """What the default branch's train job left for other branches to compare with."""
    settings = config.settings_for_stack(naming.slugify(BRANCH))
    bucket = train.default_branch_bucket(settings, ACCOUNT)
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=PUBLISHED_METRICS_KEY, Body=json.dumps(metrics))


def shipped_metrics(shift: float) -> dict:
    """The shipped model's metrics, each moved `shift` in its better direction."""
    metrics = model_packages.shipped().metrics
    moved = {
        name: value + shift if metrics["higher_is_better"][name] else value - shift
        for name, value in metrics["metrics"].items()
    }
    return {**metrics, "metrics": moved, "commit": "c0ffee" * 6 + "c0ff", "run_id": "main:1"}


def test_push_runs_every_job_in_order_and_moves_traffic_and_the_api(act: Act):
    stack = deployed_in_moto(act, BRANCH)
    # main's model is a little worse than this branch's: the gate lets it through.
    publish_default_branch_metrics(stack, shipped_metrics(-0.01))
    apigw, lam = stack.client("apigateway"), stack.client("lambda")
    api_id = stack.outputs["api_id"]
    before = {
        v: apigw.get_stage(restApiId=api_id, stageName=v)["deploymentId"] for v in ("v1", "v2")
    }

    run = act("push", push_event(BRANCH), "push.yml")

    assert run.returncode == 0, run.explain()
    assert run.results == dict.fromkeys(PIPELINE, "success"), run.explain()
    # Fail fast: preview waits for lint and the unit tier only; the moto and act tiers run
    # beside it, and deploy waits for both.
    order = run.finished_order
    assert order.index("unit") < order.index("preview") < order.index("deploy"), order
    assert order.index("integration") < order.index("deploy"), order
    assert order[-4:] == ["deploy", "train", "promote", "release"], order

    # Pulumi was driven on the branch's stack only: preview saved a plan, deploy applied it.
    verbs = [c[0] for c in run.pulumi_calls if c[0] in {"preview", "up", "destroy", "refresh"}]
    assert verbs == ["preview", "up"]
    for call in run.pulumi_calls:
        named = call[call.index("--stack") + 1] if "--stack" in call else call[2]
        assert named == STACK, call
    up = next(c for c in run.pulumi_calls if c[0] == "up")
    assert "--plan" in up and "--yes" in up
    assert ["stack", "output", "--json", "--stack", STACK, "--non-interactive"] in run.pulumi_calls
    assert ["config", "set", "mlship:branch", BRANCH, "--stack", STACK, "--non-interactive"] in (
        run.pulumi_calls
    )
    # The setup action kept only the pinned provider in the plugin cache.
    aws_pin = re.search(r"^pulumi-aws==([0-9.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert f"plugin rm resource aws !={aws_pin[1]} --yes" in " ".join(
        " ".join(c) for c in run.all_pulumi_calls
    )
    # The backend and the token reached pulumi; so did credentials, from the AWS step.
    assert all(e["backend"] == "s3://mlship-state-act-test" for e in run.pulumi_env)
    assert all(e["access_token_set"] and e["aws_credentials"] for e in run.pulumi_env)

    # One role per duty and stack kind: a push previews with the role that deploys
    # it; traffic and release jobs assumed the (ephemeral) promote role.
    assert [(r["job"], r["role"]) for r in run.aws_roles] == [
        ("preview", ROLES["AWS_DEPLOY_ROLE_ARN"]),
        ("deploy", ROLES["AWS_DEPLOY_ROLE_ARN"]),
        ("train", ROLES["AWS_DEPLOY_ROLE_ARN"]),
        ("promote", ROLES["AWS_PROMOTE_ROLE_ARN"]),
        ("release", ROLES["AWS_PROMOTE_ROLE_ARN"]),
    ]

    # Deploy handed GitHub the API URL (the environment's url) and smoke-checked version 2.
    assert run.outputs("deploy")["api_url"] == stack.outputs["api_url"]
    assert (stack.names.model_function, "2") in act.aws.invocations

    # The runner trained this commit; its run's version (3) was smoke-checked and is the
    # one promote moved alias live fully onto; release moved only v2's stage.
    trained = lam.get_function_configuration(FunctionName=stack.names.model_function, Qualifier="3")
    (run_id,) = act.aws.codebuild.outcomes
    assert act.aws.codebuild.outcomes[run_id].status == "SUCCEEDED"
    assert train.run_of(trained["Description"]) == run_id
    assert run.outputs("train")["version"] == "3"
    # ...and handed promote that version, with its code's digest, to act on and no other.
    assert run.outputs("train")["candidate-version"] == "3"
    assert run.outputs("train")["candidate-sha256"] == trained["CodeSha256"]
    assert run.outputs("train")["promote"] == "true"
    # Its smoke check ran version 3's own code: the handler with the run's artifact.
    (_, _, sha) = next(r for r in act.aws.code_runs if r[:2] == (stack.names.model_function, "3"))
    assert trained["CodeSha256"] == sha
    package = zipfile.ZipFile(io.BytesIO(act.aws.code[sha]))
    run_artifact = (
        stack.client("s3")
        .get_object(Bucket=stack.names.artifact_bucket, Key=f"runs/{run_id}/model.json")["Body"]
        .read()
    )
    assert package.read("model.json") == run_artifact
    alias = lam.get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "3"
    assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    after = {
        v: apigw.get_stage(restApiId=api_id, stageName=v)["deploymentId"] for v in ("v1", "v2")
    }
    assert after["v1"] == before["v1"]
    assert after["v2"] != before["v2"]

    # Every step recorded its lifecycle event on the branch's bus (delivered to the store
    # by the real processor handler, as the bus's Lambda target would).
    stack.deliver_events()
    history = events.history(stack.client("s3"), outputs.StackOutputs(stack.outputs, "moto"))
    kinds = [e["detail"]["kind"] for e in history]
    assert kinds[0] == "deployed" and "promoted" in kinds and kinds[-1] == "released", kinds
    assert "trained" in kinds and "evaluated" in kinds
    assert events.fold(history)["live_version"] == "3"
    assert events.fold(history)["live_run"] == run_id

    # Promote and release first made sure their approval environments gate them.
    asked = [r["path"] for r in act.github.requests if "/environments/" in r["path"]]
    assert asked == [
        "/repos/acme/mlship/environments/canary-promotion",
        "/repos/acme/mlship/environments/api-release",
    ]

    # Each job said what it did in its step summary.
    for job in PIPELINE:
        assert run.summaries(job), f"{job} wrote no step summary"
    assert any("smoke" in s.lower() for s in run.summaries("deploy"))
    assert any("promoted" in s for s in run.summaries("promote"))
    assert any("quality gate passed" in s and "▲ better" in s for s in run.summaries("train"))
    assert_no_secret_leaked(run)


def test_a_push_that_changes_neither_model_nor_api_asks_nobody_to_approve(act: Act):
    stack = deployed_in_moto(act, BRANCH)
    publish_default_branch_metrics(stack, shipped_metrics(-0.01))
    lam, apigw = stack.client("lambda"), stack.client("apigateway")
    first = act("push", push_event(BRANCH), "push.yml")
    assert first.returncode == 0, first.explain()
    live = lam.get_alias(FunctionName=stack.names.model_function, Name="live")["FunctionVersion"]
    stages = {
        v: apigw.get_stage(restApiId=stack.outputs["api_id"], stageName=v)["deploymentId"]
        for v in ("v1", "v2")
    }

    # Pushed again with nothing that changes the model or the API (a docs-only change):
    # training reproduces what alias live serves, and v2's stage serves the API as it is.
    run = act("push", push_event(BRANCH), "push.yml", verbose=True)

    assert run.returncode == 0, run.explain()
    assert run.results == {
        **dict.fromkeys(["unit", "integration", "preview", "deploy", "train"], "success"),
        "promote": "skipped",
        "release": "skipped",
    }, run.explain()
    assert run.outputs("train")["promote"] == "false"
    assert run.outputs("train")["candidate-version"] == live
    assert run.outputs("deploy")["release"] == "false"
    assert f"Promotion skipped: alias live already serves version {live}" in "\n".join(
        run.summaries("train")
    )
    said = "\n".join(run.summaries("deploy"))
    assert "Release skipped: stage v2 already serves API v2's definition" in said
    assert [r["job"] for r in run.aws_roles] == ["preview", "deploy", "train"]
    # Nobody was asked, and nothing moved.
    assert (
        lam.get_alias(FunctionName=stack.names.model_function, Name="live")["FunctionVersion"]
        == live
    )
    for version, deployment in stages.items():
        current = apigw.get_stage(restApiId=stack.outputs["api_id"], stageName=version)
        assert current["deploymentId"] == deployment


def test_a_model_that_regresses_past_the_gate_stops_before_promotion(act: Act):
    stack = deployed_in_moto(act, BRANCH)
    # main's model is clearly better than this branch's: beyond maxRegression.
    publish_default_branch_metrics(stack, shipped_metrics(0.1))

    run = act("push", push_event(BRANCH), "push.yml")

    assert run.returncode != 0
    assert run.results == {
        "unit": "success", "integration": "success", "preview": "success",
        "deploy": "success", "train": "failure",
    }, run.explain()  # fmt: skip
    (summary,) = [s for s in run.summaries("train") if "quality gate" in s]
    assert "quality gate FAILED" in summary and "Promotion stops here" in summary
    assert "auc regressed by" in summary
    # Nobody was asked to approve it, and live traffic never moved.
    asked = [r["path"] for r in act.github.requests if "/environments/" in r["path"]]
    assert asked == []
    alias = stack.client("lambda").get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "1"


def test_a_failing_test_job_stops_everything_after_it(act: Act):
    stack = deployed_in_moto(act, BRANCH)

    run = act("push", push_event(BRANCH), "push.yml", pytest_addopts=FAILING_SUITE)

    assert run.returncode != 0
    # The unit tier failed: no preview; the integration tier ran beside it and passed.
    assert run.results == {"unit": "failure", "integration": "success"}, run.explain()
    # The failing test is in the unit job's summary with its assertion and its line...
    (summary,) = [s for s in run.summaries("unit") if "Tests" in s]
    suite = FAILING_SUITE
    line = (ROOT / suite).read_text().splitlines().index(
        '    assert live_version == "2", "deliberately failing: nothing after the test job may run"'
    ) + 1
    assert f"**`{suite}::test_fails`** failed at `{suite}:{line}`" in summary, summary
    assert "AssertionError: deliberately failing" in summary
    assert "assert '1' == '2'" in summary
    # ...and annotated on that line (act parses the workflow command as GitHub does).
    annotations = [e["kvPairs"] for e in run.entries if e.get("command") == "error"]
    assert {"file": suite, "line": str(line), "title": f"{suite}::test_fails"} in annotations
    assert run.pulumi_calls == [] and run.aws_roles == []
    alias = stack.client("lambda").get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "1"


def test_deleting_a_branch_that_never_deployed_creates_and_destroys_nothing(act: Act, aws):
    run = act("delete", delete_event(BRANCH), "delete.yml")

    assert run.returncode == 0, run.explain()
    assert run.results == {"quiesce": "success", "destroy": "success", "environment": "success"}
    assert run.finished_order == ["quiesce", "destroy", "environment"]
    assert "nothing to destroy" in run.text
    assert not any(c[0] == "destroy" or "--create" in c for c in run.pulumi_calls)
    assert state_objects(aws) == []
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_DEPLOY_ROLE_ARN"]]
    # No admin token in these tests: the environment is left, with what to delete by hand.
    (note,) = run.summaries("environment")
    assert f"`branch/{STACK}` was left in place" in note
    assert_no_secret_leaked(run)


def _cancel_when_pulumi_up_hangs(marker: Path, pids: list[int]):
    def cancel(process: subprocess.Popen) -> None:
        for _ in range(int(ACT_TIMEOUT_SECONDS / 0.1)):
            if marker.is_file() and marker.read_text():
                break
            if process.poll() is not None:
                return
            time.sleep(0.1)
        pids.append(int(marker.read_text()))
        # The Actions UI's cancel: act stops the step and runs the `if: cancelled()` steps.
        process.send_signal(signal.SIGINT)

    return cancel


def test_a_branch_lives_on_fresh_runners_through_a_cancelled_deploy_to_its_deletion(
    act: Act, aws, tmp_path: Path
):
    """Every job a fresh workspace (act gives each its own): nothing but the backend and
    the artifacts carries a stack from one job to the next, as on GitHub."""
    deployed_in_moto(act, BRANCH)
    checkpoint = f".pulumi/stacks/{project_name()}/{STACK}.json"

    first = act("push", push_event(BRANCH), "push.yml", job="deploy")
    assert first.results == {
        "unit": "success",
        "integration": "success",
        "preview": "success",
        "deploy": "success",
    }, first.explain()
    assert checkpoint in state_objects(aws)

    marker, pids = tmp_path / "pulumi-up.pid", []
    try:
        cancelled = act(
            "push",
            push_event(BRANCH),
            "push.yml",
            job="deploy",
            env={"FAKE_PULUMI_HANG": "up", "FAKE_PULUMI_HANG_MARKER": str(marker)},
            while_running=_cancel_when_pulumi_up_hangs(marker, pids),
        )
    finally:
        for pid in pids:  # what the runner's kill of the process tree ends
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert pids, cancelled.explain()
    assert cancelled.results.get("deploy") != "success", cancelled.explain()
    # The cleanup step released the lock the killed pulumi left, and said how to repair
    # the create it interrupted.
    assert "released 1 lock(s)" in cancelled.text, cancelled.explain()
    assert "--import-pending-creates" in cancelled.text
    assert not [key for key in state_objects(aws) if "/locks/" in key]

    after = act("push", push_event(BRANCH), "push.yml", job="deploy")
    assert after.results == {
        "unit": "success",
        "integration": "success",
        "preview": "success",
        "deploy": "success",
    }, after.explain()
    assert [c[0] for c in after.pulumi_calls if c[0] in {"preview", "up"}] == ["preview", "up"]

    gone = act("delete", delete_event(BRANCH), "delete.yml")
    assert gone.results == {
        "quiesce": "success",
        "destroy": "success",
        "environment": "success",
    }, gone.explain()
    assert ["destroy", "--stack", STACK, "--yes", "--remove", "--non-interactive"] in (
        gone.pulumi_calls
    )
    assert checkpoint not in state_objects(aws)
    for run in (first, cancelled, after, gone):
        # Every pulumi process could find an existing stack's KMS provider in its state.
        assert all(e["fallback"] == "true" for e in run.pulumi_env)
        assert_no_secret_leaked(run)


def test_deleting_the_default_branch_destroys_nothing(act: Act):
    run = act("delete", delete_event("main"), "delete.yml", verbose=True)

    assert run.returncode == 0, run.explain()
    assert run.skipped_by_condition("destroy"), run.explain()
    assert run.results == {"quiesce": "skipped", "destroy": "skipped", "environment": "skipped"}
    assert run.pulumi_calls == [] and run.aws_roles == []


def test_a_protected_branch_that_is_not_the_default_is_refused_by_nox(act: Act):
    # `main` is in protectedBranches; here it is not the default branch, so the workflow's
    # condition lets it through and the second guard, `nox -s destroy`, must refuse.
    run = act("delete", delete_event("main", default_branch="trunk"), "delete.yml")

    assert run.returncode != 0
    assert run.results == {"quiesce": "success", "destroy": "failure"}
    assert "is protected" in run.text
    assert not any(c[0] == "destroy" for c in run.pulumi_calls)


def pr_event(head_repo: str = "acme/mlship") -> dict:
    return {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"ref": BRANCH, "sha": "c0ffee" * 6 + "abcd", "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "repo": {"full_name": "acme/mlship"}},
        },
        "repository": REPOSITORY,
    }


def test_pull_request_previews_and_edits_its_one_sticky_comment(act: Act, github_api):
    # 100 other comments, then last run's sticky comment: it is on the second page.
    github_api.seed(7, [f"comment {i}" for i in range(100)])
    (sticky,) = github_api.seed(7, [f"<!-- mlship:preview:{STACK} -->\nlast run's preview"])
    # A preview far over GitHub's limit, its resource counts at the very end.
    act.pulumi_answers["preview"] = (
        f"Previewing update ({STACK}):\n"
        + "".join(f" +  aws:lambda:Permission invoke-{i} create\n" for i in range(3_000))
        + "\nResources:\n    + 3000 to create\n    31 unchanged\n\nDuration: 9s\n"
    )

    run = act("pull_request", pr_event(), "pull-request.yml")

    assert run.returncode == 0, run.explain()
    assert run.results == {
        "unit": "success",
        "integration": "success",
        "preview": "success",
        "comment": "success",
    }, run.explain()
    assert [c[0] for c in run.pulumi_calls if c[0] in {"preview", "up", "destroy"}] == ["preview"]
    # It previewed the pull request's head commit (what a push of the branch deploys).
    assert f"checkout stand-in: ref={pr_event()['pull_request']['head']['sha']}" in run.text
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_PREVIEW_ROLE_ARN"]]

    calls = [(r["method"], r["path"], r["query"].get("page")) for r in github_api.requests]
    comments = "/repos/acme/mlship/issues/7/comments"
    assert calls == [
        ("GET", comments, None),
        ("GET", comments, "2"),
        ("PATCH", f"/repos/acme/mlship/issues/comments/{sticky}", None),
    ]
    assert {r["authorization"] for r in github_api.requests} == {
        f"Bearer {SECRETS['GITHUB_TOKEN']}"
    }
    body = github_api.requests[-1]["body"]["body"]
    assert len(body) <= 65_536
    assert body.startswith(f"<!-- mlship:preview:{STACK} -->\n### Pulumi preview of `{STACK}`: ")
    assert "✅ succeeded" in body.splitlines()[1]
    # The summary first (with the counts from the cut-off end), then the note, then the output.
    summary_end, note = body.index("| + 3000 to create |"), body.index("Trimmed to fit")
    assert summary_end < note < body.index("<details>")
    # The preview job's offline cost estimate rides in the summary, before the output.
    assert "**Cost estimate**" in body[: body.index("<details>")]
    assert "invoke-0 create" in body and "invoke-2999 create" not in body
    assert run.summaries("comment") == [body]  # the same text in the step summary
    assert_no_secret_leaked(run)


def test_a_pull_request_from_a_fork_is_tested_offline_and_not_previewed(act: Act, github_api):
    run = act(
        "pull_request", pr_event(head_repo="someone/mlship-fork"), "pull-request.yml", verbose=True
    )

    assert run.returncode == 0, run.explain()
    assert run.skipped_by_condition("preview"), run.explain()
    # The offline tiers run for it (no AWS, no secret); no preview, so no comment.
    assert run.results == {
        "unit": "success",
        "integration": "success",
        "fork": "success",
        "preview": "skipped",
        "comment": "skipped",
    }, run.explain()
    assert run.pulumi_calls == [] and run.aws_roles == [] and github_api.requests == []
    # What a maintainer does to preview it is said where the fork's author sees it.
    (note,) = run.summaries("fork")
    assert "git fetch origin pull/7/head:pr-7 && git push origin pr-7" in note


def test_manual_rollback_puts_the_previous_version_back(act: Act):
    stack = deployed_in_moto(act, BRANCH)
    lam = stack.client("lambda")
    lam.update_alias(FunctionName=stack.names.model_function, Name="live", FunctionVersion="2")

    run = act(
        "workflow_dispatch",
        {"inputs": {"branch": BRANCH, "to": "1", "reason": "act test"}, "repository": REPOSITORY},
        "rollback.yml",
    )

    assert run.returncode == 0, run.explain()
    # The stack's kind (ephemeral here) is known before the traffic job picks its gate.
    assert run.results == {"stack": "success", "rollback": "success"}
    alias = lam.get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "1"
    # The outputs came from the branch's stack, read with pulumi; traffic took the promote role.
    assert run.pulumi_calls[0][:5] == ["stack", "output", "--json", "--stack", STACK]
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_PROMOTE_ROLE_ARN"]]
    stack.deliver_events()
    history = events.history(stack.client("s3"), outputs.StackOutputs(stack.outputs, "moto"))
    assert [e["detail"]["kind"] for e in history] == ["rolled-back"]
    assert history[0]["detail"]["reason"] == "act test"


def test_the_scheduled_drift_check_refreshes_every_protected_stack_read_only(act: Act, aws):
    for stack in ("main", "shared"):
        seed_deployed_stack(aws, stack)
    before = state_objects(aws)
    # Only the drift job: the sweeper lists branches with `gh api`, which needs GitHub.
    run = act("schedule", {"schedule": "17 3 * * *"}, "schedule.yml", job="drift")

    assert run.returncode == 0, run.explain()
    # The matrix came from config (the stacks job), not a list in the workflow.
    assert run.results.get("protected stacks") == "success", run.explain()
    refreshed = sorted(c[c.index("--stack") + 1] for c in run.pulumi_calls if c[0] == "refresh")
    assert refreshed == ["main", "shared"]
    for call in run.pulumi_calls:
        if call[0] == "refresh":
            assert "--preview-only" in call and "--expect-no-changes" in call
    assert not any(c[0] in {"up", "destroy"} or "--create" in c for c in run.pulumi_calls)
    # Read-only by `--preview-only`; the protected role, as only it decrypts their secrets.
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_DEPLOY_PROTECTED_ROLE_ARN"]] * 2
    assert state_objects(aws) == before  # read only: no lock, no new checkpoint

    drifted = act(
        "schedule",
        {"schedule": "17 3 * * *"},
        "schedule.yml",
        job="drift",
        env={"FAKE_PULUMI_DRIFT": "1"},
    )
    assert drifted.returncode != 0
    assert "drifted" in drifted.text and "exit code 7" in drifted.text, drifted.explain()


def test_traffic_never_moves_when_the_approval_environment_is_not_gated(act: Act):
    # A fork that never ran bootstrap: GitHub would create canary-promotion unprotected
    # the first time a job names it, and run the job without anybody's approval.
    act.github.environment("canary-promotion", reviewers=[])
    stack = deployed_in_moto(act, BRANCH)
    lam = stack.client("lambda")
    lam.update_alias(FunctionName=stack.names.model_function, Name="live", FunctionVersion="2")

    run = act(
        "workflow_dispatch",
        {"inputs": {"branch": BRANCH, "to": "1", "reason": "act test"}, "repository": REPOSITORY},
        "rollback.yml",
    )

    assert run.returncode != 0
    assert run.results == {"stack": "success", "rollback": "failure"}
    assert "refusing to move traffic" in run.text
    assert run.aws_roles == []  # refused before any AWS credentials were asked for
    alias = lam.get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "2"
