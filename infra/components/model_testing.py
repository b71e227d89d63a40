"""Parallel model testing per branch: artifacts, CodeBuild runner, SageMaker role, notebook."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import yaml

from infra.components import type_token
from infra.components.base import child, service_role, statement
from infra.components.storage import SecureBucket, SecureBucketArgs
from infra.training import (
    BUILD_TIMEOUT_MINUTES,
    DATASETS_PREFIX,
    MODEL_REQUIREMENTS,
    RESULTS_DIR,
    RUNS_PREFIX,
    SOURCE_KEY,
    SOURCE_PREFIX,
)

CODEARTIFACT_LOGIN = (
    "aws codeartifact login --tool pip --domain $CODEARTIFACT_DOMAIN"
    " --domain-owner $CODEARTIFACT_DOMAIN_OWNER --repository $CODEARTIFACT_REPOSITORY"
)
RESULTS_UPLOAD = (
    f"aws s3 cp {RESULTS_DIR}/ s3://$ARTIFACT_BUCKET/{RUNS_PREFIX}$CODEBUILD_BUILD_ID/ --recursive"
)


@dataclass(frozen=True)
class ModelTestingArgs:
    branch: str
    protected: bool
    artifact_bucket: str
    training_project: str
    training_role: str
    training_log_group: str
    sagemaker_role: str
    notebook: str | None  # None: no notebook, it bills every hour it exists
    notebook_instance_type: str
    compute_type: str
    image: str
    command: str
    log_retention_days: int
    # Old runs and overwritten objects expire, so a protected stack's bucket stays bounded.
    run_retention_days: int
    codeartifact_domain: pulumi.Input[str]
    codeartifact_domain_owner: pulumi.Input[str]
    codeartifact_domain_arn: pulumi.Input[str]
    codeartifact_repository: pulumi.Input[str]
    codeartifact_repository_arn: pulumi.Input[str]
    # The shared stack's role boundary; every role the component makes carries it.
    permissions_boundary: pulumi.Input[str] | None = None


def buildspec(command: str) -> str:
    """The runner's buildspec: the model's requirements through CodeArtifact, run the command
    (by default the training entry point), keep its results."""
    document = {
        "version": 0.2,
        "env": {"shell": "bash"},
        "phases": {
            "install": {
                "commands": [CODEARTIFACT_LOGIN, f"pip install -r {MODEL_REQUIREMENTS}"],
            },
            "build": {"commands": [command]},
            # post_build runs after a failed build too, so a failing test run
            # still leaves its reports; a run that wrote none uploads nothing.
            "post_build": {
                "commands": [f"if [ -d {RESULTS_DIR} ]; then {RESULTS_UPLOAD}; fi"],
            },
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


class ModelTesting(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    project: aws.codebuild.Project
    training_role: aws.iam.Role
    sagemaker_role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    # Typed loosely: Pulumi evaluates these hints, and naming the SageMaker
    # class would import its module (0.4 s) even when no notebook is made.
    notebook: pulumi.CustomResource | None

    def __init__(
        self, name: str, args: ModelTestingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("ModelTesting"), name, None, opts)
        self.bucket = SecureBucket(
            f"{name}-artifacts",
            SecureBucketArgs(
                bucket_name=args.artifact_bucket, protected=args.protected, versioned=True
            ),
            opts=child(self),
        ).bucket
        bucket_arn = self.bucket.arn
        self._expire_old_objects(name, args)

        # CodeBuild's own default log group name, created here so retention
        # applies and destroy removes it.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-training-logs",
            name=args.training_log_group,
            retention_in_days=args.log_retention_days,
            opts=child(self),
        )

        self.training_role, training_policy = service_role(
            self,
            f"{name}-training",
            role_name=args.training_role,
            service="codebuild.amazonaws.com",
            permissions_boundary=args.permissions_boundary,
            statements=[
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [self.log_group.arn.apply(lambda arn: f"{arn}:*")],
                ),
                # GetObjectVersion: a run pins the exact upload it was
                # started for (start_build sourceVersion).
                statement(
                    ["s3:GetObject", "s3:GetObjectVersion"],
                    [
                        bucket_arn.apply(lambda arn: f"{arn}/{SOURCE_PREFIX}*"),
                        bucket_arn.apply(lambda arn: f"{arn}/{DATASETS_PREFIX}*"),
                    ],
                ),
                # CodeBuild checks the source bucket's identity before it reads
                # (AWS's reference service-role policy grants these two).
                statement(["s3:GetBucketAcl", "s3:GetBucketLocation"], [bucket_arn]),
                statement(
                    ["s3:PutObject"],
                    [bucket_arn.apply(lambda arn: f"{arn}/{RUNS_PREFIX}*")],
                ),
                statement(["codeartifact:GetAuthorizationToken"], [args.codeartifact_domain_arn]),
                statement(
                    ["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"],
                    [args.codeartifact_repository_arn],
                ),
                # GetServiceBearerToken has no resource type in IAM, so it
                # cannot be scoped by ARN; the condition limits it to the
                # token CodeArtifact's GetAuthorizationToken needs.
                statement(
                    ["sts:GetServiceBearerToken"],
                    ["*"],
                    Condition={
                        "StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
                    },
                ),
            ],
        )

        variables: dict[str, pulumi.Input[str]] = {
            "ARTIFACT_BUCKET": self.bucket.bucket,
            "BRANCH": args.branch,
            "CODEARTIFACT_DOMAIN": args.codeartifact_domain,
            "CODEARTIFACT_DOMAIN_OWNER": args.codeartifact_domain_owner,
            "CODEARTIFACT_REPOSITORY": args.codeartifact_repository,
        }
        self.project = aws.codebuild.Project(
            f"{name}-training",
            name=args.training_project,
            description="Training and test runs of this stack's branch",
            service_role=self.training_role.arn,
            build_timeout=BUILD_TIMEOUT_MINUTES,
            # The run script uploads the branch's source to this key before
            # each build; the buildspec uploads results itself.
            source={
                "type": "S3",
                "location": self.bucket.bucket.apply(lambda bucket: f"{bucket}/{SOURCE_KEY}"),
                "buildspec": buildspec(args.command),
            },
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "compute_type": args.compute_type,
                "image": args.image,
                "environment_variables": [
                    {"name": key, "value": value, "type": "PLAINTEXT"}
                    for key, value in variables.items()
                ],
            },
            logs_config={
                "cloudwatch_logs": {"status": "ENABLED", "group_name": self.log_group.name},
            },
            # The first build must not race the role's policy into existence.
            opts=child(self, depends_on=[training_policy, self.log_group]),
        )

        invoke = pulumi.InvokeOptions(parent=self)
        account_id = aws.get_caller_identity(opts=invoke).account_id
        region = aws.get_region(opts=invoke).region
        partition = aws.get_partition(opts=invoke).partition
        sagemaker_logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/sagemaker/*"
        self.sagemaker_role, sagemaker_policy = service_role(
            self,
            f"{name}-sagemaker",
            role_name=args.sagemaker_role,
            service="sagemaker.amazonaws.com",
            permissions_boundary=args.permissions_boundary,
            statements=[
                statement(
                    ["s3:GetObject", "s3:PutObject"],
                    [bucket_arn.apply(lambda arn: f"{arn}/*")],
                ),
                statement(["s3:ListBucket"], [bucket_arn]),
                # SageMaker names its log groups itself (/aws/sagemaker/
                # NotebookInstances, TrainingJobs, ...), so the prefix is
                # the narrowest scope that still covers them.
                statement(
                    ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    [sagemaker_logs],
                ),
            ],
        )

        self.notebook = None
        if args.notebook is not None:
            # Enabled: without a VPC subnet (this stack creates none), a notebook
            # without direct internet access reaches neither S3 nor pip.
            self.notebook = aws.sagemaker.NotebookInstance(
                f"{name}-notebook",
                name=args.notebook,
                role_arn=self.sagemaker_role.arn,
                instance_type=args.notebook_instance_type,
                direct_internet_access="Enabled",
                root_access="Disabled",
                opts=child(self, depends_on=[sagemaker_policy]),
            )

        self.register_outputs(
            {
                "bucket": self.bucket.bucket,
                "project": self.project.name,
                "training_role": self.training_role.arn,
                "sagemaker_role": self.sagemaker_role.arn,
                "notebook": self.notebook.name if self.notebook else None,
            }
        )

    def _expire_old_objects(self, name: str, args: ModelTestingArgs) -> None:
        days = args.run_retention_days
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-artifacts-lifecycle",
            bucket=self.bucket.id,
            rules=[
                # Every upload of the source and every republished metrics file
                # leaves a noncurrent version behind.
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": days},
                    "expiration": {"expired_object_delete_marker": True},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                },
                # A run's results; the live version's run is older than this only
                # when nothing was trained for that long, and its artifact lives on
                # in the Lambda version that serves it.
                {
                    "id": "expire-old-runs",
                    "status": "Enabled",
                    "filter": {"prefix": RUNS_PREFIX},
                    "expiration": {"days": days},
                },
            ],
            opts=child(self),
        )
