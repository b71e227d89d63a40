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
from types import SimpleNamespace
from typing import Any

import pytest

from infra import naming
from infra.components import ci_access, ci_duties
from scripts import bootstrap
from scripts.lib import bootstrap_github
from tests.iam.model import REPOSITORY, AccessModel, protected_branches, settings
from tests.project import ROOT
from tests.yaml_files import load_yaml

WORKFLOWS = ROOT / ".github" / "workflows"
# Repository variable holding a role ARN -> the duty of that role.
DUTY_OF = {
    variable: duty
    for variable, output in bootstrap.VARIABLES.items()
    for duty in ci_duties.DUTIES
    if output == ci_access.output_name(duty)
}
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class _Null:
    """GitHub's null: falsy, prints as '', and any property of it is null too
    (`needs.train.outputs.promote` when the job's outputs are not modelled)."""

    def __getattr__(self, name: str) -> Any:
        return self

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, _Null)

    def __hash__(self) -> int:
        return 0

    def __str__(self) -> str:
        return ""


NULL = _Null()


class Context(SimpleNamespace):
    """A GitHub expression context: a missing property is null, as in GitHub."""

    def __getattr__(self, name: str) -> Any:
        return NULL


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
        # A property may hold '-' (`outputs.candidate-version`); _namespace stores it as '_'.
        python = re.sub(
            r"(?<=\.)[A-Za-z_]\w*(?:-\w+)+", lambda m: m.group(0).replace("-", "_"), python
        )
        # Literals outside quotes only: 'true' is a string GitHub compares with.
        python = re.sub(
            r"'[^']*'|\b(true|false|null)\b",
            lambda m: (
                {"true": "True", "false": "False", "null": "None"}[m.group(1)]
                if m.group(1)
                else m.group(0)
            ),
            python,
        )
        value = eval(python, {"_format": _format, **_STATUS, "__builtins__": {}}, names)
        return "" if value is None else str(value)

    return _EXPRESSION.sub(one, str(text))


# Status functions of `if:`: every job is taken to run (none cancelled, none failed).
_STATUS = {"cancelled": lambda: False, "always": lambda: True, "success": lambda: True}


def load(name: str) -> dict[str, Any]:
    return load_yaml(WORKFLOWS / name)


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
    access: AccessModel, event: str, ref: str, job: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[str, str, set[str]]:
    environment = evaluate(environment_of(job), context)
    variable = evaluate(role_of(job), {**context, "vars": {v: v for v in bootstrap.VARIABLES}})
    return (
        DUTY_OF[variable.strip()],
        environment,
        access.assumable(sub_for(event, ref, environment)),
    )


def called(
    caller: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """A reusable workflow's one job, with the inputs its caller passes."""
    workflow = load_yaml(ROOT / caller["uses"].removeprefix("./"))
    (job,) = workflow["jobs"].values()
    inputs = {k: evaluate(v, context) for k, v in (caller.get("with") or {}).items()}
    return job, inputs


BRANCHES = ["feature/x", *protected_branches()]


def kind_of(branch: str) -> str:
    return settings().branch_stack(branch).kind


def preview_outputs(branch: str) -> dict[str, Any]:
    stack = settings().branch_stack(branch)
    return {"outputs": {"stack": stack.stack, "kind": stack.kind}}


def gets_token(caller: Mapping[str, Any]) -> bool:
    """GitHub issues an OIDC token only to a job granted `id-token: write`; a called
    workflow's jobs never get more than their caller grants."""
    return (caller.get("permissions") or {}).get("id-token") == "write"


def inner_jobs(caller: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "uses" not in caller:
        return [caller]
    workflow = load_yaml(ROOT / caller["uses"].removeprefix("./"))
    return list(workflow["jobs"].values())


def assumes_aws(job: Mapping[str, Any]) -> bool:
    return any(str(s.get("uses", "")).startswith("aws-actions/") for s in job.get("steps", []))


def runs(caller: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    condition = caller.get("if")
    if condition is None:
        return True
    text = str(condition)
    text = text if "${{" in text else "${{ " + text + " }}"
    return evaluate(text, context) not in ("", "False", "0")


def tokens(
    access: AccessModel,
    workflow: str,
    event: str,
    ref: str,
    github: Mapping[str, Any],
    *,
    needs: Mapping[str, Any],
) -> dict[str, tuple[str, str, set[str]] | None]:
    """Every job that runs: its (duty, environment, roles its token may assume), or None
    for a job that gets no token. A job that holds no token must not ask for a role."""
    found: dict[str, tuple[str, str, set[str]] | None] = {}
    caller_context = {"github": github, "needs": needs}
    for job_id, caller in load(workflow)["jobs"].items():
        if not runs(caller, caller_context):
            continue
        if not gets_token(caller):
            assert not any(assumes_aws(j) for j in inner_jobs(caller)), job_id
            found[job_id] = None
            continue
        job, inputs = called(caller, caller_context)
        context = {"github": github, "inputs": inputs, "steps": {"stack": needs["preview"]}}
        found[job_id] = assume(access, event, ref, job, context)
    return found


@pytest.mark.parametrize("branch", BRANCHES)
def test_every_push_job_gets_a_token_its_role_trusts(access: AccessModel, branch: str) -> None:
    stack = settings().branch_stack(branch)
    protected = stack.kind == "protected"
    deploy = ci_duties.DEPLOY_PROTECTED if protected else ci_duties.DEPLOY
    promote = ci_duties.PROMOTE_PROTECTED if protected else ci_duties.PROMOTE
    github = {"event_name": "push", "ref_name": branch}
    # A push whose training published a new version and whose API changed: every job runs.
    needs = {
        "preview": preview_outputs(branch),
        "deploy": {"result": "success", "outputs": {"release": "true"}},
        "train": {"result": "success", "outputs": {"promote": "true"}},
        "promote": {"result": "success"},
    }
    found = tokens(access, "push.yml", "push", branch, github, needs=needs)
    # Every job is listed: a new job that asks for a token fails until it is added here.
    expected = {
        "unit": None,
        "integration": None,
        "preview": (deploy, ""),
        # deploy and train publish versions of the branch's function: its environment.
        "deploy": (deploy, naming.deploy_environment(stack)),
        "train": (deploy, naming.deploy_environment(stack)),
        "promote": (promote, naming.approval_environment("canary-promotion", stack)),
        "release": (promote, naming.approval_environment("api-release", stack)),
    }
    assert set(found) == set(expected)
    for job_id, want in expected.items():
        got = found[job_id]
        if want is None:
            assert got is None, job_id
            continue
        assert got is not None, job_id
        duty, environment, assumable = got
        assert (duty, environment) == want, job_id
        assert duty in assumable, (job_id, environment)


def _pull_request(branch: str, *, fork: bool) -> dict[str, Any]:
    repository = REPOSITORY
    head = f"{REPOSITORY}-fork" if fork else REPOSITORY
    return {
        "event_name": "pull_request",
        "head_ref": branch,
        "repository": repository,
        "event": {
            "pull_request": {
                "number": 7,
                "head": {"sha": "0" * 40, "repo": {"full_name": head}},
            }
        },
    }


@pytest.mark.parametrize("branch", BRANCHES)
def test_a_pull_request_previews_with_the_read_only_role(access: AccessModel, branch: str) -> None:
    github = _pull_request(branch, fork=False)
    found = tokens(
        access,
        "pull-request.yml",
        "pull_request",
        branch,
        github,
        needs={"preview": preview_outputs(branch)},
    )
    # The fork job is skipped; the offline tests and the comment hold no AWS token.
    assert set(found) == {"unit", "integration", "preview", "comment"}
    assert found["unit"] is None and found["integration"] is None and found["comment"] is None
    preview = found["preview"]
    assert preview is not None
    duty, environment, assumable = preview
    assert (duty, environment) == (ci_duties.PREVIEW, "")
    assert assumable == {ci_duties.PREVIEW}


def test_a_fork_s_pull_request_runs_no_job_with_a_token(access: AccessModel) -> None:
    github = _pull_request("feature/x", fork=True)
    found = tokens(
        access,
        "pull-request.yml",
        "pull_request",
        "feature/x",
        github,
        needs={"preview": preview_outputs("feature/x")},
    )
    assert "preview" not in found
    assert {"unit", "integration", "fork"} <= set(found)
    assert all(token is None for token in found.values())


@pytest.mark.parametrize("branch", BRANCHES)
def test_a_rollback_dispatched_from_its_branch_gets_its_kind_s_approval_role(
    access: AccessModel, branch: str
) -> None:
    job = load("rollback.yml")["jobs"]["rollback"]
    context = {
        "github": {"event_name": "workflow_dispatch"},
        "inputs": {"branch": branch},
        "needs": {"stack": preview_outputs(branch)},
    }
    picked, _, assumable = assume(access, "workflow_dispatch", branch, job, context)
    kind = kind_of(branch)
    assert picked == (ci_duties.PROMOTE_PROTECTED if kind == "protected" else ci_duties.PROMOTE)
    assert picked in assumable


def test_a_feature_branch_naming_a_protected_environment_gets_nothing_it_lacks(
    access: AccessModel,
) -> None:
    # A pushed workflow may name any environment; the protected ones refuse other
    # branches by the deployment-branch policy bootstrap sets. Were a job let in
    # anyway (a missing policy), its roles are exactly what the name says:
    for branch in protected_branches():
        stack = settings().branch_stack(branch)
        for approval in naming.APPROVAL_ENVIRONMENTS:
            env = naming.approval_environment(approval, stack)
            assert access.assumable(sub_for("push", "feature/x", env)) == {
                ci_duties.PROMOTE_PROTECTED
            }
            assert env in bootstrap_environments()


def bootstrap_environments() -> set[str]:
    return {e.name for e in bootstrap_github.wanted_environments(settings())}


def test_scheduled_and_branch_deletion_jobs_get_tokens_their_roles_trust(
    access: AccessModel,
) -> None:
    default = settings().default_branch
    schedule = load("schedule.yml")["jobs"]
    for job_id, duty in (("cleanup", ci_duties.DEPLOY), ("drift", ci_duties.DEPLOY_PROTECTED)):
        picked, _, assumable = assume(
            access, "schedule", default, schedule[job_id], {"github": {"event_name": "schedule"}}
        )
        assert picked == duty and picked in assumable, job_id
    job, inputs = called(
        load("delete.yml")["jobs"]["destroy"], {"github": {"event": {"ref": "feature/x"}}}
    )
    # A delete event's token carries the default branch's ref.
    picked, _, assumable = assume(access, "delete", default, job, {"inputs": inputs})
    assert picked == ci_duties.DEPLOY and picked in assumable
