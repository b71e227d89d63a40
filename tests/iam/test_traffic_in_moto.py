"""promote, rollback, release and events against moto, holding only the promote roles' permissions.

moto authorizes every non-S3 call against resource "*" (moto/core/authorization.py),
so it cannot judge resource-scoped policies, and it treats an Allow whose
condition fails as a Deny. Two tiers, each where it is sound:

- every AWS call the scripts make is mapped to its IAM action and resource
  ARN and decided by the evaluator (tests/iam/evaluator.py) against the
  synthesized role policy *before* moto serves it; a refusal is raised as
  AWS raises it (AccessDeniedException), so the scripts run exactly as they
  would with that role;
- the event store's S3 calls are also enforced by moto itself, with an IAM
  user holding the promote role's policy (`POST /moto-api/reset-auth`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import botocore.client
import pytest
import requests
from botocore.exceptions import ClientError

from infra import naming
from infra.components.ci_duties import DEPLOY, PROMOTE, PROMOTE_PROTECTED
from scripts import events, promote, release, rollback
from scripts.lib import aws
from tests.iam.evaluator import ALLOW, Request
from tests.iam.model import AccessModel, protected_branches, shared_model
from tests.moto_stack import ACCOUNT, REGION, build_deployed_stack

pytestmark = pytest.mark.moto


def shared_access() -> AccessModel:
    """The shared stack's access, synthesized on first use: every test process collects
    this module, and only the moto tier runs its tests."""
    # The moto stack stands in one region whatever Pulumi.yaml says (a renamed fork moves
    # it): the policies judged must name that region, as the real stack's would.
    return shared_model(REGION)


_UNGUARDED = botocore.client.BaseClient._make_api_call


def _queue(url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"


def _project(name: str) -> str:
    return f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}"


def _function(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _qualified(params: dict[str, Any]) -> str:
    """The function ARN a call names, with its version or alias when it gives one."""
    qualifier = params.get("Qualifier")
    return _function(params["FunctionName"]) + (f":{qualifier}" if qualifier else "")


class Guard:
    """Decides each AWS call of the code under test as IAM would for one role."""

    def __init__(self, duty: str, stack) -> None:
        self.duty = duty
        self.stack = stack
        self.decided: list[tuple[Request, str]] = []
        # While a stand-in plays an AWS service (a build running as its own role), its
        # calls are that service's, not the caller's.
        self.paused = False
        # The REST API's tags, as the provider's default tags set them.
        branch = naming.BranchStack(
            stack.branch,
            naming.slugify(stack.branch),
            naming.slugify(stack.branch),
            stack.outputs["stack_kind"],
        )
        tags = naming.tags(shared_access().project, branch)
        self.tags = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}

    def requests(self, service: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        o = self.stack.outputs
        group = (
            f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:"
            f"{o['codedeploy_application']}/{o['codedeploy_group']}"
        )
        api = f"arn:aws:apigateway:{REGION}::/restapis/{params.get('restApiId')}"
        mapping: dict[tuple[str, str], Callable[[], list[Request]]] = {
            ("sts", "GetCallerIdentity"): lambda: [],
            ("lambda", "GetAlias"): lambda: [
                Request("lambda:GetAlias", f"{_function(params['FunctionName'])}:{params['Name']}")
            ],
            ("lambda", "UpdateAlias"): lambda: [
                Request(
                    "lambda:UpdateAlias", f"{_function(params['FunctionName'])}:{params['Name']}"
                )
            ],
            ("lambda", "GetFunction"): lambda: [Request("lambda:GetFunction", _qualified(params))],
            ("lambda", "ListVersionsByFunction"): lambda: [
                Request("lambda:ListVersionsByFunction", _function(params["FunctionName"]))
            ],
            ("cloudwatch", "DescribeAlarms"): lambda: [
                Request(
                    "cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{n}"
                )
                for n in params.get("AlarmNames") or ["*"]
            ],
            ("cloudwatch", "PutMetricAlarm"): lambda: [
                Request(
                    "cloudwatch:PutMetricAlarm",
                    f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{params['AlarmName']}",
                )
            ],
            ("codedeploy", "CreateDeployment"): lambda: [
                Request("codedeploy:CreateDeployment", group)
            ],
            ("codedeploy", "GetDeployment"): lambda: [Request("codedeploy:GetDeployment", group)],
            ("codedeploy", "ListDeployments"): lambda: [
                Request("codedeploy:ListDeployments", group)
            ],
            ("codedeploy", "StopDeployment"): lambda: [Request("codedeploy:StopDeployment", "*")],
            ("events", "PutEvents"): lambda: [
                Request(
                    "events:PutEvents",
                    e["EventBusName"]
                    if e["EventBusName"].startswith("arn:")
                    else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{e['EventBusName']}",
                )
                for e in params["Entries"]
            ],
            ("s3", "ListObjectsV2"): lambda: [
                Request("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}")
            ],
            ("s3", "GetObject"): lambda: [
                Request(
                    "s3:GetObject",
                    f"arn:aws:s3:::{params['Bucket']}/{params['Key']}",
                    self.object_tags(params["Bucket"], params["Key"]),
                )
            ],
            # A Tagging header also takes s3:PutObjectTagging.
            ("s3", "PutObject"): lambda: [
                Request(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")
                for action in ["s3:PutObject"]
                + (["s3:PutObjectTagging"] * bool(params.get("Tagging")))
            ],
            ("codebuild", "StartBuild"): lambda: [
                Request("codebuild:StartBuild", _project(params["projectName"]))
            ],
            ("codebuild", "BatchGetBuilds"): lambda: [
                Request("codebuild:BatchGetBuilds", _project(i.split(":", 1)[0]))
                for i in params["ids"]
            ],
            ("codebuild", "StopBuild"): lambda: [
                Request("codebuild:StopBuild", _project(params["id"].split(":", 1)[0]))
            ],
            ("logs", "GetLogEvents"): lambda: [
                Request(
                    "logs:GetLogEvents",
                    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{params['logGroupName']}"
                    f":log-stream:{params['logStreamName']}",
                )
            ],
            ("lambda", "UpdateFunctionCode"): lambda: [
                Request("lambda:UpdateFunctionCode", _function(params["FunctionName"])),
                # Lambda reads the package from S3 as the caller.
                *(
                    [
                        Request(
                            "s3:GetObject", f"arn:aws:s3:::{params['S3Bucket']}/{params['S3Key']}"
                        )
                    ]
                    if params.get("S3Bucket")
                    else []
                ),
            ],
            ("lambda", "PublishVersion"): lambda: [
                Request("lambda:PublishVersion", _function(params["FunctionName"]))
            ],
            ("lambda", "GetFunctionConfiguration"): lambda: [
                Request("lambda:GetFunctionConfiguration", _qualified(params))
            ],
            ("lambda", "Invoke"): lambda: [Request("lambda:InvokeFunction", _qualified(params))],
            ("sqs", "ReceiveMessage"): lambda: [
                Request("sqs:ReceiveMessage", _queue(params["QueueUrl"]))
            ],
            ("sqs", "DeleteMessage"): lambda: [
                Request("sqs:DeleteMessage", _queue(params["QueueUrl"]))
            ],
            ("apigateway", "CreateDeployment"): lambda: [
                Request("apigateway:POST", f"{api}/deployments", self.tags)
            ],
            ("apigateway", "DeleteDeployment"): lambda: [
                Request(
                    "apigateway:DELETE", f"{api}/deployments/{params['deploymentId']}", self.tags
                )
            ],
            ("apigateway", "GetStage"): lambda: [
                Request("apigateway:GET", f"{api}/stages/{params['stageName']}", self.tags)
            ],
            ("apigateway", "UpdateStage"): lambda: [
                Request("apigateway:PATCH", f"{api}/stages/{params['stageName']}", self.tags)
            ],
            ("apigateway", "GetResources"): lambda: [
                Request("apigateway:GET", f"{api}/resources", self.tags)
            ],
            ("apigateway", "GetMethod"): lambda: [
                Request(
                    "apigateway:GET",
                    f"{api}/resources/{params['resourceId']}/methods/{params['httpMethod']}",
                    self.tags,
                )
            ],
            ("apigateway", "GetDeployment"): lambda: [
                Request("apigateway:GET", f"{api}/deployments/{params['deploymentId']}", self.tags)
            ],
            ("apigateway", "CreateDocumentationVersion"): lambda: [
                Request("apigateway:POST", f"{api}/documentation/versions", self.tags)
            ],
        }
        if (service, operation) not in mapping:
            raise AssertionError(
                f"the code under test called {service} {operation}: map it to its IAM action "
                "and resource in tests/iam/test_traffic_in_moto.py"
            )
        return mapping[(service, operation)]()

    def object_tags(self, bucket: str, key: str) -> dict[str, str]:
        """The object's tags as S3's `s3:ExistingObjectTag/<key>` context (none if absent)."""
        client = boto3.client("s3", region_name=REGION)
        try:
            tagging = _UNGUARDED(client, "GetObjectTagging", {"Bucket": bucket, "Key": key})
        except ClientError:
            return {}
        return {f"s3:ExistingObjectTag/{t['Key']}": t["Value"] for t in tagging["TagSet"]}

    def check(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        if self.paused:
            return
        model = shared_access()
        for request in self.requests(service, operation, params):
            decision = model.decide(self.duty, request)
            self.decided.append((request, decision))
            if decision != ALLOW:
                raise ClientError(
                    {
                        "Error": {
                            # S3 names its refusal otherwise than the JSON APIs do.
                            "Code": "AccessDenied" if service == "s3" else "AccessDeniedException",
                            "Message": f"User: {model.roles[self.duty].arn} is not authorized to "
                            f"perform: {request.action} on resource: {request.resource}",
                        }
                    },
                    operation,
                )

    def allowed(self) -> set[str]:
        return {r.action for r, d in self.decided if d == ALLOW}

    def refused(self) -> list[Request]:
        return [r for r, d in self.decided if d != ALLOW]


@contextlib.contextmanager
def holding(duty: str, stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    """Within the block, every AWS call is decided for `duty` first."""
    guard = Guard(duty, stack)
    original = botocore.client.BaseClient._make_api_call

    def guarded(client: Any, operation: str, params: dict[str, Any]) -> Any:
        guard.check(client.meta.service_model.service_name, operation, params)
        return original(client, operation, params)

    real_client = aws.client

    def client(service: str, region: str | None = None) -> Any:
        made = real_client(service, region)
        return DocumentationVersions(made, guard) if service == "apigateway" else made

    with monkeypatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", guarded)
        patch.setattr(aws, "client", client)
        yield guard


class DocumentationVersions:
    """moto answers documentation versions with 404: decided by the guard, answered here."""

    def __init__(self, real: Any, guard: Guard) -> None:
        self._real, self._guard = real, guard

    def create_documentation_version(self, **kwargs: Any) -> dict:
        self._guard.check("apigateway", "CreateDocumentationVersion", kwargs)
        return {"version": kwargs["documentationVersion"], "createdDate": dt.datetime.now(dt.UTC)}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _source(stack) -> list[str]:
    return ["--outputs", str(stack.outputs_file)]


@pytest.fixture
def ephemeral(aws, tmp_path):
    return _deployed("feature/x", tmp_path)


@pytest.fixture
def protected(aws, tmp_path):
    return _deployed(protected_branches()[0], tmp_path)


def _deployed(branch: str, tmp_path):
    stack = build_deployed_stack(branch)
    stack.outputs_file = tmp_path / f"{naming.slugify(branch)}.json"
    stack.outputs_file.write_text(json.dumps(stack.outputs))
    return stack


@pytest.fixture(autouse=True)
def _summary(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.delenv("GITHUB_SHA", raising=False)


def test_promote_release_rollback_and_events_run_with_the_promote_role(ephemeral, monkeypatch):
    ephemeral.publish_candidate()
    with holding(PROMOTE, ephemeral, monkeypatch) as guard:
        promoting = [*_source(ephemeral), "--strategy", "alias", "--steps", "100"]
        assert promote.main([*promoting, "--bake-seconds", "0"]) == 0
        assert release.main([*_source(ephemeral), "--version", "v2"]) == 0
    assert ephemeral.alias_state() == ("2", {})
    ephemeral.deliver_events()  # what the bus's processor does, outside the role
    with holding(PROMOTE, ephemeral, monkeypatch) as after:
        assert rollback.main([*_source(ephemeral), "--reason", "bad scores"]) == 0
        assert events.main(["history", "--format", "json", *_source(ephemeral)]) == 0
    assert ephemeral.alias_state() == ("1", {})
    assert guard.refused() == [] and after.refused() == []
    # The calls that matter were made, and decided, under the role.
    # apigateway:GET: release fingerprints the definition (GetResources, GetMethod).
    assert {
        "lambda:UpdateAlias",
        "apigateway:GET",
        "apigateway:PATCH",
        "apigateway:POST",
        "events:PutEvents",
    } <= guard.allowed()
    assert {"lambda:UpdateAlias", "s3:ListBucket", "s3:GetObject"} <= after.allowed()


def test_the_ephemeral_promote_role_cannot_move_a_protected_stack(protected, monkeypatch):
    protected.publish_candidate()
    promoting = [
        *_source(protected),
        "--strategy",
        "alias",
        "--steps",
        "100",
        "--bake-seconds",
        "0",
    ]
    with holding(PROMOTE, protected, monkeypatch) as guard:
        assert promote.main(promoting) != 0
    assert protected.alias_state() == ("1", {})
    # Refused at its first touch of the protected function; traffic never moved.
    assert guard.refused()[0].resource.startswith(_function(protected.outputs["model_function"]))
    assert "lambda:UpdateAlias" not in guard.allowed()

    with holding(PROMOTE_PROTECTED, protected, monkeypatch) as guard:
        assert promote.main(promoting) == 0
    assert guard.refused() == []
    assert protected.alias_state() == ("2", {})


def test_the_protected_promote_role_cannot_move_an_ephemeral_stack(ephemeral, monkeypatch):
    ephemeral.publish_candidate()
    promoting = [
        *_source(ephemeral),
        "--strategy",
        "alias",
        "--steps",
        "100",
        "--bake-seconds",
        "0",
    ]
    with holding(PROMOTE_PROTECTED, ephemeral, monkeypatch):
        assert promote.main(promoting) != 0
    assert ephemeral.alias_state() == ("1", {})


def _park_a_valid_event(stack) -> None:
    """An event the processor failed to store (say S3 throttled it), now in the DLQ."""
    outputs = stack.stack_outputs()
    model = outputs.require("model_function")
    events.emit(aws.client("events", REGION), outputs, "deployed", model=model, version="3")
    sqs = aws.client("sqs", REGION)
    (message,) = sqs.receive_message(QueueUrl=stack.test_queue_url, MaxNumberOfMessages=10)[
        "Messages"
    ]
    sqs.delete_message(QueueUrl=stack.test_queue_url, ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(
        QueueUrl=stack.outputs["event_dlq_url"],
        MessageBody=message["Body"],
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "SlowDown (test)"}},
    )


def test_the_dlq_is_redriven_with_the_deploy_role_and_not_an_approval_role(
    ephemeral, monkeypatch
) -> None:
    _park_a_valid_event(ephemeral)
    redrive = ["dlq", "--redrive", *_source(ephemeral)]
    with holding(PROMOTE, ephemeral, monkeypatch) as guard:
        assert events.main(redrive) != 0
    assert guard.refused()[0].action == "sqs:ReceiveMessage"
    with holding(DEPLOY, ephemeral, monkeypatch) as guard:
        assert events.main(redrive) == 0
    assert guard.refused() == []
    assert {"sqs:ReceiveMessage", "events:PutEvents", "sqs:DeleteMessage"} <= guard.allowed()


@contextlib.contextmanager
def moto_enforcing(endpoint: str) -> Iterator[None]:
    """moto checks every request's credentials and policies inside the block."""
    previous = requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).json()
    try:
        yield
    finally:
        requests.post(
            f"{endpoint}/moto-api/reset-auth",
            data=str(previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode(),
            timeout=10,
        )


def test_moto_itself_lets_the_promote_role_read_only_its_kind_s_event_stores(
    aws, ephemeral, tmp_path
) -> None:
    protected_stack = _deployed(protected_branches()[0], tmp_path)
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="promote")
    iam.put_user_policy(
        UserName="promote",
        PolicyName="promote",
        PolicyDocument=json.dumps(shared_access().roles[PROMOTE].policies[0]),
    )
    key = iam.create_access_key(UserName="promote")["AccessKey"]
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token=None,
    )
    with moto_enforcing(aws):
        own = s3.list_objects_v2(Bucket=ephemeral.outputs["event_store_bucket"])
        assert own["ResponseMetadata"]["HTTPStatusCode"] == 200
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.list_objects_v2(Bucket=protected_stack.outputs["event_store_bucket"])
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.put_object(
                Bucket=ephemeral.outputs["event_store_bucket"], Key="events/x", Body=b"{}"
            )
