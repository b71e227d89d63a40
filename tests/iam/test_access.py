"""Access by effect: who can assume which role, and what each role can and cannot do.

Policies come from the synthesized program (`synth --format json`); requests
come from the table of calls each duty makes (tests/iam/actions.py); the
evaluator (tests/iam/evaluator.py) is checked against AWS's documented logic
in test_evaluator.py. Branch names and the protected branches come from the
project's config, never from this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import naming, training
from infra.components.ci_duties import (
    DEPLOY,
    DEPLOY_PROTECTED,
    DUTIES,
    PREVIEW,
    PROMOTE,
    PROMOTE_PROTECTED,
)
from scripts import synth
from tests.conftest import Programs
from tests.iam import actions
from tests.iam.actions import Call, Target
from tests.iam.evaluator import ALLOW, Request, as_list, evaluate, evaluate_kms
from tests.iam.model import ACCOUNT, REPOSITORY, AccessModel, protected_branches, rows
from tests.infra.test_naming import git_branches
from tests.project import PROJECT

PROTECTED = protected_branches()
MAIN = PROTECTED[0]
# Ephemeral branches whose names try to fall under a protected or shared name.
LOOK_ALIKES = [
    "feature/x",
    f"{MAIN}-x",
    f"{MAIN}/x",
    f"x-{MAIN}",
    MAIN.upper(),
    f"{MAIN}-model",
    f"{MAIN}-events",
    "shared",
    "shared-state",
]
# Types only the shared stack holds: bootstrap deploys it with an
# administrator's credentials, and no CI role may change it.
SHARED_ONLY = {
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:iam/policy:Policy",
    "aws:kms/key:Key",
    "aws:kms/alias:Alias",
    "aws:kms/keyPolicy:KeyPolicy",
    "aws:apigateway/account:Account",
    "aws:codeartifact/domain:Domain",
    "aws:codeartifact/repository:Repository",
    "aws:codeartifact/domainPermissions:DomainPermissions",
    "aws:codeartifact/repositoryPermissionsPolicy:RepositoryPermissionsPolicy",
}


class Stack:
    """A branch stack as synthesized: its kind, outputs and every call its resources need."""

    def __init__(self, branch: str, model: AccessModel, programs: Programs) -> None:
        self.model = model
        # Every optional resource type, so the action table must cover them.
        stack = programs.branch(branch, notebookEnabled=True, apiAuth="api-key")
        self.branch = branch
        self.kind = stack.kind
        self.outputs = stack.outputs
        stack_info = naming.BranchStack(branch, stack.stack, stack.stack, stack.kind)  # type: ignore[arg-type]
        self.target = Target(
            region=str(stack.outputs["region"]),
            account=ACCOUNT,
            tags=naming.tags(PROJECT, stack_info),
            boundary=str(
                model.outputs[
                    "protected_role_boundary_arn"
                    if stack.kind == "protected"
                    else "role_boundary_arn"
                ]
            ),
        )
        self.name = stack.stack
        self.names = naming.branch_names(
            PROJECT, stack_info, ACCOUNT, synth.config.settings_for_stack(stack.stack).api_versions
        )
        self.rows = [r for r in rows(stack) if not r["component"]]

    def resource_calls(self) -> list[Call]:
        return [
            call
            for row in self.rows
            for call in actions.RESOURCE_ACTIONS[row["type"]](row["inputs"], self.target)
        ]

    def backend_calls(self) -> list[Call]:
        return actions.backend_calls(PROJECT, self.name, self.model.state_bucket)

    def traffic_calls(self) -> list[Call]:
        config = synth.config.settings_for_stack(self.name)
        return actions.traffic_calls(
            self.outputs,
            self.target,
            config.canary_deployment_config,
            self.names.version_errors_alarm,
        )

    def train_calls(self) -> list[Call]:
        return actions.train_calls(self.outputs, self.target, self.names.training_log_group)

    def lock_calls(self) -> list[Call]:
        return actions.lock_calls(PROJECT, self.name, self.model.state_bucket)

    def unlock_calls(self) -> list[Call]:
        return actions.unlock_calls(PROJECT, self.name, self.model.state_bucket)

    def dlq_calls(self) -> list[Call]:
        return actions.dlq_calls(self.outputs, self.target)


@pytest.fixture(scope="session")
def stack(access: AccessModel, programs: Programs) -> Callable[[str], Stack]:
    """A branch's stack as synthesized, evaluated once per session for each branch."""
    return cache(lambda branch: Stack(branch, access, programs))


def sub(context: str) -> str:
    return f"repo:{REPOSITORY}:{context}"


# ------------------------------------------------------------------ trust


def expected_roles() -> list[tuple[str, set[str]]]:
    feature = naming.slugify("feature/x")
    cases = [
        (sub("ref:refs/heads/feature/x"), {DEPLOY}),
        (sub(f"environment:branch/{feature}"), {DEPLOY}),
        (sub("pull_request"), {PREVIEW}),
        # An approval environment named after an ephemeral stack: not trusted.
        (sub(f"environment:canary-promotion/{feature}"), set()),
        # Someone else's repository, or ours spelled otherwise: nothing.
        (f"repo:{REPOSITORY.lower()}:ref:refs/heads/feature/x", set()),
        (f"repo:{REPOSITORY}-fork:pull_request", set()),
        (f"repo:{REPOSITORY}:ref:refs/tags/v1", set()),
    ]
    for approval in naming.APPROVAL_ENVIRONMENTS:
        cases.append((sub(f"environment:{approval}"), {PROMOTE}))
    for branch in PROTECTED:
        slug = naming.slugify(branch)
        cases += [
            (sub(f"ref:refs/heads/{branch}"), {DEPLOY, DEPLOY_PROTECTED}),
            (sub(f"environment:branch/{slug}"), {DEPLOY, DEPLOY_PROTECTED}),
        ]
        for approval in naming.APPROVAL_ENVIRONMENTS:
            cases.append((sub(f"environment:{approval}/{slug}"), {PROMOTE_PROTECTED}))
    return cases


@pytest.mark.parametrize(("subject", "roles"), expected_roles())
def test_each_github_subject_assumes_exactly_its_roles(
    access: AccessModel, subject: str, roles: set[str]
) -> None:
    assert access.assumable(subject) == roles


def test_a_token_for_another_audience_assumes_nothing(access: AccessModel) -> None:
    assert access.assumable(sub(f"ref:refs/heads/{MAIN}"), aud="https://github.com/acme") == set()


@settings(max_examples=150, deadline=None)
@given(git_branches, st.sampled_from(naming.APPROVAL_ENVIRONMENTS))
def test_no_ephemeral_branch_name_reaches_a_protected_role(
    access: AccessModel, branch: str, approval: str
) -> None:
    stack_ = naming.branch_stack(branch, PROTECTED)
    if stack_.protected:
        return
    slug = stack_.stack
    assert access.assumable(sub(f"ref:refs/heads/{stack_.branch}")) == {DEPLOY}
    assert access.assumable(sub(f"environment:branch/{slug}")) == {DEPLOY}
    assert access.assumable(sub(f"environment:{approval}/{slug}")) == set()


# ------------------------------------------------------------------ inventory


def test_every_resource_type_has_its_actions(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    branch_types = {r["type"] for r in stack("feature/x").rows}
    assert branch_types - set(actions.RESOURCE_ACTIONS) == set()
    shared_types = {r["type"] for r in access.resources if not r["component"]}
    assert shared_types - set(actions.RESOURCE_ACTIONS) - SHARED_ONLY == set()


# ------------------------------------------------------------------ deploy


@pytest.mark.parametrize("branch", LOOK_ALIKES)
def test_an_ephemeral_deploy_can_run_its_whole_stack(
    access: AccessModel, stack: Callable[[str], Stack], branch: str
) -> None:
    own = stack(branch)
    assert own.kind == "ephemeral"
    assert access.refused(DEPLOY, own.resource_calls() + own.backend_calls()) == []
    # A branch stack reads the shared stack's outputs (StackReference).
    shared_state = actions.reads_of_state(PROJECT, naming.SHARED_STACK, access.state_bucket)
    assert access.refused(DEPLOY, shared_state) == []


@settings(max_examples=150, deadline=None)
@given(git_branches)
def test_any_ephemeral_branch_deploys_its_own_names_and_never_a_protected_one(
    access: AccessModel, branch: str
) -> None:
    config = synth.config.settings_for_stack(naming.SHARED_STACK)
    own = naming.branch_stack(branch, PROTECTED)
    if own.protected:
        return
    region = access.region

    def calls(stack_: naming.BranchStack) -> list[Call]:
        n = naming.branch_names(PROJECT, stack_, ACCOUNT, config.api_versions)
        return [
            Call(
                "lambda:UpdateFunctionCode",
                f"arn:aws:lambda:{region}:{ACCOUNT}:function:{n.model_function}",
            ),
            Call(
                "lambda:UpdateAlias",
                f"arn:aws:lambda:{region}:{ACCOUNT}:function:{n.model_function}:live",
            ),
            Call("s3:PutObject", f"arn:aws:s3:::{n.artifact_bucket}/x"),
            Call("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{n.model_role}"),
            Call(
                "logs:CreateLogGroup",
                f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{n.model_log_group}",
            ),
            Call(
                "events:PutRule",
                f"arn:aws:events:{region}:{ACCOUNT}:rule/{n.event_bus}/{n.event_rule}",
            ),
            *actions.backend_calls(PROJECT, stack_.stack, access.state_bucket),
        ]

    assert access.refused(DEPLOY, calls(own)) == []
    for protected in PROTECTED:
        assert (
            access.granted(
                DEPLOY,
                [c for c in calls(naming.branch_stack(protected, PROTECTED)) if not c.is_read],
            )
            == []
        )


@pytest.mark.parametrize("protected", PROTECTED)
def test_no_ephemeral_role_changes_a_protected_stack(
    access: AccessModel, stack: Callable[[str], Stack], protected: str
) -> None:
    target = stack(protected)
    assert target.kind == "protected"
    owned = [c for c in target.resource_calls() + target.traffic_calls() if c.owned]
    for duty in (PREVIEW, DEPLOY, PROMOTE):
        assert access.granted(duty, [c for c in owned if not c.is_read]) == [], duty
        state = actions.writes_of_state(PROJECT, target.name, access.state_bucket)
        assert access.granted(duty, state) == [], duty
    # The ephemeral deploy role cannot even read a protected stack's resources...
    assert access.granted(DEPLOY, owned) == []
    # ...but may read its state (outputs), as a StackReference would.
    assert (
        access.refused(
            DEPLOY,
            actions.reads_of_state(PROJECT, target.name, access.state_bucket),
        )
        == []
    )


@pytest.mark.parametrize("protected", PROTECTED)
def test_the_protected_deploy_can_run_a_protected_stack(
    access: AccessModel, stack: Callable[[str], Stack], protected: str
) -> None:
    target = stack(protected)
    assert access.refused(DEPLOY_PROTECTED, target.resource_calls() + target.backend_calls()) == []


def test_the_drift_check_reads_every_protected_stack_and_shared(access: AccessModel) -> None:
    # `refresh --preview-only` takes no lock (pulumi/pulumi pkg/backend/diy/backend.go,
    # Refresh): reading the state and decrypting its secrets is all it needs.
    for name in (naming.SHARED_STACK, *(naming.slugify(b) for b in PROTECTED)):
        reads = actions.reads_of_state(PROJECT, name, access.state_bucket)
        assert access.refused(DEPLOY_PROTECTED, reads) == [], name
    protected_key = access.outputs["secrets_key_arn"]
    assert access.decide(DEPLOY_PROTECTED, Request("kms:Decrypt", protected_key)) == ALLOW


def test_a_role_an_ephemeral_deploy_makes_cannot_reach_a_protected_stack(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    # The deploy role could give a role it creates any policy and run a function
    # with it; the boundary it must set is what stops that role.
    anything = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    ephemeral = access.boundaries[str(access.outputs["role_boundary_arn"])]
    protected_boundary = access.boundaries[str(access.outputs["protected_role_boundary_arn"])]
    feature, target = stack("feature/x"), stack(MAIN)
    for owner, boundary, allowed in (
        (feature, ephemeral, True),
        (target, ephemeral, False),
        (target, protected_boundary, True),
    ):
        function = owner.outputs["model_function"]
        alias = f"arn:aws:lambda:{access.region}:{ACCOUNT}:function:{function}:live"
        decision = evaluate(anything, Request("lambda:UpdateAlias", alias), boundary=boundary)
        assert (decision == ALLOW) is allowed, (owner.branch, allowed)
    # ...and the ephemeral deploy role cannot pick the protected boundary instead.
    role = f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-{feature.name}-model"
    context = {"iam:PermissionsBoundary": str(access.outputs["protected_role_boundary_arn"])}
    assert access.decide(DEPLOY, Request("iam:CreateRole", role, context)) != ALLOW
    context = {"iam:PermissionsBoundary": str(access.outputs["role_boundary_arn"])}
    assert access.decide(DEPLOY, Request("iam:CreateRole", role, context)) == ALLOW


def test_roles_are_made_only_under_the_boundary(access: AccessModel) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-{naming.slugify('feature/x')}-model"
    for duty in (DEPLOY, DEPLOY_PROTECTED):
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"):
            assert access.decide(duty, Request(action, role)) != ALLOW
            other = {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/admin"}
            assert access.decide(duty, Request(action, role, other)) != ALLOW
        assert access.decide(duty, Request("iam:DeleteRolePermissionsBoundary", role)) != ALLOW


def test_nothing_outside_the_project_is_reachable(access: AccessModel) -> None:
    other_project = (PROJECT + "x")[: naming.PROJECT_MAX]
    if other_project == PROJECT:
        other_project = PROJECT[:-1] + ("y" if PROJECT[-1] != "y" else "z")
    branch = naming.branch_stack("feature/x", [])
    names = naming.branch_names(other_project, branch, ACCOUNT, ["v1"])
    region = access.region
    foreign = [
        Call(
            "lambda:UpdateFunctionCode",
            f"arn:aws:lambda:{region}:{ACCOUNT}:function:{names.model_function}",
        ),
        Call("s3:PutObject", f"arn:aws:s3:::{names.artifact_bucket}/x"),
        Call("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{names.model_role}"),
        Call("events:PutEvents", f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{names.event_bus}"),
        Call(
            "apigateway:PATCH",
            f"arn:aws:apigateway:{region}::/restapis/abc/stages/v1",
            {"aws:ResourceTag/project": other_project, "aws:ResourceTag/kind": "ephemeral"},
        ),
    ]
    for duty in DUTIES:
        assert access.granted(duty, foreign) == [], duty


# ------------------------------------------------------------------ shared stack


def test_no_ci_role_can_change_the_shared_stack(access: AccessModel) -> None:
    iam = f"arn:aws:iam::{ACCOUNT}"
    bucket = f"arn:aws:s3:::{access.state_bucket}"
    calls = [
        *[
            Call(action, role.arn)
            for role in access.roles.values()
            for action in (
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DeleteRole",
                "iam:DeleteRolePermissionsBoundary",
            )
        ],
        Call("iam:CreatePolicyVersion", str(access.outputs["role_boundary_arn"])),
        Call("iam:DeletePolicy", str(access.outputs["role_boundary_arn"])),
        Call(
            "iam:UpdateOpenIDConnectProviderThumbprint",
            str(access.outputs["oidc_provider_arn"]),
        ),
        Call(
            "iam:PassRole",
            f"{iam}:role/{naming.shared_names(PROJECT, ACCOUNT).api_gateway_logs_role}",
        ),
        Call("s3:DeleteBucket", bucket),
        Call("s3:PutBucketPolicy", bucket),
        Call("s3:PutBucketVersioning", bucket),
        Call("s3:PutLifecycleConfiguration", bucket),
        Call("s3:PutObject", f"{bucket}/.pulumi/meta.yaml"),
        Call("s3:DeleteObjectVersion", f"{bucket}/.pulumi/stacks/{PROJECT}/feature-x.json"),
        *actions.writes_of_state(PROJECT, naming.SHARED_STACK, access.state_bucket),
        *[
            Call(action, key)
            for key in access.key_policies
            for action in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey")
        ],
        Call("apigateway:PATCH", f"arn:aws:apigateway:{access.region}::/account"),
    ]
    for duty in DUTIES:
        assert access.granted(duty, calls) == [], duty


# ------------------------------------------------------------------ secrets keys


@pytest.mark.parametrize("duty", DUTIES)
def test_each_role_uses_the_secrets_key_of_its_stack_kind_only(
    access: AccessModel, duty: str
) -> None:
    protected_key = access.outputs["secrets_key_arn"]
    ephemeral_key = access.outputs["ephemeral_secrets_key_arn"]
    mine, other = (
        (protected_key, ephemeral_key)
        if duty in (DEPLOY_PROTECTED, PROMOTE_PROTECTED)
        else (ephemeral_key, protected_key)
    )
    for action in ("kms:Encrypt", "kms:Decrypt"):
        assert access.decide(duty, Request(action, other)) != ALLOW, action
        # Preview only reads the state, so it needs only to decrypt.
        if duty != PREVIEW or action == "kms:Decrypt":
            assert access.decide(duty, Request(action, mine)) == ALLOW, action


def test_a_key_alone_gives_its_roles_only_the_calls_pulumi_secrets_make(
    access: AccessModel,
) -> None:
    # Pulumi's awskms secrets provider encrypts a stack's data key once and decrypts it on
    # every run (pkg/secrets/cloud via gocloud.dev's awskms keeper): nothing else. A key
    # policy grant needs no IAM grant beside it, so what a key gives its roles by itself
    # is all it should: every other KMS operation, DescribeKey included, stays with IAM.
    import botocore.session  # noqa: PLC0415 - its models load only where used

    operations = botocore.session.get_session().get_service_model("kms").operation_names
    kinds = {
        access.outputs["secrets_key_arn"]: (DEPLOY_PROTECTED, PROMOTE_PROTECTED),
        access.outputs["ephemeral_secrets_key_arn"]: (PREVIEW, DEPLOY, PROMOTE),
    }
    for key, users in kinds.items():
        for duty in DUTIES:
            principal = access.roles[duty].arn
            allowed = {
                f"kms:{operation}"
                for operation in operations
                if evaluate_kms(
                    [],
                    access.key_policies[key],
                    Request(f"kms:{operation}", key, principal=principal),
                )
                == ALLOW
            }
            assert allowed == ({"kms:Encrypt", "kms:Decrypt"} if duty in users else set()), duty


def test_the_protected_key_refuses_ephemeral_roles_whatever_iam_grants_them(
    access: AccessModel,
) -> None:
    # Defence in depth: a later, wider IAM policy on an ephemeral role still
    # cannot decrypt protected secrets, because the key policy denies it.
    everything = [{"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}]
    protected_key = access.outputs["secrets_key_arn"]
    for duty in (PREVIEW, DEPLOY, PROMOTE):
        request = Request("kms:Decrypt", protected_key, principal=access.roles[duty].arn)
        assert evaluate_kms(everything, access.key_policies[protected_key], request) != ALLOW
    ephemeral_key = access.outputs["ephemeral_secrets_key_arn"]
    for duty in (DEPLOY_PROTECTED, PROMOTE_PROTECTED):
        request = Request("kms:Decrypt", ephemeral_key, principal=access.roles[duty].arn)
        assert evaluate_kms(everything, access.key_policies[ephemeral_key], request) != ALLOW


def test_the_keys_do_not_lock_out_the_account_s_administrators(access: AccessModel) -> None:
    admin = f"arn:aws:iam::{ACCOUNT}:role/admin"
    identity = [{"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}]
    for key, policy in access.key_policies.items():
        for action in ("kms:PutKeyPolicy", "kms:Decrypt", "kms:ScheduleKeyDeletion"):
            assert evaluate_kms(identity, policy, Request(action, key, principal=admin)) == ALLOW
        # With no IAM grant, being in the account is not enough.
        assert evaluate_kms([], policy, Request("kms:Decrypt", key, principal=admin)) != ALLOW


def test_the_state_bucket_refuses_plain_http(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    own = stack("feature/x").backend_calls()
    insecure = [Call(c.action, c.resource, {"aws:SecureTransport": False}) for c in own]
    secure = [Call(c.action, c.resource, {"aws:SecureTransport": True}) for c in own]
    assert access.granted(DEPLOY, insecure) == []
    assert access.refused(DEPLOY, secure) == []


# ------------------------------------------------------------------ pull requests


def test_a_pull_request_reads_and_never_writes(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    feature = stack("feature/x")
    for target in (feature, *[stack(b) for b in PROTECTED]):
        reads = actions.reads_of_state(PROJECT, target.name, access.state_bucket)
        assert access.refused(PREVIEW, reads) == []
        assert (
            access.granted(
                PREVIEW,
                actions.writes_of_state(PROJECT, target.name, access.state_bucket),
            )
            == []
        )
    # It reads the resources themselves through AWS's read-only policy.
    function = (
        f"arn:aws:lambda:{access.region}:{ACCOUNT}:function:{feature.outputs['model_function']}"
    )
    assert access.decide(PREVIEW, Request("lambda:GetFunction", function)) == ALLOW
    writes = [c for c in feature.resource_calls() if c.owned and not c.is_read]
    assert access.granted(PREVIEW, writes) == []


# ------------------------------------------------------------------ traffic


def test_promote_moves_an_ephemeral_stack_s_traffic_and_nothing_else(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    feature = stack("feature/x")
    assert access.refused(PROMOTE, feature.traffic_calls()) == []
    function = (
        f"arn:aws:lambda:{access.region}:{ACCOUNT}:function:{feature.outputs['model_function']}"
    )
    not_its_duty = [
        Call("lambda:UpdateFunctionCode", function),
        Call("lambda:DeleteFunction", function),
        Call("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{feature.outputs['model_function']}"),
    ]
    assert access.granted(PROMOTE, not_its_duty) == []


@pytest.mark.parametrize("protected", PROTECTED)
def test_protected_traffic_moves_only_from_its_own_approval_role(
    access: AccessModel, stack: Callable[[str], Stack], protected: str
) -> None:
    target = stack(protected)
    assert access.refused(PROMOTE_PROTECTED, target.traffic_calls()) == []
    owned = [c for c in target.traffic_calls() if c.owned and not c.is_read]
    assert access.granted(PROMOTE, owned) == []
    # ...and the protected approval role cannot move an ephemeral stack's traffic.
    feature = [c for c in stack("feature/x").traffic_calls() if c.owned]
    assert access.granted(PROMOTE_PROTECTED, feature) == []


def test_promote_re_points_only_its_stack_s_candidate_alarm(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    # The candidate alarm is the only alarm promote rewrites; the live alarm, the DLQ
    # alarm and tags (an update ignores PutMetricAlarm's Tags) stay the deploy's.
    for duty, own, other in (
        (PROMOTE, stack("feature/x"), stack(MAIN)),
        (PROMOTE_PROTECTED, stack(MAIN), stack("feature/x")),
    ):

        def alarm(target: Stack, name: str) -> str:
            return f"arn:aws:cloudwatch:{access.region}:{ACCOUNT}:alarm:{name}"

        candidate = alarm(own, own.names.version_errors_alarm)
        assert access.decide(duty, Request("cloudwatch:PutMetricAlarm", candidate)) == ALLOW
        not_its_own = [
            Call("cloudwatch:PutMetricAlarm", alarm(own, own.names.alias_errors_alarm)),
            Call("cloudwatch:PutMetricAlarm", alarm(own, own.names.event_dlq_alarm)),
            Call("cloudwatch:PutMetricAlarm", alarm(other, other.names.version_errors_alarm)),
            Call("cloudwatch:TagResource", candidate),
            Call("cloudwatch:DeleteAlarms", candidate),
        ]
        assert access.granted(duty, not_its_own) == [], duty


# ------------------------------------------------------------------ training


def test_an_ephemeral_branch_trains_with_its_deploy_role_and_reaches_no_other_runner(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    feature = stack("feature/x")
    assert access.refused(DEPLOY, feature.train_calls()) == []
    for protected in PROTECTED:
        target = stack(protected)
        assert access.granted(DEPLOY, [c for c in target.train_calls() if c.owned]) == [], protected
        assert access.refused(DEPLOY_PROTECTED, target.train_calls()) == [], protected
    # Training is deploy's duty (it publishes a version): not the approval roles'
    # (which record their own events on the bus, nothing else of these).
    writes = [c for c in feature.train_calls() if not c.is_read and c.action != "events:PutEvents"]
    assert access.granted(PROMOTE, writes) == []
    assert access.granted(PREVIEW, writes) == []


def test_every_branch_reads_the_default_branch_s_published_metrics_and_nothing_else_of_it(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    main = stack(MAIN)
    bucket = main.outputs["artifact_bucket"]
    published = actions.published_metrics_read(bucket)
    assert access.decide(DEPLOY, published.request()) == ALLOW
    assert access.decide(DEPLOY_PROTECTED, published.request()) == ALLOW
    # The default branch's train job writes it, tagged; no ephemeral role can.
    assert access.refused(DEPLOY_PROTECTED, actions.publish_metrics_calls(bucket)) == []
    assert access.granted(DEPLOY, actions.publish_metrics_calls(bucket)) == []
    arn = f"arn:aws:s3:::{bucket}"
    untagged = [
        # The same key without the mark, every other object, the bucket's listing.
        Call("s3:GetObject", published.resource),
        Call("s3:GetObject", f"{arn}/{training.RUNS_PREFIX}{actions.BUILD_ID}/model.json"),
        Call("s3:GetObject", f"{arn}/{training.LATEST_EVALUATION_KEY}"),
        Call("s3:GetObject", f"{arn}/{training.SOURCE_KEY}"),
        Call("s3:ListBucket", arn),
        # A tagged object still only reads: no version reads, tags, writes or deletes.
        *[
            Call(action, published.resource, published.context)
            for action in (
                "s3:GetObjectVersion",
                "s3:GetObjectTagging",
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
            )
        ],
    ]
    assert access.granted(DEPLOY, untagged) == []
    # The exception is the default branch's alone: another protected stack's objects
    # stay out of reach, marked or not.
    for other in PROTECTED[1:]:
        theirs = actions.published_metrics_read(stack(other).outputs["artifact_bucket"])
        assert access.decide(DEPLOY, theirs.request()) != ALLOW
    # ...and the approval roles have no business there.
    assert access.decide(PROMOTE, published.request()) != ALLOW


def test_a_role_made_by_an_ephemeral_deploy_cannot_read_the_published_metrics(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    # The exception is the CI role's: the boundary of the stack's own roles keeps
    # every protected object out of reach (a runner does not compare; train.py does).
    anything = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    boundary = access.boundaries[str(access.outputs["role_boundary_arn"])]
    published = actions.published_metrics_read(stack(MAIN).outputs["artifact_bucket"])
    assert evaluate(anything, published.request(), boundary=boundary) != ALLOW


def test_a_pull_request_reads_its_branch_s_latest_evaluation(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    for target in (stack("feature/x"), *[stack(b) for b in PROTECTED]):
        assert access.decide(PREVIEW, actions.evaluation_read(target.outputs).request()) == ALLOW


# ------------------------------------------------------------------ backend locks


def test_lock_checks_and_unlock_run_with_the_roles_that_issue_them(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    feature = stack("feature/x")
    # preview and deploy check the plan's checkpoint and the locks; unlock follows a
    # cancelled deploy or destroy of an ephemeral stack.
    for duty in (PREVIEW, DEPLOY):
        assert access.refused(duty, feature.lock_calls()) == [], duty
    assert access.refused(DEPLOY, feature.unlock_calls()) == []
    for protected in PROTECTED:
        target = stack(protected)
        # Drift (deploy-protected) and cleanup (deploy, every stack's locks) only read...
        assert access.refused(DEPLOY_PROTECTED, target.unlock_calls()) == [], protected
        assert access.refused(DEPLOY, target.lock_calls()) == [], protected
        assert access.refused(PREVIEW, target.lock_calls()) == [], protected
        # ...and no ephemeral role can release a protected stack's lock.
        for duty in (PREVIEW, DEPLOY, PROMOTE):
            assert access.granted(duty, target.unlock_calls()[-1:]) == [], (duty, protected)
    shared = actions.unlock_calls(PROJECT, naming.SHARED_STACK, access.state_bucket)
    assert access.refused(DEPLOY, shared[:-1]) == []
    for duty in DUTIES:
        assert access.granted(duty, shared[-1:]) == [], duty


# ------------------------------------------------------------------ events


def test_the_dead_letter_queue_is_redriven_with_the_deploy_role_of_its_kind(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    # `events dlq --redrive` changes the stack's data, like deploy's `events emit`:
    # it runs with the deploy role of the stack's kind, never an approval role.
    feature, main = stack("feature/x"), stack(MAIN)
    assert access.refused(DEPLOY, feature.dlq_calls()) == []
    assert access.refused(DEPLOY_PROTECTED, main.dlq_calls()) == []
    assert (
        access.granted(DEPLOY, [c for c in main.dlq_calls() if c.action.startswith("sqs:")]) == []
    )
    for duty in (PREVIEW, PROMOTE, PROMOTE_PROTECTED):
        sqs = [c for t in (feature, main) for c in t.dlq_calls() if c.action.startswith("sqs:")]
        assert access.granted(duty, sqs) == [], duty


# ------------------------------------------------------------------ denies


def test_the_denies_hold_whatever_a_role_is_later_granted(
    access: AccessModel, stack: Callable[[str], Stack]
) -> None:
    # A wider grant added to a role later, by hand or by a change to its grants, must
    # not open what the denies (infra/components/ci_denies.py) keep shut.
    wide = access.granting_everything()
    shared_state = actions.writes_of_state(PROJECT, naming.SHARED_STACK, access.state_bucket)
    for duty in DUTIES:
        assert wide.granted(duty, shared_state) == [], duty
    bucket = f"arn:aws:s3:::{access.state_bucket}"
    shared_stack = [
        *[
            Call(action, role.arn)
            for role in access.roles.values()
            for action in ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole")
        ],
        Call("iam:CreatePolicyVersion", str(access.outputs["role_boundary_arn"])),
        Call("iam:CreatePolicyVersion", str(access.outputs["protected_role_boundary_arn"])),
        Call(
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/"
            + naming.shared_names(PROJECT, ACCOUNT).api_gateway_logs_role,
        ),
        Call("s3:PutBucketPolicy", bucket),
        Call("s3:DeleteBucket", bucket),
        # ...nor may a role shed the boundary of any role, its stack's own included.
        Call(
            "iam:DeleteRolePermissionsBoundary",
            f"arn:aws:iam::{ACCOUNT}:role/{stack('feature/x').names.model_role}",
        ),
    ]
    for duty in (DEPLOY, DEPLOY_PROTECTED):
        assert wide.granted(duty, shared_stack) == [], duty
        # The bucket's listing stays readable: the backend lists the stacks there.
        listing = [Call("s3:ListBucket", bucket), Call("s3:GetBucketLocation", bucket)]
        assert wide.refused(duty, listing) == [], duty
    for protected in PROTECTED:
        target = stack(protected)
        state = actions.writes_of_state(PROJECT, target.name, access.state_bucket)
        for duty in (PREVIEW, DEPLOY, PROMOTE):
            assert wide.granted(duty, state) == [], (duty, protected)
        owned = [c for c in target.resource_calls() + target.traffic_calls() if c.owned]
        for duty in (DEPLOY, PROMOTE):
            assert wide.granted(duty, owned) == [], (duty, protected)
    other_project = PROJECT[:-1] + ("y" if PROJECT[-1] != "y" else "z")
    stage = f"arn:aws:apigateway:{access.region}::/restapis/abc/stages/v1"
    foreign_api = Call("apigateway:PATCH", stage, {"aws:ResourceTag/project": other_project})
    for duty in (DEPLOY, DEPLOY_PROTECTED, PROMOTE, PROMOTE_PROTECTED):
        assert wide.granted(duty, [foreign_api]) == [], duty


@pytest.mark.parametrize("branch", ["feature/x", *PROTECTED])
def test_the_boundary_lets_each_role_a_stack_makes_do_what_its_policy_grants(
    access: AccessModel, stack: Callable[[str], Stack], branch: str
) -> None:
    # The boundary its deploy role must set caps every role a stack makes: were it
    # narrower than a role's own policy, the function, the training build or the
    # notebook would meet AccessDenied at run time, after a green deploy.
    target = stack(branch)
    kind = "protected_role_boundary_arn" if target.kind == "protected" else "role_boundary_arn"
    boundary = access.boundaries[str(access.outputs[kind])]
    checked = 0
    for row in target.rows:
        if row["type"] != "aws:iam/rolePolicy:RolePolicy":
            continue
        for stmt in json.loads(row["inputs"]["policy"])["Statement"]:
            if stmt["Effect"] != "Allow":
                continue
            for action in as_list(stmt["Action"]):
                for resource in as_list(stmt["Resource"]):
                    # One request inside each pattern: a wildcard stands for any text.
                    request = Request(
                        action.replace("*", "Get"),
                        resource.replace("*", "x"),
                        _meeting(stmt.get("Condition", {})),
                    )
                    decision = evaluate([{"Statement": [stmt]}], request, boundary=boundary)
                    assert decision == ALLOW, (row["name"], action, resource)
                    checked += 1
    assert checked > 0


def _meeting(condition: dict[str, dict[str, object]]) -> dict[str, object]:
    """A request context that meets a statement's own condition."""
    context: dict[str, object] = {}
    for operator, block in condition.items():
        if operator not in {"StringEquals", "StringLike", "ArnLike", "ArnEquals", "Bool"}:
            raise AssertionError(f"no request is made up for {operator} yet: add it here")
        for key, values in block.items():
            context[key] = as_list(values)[0].replace("*", "x")
    return context


def test_the_deploy_roles_get_a_bearer_token_for_codeartifact_and_no_other_service(
    access: AccessModel,
) -> None:
    # `deps login` (deploy and train install the model's pinned packages from CodeArtifact)
    # asks STS for a bearer token naming the service; it is the only one they may have.
    def token_for(service: str) -> Request:
        return Request("sts:GetServiceBearerToken", "*", {"sts:AWSServiceName": service})

    for duty in (DEPLOY, DEPLOY_PROTECTED):
        assert access.decide(duty, token_for("codeartifact.amazonaws.com")) == ALLOW, duty
        assert access.decide(duty, token_for("codecatalyst.amazonaws.com")) != ALLOW, duty
        assert access.decide(duty, Request("sts:GetServiceBearerToken", "*")) != ALLOW, duty
