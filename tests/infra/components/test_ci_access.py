"""CI access: OIDC trust per duty, scoped role policies, the state bucket and secrets key."""

from __future__ import annotations

import json

import pytest

from infra.components.ci_access import CiAccess, CiAccessArgs
from scripts.synth import MOCK_ACCOUNT_ID, run_under_mocks

REPO = "acme/models"
OIDC = "token.actions.githubusercontent.com"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def _args(**overrides) -> CiAccessArgs:
    values = dict(
        repository=REPO,
        account_id=MOCK_ACCOUNT_ID,
        region="eu-west-1",
        resource_prefix="mlship-",
        shared_prefix="mlship--shared",
        state_bucket=f"mlship--shared-state-{MOCK_ACCOUNT_ID}",
        secrets_key_alias="alias/mlship--shared-pulumi-secrets",
        preview_role="mlship--shared-ci-preview",
        deploy_role="mlship--shared-ci-deploy",
        promote_role="mlship--shared-ci-promote",
        role_boundary="mlship--shared-role-boundary",
        create_oidc_provider=True,
    )
    return CiAccessArgs(**{**values, **overrides})


@pytest.fixture(scope="module")
def ci():
    return run_under_mocks(
        lambda: CiAccess("ci", _args()), project="mlship", stack="shared", region="eu-west-1"
    )


def _trust(ci, duty: str) -> dict:
    (statement,) = json.loads(ci.one(ROLE, f"ci-{duty}").inputs["assumeRolePolicy"])["Statement"]
    return statement


def _statements(ci, duty: str) -> list[dict]:
    return json.loads(ci.one(POLICY, f"ci-{duty}-policy").inputs["policy"])["Statement"]


@pytest.mark.parametrize(
    ("duty", "subjects"),
    [
        ("preview", [f"repo:{REPO}:ref:refs/heads/*", f"repo:{REPO}:pull_request"]),
        ("deploy", [f"repo:{REPO}:ref:refs/heads/*", f"repo:{REPO}:environment:branch/*"]),
        (
            "promote",
            [f"repo:{REPO}:environment:canary-promotion", f"repo:{REPO}:environment:api-release"],
        ),
    ],
)
def test_each_role_trusts_only_its_duty_s_tokens(ci, duty: str, subjects: list[str]) -> None:
    trust = _trust(ci, duty)
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert trust["Principal"] == {
        "Federated": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:oidc-provider/" + provider.inputs["url"]
    }
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"] == {
        "StringEquals": {f"{OIDC}:aud": "sts.amazonaws.com"},
        "StringLike": {f"{OIDC}:sub": subjects},
    }


def test_promote_role_cannot_be_assumed_from_a_plain_branch_push(ci) -> None:
    subjects = _trust(ci, "promote")["Condition"]["StringLike"][f"{OIDC}:sub"]
    assert not any("ref:" in s or s.endswith("*") for s in subjects)


def test_oidc_provider_is_github_s_and_kept(ci) -> None:
    provider = ci.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == f"https://{OIDC}"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert provider.protect and provider.retain_on_delete


def test_an_existing_oidc_provider_is_referenced_not_created() -> None:
    s = run_under_mocks(
        lambda: CiAccess("ci", _args(create_oidc_provider=False)), project="mlship", stack="shared"
    )
    assert s.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert _trust(s, "deploy")["Principal"]["Federated"] == (
        f"arn:aws:iam::{MOCK_ACCOUNT_ID}:oidc-provider/{OIDC}"
    )


def test_state_bucket_and_secrets_key_are_protected(ci) -> None:
    bucket = ci.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"mlship--shared-state-{MOCK_ACCOUNT_ID}"
    assert bucket.protect and bucket.inputs["forceDestroy"] is False
    assert ci.of_type("aws:s3/bucketVersioning:BucketVersioning")
    key = ci.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.protect
    assert ci.one("aws:kms/alias:Alias").inputs["name"] == "alias/mlship--shared-pulumi-secrets"


@pytest.mark.parametrize("duty", ["preview", "deploy", "promote"])
def test_every_duty_reaches_the_state_and_the_secrets_key(ci, duty: str) -> None:
    statements = _statements(ci, duty)
    bucket_arn = f"arn:aws:s3:::mlship--shared-state-{MOCK_ACCOUNT_ID}"
    resources = {r for s in statements for r in s["Resource"]}
    assert {bucket_arn, f"{bucket_arn}/*"} <= resources
    kms = next(s for s in statements if "kms:Decrypt" in s["Action"])
    # The mock answers a key's ARN from its logical name, as AWS would from its id.
    assert kms["Resource"] == [f"arn:aws:kms:eu-west-1:{MOCK_ACCOUNT_ID}:key/ci-secrets"]


def test_preview_reads_through_the_managed_read_only_policy(ci) -> None:
    role = ci.one(ROLE, "ci-preview")
    assert role.inputs["managedPolicyArns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    actions = {a for s in _statements(ci, "preview") for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("iam:", "lambda:", "apigateway:"))}


def test_deploy_is_scoped_to_the_project_prefix_and_denied_the_shared_stack(ci) -> None:
    statements = _statements(ci, "deploy")
    allows = [s for s in statements if s["Effect"] == "Allow"]
    unscoped = {
        "cloudwatch:DescribeAlarms",
        "lambda:GetAccountSettings",
        "codedeploy:GetDeploymentConfig",
        "sts:GetCallerIdentity",
    }
    for s in allows:
        if s["Resource"] == ["*"]:
            assert set(s["Action"]) <= unscoped
            continue
        for resource in s["Resource"]:
            name_part = resource.split(":")[-1]
            assert (
                "mlship-" in name_part
                or "mlship--shared-state" in resource
                or resource.startswith("arn:aws:kms")
                or resource.startswith("arn:aws:apigateway:eu-west-1::/")
            ), resource
    shared_deny, boundary_deny = [s for s in statements if s["Effect"] == "Deny"]
    assert shared_deny["Resource"] == [
        f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/mlship--shared*",
        f"arn:aws:iam::{MOCK_ACCOUNT_ID}:policy/mlship--shared*",
        "arn:aws:s3:::mlship--shared*",
    ]
    assert "iam:*" in shared_deny["Action"]
    assert boundary_deny["Action"] == ["iam:DeleteRolePermissionsBoundary"]


def test_deploy_can_make_roles_only_under_the_boundary(ci) -> None:
    statements = _statements(ci, "deploy")
    boundary = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:policy/mlship--shared-role-boundary"
    granting = {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"}
    for s in statements:
        if s["Effect"] == "Allow" and granting & set(s["Action"]):
            assert s["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}
    assert granting <= allowed
    assert "iam:*" not in allowed
    policy = ci.one("aws:iam/policy:Policy")
    assert policy.inputs["name"] == "mlship--shared-role-boundary"
    actions = {a for s in json.loads(policy.inputs["policy"])["Statement"] for a in s["Action"]}
    assert not {a for a in actions if a.startswith("iam:") or a.endswith(":*")}


def test_promote_moves_traffic_and_stages_only(ci) -> None:
    actions = {a for s in _statements(ci, "promote") for a in s["Action"]}
    assert {
        "lambda:UpdateAlias",
        "codedeploy:CreateDeployment",
        "apigateway:PATCH",
        "events:PutEvents",
    } <= actions
    forbidden = {
        a
        for a in actions
        if a.startswith(
            ("iam:", "lambda:Create", "lambda:Delete", "lambda:UpdateFunction", "sagemaker:")
        )
    }
    assert forbidden == set()
    assert not {a for a in actions if a.endswith(":*") or a == "*"}
