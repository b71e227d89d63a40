"""How GitHub Actions reaches AWS: OIDC, one role per duty, the state bucket and secrets key.

No long-lived keys: every job exchanges its GitHub OIDC token for the role of
its duty. The token's `sub` claim decides which role a job may assume:

- preview: any ref or pull request of the repository; reads, and the state.
- deploy:  pushes to a branch, or a branch's deployment environment; the
           project's own resources only (names starting with the project prefix).
- promote: only jobs running in the `canary-promotion` or `api-release`
           environments, which required reviewers gate; moves traffic and
           stages, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.components import type_token
from infra.components.base import child, policy_document, retained, statement
from infra.components.storage import SecureBucket, SecureBucketArgs

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
APPROVAL_ENVIRONMENTS = naming.APPROVAL_ENVIRONMENTS
# Deploy jobs run in one GitHub environment per branch, named with this prefix.
BRANCH_ENVIRONMENT_PREFIX = "branch/"
READ_ONLY_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


@dataclass(frozen=True)
class CiAccessArgs:
    repository: str  # OWNER/NAME on GitHub
    account_id: str
    region: str
    resource_prefix: str  # every physical name of the project starts with it
    shared_prefix: str  # names of the shared stack, which CI must never change
    state_bucket: str
    secrets_key_alias: str
    preview_role: str
    deploy_role: str
    promote_role: str
    role_boundary: str  # the managed policy every role CI creates must carry
    create_oidc_provider: bool

    @property
    def role_boundary_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:policy/{self.role_boundary}"


def subjects(repository: str) -> dict[str, list[str]]:
    """The token subjects each duty's role trusts (StringLike patterns)."""
    repo = f"repo:{repository}"
    return {
        "preview": [f"{repo}:ref:refs/heads/*", f"{repo}:pull_request"],
        "deploy": [
            f"{repo}:ref:refs/heads/*",
            f"{repo}:environment:{BRANCH_ENVIRONMENT_PREFIX}*",
        ],
        "promote": [f"{repo}:environment:{name}" for name in APPROVAL_ENVIRONMENTS],
    }


class CiAccess(pulumi.ComponentResource):
    oidc_provider_arn: pulumi.Output[str]
    state_bucket: aws.s3.Bucket
    secrets_key: aws.kms.Key
    secrets_alias: aws.kms.Alias
    role_boundary: aws.iam.Policy
    roles: dict[str, aws.iam.Role]

    def __init__(
        self, name: str, args: CiAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("CiAccess"), name, None, opts)
        if args.create_oidc_provider:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_id_lists=[AUDIENCE],
                opts=retained(self, True),
            )
            self.oidc_provider_arn = provider.arn
        else:
            # An account holds one provider per URL; another project may own it.
            self.oidc_provider_arn = pulumi.Output.from_input(
                f"arn:aws:iam::{args.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"
            )

        self.state_bucket = SecureBucket(
            f"{name}-state",
            SecureBucketArgs(bucket_name=args.state_bucket, protected=True, versioned=True),
            opts=child(self),
        ).bucket
        self.secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description="Pulumi secrets provider of every stack of this project",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=retained(self, True),
        )
        self.secrets_alias = aws.kms.Alias(
            f"{name}-secrets-alias",
            name=args.secrets_key_alias,
            target_key_id=self.secrets_key.key_id,
            opts=child(self),
        )

        self.role_boundary = aws.iam.Policy(
            f"{name}-role-boundary",
            name=args.role_boundary,
            description="The most any role of a branch stack may do; the deploy role must set it",
            policy=policy_document(_boundary_statements(args)),
            opts=child(self),
        )

        trusted = subjects(args.repository)
        state = self._state_statements()
        self.roles = {
            "preview": self._role(
                name, "preview", args.preview_role, trusted["preview"], state, [READ_ONLY_POLICY]
            ),
            "deploy": self._role(
                name,
                "deploy",
                args.deploy_role,
                trusted["deploy"],
                state + _deploy_statements(args),
            ),
            "promote": self._role(
                name,
                "promote",
                args.promote_role,
                trusted["promote"],
                state + _promote_statements(args),
            ),
        }
        self.register_outputs(
            {
                "oidc_provider_arn": self.oidc_provider_arn,
                "state_bucket": self.state_bucket.bucket,
                "secrets_key_arn": self.secrets_key.arn,
                "role_boundary_arn": self.role_boundary.arn,
                **{f"{duty}_role_arn": role.arn for duty, role in self.roles.items()},
            }
        )

    def _state_statements(self) -> list[dict[str, Any]]:
        """Every duty reads the state (stack outputs); preview and deploy also lock and write it."""
        bucket_arn = self.state_bucket.arn
        return [
            statement(["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]),
            statement(
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                [bucket_arn.apply(lambda arn: f"{arn}/*")],
            ),
            statement(
                ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                [self.secrets_key.arn],
            ),
        ]

    def _role(  # noqa: PLR0917 - one call per duty reads best positionally
        self,
        name: str,
        duty: str,
        role_name: str,
        trusted_subjects: Sequence[str],
        statements: list[dict[str, Any]],
        managed_policies: Sequence[str] = (),
    ) -> aws.iam.Role:
        trust = policy_document(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": self.oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": AUDIENCE},
                        "StringLike": {f"{GITHUB_OIDC_HOST}:sub": list(trusted_subjects)},
                    },
                }
            ]
        )
        role = aws.iam.Role(
            f"{name}-{duty}",
            name=role_name,
            description=f"GitHub Actions, {duty} duty",
            assume_role_policy=trust,
            max_session_duration=3600,
            managed_policy_arns=list(managed_policies) or None,
            opts=child(self),
        )
        aws.iam.RolePolicy(
            f"{name}-{duty}-policy",
            role=role.id,
            policy=policy_document(statements),
            opts=child(self),
        )
        return role


def _arn(service: str, args: CiAccessArgs, path: str, regional: bool = True) -> str:
    region = args.region if regional else ""
    return f"arn:aws:{service}:{region}:{args.account_id}:{path}"


def _deploy_statements(args: CiAccessArgs) -> list[dict[str, Any]]:
    """Create, change and delete the project's resources, found by their name prefix."""
    p = args.resource_prefix
    roles = [f"arn:aws:iam::{args.account_id}:role/{p}*"]
    scoped = [
        (
            [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:DeleteRole",
                "iam:PassRole",
            ],
            roles,
        ),
        (["s3:*"], [f"arn:aws:s3:::{p}*", f"arn:aws:s3:::{p}*/*"]),
        (["lambda:*"], [_arn("lambda", args, f"function:{p}*")]),
        (
            ["logs:*"],
            [
                _arn("logs", args, f"log-group:/aws/lambda/{p}*"),
                _arn("logs", args, f"log-group:/aws/codebuild/{p}*"),
            ],
        ),
        (
            ["events:*"],
            [
                _arn("events", args, f"event-bus/{p}*"),
                _arn("events", args, f"rule/{p}*"),
                _arn("events", args, f"archive/{p}*"),
            ],
        ),
        (["sqs:*"], [_arn("sqs", args, f"{p}*")]),
        (["sns:*"], [_arn("sns", args, f"{p}*")]),
        (["cloudwatch:*"], [_arn("cloudwatch", args, f"alarm:{p}*")]),
        (["codebuild:*"], [_arn("codebuild", args, f"project/{p}*")]),
        (
            ["codedeploy:*"],
            [
                _arn("codedeploy", args, f"application:{p}*"),
                _arn("codedeploy", args, f"deploymentgroup:{p}*"),
            ],
        ),
        (["sagemaker:*"], [_arn("sagemaker", args, f"notebook-instance/{p}*")]),
        # REST API ARNs carry ids, not names: the API and its children.
        (
            ["apigateway:*"],
            [
                f"arn:aws:apigateway:{args.region}::/restapis",
                f"arn:aws:apigateway:{args.region}::/restapis/*",
                f"arn:aws:apigateway:{args.region}::/tags/*",
            ],
        ),
    ]
    statements = [statement(actions, resources) for actions, resources in scoped]
    # A role may only be made, or given permissions, under the boundary: the
    # deploy role cannot mint a role that outgrows the project's needs.
    statements.append(
        statement(
            [
                "iam:CreateRole",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:PutRolePermissionsBoundary",
            ],
            roles,
            Condition={"StringEquals": {"iam:PermissionsBoundary": args.role_boundary_arn}},
        )
    )
    statements.append(
        # Pulumi reads these to plan; none of them can be scoped to a resource.
        statement(
            [
                "cloudwatch:DescribeAlarms",
                "lambda:GetAccountSettings",
                "codedeploy:GetDeploymentConfig",
                "sts:GetCallerIdentity",
            ],
            ["*"],
        )
    )
    # The shared stack (these roles, the boundary, the state bucket) is the
    # bootstrap's, never CI's; and no role sheds its boundary.
    statements.append(
        {
            "Effect": "Deny",
            "Action": ["iam:*", "s3:Delete*", "s3:PutBucket*"],
            "Resource": [
                f"arn:aws:iam::{args.account_id}:role/{args.shared_prefix}*",
                f"arn:aws:iam::{args.account_id}:policy/{args.shared_prefix}*",
                f"arn:aws:s3:::{args.shared_prefix}*",
            ],
        }
    )
    statements.append(
        {"Effect": "Deny", "Action": ["iam:DeleteRolePermissionsBoundary"], "Resource": roles}
    )
    return statements


def _boundary_statements(args: CiAccessArgs) -> list[dict[str, Any]]:
    """What the program's own roles may be granted; a test checks it covers what they get."""
    p = args.resource_prefix
    return [
        statement(
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [
                _arn("logs", args, f"log-group:/aws/lambda/{p}*"),
                _arn("logs", args, f"log-group:/aws/codebuild/{p}*"),
                _arn("logs", args, "log-group:/aws/sagemaker/*"),
            ],
        ),
        statement(
            [
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:ListBucket",
                # The training runner's source-bucket check (CodeBuild reference policy).
                "s3:GetBucketAcl",
                "s3:GetBucketLocation",
            ],
            [f"arn:aws:s3:::{p}*", f"arn:aws:s3:::{p}*/*"],
        ),
        statement(["sqs:SendMessage"], [_arn("sqs", args, f"{p}*")]),
        statement(["sns:Publish"], [_arn("sns", args, f"{p}*")]),
        statement(
            ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"],
            [_arn("lambda", args, f"function:{p}*"), _arn("lambda", args, f"function:{p}*:*")],
        ),
        statement(
            [
                "codeartifact:GetAuthorizationToken",
                "codeartifact:GetRepositoryEndpoint",
                "codeartifact:ReadFromRepository",
            ],
            [
                _arn("codeartifact", args, "domain/*"),
                _arn("codeartifact", args, "repository/*"),
            ],
        ),
        # Neither can be scoped to a resource; the roles' own policies narrow them.
        statement(["cloudwatch:DescribeAlarms", "sts:GetServiceBearerToken"], ["*"]),
    ]


def _promote_statements(args: CiAccessArgs) -> list[dict[str, Any]]:
    """Move traffic and stages, read what that needs, record the events; nothing else."""
    p = args.resource_prefix
    function = _arn("lambda", args, f"function:{p}*")
    return [
        statement(
            [
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:GetFunction",
                "lambda:ListVersionsByFunction",
                "lambda:AddPermission",
            ],
            [function, f"{function}:*"],
        ),
        statement(
            [
                "codedeploy:CreateDeployment",
                "codedeploy:GetDeployment",
                "codedeploy:ListDeployments",
                "codedeploy:StopDeployment",
                "codedeploy:GetDeploymentGroup",
                "codedeploy:GetApplicationRevision",
                "codedeploy:RegisterApplicationRevision",
            ],
            [
                _arn("codedeploy", args, f"application:{p}*"),
                _arn("codedeploy", args, f"deploymentgroup:{p}*"),
                _arn("codedeploy", args, "deploymentconfig:*"),
            ],
        ),
        statement(["cloudwatch:DescribeAlarms"], ["*"]),
        statement(
            ["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
            [
                f"arn:aws:apigateway:{args.region}::/restapis/*/deployments",
                f"arn:aws:apigateway:{args.region}::/restapis/*/deployments/*",
                f"arn:aws:apigateway:{args.region}::/restapis/*/stages/*",
                f"arn:aws:apigateway:{args.region}::/restapis/*/documentation/versions",
                f"arn:aws:apigateway:{args.region}::/restapis/*/resources",
            ],
        ),
        statement(["events:PutEvents"], [_arn("events", args, f"event-bus/{p}*")]),
        statement(["s3:ListBucket"], [f"arn:aws:s3:::{p}*-events-{args.account_id}"]),
        statement(["s3:GetObject"], [f"arn:aws:s3:::{p}*-events-{args.account_id}/events/*"]),
    ]
