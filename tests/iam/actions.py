"""What each duty must be able to call, as (action, resource ARN) requests.

RESOURCE_ACTIONS: for every resource type the program creates, the calls the
AWS provider (terraform-provider-aws, which pulumi-aws wraps) makes to create,
read, update and delete one, with the IAM action and resource type the
service authorization reference gives each ("Actions, resources, and
condition keys for <service>"). A resource type missing here fails
`test_every_resource_type_has_its_actions`.

BACKEND_CALLS: the S3 calls of Pulumi's S3 ("diy") backend, read from
pulumi/pulumi pkg/backend/diy: lock.go (Lock writes, Unlock deletes
`.pulumi/locks/organization/<project>/<stack>/<id>.json`; checkForLock lists
that prefix), state.go (saveCheckpoint: Exists = HeadObject, backupTarget =
CopyObject to `<file>.bak`, WriteAll; removeStack deletes the file, its
`.bak`, and every object under the history and backups prefixes), store.go
(the project-scoped paths), meta.go (reads `.pulumi/meta.yaml`), and
backend.go (history: `.pulumi/history/<project>/<stack>/<stack>-<ns>.history.json`
and `.checkpoint.json`). gocloud's s3blob maps ReadAll/Exists to
GetObject/HeadObject (s3:GetObject), WriteAll/Copy to PutObject/CopyObject
(s3:PutObject, plus s3:GetObject on the source), Delete to DeleteObject,
List to ListObjectsV2 (s3:ListBucket).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from infra import training
from tests.iam.evaluator import Request

# Placeholder ids for children API Gateway names itself (mocks cannot know them).
RESOURCE_ID, DEPLOYMENT_ID, PART_ID, PLAN_ID, KEY_ID = "r3s0urce", "d3pl0y", "p4rt", "pl4n", "k3y"


@dataclass(frozen=True)
class Target:
    """Where a resource lives, for building its ARNs."""

    region: str
    account: str
    tags: Mapping[str, str] = field(default_factory=dict)
    boundary: str = ""


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    # A call on a collection or an AWS-owned resource (create a REST API,
    # read a deployment config): no stack owns it, so no stack can be denied it.
    owned: bool = True

    @property
    def is_read(self) -> bool:
        verb = self.action.split(":", 1)[1]
        return verb == "GET" or verb.startswith(("Get", "List", "Describe", "BatchGet"))

    def request(self) -> Request:
        return Request(self.action, self.resource, self.context)


Builder = Callable[[Mapping[str, Any], Target], list[Call]]


def _arn(service: str, t: Target, path: str) -> str:
    return f"arn:aws:{service}:{t.region}:{t.account}:{path}"


def _calls(actions: list[str], arn: str, **kw: Any) -> list[Call]:
    return [Call(a, arn, **kw) for a in actions]


def _bucket(i: Mapping[str, Any]) -> str:
    return f"arn:aws:s3:::{i.get('bucket')}"


def _s3_bucket(i, t):
    arn = _bucket(i)
    reads = [
        "s3:ListBucket",  # HeadBucket
        "s3:GetBucketTagging",
        "s3:GetBucketPolicy",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketWebsite",
        "s3:GetBucketVersioning",
        "s3:GetAccelerateConfiguration",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketLogging",
        "s3:GetLifecycleConfiguration",
        "s3:GetReplicationConfiguration",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketObjectLockConfiguration",
    ]
    return [
        *_calls(["s3:CreateBucket", "s3:PutBucketTagging", "s3:DeleteBucket", *reads], arn),
        # force_destroy empties the bucket first, every version.
        *_calls(["s3:ListBucketVersions"], arn),
        *_calls(["s3:DeleteObject", "s3:DeleteObjectVersion"], f"{arn}/any/key"),
    ]


def _bucket_setting(put: str, get: str, delete: str | None = None) -> Builder:
    return lambda i, t: _calls([put, get] + ([delete] if delete else []), _bucket(i))


def _iam_context(t: Target) -> dict[str, Any]:
    return {"iam:PermissionsBoundary": t.boundary}


def _role(i, t):
    arn = f"arn:aws:iam::{t.account}:role/{i['name']}"
    granting = ["iam:CreateRole", "iam:PutRolePermissionsBoundary"]
    plain = [
        "iam:GetRole",
        "iam:TagRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRole",
    ]
    return _calls(granting, arn, context=_iam_context(t)) + _calls(plain, arn)


def _role_policy(i, t):
    arn = f"arn:aws:iam::{t.account}:role/{i['role']}"
    granting = ["iam:PutRolePolicy", "iam:DeleteRolePolicy"]
    return [*_calls(granting, arn, context=_iam_context(t)), Call("iam:GetRolePolicy", arn)]


def _log_group(i, t):
    arn = _arn("logs", t, f"log-group:{i['name']}")
    return [
        *_calls(
            [
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "logs:ListTagsForResource",
                "logs:TagResource",
                "logs:DeleteLogGroup",
            ],
            arn,
        ),
        # The provider reads a log group back by listing: no resource type.
        Call("logs:DescribeLogGroups", "*", owned=False),
    ]


def _function_arn(t: Target, name: str) -> str:
    return _arn("lambda", t, f"function:{name}")


def _function(i, t):
    arn = _function_arn(t, i["name"])
    return [
        *_calls(
            [
                "lambda:CreateFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:ListVersionsByFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:PublishVersion",
                "lambda:TagResource",
                "lambda:ListTags",
                "lambda:DeleteFunction",
            ],
            arn,
        ),
        Call("iam:PassRole", str(i["role"])),
    ]


def _alias(i, t):
    arn = f"{_function_arn(t, i['functionName'])}:{i['name']}"
    actions = ["lambda:CreateAlias", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"]
    return _calls(actions, arn)


def _permission(i, t):
    function = str(i["function"])
    arn = function if function.startswith("arn:") else _function_arn(t, function)
    if i.get("qualifier"):
        arn = f"{arn}:{i['qualifier']}"
    return _calls(["lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"], arn)


def _alarm(i, t):
    arn = _arn("cloudwatch", t, f"alarm:{i['name']}")
    actions = [
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:ListTagsForResource",
        "cloudwatch:TagResource",
        "cloudwatch:DeleteAlarms",
    ]
    return _calls(actions, arn)


def _topic(i, t):
    arn = _arn("sns", t, str(i["name"]))
    actions = [
        "sns:CreateTopic",
        "sns:GetTopicAttributes",
        "sns:SetTopicAttributes",
        "sns:ListTagsForResource",
        "sns:TagResource",
        "sns:DeleteTopic",
    ]
    return _calls(actions, arn)


def _codebuild(i, t):
    arn = _arn("codebuild", t, f"project/{i['name']}")
    actions = [
        "codebuild:CreateProject",
        "codebuild:BatchGetProjects",
        "codebuild:UpdateProject",
        "codebuild:DeleteProject",
    ]
    return [*_calls(actions, arn), Call("iam:PassRole", str(i["serviceRole"]))]


def _deployment_config(t: Target, name: str) -> Call:
    return Call(
        "codedeploy:GetDeploymentConfig",
        _arn("codedeploy", t, f"deploymentconfig:{name}"),
        owned=False,
    )


def _codedeploy_app(i, t):
    arn = _arn("codedeploy", t, f"application:{i['name']}")
    actions = [
        "codedeploy:CreateApplication",
        "codedeploy:GetApplication",
        "codedeploy:ListTagsForResource",
        "codedeploy:TagResource",
        "codedeploy:DeleteApplication",
    ]
    return _calls(actions, arn)


def _codedeploy_group(i, t):
    arn = _arn("codedeploy", t, f"deploymentgroup:{i['appName']}/{i['deploymentGroupName']}")
    actions = [
        "codedeploy:CreateDeploymentGroup",
        "codedeploy:GetDeploymentGroup",
        "codedeploy:UpdateDeploymentGroup",
        "codedeploy:DeleteDeploymentGroup",
    ]
    return [
        *_calls(actions, arn),
        Call("iam:PassRole", str(i["serviceRoleArn"])),
        _deployment_config(t, str(i["deploymentConfigName"])),
    ]


def _bus(i, t):
    arn = _arn("events", t, f"event-bus/{i['name']}")
    actions = [
        "events:CreateEventBus",
        "events:DescribeEventBus",
        "events:ListTagsForResource",
        "events:TagResource",
        "events:DeleteEventBus",
    ]
    return _calls(actions, arn)


def _archive(i, t):
    arn = _arn("events", t, f"archive/{i['name']}")
    actions = [
        "events:CreateArchive",
        "events:DescribeArchive",
        "events:UpdateArchive",
        "events:DeleteArchive",
    ]
    source = str(i["eventSourceArn"])
    return [*_calls(actions, arn), Call("events:CreateArchive", source)]


def _rule_arn(i, t) -> str:
    return _arn("events", t, f"rule/{i['eventBusName']}/{i.get('name') or i['rule']}")


def _rule(i, t):
    actions = [
        "events:PutRule",
        "events:DescribeRule",
        "events:ListTagsForResource",
        "events:DeleteRule",
    ]
    return _calls(actions, _rule_arn(i, t))


def _target(i, t):
    actions = ["events:PutTargets", "events:ListTargetsByRule", "events:RemoveTargets"]
    return _calls(actions, _rule_arn(i, t))


def _queue_name(i) -> str:
    return str(i.get("name") or str(i["queueUrl"]).rsplit("/", 1)[-1])


def _queue(i, t):
    arn = _arn("sqs", t, _queue_name(i))
    actions = [
        "sqs:CreateQueue",
        "sqs:GetQueueAttributes",
        "sqs:SetQueueAttributes",
        "sqs:ListQueueTags",
        "sqs:TagQueue",
        "sqs:DeleteQueue",
    ]
    return _calls(actions, arn)


def _queue_policy(i, t):
    return _calls(
        ["sqs:SetQueueAttributes", "sqs:GetQueueAttributes"], _arn("sqs", t, _queue_name(i))
    )


def _notebook(i, t):
    arn = _arn("sagemaker", t, f"notebook-instance/{i['name']}")
    actions = [
        "sagemaker:CreateNotebookInstance",
        "sagemaker:DescribeNotebookInstance",
        "sagemaker:StopNotebookInstance",
        "sagemaker:DeleteNotebookInstance",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
    ]
    return [*_calls(actions, arn), Call("iam:PassRole", str(i["roleArn"]))]


def _apigw(t: Target, path: str) -> str:
    return f"arn:aws:apigateway:{t.region}::{path}"


def _api_calls(t: Target, verbs: list[str], path: str) -> list[Call]:
    # API Gateway authorizes a REST API's children by the REST API's tags.
    context = {f"aws:ResourceTag/{k}": v for k, v in t.tags.items()}
    return [Call(f"apigateway:{verb}", _apigw(t, path), context) for verb in verbs]


def _api_id(i: Mapping[str, Any]) -> str:
    return str(i.get("restApi") or i.get("restApiId"))


def _tag_calls(t: Target, path: str) -> list[Call]:
    # A tag change after creation is TagResource/UntagResource: PUT and DELETE on
    # /tags/{the resource's ARN, URL-encoded} (service authorization reference).
    return _api_calls(t, ["PUT", "DELETE"], "/tags/" + quote(_apigw(t, path), safe=""))


def _rest_api(i, t):
    api = _api_id(i) if i.get("restApi") else f"{str(i['name'])[:6]}api01"
    return [
        Call("apigateway:POST", _apigw(t, "/restapis"), owned=False),
        *_api_calls(t, ["GET", "PATCH", "PUT", "DELETE"], f"/restapis/{api}"),
        *_tag_calls(t, f"/restapis/{api}"),
    ]


def _api_resource(i, t):
    api = _api_id(i)
    return [
        *_api_calls(t, ["POST"], f"/restapis/{api}/resources/{i['parentId']}"),
        *_api_calls(t, ["GET", "DELETE"], f"/restapis/{api}/resources/{RESOURCE_ID}"),
    ]


def _method(i, t):
    path = f"/restapis/{_api_id(i)}/resources/{RESOURCE_ID}/methods/{i['httpMethod']}"
    return _api_calls(t, ["PUT", "GET", "PATCH", "DELETE"], path)


def _integration(i, t):
    path = f"/restapis/{_api_id(i)}/resources/{RESOURCE_ID}/methods/{i['httpMethod']}/integration"
    return _api_calls(t, ["PUT", "GET", "DELETE"], path)


def _deployment(i, t):
    api = _api_id(i)
    return [
        *_api_calls(t, ["POST"], f"/restapis/{api}/deployments"),
        *_api_calls(t, ["GET", "DELETE"], f"/restapis/{api}/deployments/{DEPLOYMENT_ID}"),
    ]


def _stage(i, t):
    api = _api_id(i)
    return [
        *_api_calls(t, ["POST"], f"/restapis/{api}/stages"),
        *_api_calls(t, ["GET", "PATCH", "DELETE"], f"/restapis/{api}/stages/{i['stageName']}"),
        *_tag_calls(t, f"/restapis/{api}/stages/{i['stageName']}"),
    ]


def _method_settings(i, t):
    return _api_calls(t, ["GET", "PATCH"], f"/restapis/{_api_id(i)}/stages/{i['stageName']}")


def _documentation_part(i, t):
    api = _api_id(i)
    return [
        *_api_calls(t, ["POST"], f"/restapis/{api}/documentation/parts"),
        *_api_calls(
            t, ["GET", "PATCH", "DELETE"], f"/restapis/{api}/documentation/parts/{PART_ID}"
        ),
    ]


def _usage_plan(i, t):
    return [
        Call("apigateway:POST", _apigw(t, "/usageplans"), owned=False),
        *_api_calls(t, ["GET", "PATCH", "DELETE"], f"/usageplans/{PLAN_ID}"),
    ]


def _api_key(i, t):
    return [
        Call("apigateway:POST", _apigw(t, "/apikeys"), owned=False),
        *_api_calls(t, ["GET", "PATCH", "DELETE"], f"/apikeys/{KEY_ID}"),
    ]


def _usage_plan_key(i, t):
    return [
        *_api_calls(t, ["POST"], f"/usageplans/{PLAN_ID}/keys"),
        *_api_calls(t, ["GET", "DELETE"], f"/usageplans/{PLAN_ID}/keys/{KEY_ID}"),
    ]


RESOURCE_ACTIONS: Mapping[str, Builder] = {
    "pulumi:providers:aws": lambda i, t: [],  # configures the SDK; calls nothing
    "aws:s3/bucket:Bucket": _s3_bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_setting(
        "s3:PutBucketVersioning", "s3:GetBucketVersioning"
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        _bucket_setting("s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration")
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_setting(
        "s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"
    ),
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_setting(
        "s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_setting(
        "s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"
    ),
    # DeleteBucketLifecycle is authorized as s3:PutLifecycleConfiguration.
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_setting(
        "s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"
    ),
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:lambda/function:Function": _function,
    "aws:lambda/alias:Alias": _alias,
    "aws:lambda/permission:Permission": _permission,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:sns/topic:Topic": _topic,
    "aws:codebuild/project:Project": _codebuild,
    "aws:codedeploy/application:Application": _codedeploy_app,
    "aws:codedeploy/deploymentGroup:DeploymentGroup": _codedeploy_group,
    "aws:cloudwatch/eventBus:EventBus": _bus,
    "aws:cloudwatch/eventArchive:EventArchive": _archive,
    "aws:cloudwatch/eventRule:EventRule": _rule,
    "aws:cloudwatch/eventTarget:EventTarget": _target,
    "aws:sqs/queue:Queue": _queue,
    "aws:sqs/queuePolicy:QueuePolicy": _queue_policy,
    "aws:sagemaker/notebookInstance:NotebookInstance": _notebook,
    "aws:apigateway/restApi:RestApi": _rest_api,
    "aws:apigateway/resource:Resource": _api_resource,
    "aws:apigateway/method:Method": _method,
    "aws:apigateway/integration:Integration": _integration,
    "aws:apigateway/deployment:Deployment": _deployment,
    "aws:apigateway/stage:Stage": _stage,
    "aws:apigateway/methodSettings:MethodSettings": _method_settings,
    "aws:apigateway/documentationPart:DocumentationPart": _documentation_part,
    "aws:apigateway/usagePlan:UsagePlan": _usage_plan,
    "aws:apigateway/apiKey:ApiKey": _api_key,
    "aws:apigateway/usagePlanKey:UsagePlanKey": _usage_plan_key,
}


def backend_calls(project: str, stack: str, bucket: str) -> list[Call]:
    """Every S3 call `pulumi up`, `refresh` and `destroy --remove` make for one stack."""
    arn = f"arn:aws:s3:::{bucket}"
    stack_file = f"{arn}/.pulumi/stacks/{project}/{stack}.json"
    history = f"{arn}/.pulumi/history/{project}/{stack}/{stack}-1733000000000000000"
    backup = f"{arn}/.pulumi/backups/{project}/{stack}/{stack}.1733000000000000000.json"
    lock = f"{arn}/.pulumi/locks/organization/{project}/{stack}/0f1e2d3c.json"
    return [
        Call("s3:ListBucket", arn),  # checkForLock, removeAllByPrefix, Exists of a missing key
        Call("s3:GetObject", f"{arn}/.pulumi/meta.yaml"),
        Call("s3:PutObject", lock),
        Call("s3:DeleteObject", lock),  # Unlock, at the end of every up/refresh/destroy
        Call("s3:GetObject", stack_file),  # load the checkpoint; HeadObject for Exists
        Call("s3:GetObject", stack_file),  # the CopyObject source of the backup
        Call("s3:PutObject", f"{stack_file}.bak"),
        Call("s3:PutObject", stack_file),
        Call("s3:AbortMultipartUpload", stack_file),
        Call("s3:PutObject", f"{history}.history.json"),
        Call("s3:PutObject", f"{history}.checkpoint.json"),
        Call("s3:PutObject", backup),
        # destroy --remove: the file, its backup, history and backups.
        Call("s3:DeleteObject", stack_file),
        Call("s3:DeleteObject", f"{stack_file}.bak"),
        Call("s3:DeleteObject", f"{history}.history.json"),
        Call("s3:DeleteObject", backup),
    ]


def reads_of_state(project: str, stack: str, bucket: str) -> list[Call]:
    arn = f"arn:aws:s3:::{bucket}"
    return [
        Call("s3:ListBucket", arn),
        Call("s3:GetObject", f"{arn}/.pulumi/meta.yaml"),
        Call("s3:GetObject", f"{arn}/.pulumi/stacks/{project}/{stack}.json"),
    ]


def writes_of_state(project: str, stack: str, bucket: str) -> list[Call]:
    return [c for c in backend_calls(project, stack, bucket) if not c.is_read]


def lock_calls(project: str, stack: str, bucket: str) -> list[Call]:
    """scripts/lib/backend.py: list and read a stack's locks, read its checkpoint (plan and
    lock checks of preview, deploy, drift and cleanup)."""
    arn = f"arn:aws:s3:::{bucket}"
    return [
        Call("s3:ListBucket", arn),  # ListObjectsV2, Prefix=.pulumi/locks/organization/<p>/<s>/
        Call("s3:GetObject", _lock(project, stack, bucket)),
        Call("s3:GetObject", f"{arn}/.pulumi/stacks/{project}/{stack}.json"),
    ]


def unlock_calls(project: str, stack: str, bucket: str) -> list[Call]:
    """`nox -s unlock`: the lock checks, then DeleteObject of this machine's lock."""
    return [
        *lock_calls(project, stack, bucket),
        Call("s3:DeleteObject", _lock(project, stack, bucket)),
    ]


def _lock(project: str, stack: str, bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}/.pulumi/locks/organization/{project}/{stack}/0f1e2d3c.json"


BUILD_ID = "b1a2c3d4"


def train_calls(outputs: Mapping[str, Any], t: Target, log_group: str) -> list[Call]:
    """The train job's calls on its own stack (scripts/train.py, lib/runner.py, smoke.py and
    promote.py --check); `log_group` is the runner's (naming.BranchNames.training_log_group)."""
    project = str(outputs["training_project"])
    build = f"{project}:{BUILD_ID}"
    bucket = f"arn:aws:s3:::{outputs['artifact_bucket']}"
    function = _function_arn(t, str(outputs["model_function"]))
    version = f"{function}:7"
    return [
        # runner.upload_source, start, wait (poll, log tail, stop at the timeout).
        Call("s3:PutObject", f"{bucket}/{training.SOURCE_KEY}"),
        Call("codebuild:StartBuild", _arn("codebuild", t, f"project/{project}")),
        Call("codebuild:BatchGetBuilds", _arn("codebuild", t, f"project/{project}")),
        Call("codebuild:StopBuild", _arn("codebuild", t, f"project/{project}")),
        Call("logs:GetLogEvents", _arn("logs", t, f"log-group:{log_group}:log-stream:{build}")),
        # runner.fetch_results
        Call("s3:GetObject", f"{bucket}/{training.RUNS_PREFIX}{build}/model.json"),
        Call("s3:GetObject", f"{bucket}/{training.RUNS_PREFIX}{build}/metrics.json"),
        # train.publish_version; the function_updated_v2 waiter polls GetFunction.
        Call("s3:PutObject", f"{bucket}/{training.RUNS_PREFIX}{build}/lambda.zip"),
        Call("lambda:UpdateFunctionCode", function),
        Call("lambda:GetFunction", function),
        Call("lambda:PublishVersion", function),
        # smoke.smoke on the new version; promote --check reads its code and the alias.
        Call("lambda:InvokeFunction", version),
        Call("lambda:GetFunction", version),
        Call("lambda:GetAlias", f"{function}:{outputs['model_alias']}"),
        # train.live_baseline (the default branch compares with its live version).
        Call("lambda:GetFunctionConfiguration", version),
        # events.emit: trained, evaluated.
        Call("events:PutEvents", _arn("events", t, f"event-bus/{outputs['event_bus']}")),
        Call("s3:PutObject", f"{bucket}/{training.LATEST_EVALUATION_KEY}"),
    ]


def published_metrics_read(default_branch_bucket: str) -> Call:
    """train.branch_baseline: the default branch's published metrics, as S3 sees them
    (tagged published by the default branch's train job)."""
    key, value = training.PUBLISHED_TAG
    return Call(
        "s3:GetObject",
        f"arn:aws:s3:::{default_branch_bucket}/{training.PUBLISHED_METRICS_KEY}",
        {f"s3:ExistingObjectTag/{key}": value},
    )


def publish_metrics_calls(default_branch_bucket: str) -> list[Call]:
    """The default branch's train job writes the published metrics with their tag."""
    arn = f"arn:aws:s3:::{default_branch_bucket}/{training.PUBLISHED_METRICS_KEY}"
    # PutObject with a Tagging header also takes s3:PutObjectTagging.
    return [Call("s3:PutObject", arn), Call("s3:PutObjectTagging", arn)]


def evaluation_read(outputs: Mapping[str, Any]) -> Call:
    """`nox -s evaluation` (scripts/evaluation.py), in a pull request's preview job."""
    return Call(
        "s3:GetObject",
        f"arn:aws:s3:::{outputs['artifact_bucket']}/{training.LATEST_EVALUATION_KEY}",
    )


def dlq_calls(outputs: Mapping[str, Any], t: Target) -> list[Call]:
    """`events dlq [--redrive]` (scripts/events.py dead_letters)."""
    queue = _arn("sqs", t, str(outputs["event_dlq_url"]).rsplit("/", 1)[-1])
    return [
        Call("sqs:ReceiveMessage", queue),
        Call("events:PutEvents", _arn("events", t, f"event-bus/{outputs['event_bus']}")),
        Call("sqs:DeleteMessage", queue),
    ]


def traffic_calls(
    outputs: Mapping[str, Any], t: Target, deployment_config: str, candidate_alarm: str
) -> list[Call]:
    """The calls promote, rollback, release and `events` make for one stack (scripts/*.py).

    `outputs` are the stack's outputs as synth evaluates them; `candidate_alarm`
    is the alarm on the candidate version (naming.BranchNames.version_errors_alarm).
    """
    function = _function_arn(t, str(outputs["model_function"]))
    alias = f"{function}:{outputs['model_alias']}"
    group = _arn(
        "codedeploy",
        t,
        f"deploymentgroup:{outputs['codedeploy_application']}/{outputs['codedeploy_group']}",
    )
    api = str(outputs["api_id"])
    stage = next(iter(outputs["api_stages"].values()))
    bus = _arn("events", t, f"event-bus/{outputs['event_bus']}")
    store = f"arn:aws:s3:::{outputs['event_store_bucket']}"
    return [
        # promote.py: read the alias and the candidate, shift by alias or CodeDeploy.
        Call("lambda:GetAlias", alias),
        Call("lambda:GetFunction", f"{function}:7"),
        Call("lambda:UpdateAlias", alias),
        Call("codedeploy:CreateDeployment", group),
        # Required with CreateDeployment (CodeDeploy permissions reference).
        _deployment_config(t, deployment_config),
        Call("codedeploy:GetDeployment", group),
        *[
            Call("cloudwatch:DescribeAlarms", _arn("cloudwatch", t, f"alarm:{name}"))
            for name in outputs["alarms"]
        ],
        # alarms.watch_candidate: the candidate alarm watches the version shifted.
        Call("cloudwatch:PutMetricAlarm", _arn("cloudwatch", t, f"alarm:{candidate_alarm}")),
        # rollback.py: stop an in-flight canary first (no resource type).
        Call("codedeploy:StopDeployment", "*", owned=False),
        # release.py
        *_api_calls(t, ["POST"], f"/restapis/{api}/deployments"),
        *_api_calls(t, ["DELETE"], f"/restapis/{api}/deployments/{DEPLOYMENT_ID}"),
        *_api_calls(t, ["GET", "PATCH"], f"/restapis/{api}/stages/{stage}"),
        *_api_calls(t, ["POST"], f"/restapis/{api}/documentation/versions"),
        # release.definition_fingerprint: every resource, each method, the served deployment.
        *_api_calls(t, ["GET"], f"/restapis/{api}/resources"),
        *_api_calls(t, ["GET"], f"/restapis/{api}/resources/{RESOURCE_ID}/methods/POST"),
        *_api_calls(t, ["GET"], f"/restapis/{api}/deployments/{DEPLOYMENT_ID}"),
        # events.py: emit, list and read the history.
        Call("events:PutEvents", bus),
        Call("s3:ListBucket", store),
        Call("s3:GetObject", f"{store}/events/model/0001.json"),
    ]
