import json

import pytest

from infra.components.storage import SecureBucket, SecureBucketArgs
from scripts.synth import run_under_mocks
from tests.iam.evaluator import ALLOW, EXPLICIT_DENY, Request, evaluate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BUCKET_NAME = "mlship-feature-x-artifacts-123456789012"
COMPONENT = "mlship:components:SecureBucket"
ROLE = "arn:aws:iam::123456789012:role/anyone"
BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def synth(protected=False, versioned=False):
    return run_under_mocks(
        lambda: SecureBucket(
            "artifacts",
            SecureBucketArgs(bucket_name=BUCKET_NAME, protected=protected, versioned=versioned),
        ),
        project="mlship",
        stack="feature-x",
    )


VARIANTS = [(p, v) for p in (False, True) for v in (False, True)]


@pytest.fixture(params=VARIANTS, ids=[f"protected={p}-versioned={v}" for p, v in VARIANTS])
def any_bucket(request):
    protected, versioned = request.param
    return synth(protected=protected, versioned=versioned)


def test_physical_name_comes_from_args(any_bucket):
    assert any_bucket.one(BUCKET, "artifacts").inputs["bucket"] == BUCKET_NAME


def test_encrypted_with_kms_and_a_bucket_key(any_bucket):
    encryption = any_bucket.one(ENCRYPTION, "artifacts-encryption").inputs
    assert encryption["bucket"] == BUCKET_NAME
    assert encryption["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"},
            "bucketKeyEnabled": True,
        }
    ]


def test_all_public_access_is_blocked(any_bucket):
    block = any_bucket.one(PUBLIC_ACCESS, "artifacts-public-access").inputs
    assert block["bucket"] == BUCKET_NAME
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag


def test_acls_are_disabled_by_owner_enforced(any_bucket):
    ownership = any_bucket.one(OWNERSHIP, "artifacts-ownership").inputs
    assert ownership["bucket"] == BUCKET_NAME
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("protected", [False, True])
def test_versioning_enabled_when_asked(protected):
    s = synth(protected=protected, versioned=True)
    versioning = s.one(VERSIONING, "artifacts-versioning").inputs
    assert versioning["bucket"] == BUCKET_NAME
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}


@pytest.mark.parametrize("protected", [False, True])
def test_no_versioning_resource_when_not_versioned(protected):
    assert synth(protected=protected, versioned=False).of_type(VERSIONING) == []


def test_protected_bucket_is_kept():
    bucket = synth(protected=True).one(BUCKET, "artifacts")
    assert bucket.protect
    assert bucket.retain_on_delete
    assert bucket.inputs["forceDestroy"] is False


def test_ephemeral_bucket_is_destroyable_with_its_data():
    bucket = synth(protected=False).one(BUCKET, "artifacts")
    assert not bucket.protect
    assert not bucket.retain_on_delete
    assert bucket.inputs["forceDestroy"] is True


def test_every_child_is_parented_to_the_component(any_bucket):
    component = any_bucket.one(COMPONENT, "artifacts")
    children = [r for r in any_bucket.resources if r is not component]
    expected = {BUCKET, ENCRYPTION, PUBLIC_ACCESS, OWNERSHIP, POLICY}
    if any_bucket.of_type(VERSIONING):
        expected.add(VERSIONING)
    assert sorted(r.type for r in children) == sorted(expected)
    assert all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("artifacts") for r in children)


def test_settings_apply_to_this_bucket(any_bucket):
    bucket = any_bucket.one(BUCKET, "artifacts")
    for r in any_bucket.resources:
        if r.custom and r is not bucket:
            # Wired from the bucket's output: created after it, pointing at it.
            assert r.inputs["bucket"] == BUCKET_NAME, r.name
            assert bucket.urn in r.depends_on, r.name


@pytest.mark.parametrize("protected", [False, True])
def test_bucket_settings_share_the_buckets_protection(protected):
    s = synth(protected=protected, versioned=True)
    settings = [r for r in s.resources if r.custom and r.type != "aws:s3/bucket:Bucket"]
    assert len(settings) == 5
    assert all(r.protect is protected and r.retain_on_delete is protected for r in settings)


def test_the_bucket_refuses_plain_http_from_anyone(any_bucket):
    policy = json.loads(any_bucket.one(POLICY).inputs["policy"])
    everything = [{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}]
    arn = f"arn:aws:s3:::{BUCKET_NAME}"
    for action, resource in (("s3:GetObject", f"{arn}/k"), ("s3:ListBucket", arn)):
        for transport, expected in ((False, EXPLICIT_DENY), (True, ALLOW)):
            request = Request(action, resource, {"aws:SecureTransport": transport}, ROLE)
            assert evaluate(everything, request, resource=policy) == expected
