"""What the CI roles' policies name: a stack's keys in the Pulumi state bucket and what the
backend does to them, the use of a secrets key, and the ARNs of a branch stack's
resources, derived from `infra.naming` so a policy and the program agree on every name.
"""

from __future__ import annotations

from collections.abc import Mapping

from infra import naming
from infra.components.ci_duties import CiAccessArgs

# Where Pulumi's S3 ("diy") backend keeps a stack, project-scoped layout
# (pulumi/pulumi pkg/backend/diy/store.go StackBasePath/HistoryDir/BackupDir,
# lock.go lockPath: locks/<org/project/stack>/<id>.json). The checkpoint is
# `<stack>.json`, plus `.bak`, `.gz`/`.zst` and `.<nanos>` siblings: stack names
# hold no '.', so `<stack>.json*` is exactly one stack's files.
STATE_META = ".pulumi/meta.yaml"


def state_keys(project: str, stack: str = "*") -> list[str]:
    """Object key patterns of one stack's state (or, with `*`, of every stack of the project)."""
    if stack == "*":
        return [
            f".pulumi/stacks/{project}/*",
            f".pulumi/history/{project}/*",
            f".pulumi/backups/{project}/*",
            f".pulumi/locks/organization/{project}/*",
        ]
    return [
        f".pulumi/stacks/{project}/{stack}.json*",
        f".pulumi/history/{project}/{stack}/*",
        f".pulumi/backups/{project}/{stack}/*",
        f".pulumi/locks/organization/{project}/{stack}/*",
    ]


# Everything the backend does to a key: read (GetObject, HeadObject, the source
# of CopyObject), write (PutObject, multipart, the target of CopyObject), delete.
STATE_READ = ["s3:GetObject"]
STATE_WRITE = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
# What Pulumi's AWS KMS secrets provider does with a stack's key.
SECRETS_USE = ["kms:Encrypt", "kms:Decrypt"]


def stack_arns(args: CiAccessArgs, names: naming.BranchNames) -> dict[str, list[str]]:
    """The ARNs (and sub-resource ARNs) of a branch stack's named resources, per IAM service.

    REST APIs are named by generated ids, not names: they are told apart by tags.
    """
    arns: dict[str, list[str]] = {}
    values = names.as_dict()
    for field, kind in naming.BRANCH_NAME_KINDS.items():
        value = values[field]
        if kind in _NOT_BY_NAME:
            continue
        service, templates = _ARN_FORMS[kind]
        for template in templates:
            arns.setdefault(service, []).append(
                template.format(
                    name=value,
                    account=args.account_id,
                    region=args.region,
                    application=names.deploy_application,
                    bus=names.event_bus,
                )
            )
    return arns


# The kinds in naming.BRANCH_NAME_KINDS and the ARNs of a resource of each.
_ARN_FORMS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "s3_bucket": ("s3", ("arn:aws:s3:::{name}", "arn:aws:s3:::{name}/*")),
    "iam_role": ("iam", ("arn:aws:iam::{account}:role/{name}",)),
    "cloudwatch_log_group": (
        "logs",
        (
            "arn:aws:logs:{region}:{account}:log-group:{name}",
            "arn:aws:logs:{region}:{account}:log-group:{name}:*",
        ),
    ),
    "lambda_function": (
        "lambda",
        (
            "arn:aws:lambda:{region}:{account}:function:{name}",
            "arn:aws:lambda:{region}:{account}:function:{name}:*",
        ),
    ),
    "codebuild_project": ("codebuild", ("arn:aws:codebuild:{region}:{account}:project/{name}",)),
    "sagemaker_notebook": (
        "sagemaker",
        ("arn:aws:sagemaker:{region}:{account}:notebook-instance/{name}",),
    ),
    "codedeploy_application": (
        "codedeploy",
        ("arn:aws:codedeploy:{region}:{account}:application:{name}",),
    ),
    "codedeploy_deployment_group": (
        "codedeploy",
        ("arn:aws:codedeploy:{region}:{account}:deploymentgroup:{application}/{name}",),
    ),
    "sns_topic": ("sns", ("arn:aws:sns:{region}:{account}:{name}",)),
    "cloudwatch_alarm": ("cloudwatch", ("arn:aws:cloudwatch:{region}:{account}:alarm:{name}",)),
    "eventbridge_bus": ("events", ("arn:aws:events:{region}:{account}:event-bus/{name}",)),
    "eventbridge_archive": ("events", ("arn:aws:events:{region}:{account}:archive/{name}",)),
    # A rule on a custom bus is named under its bus.
    "eventbridge_rule": ("events", ("arn:aws:events:{region}:{account}:rule/{bus}/{name}",)),
    "sqs_queue": ("sqs", ("arn:aws:sqs:{region}:{account}:{name}",)),
}
# Named inside another resource (alias, stage) or by a generated id (REST API).
_NOT_BY_NAME = {"lambda_alias", "apigateway_rest_api", "apigateway_stage"}


def apigateway_arns(args: CiAccessArgs, *paths: str) -> list[str]:
    return [f"arn:aws:apigateway:{args.region}::{path}" for path in paths]
