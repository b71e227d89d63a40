"""ModelTesting under Pulumi's mock runtime: runner wiring, retention and least privilege."""

from __future__ import annotations

import dataclasses
import fnmatch
import json

import pytest
import yaml

from infra.components.model_testing import ModelTesting, ModelTestingArgs
from scripts.synth import MOCK_ACCOUNT_ID, run_under_mocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REGION = "eu-west-1"
BUCKET = "mlship-feature-x-artifacts-123456789012"
PROJECT = "mlship-feature-x-train"
TRAINING_ROLE = "mlship-feature-x-train"
SAGEMAKER_ROLE = "mlship-feature-x-sagemaker"
COMMAND = "python -m pytest tests/infra/handlers -q"
LOG_GROUP = "/aws/codebuild/mlship-feature-x-runner"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{MOCK_ACCOUNT_ID}:log-group:{LOG_GROUP}"
# Deliberately not what ProgramMocks would compute: the policy must use the args.
DOMAIN_ARN = "arn:aws:codeartifact:eu-west-1:210987654321:domain/team-domain"
REPOSITORY_ARN = "arn:aws:codeartifact:eu-west-1:210987654321:repository/team-domain/team-ml"

ARGS = ModelTestingArgs(
    branch="feature/x",
    protected=False,
    artifact_bucket=BUCKET,
    training_project=PROJECT,
    training_role=TRAINING_ROLE,
    training_log_group=LOG_GROUP,
    sagemaker_role=SAGEMAKER_ROLE,
    notebook=None,
    notebook_instance_type="ml.t3.medium",
    compute_type="BUILD_GENERAL1_SMALL",
    image="aws/codebuild/standard:7.0",
    command=COMMAND,
    log_retention_days=30,
    run_retention_days=45,
    codeartifact_domain="team-domain",
    codeartifact_domain_owner="210987654321",
    codeartifact_domain_arn=DOMAIN_ARN,
    codeartifact_repository="team-ml",
    codeartifact_repository_arn=REPOSITORY_ARN,
)

BUCKET_TYPE = "aws:s3/bucket:Bucket"
PROJECT_TYPE = "aws:codebuild/project:Project"
ROLE_TYPE = "aws:iam/role:Role"
POLICY_TYPE = "aws:iam/rolePolicy:RolePolicy"
NOTEBOOK_TYPE = "aws:sagemaker/notebookInstance:NotebookInstance"


def synth(**changes):
    args = dataclasses.replace(ARGS, **changes)
    return run_under_mocks(
        lambda: ModelTesting("model-testing", args),
        project="mlship",
        stack="feature-x",
        region=REGION,
    )


@pytest.fixture(scope="module")
def default():
    return synth()


def _policy(synthesis, name):
    return json.loads(synthesis.one(POLICY_TYPE, name).inputs["policy"])


def _grants(document):
    return [(s["Action"], s["Resource"]) for s in document["Statement"]]


def test_no_notebook_unless_named(default):
    assert default.of_type(NOTEBOOK_TYPE) == []


def test_named_notebook_is_one_locked_down_instance():
    synthesis = synth(notebook="mlship-feature-x-notebook", notebook_instance_type="ml.t3.large")
    notebook = synthesis.one(NOTEBOOK_TYPE)
    assert notebook.inputs["name"] == "mlship-feature-x-notebook"
    assert notebook.inputs["instanceType"] == "ml.t3.large"
    assert notebook.inputs["roleArn"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{SAGEMAKER_ROLE}"
    assert notebook.inputs["rootAccess"] == "Disabled"
    assert notebook.inputs["directInternetAccess"] == "Enabled"


def test_artifact_bucket_is_versioned_encrypted_and_private(default):
    assert default.one(BUCKET_TYPE).inputs["bucket"] == BUCKET
    versioning = default.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    assert default.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs[
        "restrictPublicBuckets"
    ]


def test_ephemeral_artifacts_are_destroyable(default):
    bucket = default.one(BUCKET_TYPE)
    assert bucket.inputs["forceDestroy"] is True
    assert not bucket.protect and not bucket.retain_on_delete


def test_protected_artifacts_are_kept():
    bucket = synth(protected=True).one(BUCKET_TYPE)
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.protect and bucket.retain_on_delete


def test_runner_reads_source_from_the_artifact_bucket(default):
    project = default.one(PROJECT_TYPE)
    assert project.inputs["name"] == PROJECT
    assert project.inputs["source"]["type"] == "S3"
    assert project.inputs["source"]["location"] == f"{BUCKET}/source/source.zip"
    assert project.inputs["artifacts"] == {"type": "NO_ARTIFACTS"}
    assert project.inputs["serviceRole"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{TRAINING_ROLE}"
    assert project.inputs["buildTimeout"] == 60


def test_runner_environment(default):
    environment = default.one(PROJECT_TYPE).inputs["environment"]
    assert environment["type"] == "LINUX_CONTAINER"
    assert environment["computeType"] == "BUILD_GENERAL1_SMALL"
    assert environment["image"] == "aws/codebuild/standard:7.0"
    variables = {v["name"]: (v["value"], v["type"]) for v in environment["environmentVariables"]}
    assert variables == {
        "ARTIFACT_BUCKET": (BUCKET, "PLAINTEXT"),
        "BRANCH": ("feature/x", "PLAINTEXT"),
        "CODEARTIFACT_DOMAIN": ("team-domain", "PLAINTEXT"),
        "CODEARTIFACT_DOMAIN_OWNER": ("210987654321", "PLAINTEXT"),
        "CODEARTIFACT_REPOSITORY": ("team-ml", "PLAINTEXT"),
    }


def test_buildspec_logs_in_runs_the_command_and_uploads_results(default):
    spec = yaml.safe_load(default.one(PROJECT_TYPE).inputs["source"]["buildspec"])
    assert spec["version"] == 0.2
    commands = {phase: body["commands"] for phase, body in spec["phases"].items()}
    assert commands["install"] == [
        "aws codeartifact login --tool pip --domain $CODEARTIFACT_DOMAIN"
        " --domain-owner $CODEARTIFACT_DOMAIN_OWNER --repository $CODEARTIFACT_REPOSITORY",
        "pip install -r model/requirements.txt",
    ]
    assert commands["build"] == [COMMAND]
    (upload,) = commands["post_build"]
    assert (
        "aws s3 cp results/ s3://$ARTIFACT_BUCKET/runs/$CODEBUILD_BUILD_ID/ --recursive" in upload
    )


def test_buildspec_carries_a_different_command():
    spec = yaml.safe_load(
        synth(command="make train").one(PROJECT_TYPE).inputs["source"]["buildspec"]
    )
    assert spec["phases"]["build"]["commands"] == ["make train"]


def test_runner_logs_to_its_own_log_group(default):
    log_group = default.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == LOG_GROUP
    assert log_group.inputs["retentionInDays"] == 30
    logs = default.one(PROJECT_TYPE).inputs["logsConfig"]["cloudwatchLogs"]
    assert logs == {"status": "ENABLED", "groupName": LOG_GROUP}
    assert (
        synth(log_retention_days=7)
        .one("aws:cloudwatch/logGroup:LogGroup")
        .inputs["retentionInDays"]
        == 7
    )


def test_roles_trust_only_their_service(default):
    for name, service in (
        ("model-testing-training-role", "codebuild.amazonaws.com"),
        ("model-testing-sagemaker-role", "sagemaker.amazonaws.com"),
    ):
        trust = json.loads(default.one(ROLE_TYPE, name).inputs["assumeRolePolicy"])
        assert [(s["Principal"], s["Action"]) for s in trust["Statement"]] == [
            ({"Service": service}, "sts:AssumeRole")
        ]
    assert default.one(ROLE_TYPE, "model-testing-training-role").inputs["name"] == TRAINING_ROLE
    assert default.one(ROLE_TYPE, "model-testing-sagemaker-role").inputs["name"] == SAGEMAKER_ROLE


def _allows(document, action: str, resource: str, context: dict | None = None) -> bool:
    """Whether an identity policy of Allow statements grants the call (IAM wildcard
    matching; only StringEquals conditions, the one operator these policies use)."""
    context = context or {}
    for s in document["Statement"]:
        assert s["Effect"] == "Allow"
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        conditions = s.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}
        met = all(context.get(k) == v for k, v in conditions.get("StringEquals", {}).items())
        if (
            met
            and any(fnmatch.fnmatchcase(action, a) for a in actions)
            and any(fnmatch.fnmatchcase(resource, r) for r in resources)
        ):
            return True
    return False


BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
# What a run does (buildspec and CodeBuild on its behalf), after AWS's reference
# CodeBuild service-role policy: source, dataset, results, logs, pip via CodeArtifact.
RUN_CALLS = [
    ("s3:GetBucketAcl", BUCKET_ARN, {}),
    ("s3:GetBucketLocation", BUCKET_ARN, {}),
    ("s3:GetObject", f"{BUCKET_ARN}/source/source.zip", {}),
    ("s3:GetObjectVersion", f"{BUCKET_ARN}/source/source.zip", {}),
    ("s3:GetObject", f"{BUCKET_ARN}/datasets/churn/2026-11.csv", {}),
    ("s3:PutObject", f"{BUCKET_ARN}/runs/{PROJECT}:0b1c/model.json", {}),
    ("logs:CreateLogStream", f"{LOG_GROUP_ARN}:log-stream:0b1c", {}),
    ("logs:PutLogEvents", f"{LOG_GROUP_ARN}:log-stream:0b1c", {}),
    ("codeartifact:GetAuthorizationToken", DOMAIN_ARN, {}),
    ("codeartifact:GetRepositoryEndpoint", REPOSITORY_ARN, {}),
    ("codeartifact:ReadFromRepository", REPOSITORY_ARN, {}),
    ("sts:GetServiceBearerToken", "*", {"sts:AWSServiceName": "codeartifact.amazonaws.com"}),
]
# What a run must not do: overwrite the source or the published metrics other branches
# compare against, touch another bucket or log group, mint other services' tokens.
FORBIDDEN_CALLS = [
    ("s3:PutObject", f"{BUCKET_ARN}/source/source.zip", {}),
    ("s3:PutObject", f"{BUCKET_ARN}/published/metrics.json", {}),
    ("s3:DeleteObject", f"{BUCKET_ARN}/runs/{PROJECT}:0b1c/model.json", {}),
    ("s3:GetObject", "arn:aws:s3:::mlship-main-artifacts-123456789012/source/source.zip", {}),
    ("s3:PutBucketPolicy", BUCKET_ARN, {}),
    ("logs:PutLogEvents", LOG_GROUP_ARN.replace("runner", "other") + ":log-stream:x", {}),
    ("sts:GetServiceBearerToken", "*", {"sts:AWSServiceName": "ecr.amazonaws.com"}),
    ("codeartifact:PublishPackageVersion", REPOSITORY_ARN, {}),
]


@pytest.mark.parametrize(("action", "resource", "context"), RUN_CALLS)
def test_runner_can_make_every_call_a_run_makes(default, action, resource, context):
    document = _policy(default, "model-testing-training-policy")
    assert _allows(document, action, resource, context)


@pytest.mark.parametrize(("action", "resource", "context"), FORBIDDEN_CALLS)
def test_runner_cannot_reach_beyond_its_run(default, action, resource, context):
    document = _policy(default, "model-testing-training-policy")
    assert not _allows(document, action, resource, context)


def test_bucket_expires_old_runs_and_noncurrent_versions(default):
    (lifecycle,) = default.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
    assert all(rule["status"] == "Enabled" for rule in rules.values())
    everything = rules["expire-noncurrent-versions"]
    assert everything["filter"] == {}
    assert everything["noncurrentVersionExpiration"] == {"noncurrentDays": 45}
    runs = rules["expire-old-runs"]
    assert runs["filter"] == {"prefix": "runs/"}
    assert runs["expiration"] == {"days": 45}
    # Nothing else expires: the published metrics other branches compare against stay.
    assert len(rules) == 2


def test_sagemaker_policy_is_scoped_to_this_stack(default):
    document = _policy(default, "model-testing-sagemaker-policy")
    assert _grants(document) == [
        (["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{BUCKET}/*"]),
        (["s3:ListBucket"], [f"arn:aws:s3:::{BUCKET}"]),
        (
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [f"arn:aws:logs:{REGION}:{MOCK_ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
        ),
    ]
    assert all("Condition" not in s for s in document["Statement"])


def test_every_resource_is_parented_under_the_component():
    synthesis = synth(notebook="mlship-feature-x-notebook")
    component = synthesis.one("mlship:components:ModelTesting", "model-testing")
    urns = {r.urn for r in synthesis.resources}
    for r in synthesis.resources:
        assert r.name == "model-testing" or r.name.startswith("model-testing-"), r.name
        if r is not component:
            assert r.parent in urns, r.name


def test_the_buildspec_runs_its_commands_in_bash(default):
    # `set -o pipefail`-style scripts and `[[ ]]` in a command need bash, not CodeBuild's sh.
    spec = yaml.safe_load(default.one(PROJECT_TYPE).inputs["source"]["buildspec"])
    assert spec["env"]["shell"] == "bash"


def test_runner_and_notebook_start_only_once_their_permissions_exist():
    synthesis = synth(notebook="mlship-feature-x-notebook")
    training_policy = synthesis.one(POLICY_TYPE, "model-testing-training-policy")
    log_group = synthesis.one("aws:cloudwatch/logGroup:LogGroup")
    runner = synthesis.one(PROJECT_TYPE)
    assert {training_policy.urn, log_group.urn} <= set(runner.depends_on)
    sagemaker_policy = synthesis.one(POLICY_TYPE, "model-testing-sagemaker-policy")
    assert sagemaker_policy.urn in synthesis.one(NOTEBOOK_TYPE).depends_on


def test_both_roles_carry_the_role_boundary():
    boundary = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:policy/mlship-boundary"
    synthesis = synth(permissions_boundary=boundary)
    roles = synthesis.of_type(ROLE_TYPE)
    assert {r.inputs["name"] for r in roles} == {TRAINING_ROLE, SAGEMAKER_ROLE}
    assert {r.inputs.get("permissionsBoundary") for r in roles} == {boundary}
