"""Branch -> slug -> stack -> physical names and tags. Pure: no I/O, no Pulumi.

Every name the program gives an AWS resource is computed here, once, so that
`python -m scripts.names` can tell a user what their branch will create before
anything runs, and so two branches can never fight over one resource.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

StackKind = Literal["protected", "ephemeral"]

SHARED_STACK = "shared"
MODEL_ALIAS = "live"
# The API stage variable the integrations read the Lambda alias from; the
# program sets it, the release step changes it.
STAGE_ALIAS_VARIABLE = "alias"
# GitHub environments whose required reviewers gate promotion and release;
# the promote role trusts tokens from exactly these.
APPROVAL_ENVIRONMENTS = ("canary-promotion", "api-release")
# A branch's deploy job runs in `branch/<stack>`. A protected stack's approvals
# run in `<approval>/<stack>`: GitHub's token names the environment but not the
# ref, so only an environment name that differs per protected stack, restricted
# by its deployment-branch policy to that branch, proves which stack a job is for.
DEPLOY_ENVIRONMENT_PREFIX = "branch/"
SHARED_STACK_REFERENCE = "{organization}/{project}/" + SHARED_STACK

# The tightest limits the generated names must fit: EventBridge archive names
# (48) and S3 bucket names (63, with a 12-digit account id for global
# uniqueness) decide these budgets; tests check every name against botocore.
PROJECT_MAX = 12
SLUG_MAX = 27
HASH_LEN = 8
GIT_REF_MAX_BYTES = 255

_PROJECT_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_LOSSLESS_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A slug that ends like a hash suffix is reserved for hashed slugs, so a branch
# literally named "x-0123abcd" cannot collide with a hashed "X" + suffix.
_HASHED_TAIL_RE = re.compile(rf".*-[0-9a-f]{{{HASH_LEN}}}")
_GIT_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_API_VERSION_RE = re.compile(r"v[1-9][0-9]{0,2}")
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_SHA_RE = re.compile(r"[0-9a-f]{7,40}")
_TAG_VALUE_UNSAFE = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")


class NamingError(ValueError):
    """A branch, project or account id that no legal set of names can come from."""


@dataclass(frozen=True)
class BranchStack:
    """Where a branch lives: its Pulumi stack and how carefully it is kept."""

    branch: str
    slug: str
    stack: str
    kind: StackKind

    @property
    def protected(self) -> bool:
        return self.kind == "protected"


def strip_ref(ref: str) -> str:
    """`refs/heads/feature/x` and `feature/x` name the same branch."""
    return ref.removeprefix("refs/heads/")


def check_git_branch(branch: str) -> None:
    """Refuse what `git check-ref-format --branch` would refuse, naming the rule."""

    def fail(rule: str) -> None:
        raise NamingError(f"branch {branch!r} cannot be named: {rule}")

    if not branch:
        fail("it is empty")
    if len(branch.encode()) > GIT_REF_MAX_BYTES:
        fail(f"it is longer than {GIT_REF_MAX_BYTES} bytes")
    bad = _GIT_FORBIDDEN.search(branch)
    if bad:
        fail(f"git forbids the character {bad.group()!r} (control characters, space, ~^:?*[\\)")
    if branch == "HEAD":
        fail("git reserves 'HEAD' for the checked-out commit; it is never a branch")
    if branch == "@" or "@{" in branch:
        fail("git forbids '@' alone and the sequence '@{'")
    if ".." in branch or "//" in branch or branch.startswith("/") or branch.endswith("/"):
        fail("git forbids '..', '//' and a leading or trailing '/'")
    if branch.endswith(".") or branch.startswith("-"):
        fail("git forbids a trailing '.' and a leading '-'")
    for part in branch.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            fail(f"git forbids a path component {part!r} starting with '.' or ending in '.lock'")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LEN]


def slugify(branch: str) -> str:
    """A DNS-safe slug, stable per branch and distinct for distinct branches.

    Where the readable form loses information (case, punctuation, length) or
    could be mistaken for a hashed or reserved slug, a short hash of the full
    branch name is appended, so `Feature/X` and `feature-x` never share a stack.
    """
    branch = strip_ref(branch)
    check_git_branch(branch)
    ascii_form = unicodedata.normalize("NFKD", branch).encode("ascii", "ignore").decode()
    readable = re.sub(r"[^a-z0-9]+", "-", ascii_form.lower()).strip("-")
    if not readable:
        raise NamingError(
            f"branch {branch!r} cannot be named: it needs at least one ASCII letter or digit"
        )
    lossless = (
        readable == branch
        and len(readable) <= SLUG_MAX
        and not _HASHED_TAIL_RE.fullmatch(readable)
        and readable != SHARED_STACK
    )
    if lossless:
        return readable
    head = readable[: SLUG_MAX - HASH_LEN - 1].rstrip("-")
    return f"{head}-{_short_hash(branch)}"


def branch_stack(ref: str, protected_branches: Iterable[str]) -> BranchStack:
    """The stack of a git branch (`refs/heads/` optional)."""
    branch = strip_ref(ref)
    slug = slugify(branch)
    kind: StackKind = "protected" if branch in set(protected_branches) else "ephemeral"
    return BranchStack(branch=branch, slug=slug, stack=slug, kind=kind)


def shared_stack() -> BranchStack:
    """The account-wide stack; no branch owns it and nothing may destroy it by branch."""
    return BranchStack(branch="", slug=SHARED_STACK, stack=SHARED_STACK, kind="protected")


def check_project(project: str) -> None:
    if len(project) > PROJECT_MAX or not _PROJECT_RE.fullmatch(project):
        raise NamingError(
            f"project name {project!r} is not usable in AWS names: it must be 1-{PROJECT_MAX} "
            "lowercase letters, digits and single hyphens, starting with a letter"
        )
    if project.startswith(("xn", "sthree", "amzn")):
        raise NamingError(f"project name {project!r} starts with a prefix S3 reserves")


def check_account_id(account_id: str) -> None:
    if not _ACCOUNT_RE.fullmatch(account_id):
        raise NamingError(f"AWS account id {account_id!r} must be exactly 12 digits")


def check_api_version(version: str) -> None:
    if not _API_VERSION_RE.fullmatch(version):
        raise NamingError(
            f"API version {version!r} must look like v1, v2, ... v999 (a 'v' and a major number)"
        )


@dataclass(frozen=True)
class BranchNames:
    """Physical names of everything a branch stack creates."""

    artifact_bucket: str
    event_store_bucket: str
    training_project: str
    training_role: str
    training_log_group: str
    sagemaker_role: str
    notebook: str
    model_function: str
    model_role: str
    model_alias: str
    model_log_group: str
    deploy_application: str
    deploy_group: str
    deploy_role: str
    deploy_topic: str
    alias_errors_alarm: str
    version_errors_alarm: str
    api: str
    api_stages: Mapping[str, str]
    api_access_log_group: str
    event_bus: str
    event_archive: str
    event_rule: str
    event_processor_function: str
    event_processor_role: str
    event_processor_log_group: str
    event_dlq: str
    event_dlq_alarm: str
    deploy_hooks_function: str
    deploy_hooks_role: str
    deploy_hooks_log_group: str

    def as_dict(self) -> dict[str, object]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class SharedNames:
    """Physical names of the account-wide resources in the `shared` stack."""

    codeartifact_domain: str
    store_repository: str
    team_repository: str
    state_bucket: str
    secrets_key_alias: str
    ephemeral_secrets_key_alias: str
    preview_role: str
    deploy_role: str
    deploy_protected_role: str
    promote_role: str
    promote_protected_role: str
    role_boundary: str
    protected_role_boundary: str
    api_gateway_logs_role: str

    def as_dict(self) -> dict[str, object]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value


# The AWS kind each field names: tests check every field against that kind's
# rule, and `scripts.names` reports it, so a new field must say what it is.
BRANCH_NAME_KINDS: Mapping[str, str] = {
    "artifact_bucket": "s3_bucket",
    "event_store_bucket": "s3_bucket",
    "training_project": "codebuild_project",
    "training_role": "iam_role",
    "training_log_group": "cloudwatch_log_group",
    "sagemaker_role": "iam_role",
    "notebook": "sagemaker_notebook",
    "model_function": "lambda_function",
    "model_role": "iam_role",
    "model_alias": "lambda_alias",
    "model_log_group": "cloudwatch_log_group",
    "deploy_application": "codedeploy_application",
    "deploy_group": "codedeploy_deployment_group",
    "deploy_role": "iam_role",
    "deploy_topic": "sns_topic",
    "alias_errors_alarm": "cloudwatch_alarm",
    "version_errors_alarm": "cloudwatch_alarm",
    "api": "apigateway_rest_api",
    "api_stages": "apigateway_stage",
    "api_access_log_group": "cloudwatch_log_group",
    "event_bus": "eventbridge_bus",
    "event_archive": "eventbridge_archive",
    "event_rule": "eventbridge_rule",
    "event_processor_function": "lambda_function",
    "event_processor_role": "iam_role",
    "event_processor_log_group": "cloudwatch_log_group",
    "event_dlq": "sqs_queue",
    "event_dlq_alarm": "cloudwatch_alarm",
    "deploy_hooks_function": "lambda_function",
    "deploy_hooks_role": "iam_role",
    "deploy_hooks_log_group": "cloudwatch_log_group",
}

SHARED_NAME_KINDS: Mapping[str, str] = {
    "codeartifact_domain": "codeartifact_domain",
    "store_repository": "codeartifact_repository",
    "team_repository": "codeartifact_repository",
    "state_bucket": "s3_bucket",
    "secrets_key_alias": "kms_alias",
    "ephemeral_secrets_key_alias": "kms_alias",
    "preview_role": "iam_role",
    "deploy_role": "iam_role",
    "deploy_protected_role": "iam_role",
    "promote_role": "iam_role",
    "promote_protected_role": "iam_role",
    "role_boundary": "iam_policy",
    "protected_role_boundary": "iam_policy",
    "api_gateway_logs_role": "iam_role",
}


def branch_names(
    project: str, stack: BranchStack, account_id: str, api_versions: Iterable[str]
) -> BranchNames:
    """Every physical name of a branch stack; buckets carry the account id to be global."""
    check_project(project)
    check_account_id(account_id)
    versions = list(api_versions)
    for version in versions:
        check_api_version(version)
    base = f"{project}-{stack.slug}"

    def bucket(purpose: str) -> str:
        return f"{base}-{purpose}-{account_id}"

    model_function = f"{base}-model"
    event_processor = f"{base}-events"
    return BranchNames(
        artifact_bucket=bucket("artifacts"),
        event_store_bucket=bucket("events"),
        training_project=f"{base}-train",
        training_role=f"{base}-train",
        training_log_group=f"/aws/codebuild/{base}-train",
        sagemaker_role=f"{base}-sagemaker",
        notebook=f"{base}-notebook",
        model_function=model_function,
        model_role=f"{base}-model",
        model_alias=MODEL_ALIAS,
        model_log_group=f"/aws/lambda/{model_function}",
        deploy_application=f"{base}-model",
        deploy_group=f"{base}-canary",
        deploy_role=f"{base}-codedeploy",
        deploy_topic=f"{base}-deployments",
        alias_errors_alarm=f"{base}-model-{MODEL_ALIAS}-errors",
        version_errors_alarm=f"{base}-model-candidate-errors",
        api=f"{base}-api",
        api_stages={version: version for version in versions},
        api_access_log_group=f"/aws/apigateway/{base}-api",
        event_bus=f"{base}-events",
        event_archive=f"{base}-events",
        event_rule=f"{base}-lifecycle",
        event_processor_function=event_processor,
        event_processor_role=f"{base}-events",
        event_processor_log_group=f"/aws/lambda/{event_processor}",
        event_dlq=f"{base}-events-dlq",
        event_dlq_alarm=f"{base}-events-dlq-not-empty",
        deploy_hooks_function=f"{base}-deploy-hooks",
        deploy_hooks_role=f"{base}-deploy-hooks",
        deploy_hooks_log_group=f"/aws/lambda/{base}-deploy-hooks",
    )


def event_source(project: str) -> str:
    """The `source` of the project's lifecycle events: what the bus rule and emitters agree on."""
    check_project(project)
    return f"{project}.pipeline"


def shared_names(project: str, account_id: str) -> SharedNames:
    """Names in the account-wide stack; CodeArtifact domains are unique per account."""
    check_project(project)
    check_account_id(account_id)
    base = shared_prefix(project)
    return SharedNames(
        codeartifact_domain=project,
        store_repository=f"{project}-pypi-store",
        team_repository=f"{project}-ml",
        state_bucket=f"{base}-state-{account_id}",
        secrets_key_alias=f"alias/{base}-pulumi-secrets",
        ephemeral_secrets_key_alias=f"alias/{base}-pulumi-secrets-ephemeral",
        preview_role=f"{base}-ci-preview",
        deploy_role=f"{base}-ci-deploy",
        deploy_protected_role=f"{base}-ci-deploy-protected",
        promote_role=f"{base}-ci-promote",
        promote_protected_role=f"{base}-ci-promote-protected",
        role_boundary=f"{base}-role-boundary",
        protected_role_boundary=f"{base}-role-boundary-protected",
        api_gateway_logs_role=f"{base}-apigateway-logs",
    )


def deploy_environment(stack: BranchStack) -> str:
    """The GitHub environment a stack's deploy job runs in."""
    return f"{DEPLOY_ENVIRONMENT_PREFIX}{stack.stack}"


def approval_environment(approval: str, stack: BranchStack) -> str:
    """The approval environment of a stack: shared by ephemeral stacks, its own when protected."""
    if approval not in APPROVAL_ENVIRONMENTS:
        raise NamingError(f"{approval!r} is not one of {', '.join(APPROVAL_ENVIRONMENTS)}")
    return f"{approval}/{stack.stack}" if stack.protected else approval


def shared_prefix(project: str) -> str:
    """Start of the shared stack's CI names. Slugs never hold '--', so no branch can match it."""
    check_project(project)
    return f"{project}--{SHARED_STACK}"


def project_resource_prefix(project: str) -> str:
    """Every physical name of the project starts with this; the deploy role is scoped to it."""
    check_project(project)
    return f"{project}-"


def check_git_sha(git_sha: str) -> None:
    if not _SHA_RE.fullmatch(git_sha):
        raise NamingError(f"git sha {git_sha!r} must be 7-40 lowercase hex digits")


def tags(project: str, stack: BranchStack, git_sha: str | None = None) -> dict[str, str]:
    """Tags every resource carries; values are reduced to the characters AWS tags allow."""
    check_project(project)
    result = {
        "project": project,
        "stack": stack.stack,
        "kind": stack.kind,
        "branch": _tag_value(stack.branch) if stack.branch else "-",
    }
    if git_sha:
        check_git_sha(git_sha)
        result["git-sha"] = git_sha
    return result


def _tag_value(text: str) -> str:
    return _TAG_VALUE_UNSAFE.sub("_", text)[:256]
