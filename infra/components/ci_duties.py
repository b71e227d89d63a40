"""The five CI duties, who may take each, and what CI access is built from.

A duty is a role: preview, deploy, deploy-protected, promote, promote-protected
(`infra/components/ci_access.py` says what each may touch and why). GitHub's OIDC token
names the job only by its `sub`, so a duty's trust is a condition on `sub`:
`subjects` gives it per duty. `CiAccessArgs` carries the repository, the account and
every protected stack's names to the modules that build the roles' policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from infra import naming

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
SUB = f"{GITHUB_OIDC_HOST}:sub"
READ_ONLY_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

PREVIEW, DEPLOY, DEPLOY_PROTECTED = "preview", "deploy", "deploy-protected"
PROMOTE, PROMOTE_PROTECTED = "promote", "promote-protected"
DUTIES = (PREVIEW, DEPLOY, DEPLOY_PROTECTED, PROMOTE, PROMOTE_PROTECTED)
EPHEMERAL_DUTIES = (PREVIEW, DEPLOY, PROMOTE)


@dataclass(frozen=True)
class ProtectedStack:
    branch: str
    stack: str
    names: naming.BranchNames


@dataclass(frozen=True)
class CiAccessArgs:
    repository: str  # OWNER/NAME exactly as GitHub spells it: `sub` matching is case-sensitive
    project: str
    account_id: str
    region: str
    names: naming.SharedNames
    protected: tuple[ProtectedStack, ...]
    # Every branch stack's names with the slug as `*`: the patterns the
    # project's own resources match, derived from the one naming module.
    any_branch: naming.BranchNames
    create_oidc_provider: bool

    @property
    def role_boundary_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:policy/{self.names.role_boundary}"

    @property
    def protected_role_boundary_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:policy/{self.names.protected_role_boundary}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{name}"

    @property
    def role_names(self) -> dict[str, str]:
        n = self.names
        return {
            PREVIEW: n.preview_role,
            DEPLOY: n.deploy_role,
            DEPLOY_PROTECTED: n.deploy_protected_role,
            PROMOTE: n.promote_role,
            PROMOTE_PROTECTED: n.promote_protected_role,
        }


def any_branch_names(
    project: str, account_id: str, api_versions: Iterable[str]
) -> naming.BranchNames:
    """A branch stack's names with its slug as `*`: one pattern per purpose."""
    wildcard = naming.BranchStack(branch="*", slug="*", stack="*", kind="ephemeral")
    return naming.branch_names(project, wildcard, account_id, api_versions)


def protected_stacks(
    project: str,
    account_id: str,
    branches: Iterable[str],
    api_versions: Iterable[str],
) -> tuple[ProtectedStack, ...]:
    versions = list(api_versions)
    result = []
    for branch in dict.fromkeys(branches):
        stack = naming.branch_stack(branch, [branch])
        names = naming.branch_names(project, stack, account_id, versions)
        result.append(ProtectedStack(branch=stack.branch, stack=stack.stack, names=names))
    return tuple(result)


def subjects(
    repository: str, protected: Sequence[ProtectedStack]
) -> dict[str, dict[str, list[str]]]:
    """Per duty, the trust condition on the token's `sub`: {operator: [patterns]}."""
    repo = f"repo:{repository}"
    deploy_env = naming.DEPLOY_ENVIRONMENT_PREFIX
    protected_refs = [f"{repo}:ref:refs/heads/{p.branch}" for p in protected]
    protected_envs = [f"{repo}:environment:{deploy_env}{p.stack}" for p in protected]
    approvals = naming.APPROVAL_ENVIRONMENTS
    return {
        PREVIEW: {"StringEquals": [f"{repo}:pull_request"]},
        # Any branch, including a protected one: this role cannot reach protected stacks.
        DEPLOY: {"StringLike": [f"{repo}:ref:refs/heads/*", f"{repo}:environment:{deploy_env}*"]},
        DEPLOY_PROTECTED: {"StringEquals": protected_refs + protected_envs},
        PROMOTE: {"StringEquals": [f"{repo}:environment:{a}" for a in approvals]},
        PROMOTE_PROTECTED: {
            "StringEquals": [
                f"{repo}:environment:{a}/{p.stack}" for p in protected for a in approvals
            ]
        },
    }


def ephemeral(args: CiAccessArgs) -> CiAccessArgs:
    """The same access with no protected stacks (tests contrast the two)."""
    return replace(args, protected=())
