"""The real workflow files, run by act in host mode against stand-ins (see conftest.py).

act ignores `environment:` (no approval gate), `concurrency` and OIDC: test_static.py
checks those from the files. Everything else here runs for real: the jobs, their order
and outputs, the composite setup action, every nox session and script, boto3 against
moto, and the artifacts handed from job to job.
"""

from __future__ import annotations

import json

import pytest

from scripts import events, outputs
from tests.moto_stack import build_deployed_stack
from tests.workflows.conftest import FAILING_SUITE, ROLES, ROOT, SECRETS, Act, ActRun

BRANCH = "feature/Fancy_Model"
# The slug infra.naming gives the branch (README: "Branches, stacks and names");
# test_static.py checks it, so a naming change fails there, not here obscurely.
STACK = "feature-fancy-mode-c084cfc5"
PIPELINE = ["unit", "integration", "preview", "deploy", "promote", "release"]

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


def test_push_runs_every_job_in_order_and_moves_traffic_and_the_api(act: Act):
    stack = deployed_in_moto(act, BRANCH)
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
    assert order[-3:] == ["deploy", "promote", "release"], order

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
    # The backend and the token reached pulumi; so did credentials, from the AWS step.
    assert all(e["backend"] == "s3://mlship-state-act-test" for e in run.pulumi_env)
    assert all(e["access_token_set"] and e["aws_credentials"] for e in run.pulumi_env)

    # One role per duty: traffic and release jobs assumed the promote role.
    assert [(r["job"], r["role"]) for r in run.aws_roles] == [
        ("preview", ROLES["AWS_PREVIEW_ROLE_ARN"]),
        ("deploy", ROLES["AWS_DEPLOY_ROLE_ARN"]),
        ("promote", ROLES["AWS_PROMOTE_ROLE_ARN"]),
        ("release", ROLES["AWS_PROMOTE_ROLE_ARN"]),
    ]

    # Deploy handed GitHub the API URL (the environment's url) and smoke-checked version 2.
    assert run.outputs("deploy")["api_url"] == stack.outputs["api_url"]
    assert (stack.names.model_function, "2") in act.aws.invocations

    # Promote moved alias live fully onto version 2; release moved only v2's stage.
    alias = lam.get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "2"
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
    assert events.fold(history)["live_version"] == "2"

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
    assert_no_secret_leaked(run)


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


def test_deleting_a_feature_branch_destroys_its_stack(act: Act):
    run = act("delete", delete_event(BRANCH), "delete.yml")

    assert run.returncode == 0, run.explain()
    assert run.results == {"destroy": "success"}
    destroy = ["destroy", "--stack", STACK, "--yes", "--remove", "--non-interactive"]
    assert destroy in run.pulumi_calls
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_DEPLOY_ROLE_ARN"]]
    assert_no_secret_leaked(run)


def test_deleting_the_default_branch_destroys_nothing(act: Act):
    run = act("delete", delete_event("main"), "delete.yml", verbose=True)

    assert run.returncode == 0, run.explain()
    assert run.skipped_by_condition("destroy"), run.explain()
    assert run.results == {"destroy": "skipped"}
    assert run.pulumi_calls == [] and run.aws_roles == []


def test_a_protected_branch_that_is_not_the_default_is_refused_by_nox(act: Act):
    # `main` is in protectedBranches; here it is not the default branch, so the workflow's
    # condition lets it through and the second guard, `nox -s destroy`, must refuse.
    run = act("delete", delete_event("main", default_branch="trunk"), "delete.yml")

    assert run.returncode != 0
    assert run.results == {"destroy": "failure"}
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


def test_a_pull_request_from_a_fork_is_not_previewed(act: Act, github_api):
    run = act(
        "pull_request", pr_event(head_repo="someone/mlship-fork"), "pull-request.yml", verbose=True
    )

    assert run.returncode == 0, run.explain()
    assert run.skipped_by_condition("preview"), run.explain()
    # ...and the comment job with it: there is nothing to comment on. The offline tiers
    # still run: they need no credentials.
    assert run.results == {
        "unit": "success",
        "integration": "success",
        "preview": "skipped",
        "comment": "skipped",
    }, run.explain()
    assert run.pulumi_calls == [] and run.aws_roles == [] and github_api.requests == []


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
    assert run.results == {"rollback": "success"}
    alias = lam.get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "1"
    # The outputs came from the branch's stack, read with pulumi; traffic took the promote role.
    assert run.pulumi_calls[0][:5] == ["stack", "output", "--json", "--stack", STACK]
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_PROMOTE_ROLE_ARN"]]
    stack.deliver_events()
    history = events.history(stack.client("s3"), outputs.StackOutputs(stack.outputs, "moto"))
    assert [e["detail"]["kind"] for e in history] == ["rolled-back"]
    assert history[0]["detail"]["reason"] == "act test"


def test_the_scheduled_drift_check_refreshes_every_protected_stack_read_only(act: Act):
    # Only the drift job: the sweeper's own tests are tests/test_cleanup*.py.
    run = act("schedule", {"schedule": "17 3 * * *"}, "schedule.yml", job="drift")

    assert run.returncode == 0, run.explain()
    refreshed = sorted(c[c.index("--stack") + 1] for c in run.pulumi_calls if c[0] == "refresh")
    assert refreshed == ["main", "shared"]
    for call in run.pulumi_calls:
        if call[0] == "refresh":
            assert "--preview-only" in call and "--expect-no-changes" in call
    assert not any(c[0] in {"up", "destroy"} for c in run.pulumi_calls)
    assert [r["role"] for r in run.aws_roles] == [ROLES["AWS_PREVIEW_ROLE_ARN"]] * 2


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
    assert run.results == {"rollback": "failure"}
    assert "refusing to move traffic" in run.text
    assert run.aws_roles == []  # refused before any AWS credentials were asked for
    alias = lam.get_alias(FunctionName=stack.names.model_function, Name="live")
    assert alias["FunctionVersion"] == "2"
