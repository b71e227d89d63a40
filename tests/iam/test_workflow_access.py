"""What GitHub would do: each job's role and environment, its token, and whether AWS trusts it.

The workflow files are read as they are; the `${{ }}` expressions that pick a
job's role and environment are evaluated for each event and stack kind; the
token's `sub` is what GitHub issues for that job (a ref without an
environment, the environment with one, `pull_request` for a pull request);
and the synthesized trust policies decide (tests/iam/model.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from infra import naming
from infra.components import ci_access
from scripts import bootstrap
from tests.iam.model import REPOSITORY, protected_branches, settings, shared_model

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
MODEL = shared_model()
# Repository variable holding a role ARN -> the duty of that role.
DUTY_OF = {
    variable: duty
    for variable, output in bootstrap.VARIABLES.items()
    for duty in ci_access.DUTIES
    if output == ci_access.output_name(duty)
}
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class Context(SimpleNamespace):
    """A GitHub expression context: a missing property is null, as in GitHub."""

    def __getattr__(self, name: str) -> Any:
        return None


def _namespace(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Context(**{k.replace("-", "_"): _namespace(v) for k, v in value.items()})
    return value


def _format(template: str, *args: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m.group(1))]), template)


def evaluate(text: str, context: Mapping[str, Any]) -> str:
    """Substitute each `${{ }}`: `&&`, `||`, `==`, `!`, literals, contexts and format().

    Python's `and`/`or` return an operand as GitHub's `&&`/`||` do. GitHub
    compares strings ignoring case; every comparison here is of lowercase values.
    """
    contexts = ("github", "inputs", "vars", "needs", "steps", "secrets", "env", "runner", "matrix")
    names = {name: Context() for name in contexts}
    names.update({k: _namespace(v) for k, v in context.items()})

    def one(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        python = (
            expression.replace("&&", " and ")
            .replace("||", " or ")
            .replace("!=", " != ")
            .replace("format(", "_format(")
        )
        python = re.sub(r"!(?!=)", " not ", python)
        python = re.sub(
            r"\b(true|false|null)\b",
            lambda m: {"true": "True", "false": "False", "null": "None"}[m.group(1)],
            python,
        )
        value = eval(python, {"_format": _format, "__builtins__": {}}, names)
        return "" if value is None else str(value)

    return _EXPRESSION.sub(one, str(text))


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def environment_of(job: Mapping[str, Any]) -> Any:
    value = job.get("environment") or ""
    return value.get("name", "") if isinstance(value, Mapping) else value


def role_of(job: Mapping[str, Any]) -> Any:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/")]
    return step["with"]["role-to-assume"]


def sub_for(event: str, ref: str, environment: str) -> str:
    """The `sub` GitHub puts in the job's token, with the default subject template."""
    if environment:
        return f"repo:{REPOSITORY}:environment:{environment}"
    if event == "pull_request":
        return f"repo:{REPOSITORY}:pull_request"
    return f"repo:{REPOSITORY}:ref:refs/heads/{ref}"


def assume(
    event: str, ref: str, job: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[str, str, set[str]]:
    environment = evaluate(environment_of(job), context)
    variable = evaluate(role_of(job), {**context, "vars": {v: v for v in bootstrap.VARIABLES}})
    return DUTY_OF[variable.strip()], environment, MODEL.assumable(sub_for(event, ref, environment))


def called(
    caller: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """A reusable workflow's one job, with the inputs its caller passes."""
    workflow = yaml.safe_load((ROOT / caller["uses"].removeprefix("./")).read_text())
    (job,) = workflow["jobs"].values()
    inputs = {k: evaluate(v, context) for k, v in (caller.get("with") or {}).items()}
    return job, inputs


BRANCHES = ["feature/x", *protected_branches()]


def kind_of(branch: str) -> str:
    return settings().branch_stack(branch).kind


def preview_outputs(branch: str) -> dict[str, Any]:
    stack = settings().branch_stack(branch)
    return {"outputs": {"stack": stack.stack, "kind": stack.kind}}


@pytest.mark.parametrize("branch", BRANCHES)
def test_every_push_job_gets_a_token_its_role_trusts(branch: str) -> None:
    kind = kind_of(branch)
    github = {"event_name": "push", "ref_name": branch}
    jobs = load("push.yml")["jobs"]
    caller_context = {"github": github, "needs": {"preview": preview_outputs(branch)}}
    expected = {
        "preview": ci_access.DEPLOY_PROTECTED if kind == "protected" else ci_access.DEPLOY,
        "deploy": ci_access.DEPLOY_PROTECTED if kind == "protected" else ci_access.DEPLOY,
        "promote": ci_access.PROMOTE_PROTECTED if kind == "protected" else ci_access.PROMOTE,
        "release": ci_access.PROMOTE_PROTECTED if kind == "protected" else ci_access.PROMOTE,
    }
    for job_id, duty in expected.items():
        job, inputs = called(jobs[job_id], caller_context)
        context = {"github": github, "inputs": inputs, "steps": {"stack": preview_outputs(branch)}}
        picked, environment, assumable = assume("push", branch, job, context)
        assert picked == duty, job_id
        assert picked in assumable, (job_id, environment)
        if job_id in ("promote", "release"):
            stack = settings().branch_stack(branch)
            approval = "canary-promotion" if job_id == "promote" else "api-release"
            assert environment == naming.approval_environment(approval, stack)


@pytest.mark.parametrize("branch", BRANCHES)
def test_a_pull_request_previews_with_the_read_only_role(branch: str) -> None:
    job, inputs = called(
        load("pull-request.yml")["jobs"]["preview"], {"github": {"head_ref": branch}}
    )
    context = {
        "github": {"event_name": "pull_request"},
        "inputs": inputs,
        "steps": {"stack": preview_outputs(branch)},
    }
    picked, _, assumable = assume("pull_request", branch, job, context)
    assert picked == ci_access.PREVIEW
    assert assumable == {ci_access.PREVIEW}


@pytest.mark.parametrize("branch", BRANCHES)
def test_a_rollback_dispatched_from_its_branch_gets_its_kind_s_approval_role(branch: str) -> None:
    job = load("rollback.yml")["jobs"]["rollback"]
    context = {
        "github": {"event_name": "workflow_dispatch"},
        "inputs": {"branch": branch},
        "needs": {"stack": preview_outputs(branch)},
    }
    picked, _, assumable = assume("workflow_dispatch", branch, job, context)
    kind = kind_of(branch)
    assert picked == (ci_access.PROMOTE_PROTECTED if kind == "protected" else ci_access.PROMOTE)
    assert picked in assumable


def test_a_feature_branch_naming_a_protected_environment_gets_nothing_it_lacks() -> None:
    # A pushed workflow may name any environment; the protected ones refuse other
    # branches by the deployment-branch policy bootstrap sets. Were a job let in
    # anyway (a missing policy), its roles are exactly what the name says:
    for branch in protected_branches():
        stack = settings().branch_stack(branch)
        for approval in naming.APPROVAL_ENVIRONMENTS:
            env = naming.approval_environment(approval, stack)
            assert MODEL.assumable(sub_for("push", "feature/x", env)) == {
                ci_access.PROMOTE_PROTECTED
            }
            assert env in bootstrap_environments()


def bootstrap_environments() -> set[str]:
    return {e.name for e in bootstrap.wanted_environments(settings())}


def test_scheduled_and_branch_deletion_jobs_get_tokens_their_roles_trust() -> None:
    default = settings().default_branch
    schedule = load("schedule.yml")["jobs"]
    for job_id, duty in (("cleanup", ci_access.DEPLOY), ("drift", ci_access.DEPLOY_PROTECTED)):
        picked, _, assumable = assume(
            "schedule", default, schedule[job_id], {"github": {"event_name": "schedule"}}
        )
        assert picked == duty and picked in assumable, job_id
    job, inputs = called(
        load("delete.yml")["jobs"]["destroy"], {"github": {"event": {"ref": "feature/x"}}}
    )
    # A delete event's token carries the default branch's ref.
    picked, _, assumable = assume("delete", default, job, {"inputs": inputs})
    assert picked == ci_access.DEPLOY and picked in assumable
