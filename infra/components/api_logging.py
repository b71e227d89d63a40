"""The account's API Gateway logging role: one per account and region, so it lives in `shared`.

API Gateway writes stages' execution logs through the role named in its
account settings; without one, a stage that asks for logging is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components import type_token
from infra.components.base import child, trust_policy

PUSH_TO_CLOUDWATCH = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@dataclass(frozen=True)
class ApiGatewayLoggingArgs:
    role_name: str
    account_id: str


class ApiGatewayLogging(pulumi.ComponentResource):
    role: aws.iam.Role

    def __init__(
        self, name: str, args: ApiGatewayLoggingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("ApiGatewayLogging"), name, None, opts)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            assume_role_policy=trust_policy("apigateway.amazonaws.com", args.account_id),
            managed_policy_arns=[PUSH_TO_CLOUDWATCH],
            opts=child(self),
        )
        aws.apigateway.Account(
            f"{name}-account", cloudwatch_role_arn=self.role.arn, opts=child(self)
        )
        self.register_outputs({"role_arn": self.role.arn})
