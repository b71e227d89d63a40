"""Bootstrap's model of its inputs and of the GitHub side: the approval environments,
their reviewers and branch policies, and the repository variables the workflows read.

`python -m scripts.bootstrap` (scripts/bootstrap.py) is the command line and the
shared stack; this module reads what GitHub holds, plans the changes and writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from infra import config, naming
from scripts.lib import aws, github
from scripts.lib.progress import Progress

APPROVAL_ENVIRONMENTS = naming.APPROVAL_ENVIRONMENTS
# GitHub's default OIDC subject template: `repo:OWNER/NAME:<context>`.
DEFAULT_SUBJECT_CLAIMS = ("repo", "context")

# Repository variable the workflows read -> the shared stack output it holds.
# A job picks the role and the secrets key of its stack's kind (docs/access.md).
VARIABLES: Mapping[str, str] = {
    "AWS_PREVIEW_ROLE_ARN": "ci_preview_role_arn",
    "AWS_DEPLOY_ROLE_ARN": "ci_deploy_role_arn",
    "AWS_DEPLOY_PROTECTED_ROLE_ARN": "ci_deploy_protected_role_arn",
    "AWS_PROMOTE_ROLE_ARN": "ci_promote_role_arn",
    "AWS_PROMOTE_PROTECTED_ROLE_ARN": "ci_promote_protected_role_arn",
    "AWS_REGION": "region",
    "PULUMI_BACKEND_URL": "backend_url",
    "PULUMI_SECRETS_PROVIDER": "secrets_provider",
    "PULUMI_EPHEMERAL_SECRETS_PROVIDER": "ephemeral_secrets_provider",
}


CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"
WOULD_CREATE, WOULD_UPDATE, WOULD_SET = "would create", "would update", "would set"


# ---------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class Inputs:
    owner: str
    name: str
    reviewers: tuple[str, ...]
    region: str
    backend_url: str | None
    skip_stack: bool
    outputs: Mapping[str, Any] | None  # --outputs-file with --skip-stack
    dry_run: bool
    settings: config.Settings  # the shared stack's: which branches are protected

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"


# ---------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str  # "stack" | "environment" | "variable" | "file"
    name: str
    result: str  # CREATED, UPDATED, UNCHANGED, SKIPPED, WOULD_*
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.result in {CREATED, UPDATED}

    @property
    def pending(self) -> bool:
        return self.result in {WOULD_CREATE, WOULD_UPDATE, WOULD_SET}


# ---------------------------------------------------------------- GitHub


@dataclasses.dataclass(frozen=True)
class Reviewer:
    login: str
    id: int


@dataclasses.dataclass(frozen=True)
class WantedEnvironment:
    """An environment the CI roles' trust relies on, and what guards it."""

    name: str
    branch: str | None  # the one branch its jobs may run for; None: every branch
    reviewed: bool  # required reviewers gate it (approval) or not (deploy)


def wanted_environments(settings: config.Settings) -> tuple[WantedEnvironment, ...]:
    """The approval environments, and per protected stack its deploy and approval ones.

    GitHub's token names a job's environment, not its branch, so a protected
    stack's environments must admit its branch alone (a deployment-branch
    policy): the protected roles trust exactly these names. GitHub creates an
    environment a job names on first use, unguarded; bootstrap creates them first.
    """
    wanted = [WantedEnvironment(a, None, True) for a in APPROVAL_ENVIRONMENTS]
    for branch in dict.fromkeys([settings.default_branch, *settings.protected_branches]):
        stack = settings.branch_stack(branch)
        wanted.append(WantedEnvironment(naming.deploy_environment(stack), branch, False))
        wanted += [
            WantedEnvironment(naming.approval_environment(a, stack), branch, True)
            for a in APPROVAL_ENVIRONMENTS
        ]
    return tuple(wanted)


def environment_path(repo: str, name: str) -> str:
    # Environment names may hold '/', which must stay inside one path segment.
    return f"{repo}/environments/{quote(name, safe='')}"


@dataclasses.dataclass(frozen=True)
class EnvironmentState:
    """What an environment is now (None: it does not exist) and what it should be."""

    name: str
    current: Mapping[str, Any] | None
    reviewers: tuple[Reviewer, ...]
    branch: str | None = None
    reviewed: bool = True
    # Its custom deployment-branch policies: (id, name, type); () when none.
    branch_policies: tuple[tuple[int, str, str], ...] = ()

    def current_reviewers(self) -> set[tuple[str, int | None]]:
        return {(kind, ident) for kind, ident, _ in github.reviewers_of(self.current or {})}

    def current_policy(self) -> Any:
        return (self.current or {}).get("deployment_branch_policy")

    def wanted_policy(self) -> dict[str, bool] | None:
        if self.branch is None:
            return None
        return {"protected_branches": False, "custom_branch_policies": True}

    def stray_policies(self) -> list[tuple[int, str, str]]:
        """Branch policies that admit more than the one branch (all of them for None)."""
        return [p for p in self.branch_policies if (p[1], p[2]) != (self.branch, "branch")]

    def missing_policy(self) -> bool:
        return self.branch is not None and (self.branch, "branch") not in {
            (name, kind) for _, name, kind in self.branch_policies
        }

    def body(self) -> dict[str, Any]:
        # An ephemeral stack's approval admits every branch (each promotes its
        # own model; the required reviewers are the gate). A protected stack's
        # environments admit its branch only: the protected roles trust them.
        # Settings bootstrap does not own (a wait timer, prevent self-review, a
        # deploy environment's reviewers) are sent back as they are.
        reviewers = (
            [{"type": "User", "id": r.id} for r in self.reviewers]
            if self.reviewed
            else [{"type": kind, "id": ident} for kind, ident in sorted(self.current_reviewers())]
        )
        body: dict[str, Any] = {
            "reviewers": reviewers,
            "deployment_branch_policy": self.wanted_policy(),
        }
        for rule in (self.current or {}).get("protection_rules") or []:
            if rule.get("type") == "wait_timer" and rule.get("wait_timer"):
                body["wait_timer"] = rule["wait_timer"]
            if rule.get("type") == "required_reviewers" and "prevent_self_review" in rule:
                body["prevent_self_review"] = bool(rule["prevent_self_review"])
        return body

    def up_to_date(self) -> bool:
        wanted = {("User", r.id) for r in self.reviewers}
        return (
            self.current is not None
            and (not self.reviewed or self.current_reviewers() == wanted)
            and self.current_policy() == self.wanted_policy()
            and not self.missing_policy()
            and not (self.branch is not None and self.stray_policies())
        )

    def describe(self) -> str:
        wanted = ", ".join(r.login for r in self.reviewers) if self.reviewed else "unchanged"
        target = "all branches" if self.branch is None else f"branch {self.branch} only"
        if self.current is None:
            return f"reviewers {wanted}; {target}"
        if self.branch is not None:
            policies = ", ".join(name for _, name, _ in self.branch_policies) or "none"
            return f"reviewers {wanted}; branches {policies} -> {target}"
        had = sorted(str(login) for _, _, login in github.reviewers_of(self.current)) or ["none"]
        policy = self.current_policy()
        if policy is None:
            branches = "all branches"
        elif policy.get("protected_branches"):
            branches = "protected branches only -> all branches"
        else:
            branches = "custom branch rules -> all branches"
        return f"reviewers {', '.join(had)} -> {wanted}; {branches}"


@dataclasses.dataclass(frozen=True)
class GitHubState:
    repository: Mapping[str, Any]
    environments: tuple[EnvironmentState, ...]
    variables: Mapping[str, str | None]  # name -> current value, None when absent

    @property
    def private(self) -> bool:
        return bool(self.repository.get("private")) or self.repository.get("visibility") in {
            "private",
            "internal",
        }


def _repo_path(inputs: Inputs) -> str:
    return f"/repos/{inputs.owner}/{inputs.name}"


def resolve_reviewers(client: github.Client, logins: Sequence[str]) -> tuple[Reviewer, ...]:
    found: list[Reviewer] = []
    unknown: list[str] = []
    for login in logins:
        user = client.get(
            f"/users/{login}",
            doing=f"looking up reviewer {login}",
            needs=github.PUBLIC,
            missing_ok=True,
        )
        if user is None:
            unknown.append(login)
            continue
        if user.get("type") != "User":
            raise aws.UsageError(
                f"--reviewers: {login} is a GitHub {user.get('type', 'account')}, not a person; "
                "required reviewers here are users; nothing was changed"
            )
        found.append(Reviewer(login=str(user.get("login", login)), id=int(user["id"])))
    if unknown:
        raise aws.UsageError(
            f"--reviewers: no GitHub user {', '.join(unknown)} (typo?); nothing was changed"
        )
    return tuple(found)


def check_subject_template(client: github.Client, inputs: Inputs, owner_type: str) -> None:
    """The CI roles trust GitHub's default OIDC subject: refuse a repository that changed it.

    With a customized template the `sub` no longer reads `repo:O/R:ref:...` or
    `repo:O/R:environment:...`, and no role could be assumed (or, worse, a
    wildcard pattern would match what it was never meant to).
    """
    repo = _repo_path(inputs)
    template = client.get(
        f"{repo}/actions/oidc/customization/sub",
        doing="reading the repository's OIDC subject template",
        needs=github.ACTIONS_READ,
        missing_ok=True,
    )
    where, keys = None, None
    if template and not template.get("use_default", True):
        where, keys = f"repository {inputs.repo}", template.get("include_claim_keys")
    elif owner_type == "Organization":
        # A repository on the default template gets its organization's.
        org = client.get(
            f"/orgs/{inputs.owner}/actions/oidc/customization/sub",
            doing="reading the organization's OIDC subject template",
            needs=github.PUBLIC,
            missing_ok=True,
        )
        if org and org.get("include_claim_keys") not in (None, list(DEFAULT_SUBJECT_CLAIMS)):
            where, keys = f"organization {inputs.owner}", org.get("include_claim_keys")
    if where is not None and keys != list(DEFAULT_SUBJECT_CLAIMS):
        raise aws.UsageError(
            f"the {where} customizes GitHub's OIDC subject (claims {keys}); the CI roles "
            f"trust the default one (repo, context: `repo:{inputs.repo}:ref:...`, "
            f"`...:environment:NAME`, `...:pull_request`). Reset it with "
            f"`gh api -X PUT {repo}/actions/oidc/customization/sub -F use_default=true` "
            "(docs/access.md); nothing was changed"
        )


def read_github(client: github.Client, inputs: Inputs, want_variables: bool) -> GitHubState:
    """Every GET, before anything changes: a refusal here leaves everything as it was."""
    repo = _repo_path(inputs)
    repository = client.get(
        repo, doing=f"reading repository {inputs.repo}", needs=github.METADATA_READ
    )
    permissions = repository.get("permissions")
    if isinstance(permissions, dict) and permissions.get("admin") is False:
        raise github.PermissionDenied(
            f"your GitHub account is not an admin of {inputs.repo}: creating environments "
            "needs the admin role (ask an owner to run bootstrap, or to make you admin); "
            "nothing was changed"
        )
    check_subject_template(client, inputs, str((repository.get("owner") or {}).get("type", "")))
    reviewers = resolve_reviewers(client, inputs.reviewers)
    environments = tuple(
        _read_environment(client, repo, wanted, reviewers)
        for wanted in wanted_environments(inputs.settings)
    )
    variables: dict[str, str | None] = {}
    if want_variables:
        for variable in VARIABLES:
            found = client.get(
                f"{repo}/actions/variables/{variable}",
                doing=f"reading variable {variable}",
                needs=github.VARIABLES_READ,
                missing_ok=True,
            )
            variables[variable] = None if found is None else str(found.get("value", ""))
    return GitHubState(repository, environments, variables)


def _read_environment(
    client: github.Client, repo: str, wanted: WantedEnvironment, reviewers: tuple[Reviewer, ...]
) -> EnvironmentState:
    path = environment_path(repo, wanted.name)
    current = client.get(
        path, doing=f"reading environment {wanted.name}", needs=github.ACTIONS_READ, missing_ok=True
    )
    policies: tuple[tuple[int, str, str], ...] = ()
    policy = (current or {}).get("deployment_branch_policy") or {}
    if policy.get("custom_branch_policies"):
        listed = client.get(
            f"{path}/deployment-branch-policies",
            doing=f"reading the branch policies of environment {wanted.name}",
            needs=github.ACTIONS_READ,
        )
        policies = tuple(
            (int(p["id"]), str(p["name"]), str(p.get("type", "branch")))
            for p in listed.get("branch_policies") or []
        )
    return EnvironmentState(
        name=wanted.name,
        current=current,
        reviewers=reviewers,
        branch=wanted.branch,
        reviewed=wanted.reviewed,
        branch_policies=policies,
    )


def plan_environments(state: GitHubState, dry_run: bool) -> list[Change]:
    changes = []
    for environment in state.environments:
        if environment.up_to_date():
            detail = (
                f"reviewers {', '.join(r.login for r in environment.reviewers)}"
                if environment.reviewed
                else f"branch {environment.branch} only"
            )
            changes.append(Change("environment", environment.name, UNCHANGED, detail))
        elif environment.current is None:
            result = WOULD_CREATE if dry_run else CREATED
            changes.append(Change("environment", environment.name, result, environment.describe()))
        else:
            result = WOULD_UPDATE if dry_run else UPDATED
            changes.append(Change("environment", environment.name, result, environment.describe()))
    return changes


def plan_variables(
    state: GitHubState, values: Mapping[str, str] | None, inputs: Inputs
) -> list[Change]:
    changes = []
    for variable in VARIABLES:
        current = state.variables.get(variable)
        if values is None:
            if inputs.skip_stack:
                detail = "no stack outputs (--skip-stack without --outputs-file)"
                changes.append(Change("variable", variable, SKIPPED, detail))
            else:  # a dry run before the first deployment: the values do not exist yet
                detail = "from the shared stack's outputs, once it is deployed"
                changes.append(Change("variable", variable, WOULD_SET, detail))
        elif current == values[variable]:
            changes.append(Change("variable", variable, UNCHANGED, values[variable]))
        elif current is None:
            result = WOULD_CREATE if inputs.dry_run else CREATED
            changes.append(Change("variable", variable, result, values[variable]))
        else:
            result = WOULD_UPDATE if inputs.dry_run else UPDATED
            changes.append(Change("variable", variable, result, f"{current} -> {values[variable]}"))
    return changes


def write_github(
    client: github.Client,
    inputs: Inputs,
    state: GitHubState,
    values: Mapping[str, str] | None,
    progress: Progress,
) -> None:
    """PUT, POST and PATCH only what differs; a failure says what was changed before it."""
    repo = _repo_path(inputs)
    done: list[str] = []
    try:
        for environment in state.environments:
            if environment.up_to_date():
                continue
            path = environment_path(repo, environment.name)
            answer = client.write(
                "PUT",
                path,
                environment.body(),
                doing=f"configuring environment {environment.name}",
                needs=github.ADMINISTRATION_WRITE,
                hint_422=github.PLAN_NOTE,
            )
            _write_branch_policies(client, path, environment)
            kept = {(kind, ident) for kind, ident, _ in github.reviewers_of(answer or {})}
            wanted = (
                {("User", r.id) for r in environment.reviewers} if environment.reviewed else set()
            )
            if answer is not None and not wanted <= kept:
                raise aws.ScriptError(
                    f"GitHub saved environment {environment.name} without its required "
                    f"reviewers: {github.PLAN_NOTE}. Until it has them, preflight refuses "
                    "to promote"
                )
            done.append(f"environment {environment.name}")
            progress.note(f"environment {environment.name}: {environment.describe()}")
        for variable, value in (values or {}).items():
            current = state.variables.get(variable)
            if current == value:
                continue
            if current is None:
                client.write(
                    "POST",
                    f"{repo}/actions/variables",
                    {"name": variable, "value": value},
                    doing=f"creating variable {variable}",
                    needs=github.VARIABLES_WRITE,
                )
            else:
                client.write(
                    "PATCH",
                    f"{repo}/actions/variables/{variable}",
                    {"name": variable, "value": value},
                    doing=f"updating variable {variable}",
                    needs=github.VARIABLES_WRITE,
                )
            done.append(f"variable {variable}")
            progress.note(f"variable {variable} = {value}")
    except aws.ScriptError as error:
        before = f"changed before it: {', '.join(done)}" if done else "nothing on GitHub changed"
        message = f"{error}; {before}; run bootstrap again once fixed: it changes only what differs"
        if isinstance(error, github.GitHubError):
            raise type(error)(message, error.status) from None
        raise type(error)(message) from None


def _write_branch_policies(client: github.Client, path: str, environment: EnvironmentState) -> None:
    """Exactly one branch may deploy to a protected stack's environment: add it, drop others."""
    if environment.branch is None:
        return
    if environment.missing_policy():
        client.write(
            "POST",
            f"{path}/deployment-branch-policies",
            {"name": environment.branch, "type": "branch"},
            doing=f"limiting environment {environment.name} to branch {environment.branch}",
            needs=github.ADMINISTRATION_WRITE,
        )
    for ident, name, _ in environment.stray_policies():
        client.write(
            "DELETE",
            f"{path}/deployment-branch-policies/{ident}",
            {},
            doing=f"removing branch policy {name!r} from environment {environment.name}",
            needs=github.ADMINISTRATION_WRITE,
        )
