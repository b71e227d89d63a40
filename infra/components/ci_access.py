"""How GitHub Actions reaches AWS: OIDC, one role per duty and stack kind, state and secrets keys.

No long-lived keys: every job exchanges its GitHub OIDC token for one role.
AWS trust can only match the token's `sub` (and `aud`), and GitHub issues:

    push, schedule, dispatch, delete  repo:O/R:ref:refs/heads/BRANCH
    a job in an environment           repo:O/R:environment:NAME   (the ref is gone)
    a pull request                    repo:O/R:pull_request

So the duties are split by the kind of stack they may touch (docs/access.md):

- preview:           pull requests only; reads AWS and the state, decrypts only
                     ephemeral stacks' secrets, writes nothing.
- deploy:            any branch push, or `branch/*` environments; ephemeral stacks only:
                     every protected stack's exact names, state keys and its secrets key
                     are denied, whatever a branch is called.
- deploy-protected:  exactly a protected branch's ref or its `branch/<stack>`
                     environment (whose deployment-branch policy bootstrap sets).
- promote:           the shared approval environments; traffic of ephemeral stacks.
- promote-protected: `<approval>/<stack>` environments of protected stacks.

Nothing in CI may change the shared stack (these roles, the boundary, the
state bucket, the keys): bootstrap deploys it with an administrator's credentials.

This module makes the resources. The duties and who may take each are in `ci_duties`,
what the policies name in `ci_resources`, each role's grants and the boundaries in
`ci_permissions`, and what every role is denied in `ci_denies`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components import type_token
from infra.components.base import child, policy_document, retained
from infra.components.ci_denies import deny_protected_names
from infra.components.ci_duties import (
    AUDIENCE,
    DEPLOY_PROTECTED,
    DUTIES,
    EPHEMERAL_DUTIES,
    GITHUB_OIDC_HOST,
    PREVIEW,
    PROMOTE_PROTECTED,
    READ_ONLY_POLICY,
    SUB,
    CiAccessArgs,
    subjects,
)
from infra.components.ci_permissions import boundary_statements, role_statements
from infra.components.ci_resources import SECRETS_USE
from infra.components.storage import SecureBucket, SecureBucketArgs


class CiAccess(pulumi.ComponentResource):
    oidc_provider_arn: pulumi.Output[str]
    state_bucket: aws.s3.Bucket
    secrets_key: aws.kms.Key
    secrets_alias: aws.kms.Alias
    ephemeral_secrets_key: aws.kms.Key
    ephemeral_secrets_alias: aws.kms.Alias
    role_boundary: aws.iam.Policy
    protected_role_boundary: aws.iam.Policy
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
            SecureBucketArgs(bucket_name=args.names.state_bucket, protected=True, versioned=True),
            opts=child(self),
        ).bucket
        # Two keys, so that a key grant is a stack-kind grant: protected stacks
        # and `shared` use one, ephemeral stacks the other.
        self.secrets_key, self.secrets_alias = self._key(
            name, "secrets", args.names.secrets_key_alias, "protected stacks and shared"
        )
        self.ephemeral_secrets_key, self.ephemeral_secrets_alias = self._key(
            name, "ephemeral-secrets", args.names.ephemeral_secrets_key_alias, "ephemeral stacks"
        )

        # One boundary per stack kind: a role an ephemeral deploy creates could
        # otherwise be given (and a function run with) what the deploy role
        # itself is denied, such as a protected stack's alias.
        self.role_boundary = aws.iam.Policy(
            f"{name}-role-boundary",
            name=args.names.role_boundary,
            description="The most a role of an ephemeral stack may do; its deploy role must set it",
            policy=policy_document(boundary_statements(args) + deny_protected_names(args)),
            opts=child(self),
        )
        self.protected_role_boundary = aws.iam.Policy(
            f"{name}-role-boundary-protected",
            name=args.names.protected_role_boundary,
            description="The most a role of a protected stack may do; its deploy role must set it",
            policy=policy_document(boundary_statements(args)),
            opts=child(self),
        )

        trusted = subjects(args.repository, args.protected)
        policies = role_statements(
            args,
            self.state_bucket.arn,
            protected_key=self.secrets_key.arn,
            ephemeral_key=self.ephemeral_secrets_key.arn,
        )
        self.roles = {
            duty: self._role(
                name,
                duty,
                args.role_names[duty],
                trusted[duty],
                policies[duty],
                [READ_ONLY_POLICY] if duty == PREVIEW else [],
            )
            for duty in DUTIES
        }
        self._key_policy(name, "secrets", self.secrets_key, args, protected=True)
        self._key_policy(
            name, "ephemeral-secrets", self.ephemeral_secrets_key, args, protected=False
        )
        self.register_outputs(
            {
                "oidc_provider_arn": self.oidc_provider_arn,
                "state_bucket": self.state_bucket.bucket,
                "secrets_key_arn": self.secrets_key.arn,
                "ephemeral_secrets_key_arn": self.ephemeral_secrets_key.arn,
                "role_boundary_arn": self.role_boundary.arn,
                "protected_role_boundary_arn": self.protected_role_boundary.arn,
                **{f"{_key(duty)}_role_arn": role.arn for duty, role in self.roles.items()},
            }
        )

    def _key(
        self, name: str, suffix: str, alias: str, used_by: str
    ) -> tuple[aws.kms.Key, aws.kms.Alias]:
        key = aws.kms.Key(
            f"{name}-{suffix}",
            description=f"Pulumi secrets provider of the project's {used_by}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=retained(self, True),
        )
        key_alias = aws.kms.Alias(
            f"{name}-{suffix}-alias", name=alias, target_key_id=key.key_id, opts=child(self)
        )
        return key, key_alias

    def _key_policy(
        self, name: str, suffix: str, key: aws.kms.Key, args: CiAccessArgs, *, protected: bool
    ) -> None:
        # Separate from the key: the roles' policies name the key, the key's
        # policy names the roles, and a key policy may only name existing roles.
        aws.kms.KeyPolicy(
            f"{name}-{suffix}-policy",
            key_id=key.key_id,
            policy=policy_document(
                key_policy_statements(
                    args, [self.roles[d].arn for d in _key_users(protected)], protected
                )
            ),
            opts=child(self),
        )

    def _role(  # noqa: PLR0917 - one call per duty reads best positionally
        self,
        name: str,
        duty: str,
        role_name: str,
        sub_condition: Mapping[str, list[str]],
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
                        "StringEquals": {
                            f"{GITHUB_OIDC_HOST}:aud": AUDIENCE,
                            **(
                                {SUB: sub_condition["StringEquals"]}
                                if "StringEquals" in sub_condition
                                else {}
                            ),
                        },
                        **(
                            {"StringLike": {SUB: sub_condition["StringLike"]}}
                            if "StringLike" in sub_condition
                            else {}
                        ),
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


def _key(duty: str) -> str:
    return "ci_" + duty.replace("-", "_")


def output_name(duty: str) -> str:
    """The shared stack's output holding a duty's role ARN."""
    return f"{_key(duty)}_role_arn"


def _key_users(protected: bool) -> tuple[str, ...]:
    return (DEPLOY_PROTECTED, PROMOTE_PROTECTED) if protected else EPHEMERAL_DUTIES


def key_policy_statements(
    args: CiAccessArgs, users: Sequence[pulumi.Input[str]], protected: bool
) -> list[dict[str, Any]]:
    """Who administers a secrets key (the account's IAM administrators) and who uses it.

    The account root as principal hands the key to IAM: an administrator whose
    IAM policy allows it can always change this policy, so no one is locked
    out. The CI roles of the other stack kind are denied its use outright,
    whatever an IAM policy may one day grant them.
    """
    root = f"arn:aws:iam::{args.account_id}:root"
    others = [args.role_arn(args.role_names[d]) for d in DUTIES if d not in _key_users(protected)]
    return [
        {
            "Sid": "AccountAdministersAndDelegatesToIam",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CiRolesOfThisKindUseIt",
            "Effect": "Allow",
            "Principal": {"AWS": list(users)},
            "Action": list(SECRETS_USE),
            "Resource": "*",
        },
        {
            "Sid": "CiRolesOfTheOtherKindNever",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"ArnLike": {"aws:PrincipalArn": others}},
        },
    ]
