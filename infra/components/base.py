"""Pieces every component shares: child options, IAM documents, retention."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws


def child(parent: pulumi.Resource, **options: Any) -> pulumi.ResourceOptions:
    """Options for a child resource: parented, so it inherits provider and tags."""
    return pulumi.ResourceOptions(parent=parent, **options)


def retained(parent: pulumi.Resource, protected: bool, **options: Any) -> pulumi.ResourceOptions:
    """Data of a protected stack survives `pulumi destroy` and a mistaken replacement."""
    return child(parent, protect=protected, retain_on_delete=protected, **options)


# Services that send `aws:SourceAccount` when they assume a role (each one's
# "cross-service confused deputy prevention" page). Lambda assumes its
# execution role without it, so a guard there would lock the function out.
SOURCE_ACCOUNT_SERVICES = frozenset(
    {
        "apigateway.amazonaws.com",
        "codebuild.amazonaws.com",
        "codedeploy.amazonaws.com",
        "sagemaker.amazonaws.com",
    }
)


def trust_policy(service: str, account_id: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """A role trust policy for one AWS service principal, acting for this account only."""
    trust: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if account_id is not None and service in SOURCE_ACCOUNT_SERVICES:
        # Confused deputy: the service may assume it only on this account's behalf.
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return policy_document([trust])


def statement(actions: Sequence[str], resources: Iterable[Any], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": list(resources), **extra}


def policy_document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """JSON policy from statements whose resources may still be Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_role(
    parent: pulumi.Resource,
    prefix: str,
    *,
    role_name: str,
    service: str,
    statements: Sequence[Mapping[str, Any]],
    permissions_boundary: pulumi.Input[str] | None = None,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role one AWS service assumes, with its inline policy: `{prefix}-role`, `{prefix}-policy`.

    The policy is returned so that what must not start before its permissions
    exist can depend on it.
    """
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=parent)).account_id
    role = aws.iam.Role(
        f"{prefix}-role",
        name=role_name,
        assume_role_policy=trust_policy(service, account_id),
        # The shared stack's boundary caps what any role CI creates can do,
        # so the deploy role cannot grant itself more through a new role.
        permissions_boundary=permissions_boundary,
        opts=child(parent),
    )
    policy = aws.iam.RolePolicy(
        f"{prefix}-policy",
        role=role.id,
        policy=policy_document(statements),
        opts=child(parent),
    )
    return role, policy
