"""What each CI role may do: its policy per duty, and the permissions boundary every role
a deploy role creates must carry.

Each duty's policy is its grants followed by the denies (`ci_denies`) that keep it off
what its kind of stack must not reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi

from infra import naming
from infra.components.base import statement
from infra.components.ci_denies import (
    deny_other_projects_apis,
    deny_protected_names,
    deny_writes,
    shared_denies,
)
from infra.components.ci_duties import (
    DEPLOY,
    DEPLOY_PROTECTED,
    PREVIEW,
    PROMOTE,
    PROMOTE_PROTECTED,
    CiAccessArgs,
)
from infra.components.ci_resources import (
    SECRETS_USE,
    STATE_META,
    STATE_READ,
    STATE_WRITE,
    apigateway_arns,
    stack_arns,
    state_keys,
)

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


def role_statements(
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
    deny_shared_state = deny_writes(objects(shared_keys))
    deny_protected_state = deny_writes(objects(protected_keys))

    deny_protected = deny_protected_names(args)
    # The ephemeral deploy role runs every branch's training and its quality gate.
    deny_protected_but_published = deny_protected_names(args, published_readable=True)
    shared = shared_denies(args, bucket_arn)
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
    foreign_apis = deny_other_projects_apis(args)
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
            apigateway_arns(
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


def boundary_statements(args: CiAccessArgs) -> list[dict[str, Any]]:
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
            apigateway_arns(
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
            apigateway_arns(args, "/restapis/*/resources/*/methods/*"),
            **api_condition,
        ),
        # release.py removes the deployment of a release that failed half-way.
        statement(
            ["apigateway:GET", "apigateway:DELETE"],
            apigateway_arns(args, "/restapis/*/deployments/*"),
            **api_condition,
        ),
        statement(["events:PutEvents"], buses),
        statement(["s3:ListBucket", "s3:GetObject"], events_bucket),
    ]
