"""CiAccess: the roles' sessions, the keys, the GitHub provider and the state bucket.

What each role may do is judged by effect in tests/iam/test_access.py: which GitHub
subject assumes which role, and every call of every duty, on the same synthesized stack.
"""

from __future__ import annotations

import pytest

from infra import naming
from infra.components import type_token
from infra.components.ci_duties import (
    AUDIENCE,
    DUTIES,
    GITHUB_OIDC_HOST,
    PREVIEW,
    READ_ONLY_POLICY,
)
from tests.iam.model import ACCOUNT, REPOSITORY, access_model
from tests.project import PROJECT


@pytest.fixture(scope="module")
def shared(programs):
    return programs.stack(naming.SHARED_STACK, githubRepository=REPOSITORY)


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
    assert model.assumable(f"repo:{REPOSITORY}:pull_request") == {PREVIEW}
