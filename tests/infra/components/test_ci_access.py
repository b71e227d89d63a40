"""CiAccess: which GitHub subject assumes which CI role, and what each may do to the state.

Judged by effect, on the shared stack as the program synthesizes it, with the evaluator of
tests/iam (tests/iam/test_access.py covers every duty's calls in depth).
"""

from __future__ import annotations

import pytest

from infra import config, naming
from infra.components import type_token
from infra.components.ci_duties import (
    AUDIENCE,
    DEPLOY,
    DEPLOY_PROTECTED,
    DUTIES,
    GITHUB_OIDC_HOST,
    PREVIEW,
    PROMOTE,
    PROMOTE_PROTECTED,
    READ_ONLY_POLICY,
)
from tests.iam import actions
from tests.iam.evaluator import ALLOW, Request, evaluate
from tests.iam.model import ACCOUNT, REPOSITORY, AccessModel, access_model
from tests.project import PROJECT

SETTINGS = config.settings_for_stack(naming.SHARED_STACK)
PROTECTED = list(dict.fromkeys([SETTINGS.default_branch, *SETTINGS.protected_branches]))
FEATURE = "feature/x"


@pytest.fixture(scope="module")
def model(programs) -> AccessModel:
    return access_model(programs.stack(naming.SHARED_STACK, githubRepository=REPOSITORY))


def sub(context: str) -> str:
    return f"repo:{REPOSITORY}:{context}"


def subjects() -> list[tuple[str, set[str]]]:
    feature = naming.slugify(FEATURE)
    cases = [
        (sub(f"ref:refs/heads/{FEATURE}"), {DEPLOY}),
        (sub(f"environment:branch/{feature}"), {DEPLOY}),
        (sub("pull_request"), {PREVIEW}),
        (sub(f"environment:canary-promotion/{feature}"), set()),
        (f"repo:{REPOSITORY.lower()}:pull_request", set()),
        (f"repo:{REPOSITORY}-fork:ref:refs/heads/{FEATURE}", set()),
        (sub("ref:refs/tags/v1"), set()),
    ]
    cases += [(sub(f"environment:{a}"), {PROMOTE}) for a in naming.APPROVAL_ENVIRONMENTS]
    for branch in PROTECTED:
        slug = naming.slugify(branch)
        cases += [
            (sub(f"ref:refs/heads/{branch}"), {DEPLOY, DEPLOY_PROTECTED}),
            (sub(f"environment:branch/{slug}"), {DEPLOY, DEPLOY_PROTECTED}),
        ]
        cases += [
            (sub(f"environment:{a}/{slug}"), {PROMOTE_PROTECTED})
            for a in naming.APPROVAL_ENVIRONMENTS
        ]
    return cases


def test_each_github_subject_assumes_exactly_its_roles(model) -> None:
    assert {s: model.assumable(s) for s, _ in subjects()} == dict(subjects())
    # A token minted for another audience assumes nothing.
    assert model.assumable(sub(f"ref:refs/heads/{PROTECTED[0]}"), aud="https://x") == set()


def _refused(model: AccessModel, duty: str, calls: list[actions.Call]) -> list[str]:
    return [f"{c.action} {c.resource}" for c in calls if model.decide(duty, c.request()) != ALLOW]


def _granted(model: AccessModel, duty: str, calls: list[actions.Call]) -> list[str]:
    return [f"{c.action} {c.resource}" for c in calls if model.decide(duty, c.request()) == ALLOW]


def test_a_branch_deploy_runs_its_own_state_and_only_reads_protected_ones(model) -> None:
    own = naming.slugify(FEATURE)
    assert _refused(model, DEPLOY, actions.backend_calls(PROJECT, own, model.state_bucket)) == []
    for name in (naming.SHARED_STACK, *(naming.slugify(b) for b in PROTECTED)):
        state = (PROJECT, name, model.state_bucket)
        assert _refused(model, DEPLOY, actions.reads_of_state(*state)) == [], name
        for duty in (PREVIEW, DEPLOY, PROMOTE):
            assert _granted(model, duty, actions.writes_of_state(*state)) == [], (duty, name)


def test_the_protected_deploy_runs_the_protected_stacks(model) -> None:
    for branch in PROTECTED:
        calls = actions.backend_calls(PROJECT, naming.slugify(branch), model.state_bucket)
        assert _refused(model, DEPLOY_PROTECTED, calls) == [], branch
    assert (
        model.decide(DEPLOY_PROTECTED, Request("kms:Decrypt", model.outputs["secrets_key_arn"]))
        == ALLOW
    )


def test_preview_reads_and_never_writes(model) -> None:
    own = naming.slugify(FEATURE)
    assert _granted(model, PREVIEW, actions.writes_of_state(PROJECT, own, model.state_bucket)) == []
    function = f"arn:aws:lambda:{model.region}:{ACCOUNT}:function:{PROJECT}-{own}-model"
    assert model.decide(PREVIEW, Request("lambda:GetFunction", function)) == ALLOW
    assert model.decide(PREVIEW, Request("lambda:UpdateFunctionCode", function)) != ALLOW


def test_a_branch_deploy_changes_its_own_resources_and_no_protected_ones(model) -> None:
    versions = SETTINGS.api_versions
    own = naming.branch_names(PROJECT, naming.branch_stack(FEATURE, PROTECTED), ACCOUNT, versions)
    function = f"arn:aws:lambda:{model.region}:{ACCOUNT}:function:{own.model_function}"
    assert model.decide(DEPLOY, Request("lambda:UpdateFunctionCode", function)) == ALLOW
    assert (
        model.decide(DEPLOY, Request("s3:PutObject", f"arn:aws:s3:::{own.artifact_bucket}/x"))
        == ALLOW
    )
    for branch in PROTECTED:
        names = naming.branch_names(
            PROJECT, naming.branch_stack(branch, PROTECTED), ACCOUNT, versions
        )
        theirs = f"arn:aws:lambda:{model.region}:{ACCOUNT}:function:{names.model_function}"
        assert model.decide(DEPLOY, Request("lambda:UpdateFunctionCode", theirs)) != ALLOW
        assert model.decide(DEPLOY_PROTECTED, Request("lambda:UpdateFunctionCode", theirs)) == ALLOW


@pytest.fixture(scope="module")
def shared(programs):
    return programs.stack(naming.SHARED_STACK, githubRepository=REPOSITORY)


def test_each_duty_uses_the_secrets_key_of_its_stack_kind_and_never_the_other(model) -> None:
    protected_key = model.outputs["secrets_key_arn"]
    ephemeral_key = model.outputs["ephemeral_secrets_key_arn"]
    for duty in DUTIES:
        mine, other = (
            (protected_key, ephemeral_key)
            if duty in (DEPLOY_PROTECTED, PROMOTE_PROTECTED)
            else (ephemeral_key, protected_key)
        )
        for action in ("kms:Encrypt", "kms:Decrypt"):
            assert model.decide(duty, Request(action, other)) != ALLOW, (duty, action)
            # Preview only reads the state, so it only decrypts.
            if duty != PREVIEW or action == "kms:Decrypt":
                assert model.decide(duty, Request(action, mine)) == ALLOW, (duty, action)


def test_role_sessions_last_the_hour_the_promote_job_counts_on(shared) -> None:
    roles = {r.name: r for r in shared.of_type("aws:iam/role:Role") if r.name.startswith("ci-")}
    assert set(roles) == {f"ci-{duty}" for duty in DUTIES}
    assert {r.inputs["maxSessionDuration"] for r in roles.values()} == {3600}
    # Only preview carries a managed policy: AWS's read-only one.
    assert roles[f"ci-{PREVIEW}"].inputs["managedPolicyArns"] == [READ_ONLY_POLICY]
    assert all(
        not r.inputs.get("managedPolicyArns")
        for name, r in roles.items()
        if name != f"ci-{PREVIEW}"
    )


def test_secrets_keys_rotate_outlive_the_stack_and_have_their_aliases(shared) -> None:
    keys = shared.of_type("aws:kms/key:Key")
    assert len(keys) == 2
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs["deletionWindowInDays"] == 30
        assert key.protect and key.retain_on_delete
    aliases = {a.inputs["name"] for a in shared.of_type("aws:kms/alias:Alias")}
    names = naming.shared_names(PROJECT, ACCOUNT)
    assert aliases == {names.secrets_key_alias, names.ephemeral_secrets_key_alias}


def test_the_github_provider_and_the_state_bucket_outlive_the_stack(shared) -> None:
    (provider,) = shared.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == f"https://{GITHUB_OIDC_HOST}"
    assert provider.inputs["clientIdLists"] == [AUDIENCE]
    assert provider.protect and provider.retain_on_delete
    state = naming.shared_names(PROJECT, ACCOUNT).state_bucket
    (bucket,) = [b for b in shared.of_type("aws:s3/bucket:Bucket") if b.physical_name == state]
    assert bucket.protect and bucket.retain_on_delete
    (versioning,) = [
        v
        for v in shared.of_type("aws:s3/bucketVersioning:BucketVersioning")
        if v.inputs["bucket"] == state
    ]
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    assert shared.one(type_token("CiAccess")).parent_name == ""


def test_without_its_own_provider_the_roles_trust_the_account_s_existing_one(programs) -> None:
    synthesis = programs.stack(
        naming.SHARED_STACK, githubRepository=REPOSITORY, createOidcProvider=False
    )
    assert synthesis.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    model = access_model(synthesis)
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB_OIDC_HOST}"
    assert model.provider_arn == existing
    assert model.assumable(sub("pull_request")) == {PREVIEW}


def _names(branch: str, project: str = PROJECT) -> naming.BranchNames:
    stack = naming.branch_stack(branch, PROTECTED)
    return naming.branch_names(project, stack, ACCOUNT, SETTINGS.api_versions)


def _alias(model: AccessModel, names: naming.BranchNames) -> str:
    return f"arn:aws:lambda:{model.region}:{ACCOUNT}:function:{names.model_function}:live"


def test_each_promote_role_moves_traffic_of_its_stack_kind_only(model) -> None:
    own, protected = _alias(model, _names(FEATURE)), _alias(model, _names(PROTECTED[0]))
    for duty, reaches in (
        (PROMOTE, {own}),
        (PROMOTE_PROTECTED, {protected}),
        (PREVIEW, set()),
    ):
        for alias in (own, protected):
            decision = model.decide(duty, Request("lambda:UpdateAlias", alias))
            assert (decision == ALLOW) is (alias in reaches), (duty, alias)


def test_a_role_a_branch_deploy_makes_is_bounded_to_ephemeral_stacks(model) -> None:
    anything = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    ephemeral = model.boundaries[str(model.outputs["role_boundary_arn"])]
    protected = model.boundaries[str(model.outputs["protected_role_boundary_arn"])]
    own, theirs = _alias(model, _names(FEATURE)), _alias(model, _names(PROTECTED[0]))
    for boundary, alias, allowed in (
        (ephemeral, own, True),
        (ephemeral, theirs, False),
        (protected, theirs, True),
    ):
        decision = evaluate(anything, Request("lambda:UpdateAlias", alias), boundary=boundary)
        assert (decision == ALLOW) is allowed, (alias, allowed)
    role = f"arn:aws:iam::{ACCOUNT}:role/{_names(FEATURE).model_role}"
    for arn, allowed in (
        (model.outputs["role_boundary_arn"], True),
        (model.outputs["protected_role_boundary_arn"], False),
        (f"arn:aws:iam::{ACCOUNT}:policy/admin", False),
        (None, False),
    ):
        context = {"iam:PermissionsBoundary": str(arn)} if arn else {}
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"):
            decision = model.decide(DEPLOY, Request(action, role, context))
            assert (decision == ALLOW) is allowed, (action, arn)
    assert model.decide(DEPLOY, Request("iam:DeleteRolePermissionsBoundary", role)) != ALLOW


def test_nothing_of_another_project_is_reachable(model) -> None:
    other = PROJECT[:-1] + ("y" if PROJECT[-1] != "y" else "z")
    names = _names(FEATURE, other)
    foreign = [
        Request(
            "lambda:UpdateFunctionCode",
            f"arn:aws:lambda:{model.region}:{ACCOUNT}:function:{names.model_function}",
        ),
        Request("s3:PutObject", f"arn:aws:s3:::{names.artifact_bucket}/x"),
        Request("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{names.model_role}"),
        Request(
            "apigateway:PATCH",
            f"arn:aws:apigateway:{model.region}::/restapis/abc/stages/v1",
            {"aws:ResourceTag/project": other, "aws:ResourceTag/kind": "ephemeral"},
        ),
    ]
    for duty in DUTIES:
        assert [r.action for r in foreign if model.decide(duty, r) == ALLOW] == [], duty


def test_no_ci_role_changes_the_shared_stack(model) -> None:
    bucket = f"arn:aws:s3:::{model.state_bucket}"
    requests = [
        *[
            Request(action, role.arn)
            for role in model.roles.values()
            for action in ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRole")
        ],
        Request("iam:CreatePolicyVersion", str(model.outputs["role_boundary_arn"])),
        Request("s3:PutBucketPolicy", bucket),
        Request("s3:DeleteBucket", bucket),
        Request("s3:PutObject", f"{bucket}/.pulumi/meta.yaml"),
        *[Request(action, key) for key in model.key_policies for action in ("kms:PutKeyPolicy",)],
    ]
    for duty in DUTIES:
        assert [
            f"{r.action} {r.resource}" for r in requests if model.decide(duty, r) == ALLOW
        ] == []
