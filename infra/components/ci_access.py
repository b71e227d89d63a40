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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import naming, training
from infra.components import type_token
from infra.components.base import child, policy_document, retained, statement
from infra.components.storage import SecureBucket, SecureBucketArgs

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
SUB = f"{GITHUB_OIDC_HOST}:sub"
READ_ONLY_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

PREVIEW, DEPLOY, DEPLOY_PROTECTED = "preview", "deploy", "deploy-protected"
PROMOTE, PROMOTE_PROTECTED = "promote", "promote-protected"
DUTIES = (PREVIEW, DEPLOY, DEPLOY_PROTECTED, PROMOTE, PROMOTE_PROTECTED)
EPHEMERAL_DUTIES = (PREVIEW, DEPLOY, PROMOTE)

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
SECRETS_USE = ["kms:Encrypt", "kms:Decrypt"]


@dataclass(frozen=True)
class ProtectedStack:
    branch: str
    stack: str
    names: naming.BranchNames


@dataclass(frozen=True)
class CiAccessArgs:
    repository: str  # OWNER/NAME exactly as GitHub spells it: `sub` matching is case-sensitive
    project: str
    account_id: str
    region: str
    names: naming.SharedNames
    protected: tuple[ProtectedStack, ...]
    # Every branch stack's names with the slug as `*`: the patterns the
    # project's own resources match, derived from the one naming module.
    any_branch: naming.BranchNames
    create_oidc_provider: bool

    @property
    def role_boundary_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:policy/{self.names.role_boundary}"

    @property
    def protected_role_boundary_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:policy/{self.names.protected_role_boundary}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{name}"

    @property
    def role_names(self) -> dict[str, str]:
        n = self.names
        return {
            PREVIEW: n.preview_role,
            DEPLOY: n.deploy_role,
            DEPLOY_PROTECTED: n.deploy_protected_role,
            PROMOTE: n.promote_role,
            PROMOTE_PROTECTED: n.promote_protected_role,
        }


def any_branch_names(
    project: str, account_id: str, api_versions: Iterable[str]
) -> naming.BranchNames:
    """A branch stack's names with its slug as `*`: one pattern per purpose."""
    wildcard = naming.BranchStack(branch="*", slug="*", stack="*", kind="ephemeral")
    return naming.branch_names(project, wildcard, account_id, api_versions)


def protected_stacks(
    project: str,
    account_id: str,
    branches: Iterable[str],
    api_versions: Iterable[str],
) -> tuple[ProtectedStack, ...]:
    versions = list(api_versions)
    result = []
    for branch in dict.fromkeys(branches):
        stack = naming.branch_stack(branch, [branch])
        names = naming.branch_names(project, stack, account_id, versions)
        result.append(ProtectedStack(branch=stack.branch, stack=stack.stack, names=names))
    return tuple(result)


def subjects(
    repository: str, protected: Sequence[ProtectedStack]
) -> dict[str, dict[str, list[str]]]:
    """Per duty, the trust condition on the token's `sub`: {operator: [patterns]}."""
    repo = f"repo:{repository}"
    deploy_env = naming.DEPLOY_ENVIRONMENT_PREFIX
    protected_refs = [f"{repo}:ref:refs/heads/{p.branch}" for p in protected]
    protected_envs = [f"{repo}:environment:{deploy_env}{p.stack}" for p in protected]
    approvals = naming.APPROVAL_ENVIRONMENTS
    return {
        PREVIEW: {"StringEquals": [f"{repo}:pull_request"]},
        # Any branch, including a protected one: this role cannot reach protected stacks.
        DEPLOY: {"StringLike": [f"{repo}:ref:refs/heads/*", f"{repo}:environment:{deploy_env}*"]},
        DEPLOY_PROTECTED: {"StringEquals": protected_refs + protected_envs},
        PROMOTE: {"StringEquals": [f"{repo}:environment:{a}" for a in approvals]},
        PROMOTE_PROTECTED: {
            "StringEquals": [
                f"{repo}:environment:{a}/{p.stack}" for p in protected for a in approvals
            ]
        },
    }


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

# IAM actions on a role that grant nothing by themselves.
_ROLE_ACTIONS = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRoleTags",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRole",
    "iam:PassRole",
]
# IAM actions that give a role permissions: only under the boundary.
_GRANTING_ACTIONS = [
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
]


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
            policy=policy_document(_boundary_statements(args) + _deny_protected_names(args)),
            opts=child(self),
        )
        self.protected_role_boundary = aws.iam.Policy(
            f"{name}-role-boundary-protected",
            name=args.names.protected_role_boundary,
            description="The most a role of a protected stack may do; its deploy role must set it",
            policy=policy_document(_boundary_statements(args)),
            opts=child(self),
        )

        trusted = subjects(args.repository, args.protected)
        policies = _role_statements(
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
            "Action": [*SECRETS_USE, "kms:DescribeKey"],
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


def _role_statements(
    args: CiAccessArgs,
    bucket_arn: pulumi.Output[str],
    *,
    protected_key: pulumi.Output[str],
    ephemeral_key: pulumi.Output[str],
) -> dict[str, list[dict[str, Any]]]:
    p = args.project

    def objects(keys: Iterable[str]) -> list[pulumi.Output[str]]:
        return [pulumi.Output.concat(bucket_arn, f"/{k}") for k in keys]

    read_state = [
        statement(["s3:ListBucket"], [bucket_arn]),
        statement(STATE_READ, objects([STATE_META, *state_keys(p)])),
    ]
    write_state = [statement(STATE_WRITE, objects(state_keys(p)))]
    shared_keys = state_keys(p, naming.SHARED_STACK)
    protected_keys = [k for s in args.protected for k in state_keys(p, s.stack)]
    # Read, never write: NotAction keeps every other S3 action denied there.
    deny_shared_state = _deny_writes(objects(shared_keys))
    deny_protected_state = _deny_writes(objects(protected_keys))

    deny_protected = _deny_protected_names(args)
    # The ephemeral deploy role runs every branch's training and its quality gate.
    deny_protected_but_published = _deny_protected_names(args, published_readable=True)
    shared = _shared_denies(args, bucket_arn)
    own = stack_arns(args, args.any_branch)
    codeartifact = [
        # `deps login` asks STS for a CodeArtifact token; the action has no resource.
        statement(
            ["sts:GetServiceBearerToken"],
            ["*"],
            Condition={"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},
        )
    ]
    protected_own = {
        service: [a for s in args.protected for a in stack_arns(args, s.names).get(service, [])]
        for service in own
    }
    protected_tags = [s.stack for s in args.protected]
    foreign_apis = _deny_other_projects_apis(args)
    return {
        PREVIEW: [
            *read_state,
            statement(["kms:Decrypt"], [ephemeral_key]),
            *deny_shared_state,
            *deny_protected_state,
        ],
        DEPLOY: [
            *read_state,
            *foreign_apis,
            *write_state,
            statement(SECRETS_USE, [ephemeral_key]),
            *_deploy_statements(args, own, args.role_boundary_arn),
            *codeartifact,
            *shared,
            *deny_protected_state,
            *deny_protected_but_published,
        ],
        DEPLOY_PROTECTED: [
            *read_state,
            *foreign_apis,
            *write_state,
            statement(SECRETS_USE, [protected_key]),
            *_deploy_statements(args, own, args.protected_role_boundary_arn),
            *codeartifact,
            *shared,
        ],
        PROMOTE: [
            *read_state,
            *foreign_apis,
            statement(["kms:Decrypt"], [ephemeral_key]),
            *_promote_statements(args, own, [args.any_branch], None),
            *deny_shared_state,
            *deny_protected_state,
            *deny_protected,
        ],
        PROMOTE_PROTECTED: [
            *read_state,
            *foreign_apis,
            statement(["kms:Decrypt"], [protected_key]),
            *_promote_statements(
                args, protected_own, [p.names for p in args.protected], protected_tags
            ),
            *deny_shared_state,
        ],
    }


def _deny_protected_names(
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


def _deny_writes(resources: list[Any]) -> list[dict[str, Any]]:
    return [{"Effect": "Deny", "NotAction": STATE_READ, "Resource": resources}]


def _apigateway(args: CiAccessArgs, *paths: str) -> list[str]:
    return [f"arn:aws:apigateway:{args.region}::{path}" for path in paths]


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


def _deny_other_projects_apis(args: CiAccessArgs) -> list[dict[str, Any]]:
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


def _shared_denies(args: CiAccessArgs, bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
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
        *_deny_writes(
            [pulumi.Output.concat(bucket_arn, f"/{k}") for k in state_keys(p, naming.SHARED_STACK)]
        ),
        {
            "Effect": "Deny",
            "Action": ["iam:DeleteRolePermissionsBoundary"],
            "Resource": [f"arn:aws:iam::{args.account_id}:role/*"],
        },
    ]


def _deploy_statements(
    args: CiAccessArgs, own: Mapping[str, list[str]], boundary_arn: str
) -> list[dict[str, Any]]:
    """Create, read, change and delete a branch stack's resources, found by their names."""
    statements = [
        statement([f"{service}:*"], arns) for service, arns in own.items() if service != "iam"
    ]
    statements.append(statement(_ROLE_ACTIONS, own["iam"]))
    # A role may only be made, or given permissions, under the boundary: the
    # deploy role cannot mint a role that outgrows the project's needs.
    statements.append(
        statement(
            _GRANTING_ACTIONS,
            own["iam"],
            Condition={"StringEquals": {"iam:PermissionsBoundary": boundary_arn}},
        )
    )
    statements.append(
        # REST APIs are addressed by generated ids; other projects' and
        # protected stacks' are denied by tag where a role must not reach them.
        statement(
            [
                "apigateway:GET",
                "apigateway:POST",
                "apigateway:PUT",
                "apigateway:PATCH",
                "apigateway:DELETE",
            ],
            _apigateway(
                args,
                "/restapis",
                "/restapis/*",
                "/tags/*",
                "/usageplans",
                "/usageplans/*",
                "/apikeys",
                "/apikeys/*",
            ),
        )
    )
    statements.append(
        # The provider reads each log group back with DescribeLogGroups, which
        # takes no resource; CodeDeploy's configs are AWS-defined and read-only.
        statement(["logs:DescribeLogGroups"], ["*"])
    )
    statements.append(
        statement(
            ["codedeploy:GetDeploymentConfig"],
            [f"arn:aws:codedeploy:{args.region}:{args.account_id}:deploymentconfig:*"],
        )
    )
    return statements


def _boundary_statements(args: CiAccessArgs) -> list[dict[str, Any]]:
    """What the program's own roles may be granted; a test checks it covers what they get."""
    p = naming.project_resource_prefix(args.project)

    def arn(service: str, path: str) -> str:
        return f"arn:aws:{service}:{args.region}:{args.account_id}:{path}"

    return [
        statement(
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [
                arn("logs", f"log-group:/aws/lambda/{p}*"),
                arn("logs", f"log-group:/aws/codebuild/{p}*"),
                arn("logs", "log-group:/aws/sagemaker/*"),
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
        statement(["sqs:SendMessage"], [arn("sqs", f"{p}*")]),
        statement(["sns:Publish"], [arn("sns", f"{p}*")]),
        statement(
            [
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:GetProvisionedConcurrencyConfig",
                # CodeDeploy runs the deploy hooks; the hooks smoke-check the model.
                "lambda:InvokeFunction",
            ],
            [arn("lambda", f"function:{p}*"), arn("lambda", f"function:{p}*:*")],
        ),
        statement(
            ["codedeploy:GetDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus"],
            [arn("codedeploy", f"deploymentgroup:{p}*")],
        ),
        statement(
            [
                "codeartifact:GetAuthorizationToken",
                "codeartifact:GetRepositoryEndpoint",
                "codeartifact:ReadFromRepository",
            ],
            [arn("codeartifact", "domain/*"), arn("codeartifact", "repository/*")],
        ),
        statement(["cloudwatch:DescribeAlarms"], [arn("cloudwatch", f"alarm:{p}*")]),
        # No resource type: the roles' own policies narrow it further.
        statement(["sts:GetServiceBearerToken"], ["*"]),
        # Publishing to the SNS-encrypted deployment topic (canary.py), through SNS only.
        statement(
            ["kms:GenerateDataKey*", "kms:Decrypt"],
            [arn("kms", "key/*")],
            Condition={
                "StringEquals": {
                    "kms:ViaService": f"sns.{args.region}.amazonaws.com",
                    "kms:CallerAccount": args.account_id,
                }
            },
        ),
    ]


def _promote_statements(
    args: CiAccessArgs,
    arns: Mapping[str, list[str]],
    stacks: Sequence[naming.BranchNames],
    stack_tags: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Move traffic and stages, read what that needs, record the events; nothing else."""
    functions = [a for a in arns["lambda"]]
    events_bucket = [
        a
        for a in arns["s3"]
        if a.endswith(f"-events-{args.account_id}") or a.endswith(f"-events-{args.account_id}/*")
    ]
    buses = [a for a in arns["events"] if ":event-bus/" in a]
    codedeploy = arns["codedeploy"]
    candidate_alarms = [
        f"arn:aws:cloudwatch:{args.region}:{args.account_id}:alarm:{n.version_errors_alarm}"
        for n in stacks
    ]
    api_condition = (
        {"Condition": {"StringEquals": {"aws:ResourceTag/stack": list(stack_tags)}}}
        if stack_tags is not None
        else {}
    )
    return [
        statement(
            [
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:ListVersionsByFunction",
                "lambda:AddPermission",
            ],
            functions,
        ),
        statement(
            [
                "codedeploy:CreateDeployment",
                "codedeploy:GetDeployment",
                "codedeploy:ListDeployments",
                "codedeploy:GetDeploymentGroup",
                "codedeploy:GetApplication",
                "codedeploy:GetApplicationRevision",
                "codedeploy:RegisterApplicationRevision",
            ],
            codedeploy,
        ),
        # Promote points the candidate alarm at the version it shifts (canary.py),
        # and no other alarm. It passes no Tags (an update ignores them anyway),
        # so it needs no cloudwatch:TagResource.
        statement(["cloudwatch:PutMetricAlarm"], candidate_alarms),
        # Required with CreateDeployment (CodeDeploy permissions reference).
        statement(
            ["codedeploy:GetDeploymentConfig"],
            [f"arn:aws:codedeploy:{args.region}:{args.account_id}:deploymentconfig:*"],
        ),
        # StopDeployment takes no resource (CodeDeploy permissions reference):
        # any deployment in the account; docs/access.md says what that exposes.
        statement(["codedeploy:StopDeployment"], ["*"]),
        statement(["cloudwatch:DescribeAlarms"], arns["cloudwatch"]),
        statement(
            ["apigateway:GET", "apigateway:POST", "apigateway:PATCH"],
            _apigateway(
                args,
                "/restapis/*/deployments",
                "/restapis/*/stages/*",
                "/restapis/*/documentation/versions",
                "/restapis/*/resources",
            ),
            **api_condition,
        ),
        # release.py fingerprints the API definition: GetMethod of every method.
        statement(
            ["apigateway:GET"],
            _apigateway(args, "/restapis/*/resources/*/methods/*"),
            **api_condition,
        ),
        # release.py removes the deployment of a release that failed half-way.
        statement(
            ["apigateway:GET", "apigateway:DELETE"],
            _apigateway(args, "/restapis/*/deployments/*"),
            **api_condition,
        ),
        statement(["events:PutEvents"], buses),
        statement(["s3:ListBucket", "s3:GetObject"], events_bucket),
    ]


def ephemeral(args: CiAccessArgs) -> CiAccessArgs:
    """The same access with no protected stacks (tests contrast the two)."""
    return replace(args, protected=())
