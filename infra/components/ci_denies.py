"""What no CI role may touch, whatever it is granted: a protected stack's names and
REST APIs (for the roles of ephemeral stacks), the shared stack, other projects' APIs,
and state it may only read.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import naming, training
from infra.components.ci_duties import CiAccessArgs
from infra.components.ci_resources import STATE_READ, stack_arns, state_keys


def deny_protected_names(
    args: CiAccessArgs, *, published_readable: bool = False
) -> list[dict[str, Any]]:
    """Everything on every exact name of every protected stack, and its tagged REST APIs.

    With `published_readable`, one exception: GetObject of the default branch's
    published metrics (the object its training run marks as published), which
    every branch's quality gate compares with. The mark is an object tag because
    IAM cannot carve one key prefix out of a bucket's `/*`: any other object of
    that bucket, untagged, stays denied, and so does every other action on it.
    """
    published = _published_objects(args) if published_readable and args.protected else None
    protected_arns = [
        arn
        for s in args.protected
        for arns in stack_arns(args, s.names).values()
        for arn in arns
        if arn != published
    ]
    denies: list[dict[str, Any]] = [{"Effect": "Deny", "Action": "*", "Resource": protected_arns}]
    if published is not None:
        key, value = training.PUBLISHED_TAG
        denies += [
            {"Effect": "Deny", "NotAction": ["s3:GetObject"], "Resource": [published]},
            {
                "Effect": "Deny",
                "Action": ["s3:GetObject"],
                "Resource": [published],
                # A missing tag (any other object, or none) makes StringNotEquals true.
                "Condition": {"StringNotEquals": {f"s3:ExistingObjectTag/{key}": value}},
            },
        ]
    return [*denies, *_deny_protected_apis()]


def _published_objects(args: CiAccessArgs) -> str:
    """The default branch's artifact objects (the first protected stack is the default branch)."""
    return f"arn:aws:s3:::{args.protected[0].names.artifact_bucket}/*"


def deny_writes(resources: list[Any]) -> list[dict[str, Any]]:
    return [{"Effect": "Deny", "NotAction": STATE_READ, "Resource": resources}]


def _deny_protected_apis() -> list[dict[str, Any]]:
    """REST APIs carry generated ids: protected ones are told apart by their `kind` tag.

    API Gateway evaluates `aws:ResourceTag` of the REST API for its children
    (stages, deployments, resources) too.
    """
    return [
        {
            "Effect": "Deny",
            "Action": "apigateway:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/kind": "protected"}},
        }
    ]


def deny_other_projects_apis(args: CiAccessArgs) -> list[dict[str, Any]]:
    """API Gateway resources tagged as another project's: never ours to touch."""
    return [
        {
            "Effect": "Deny",
            "Action": "apigateway:*",
            "Resource": "*",
            "Condition": {
                "StringNotEquals": {"aws:ResourceTag/project": args.project},
                "Null": {"aws:ResourceTag/project": "false"},
            },
        },
    ]


def shared_denies(args: CiAccessArgs, bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
    """The shared stack is bootstrap's, never CI's; and no role sheds its boundary."""
    sp = naming.shared_prefix(args.project)
    p = args.project
    return [
        {
            "Effect": "Deny",
            "Action": ["iam:*"],
            "Resource": [
                f"arn:aws:iam::{args.account_id}:role/{sp}*",
                f"arn:aws:iam::{args.account_id}:policy/{sp}*",
            ],
        },
        # The state bucket itself (not its objects): read its listing, change nothing.
        {
            "Effect": "Deny",
            "NotAction": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [bucket_arn],
        },
        *deny_writes(
            [pulumi.Output.concat(bucket_arn, f"/{k}") for k in state_keys(p, naming.SHARED_STACK)]
        ),
        {
            "Effect": "Deny",
            "Action": ["iam:DeleteRolePermissionsBoundary"],
            "Resource": [f"arn:aws:iam::{args.account_id}:role/*"],
        },
    ]
