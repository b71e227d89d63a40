"""CanaryDeployment: the model Lambda, its alias and the CodeDeploy canary around them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi_aws as aws
import pytest

from infra import config
from infra.components import canary as canary_module
from infra.components import type_token
from infra.components.canary import CanaryDeployment, CanaryDeploymentArgs
from infra.components.function import RUNTIME
from scripts.synth import MOCK_ACCOUNT_ID, run_under_mocks
from tests.iam.evaluator import ALLOW, Request, evaluate
from tests.iam.model import AccessModel
from tests.project import REGION

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROJECT = config.read_project()[0]
# An ephemeral branch's names, in the project's region (the shared stack's boundary names it).
BASE = f"{PROJECT}-feature-x"
FUNCTION = f"{BASE}-model"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{MOCK_ACCOUNT_ID}:function:{FUNCTION}"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{MOCK_ACCOUNT_ID}:{BASE}-deployments"
CANARY = "CodeDeployDefault.LambdaCanary10Percent5Minutes"


HOOKS = f"{BASE}-deploy-hooks"


def make_args(**overrides: object) -> CanaryDeploymentArgs:
    values: dict[str, object] = dict(
        function_name=FUNCTION,
        role_name=f"{BASE}-model",
        log_group_name=f"/aws/lambda/{FUNCTION}",
        alias_name="live",
        application=f"{BASE}-model",
        deployment_group=f"{BASE}-canary",
        service_role=f"{BASE}-codedeploy",
        topic=f"{BASE}-deployments",
        alias_alarm=f"{BASE}-model-live-errors",
        candidate_alarm=f"{BASE}-model-candidate-errors",
        hooks_function=HOOKS,
        hooks_role=f"{BASE}-deploy-hooks",
        hooks_log_group=f"/aws/lambda/{HOOKS}",
        deployment_config=CANARY,
        error_threshold=3,
        memory_mb=512,
        timeout_seconds=20,
        log_retention_days=14,
    )
    values.update(overrides)
    return CanaryDeploymentArgs(**values)  # type: ignore[arg-type]


def synth(args: CanaryDeploymentArgs | None = None):
    return run_under_mocks(
        lambda: CanaryDeployment("canary", args or make_args()),
        project=PROJECT,
        stack="feature-x",
        region=REGION,
    )


@pytest.fixture(scope="module")
def synthesis():
    return synth()


def function(synthesis):
    return synthesis.one("aws:lambda/function:Function", "canary-model")


def test_function_publishes_versions_with_sizing_from_args(synthesis):
    fn = function(synthesis)
    assert fn.inputs["name"] == FUNCTION
    assert fn.inputs["publish"] is True
    assert fn.inputs["runtime"] == RUNTIME
    assert fn.inputs["handler"] == "handler.handler"
    assert fn.inputs["memorySize"] == 512
    assert fn.inputs["timeout"] == 20
    assert fn.inputs["environment"] == {"variables": {"MODEL_ALIAS": "live"}}
    assert "model" in fn.inputs["description"].lower()


def test_function_sizing_follows_other_args():
    fn = function(synth(make_args(memory_mb=1024, timeout_seconds=60)))
    assert (fn.inputs["memorySize"], fn.inputs["timeout"]) == (1024, 60)


def test_alias_points_at_published_version_and_leaves_traffic_to_promote(synthesis):
    alias = synthesis.one("aws:lambda/alias:Alias")
    assert alias.inputs["name"] == "live"
    assert alias.inputs["functionName"] == FUNCTION
    # ProgramMocks numbers published versions from 1.
    assert alias.inputs["functionVersion"] == "1"
    assert sorted(alias.ignore_changes) == ["functionVersion", "routingConfig"]


def test_every_child_is_parented_inside_the_component(synthesis):
    component = synthesis.one(type_token("CanaryDeployment"), "canary")
    model = synthesis.one(type_token("PythonFunction"), "canary-model")
    hooks = synthesis.one(type_token("PythonFunction"), "canary-hooks")
    assert model.parent == component.urn and hooks.parent == component.urn
    for r in synthesis.resources:
        if r is not component:
            assert r.parent in (component.urn, model.urn, hooks.urn), r.name
            assert r.name.startswith("canary-"), r.name


def test_topic_is_encrypted_with_the_aws_managed_key(synthesis):
    topic = synthesis.one("aws:sns/topic:Topic")
    assert topic.inputs["name"] == f"{BASE}-deployments"
    assert topic.inputs["kmsMasterKeyId"] == "alias/aws/sns"


@pytest.mark.parametrize(
    "config",
    [
        "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
    ],
)
def test_deployment_config_comes_from_args(config):
    group = synth(make_args(deployment_config=config)).one(
        "aws:codedeploy/deploymentGroup:DeploymentGroup"
    )
    assert group.inputs["deploymentConfigName"] == config


def test_group_shifts_traffic_blue_green_and_rolls_back_on_alarm(synthesis):
    group = synthesis.one("aws:codedeploy/deploymentGroup:DeploymentGroup")
    app = synthesis.one("aws:codedeploy/application:Application")
    assert app.inputs["computePlatform"] == "Lambda"
    assert group.inputs["appName"] == f"{BASE}-model"
    assert group.inputs["deploymentGroupName"] == f"{BASE}-canary"
    assert group.inputs["deploymentConfigName"] == CANARY
    assert group.inputs["deploymentStyle"] == {
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
        "deploymentType": "BLUE_GREEN",
    }
    assert group.inputs["autoRollbackConfiguration"] == {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
    }
    assert group.inputs["alarmConfiguration"] == {
        "enabled": True,
        "alarms": [f"{BASE}-model-live-errors", f"{BASE}-model-candidate-errors"],
    }
    [trigger] = group.inputs["triggerConfigurations"]
    assert trigger["triggerTargetArn"] == TOPIC_ARN
    assert sorted(trigger["triggerEvents"]) == [
        "DeploymentFailure",
        "DeploymentRollback",
        "DeploymentStop",
        "DeploymentSuccess",
    ]


def test_group_uses_its_own_codedeploy_role_not_the_lambda_role(synthesis):
    group = synthesis.one("aws:codedeploy/deploymentGroup:DeploymentGroup")
    roles = {r.inputs["name"]: r for r in synthesis.of_type("aws:iam/role:Role")}
    assert set(roles) == {
        f"{BASE}-model",
        f"{BASE}-codedeploy",
        f"{BASE}-deploy-hooks",
    }
    assert group.inputs["serviceRoleArn"] == (
        f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{BASE}-codedeploy"
    )
    trust = json.loads(roles[f"{BASE}-codedeploy"].inputs["assumeRolePolicy"])
    [principal] = [s["Principal"] for s in trust["Statement"]]
    assert principal == {"Service": "codedeploy.amazonaws.com"}
    assert function(synthesis).inputs["role"] != group.inputs["serviceRoleArn"]


def service_policy(synthesis):
    [policy] = [
        r
        for r in synthesis.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name == "canary-codedeploy-policy"
    ]
    return policy


def test_group_waits_for_the_service_role_policy(synthesis):
    group = synthesis.one("aws:codedeploy/deploymentGroup:DeploymentGroup")
    assert service_policy(synthesis).urn in group.depends_on


def test_service_role_policy_is_scoped_to_this_stack(synthesis):
    policy = service_policy(synthesis)
    assert policy.inputs["role"] == f"{BASE}-codedeploy"
    statements = json.loads(policy.inputs["policy"])["Statement"]
    granted = {tuple(s["Action"]): s["Resource"] for s in statements}
    assert all(s["Effect"] == "Allow" for s in statements)
    assert granted == {
        ("lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"): [
            FUNCTION_ARN,
            f"{FUNCTION_ARN}:*",
        ],
        ("cloudwatch:DescribeAlarms",): [
            f"arn:aws:cloudwatch:{REGION}:{MOCK_ACCOUNT_ID}:alarm:{name}"
            for name in alarms(synthesis)
        ],
        ("sns:Publish",): [TOPIC_ARN],
        ("lambda:InvokeFunction",): [f"arn:aws:lambda:{REGION}:{MOCK_ACCOUNT_ID}:function:{HOOKS}"],
        ("kms:GenerateDataKey*", "kms:Decrypt"): [f"arn:aws:kms:{REGION}:{MOCK_ACCOUNT_ID}:key/*"],
    }


@pytest.fixture
def decide(access: AccessModel) -> Callable[[list[dict], Request], str]:
    """What a role of an ephemeral stack may do: its own policy under the boundary its
    deploy role must set (the shared stack's, as synthesized)."""
    boundary = access.boundaries[str(access.outputs["role_boundary_arn"])]
    return lambda statements, request: evaluate(
        [{"Statement": statements}], request, boundary=boundary
    )


def test_codedeploy_can_deliver_its_notices_to_the_encrypted_topic(synthesis, decide):
    # Publishing to an SSE topic takes the key too: SNS asks KMS on the publisher's behalf.
    role = json.loads(service_policy(synthesis).inputs["policy"])["Statement"]
    key = f"arn:aws:kms:{REGION}:{MOCK_ACCOUNT_ID}:key/aws-sns-managed"
    via_sns = {
        "kms:ViaService": f"sns.{REGION}.amazonaws.com",
        "kms:CallerAccount": MOCK_ACCOUNT_ID,
    }
    assert decide(role, Request("sns:Publish", TOPIC_ARN)) == ALLOW
    assert decide(role, Request("kms:GenerateDataKey", key, via_sns)) == ALLOW
    assert decide(role, Request("kms:Decrypt", key, via_sns)) == ALLOW
    # ...and only through SNS, only in this account.
    for context in (
        {**via_sns, "kms:ViaService": f"s3.{REGION}.amazonaws.com"},
        {**via_sns, "kms:CallerAccount": "1" * 12},
        {},
    ):
        assert decide(role, Request("kms:Decrypt", key, context)) != ALLOW, context
    # Another stack's topic is not its to publish to.
    assert decide(role, Request("sns:Publish", TOPIC_ARN.replace("feature-x", "other"))) != ALLOW


def alarms(synthesis):
    return {
        r.inputs["name"]: r for r in synthesis.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }


def test_alarms_watch_lambda_errors_of_alias_and_candidate(synthesis):
    found = alarms(synthesis)
    assert set(found) == {
        f"{BASE}-model-live-errors",
        f"{BASE}-model-candidate-errors",
    }
    for alarm in found.values():
        assert alarm.inputs["namespace"] == "AWS/Lambda"
        assert alarm.inputs["metricName"] == "Errors"
        assert alarm.inputs["statistic"] == "Sum"
        assert alarm.inputs["period"] == 60
        assert alarm.inputs["threshold"] == 3
        assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm.inputs["treatMissingData"] == "notBreaching"
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key;
        # CodeDeploy's triggers carry the stop/rollback notifications instead.
        assert "alarmActions" not in alarm.inputs
    assert found[f"{BASE}-model-live-errors"].inputs["dimensions"] == {
        "FunctionName": FUNCTION,
        "Resource": f"{FUNCTION}:live",
    }
    assert found[f"{BASE}-model-candidate-errors"].inputs["dimensions"] == {
        "FunctionName": FUNCTION,
        "Resource": f"{FUNCTION}:live",
        "ExecutedVersion": "1",
    }
    # After creation promote owns which version the candidate alarm watches.
    assert found[f"{BASE}-model-candidate-errors"].ignore_changes == ["dimensions"]
    assert not found[f"{BASE}-model-live-errors"].ignore_changes


def test_alarm_threshold_follows_args():
    found = alarms(synth(make_args(error_threshold=25)))
    assert {a.inputs["threshold"] for a in found.values()} == {25}


def test_component_exposes_what_the_program_reads():
    captured: list[CanaryDeployment] = []

    def build() -> None:
        captured.append(CanaryDeployment("canary", make_args()))

    run_under_mocks(build, project=PROJECT, stack="feature-x", region=REGION)
    [canary] = captured
    assert isinstance(canary.function, aws.lambda_.Function)
    assert isinstance(canary.alias, aws.lambda_.Alias)
    assert isinstance(canary.application, aws.codedeploy.Application)
    assert isinstance(canary.deployment_group, aws.codedeploy.DeploymentGroup)
    assert isinstance(canary.topic, aws.sns.Topic)
    assert isinstance(canary.service_role, aws.iam.Role)
    assert [type(a) for a in canary.alarms] == [aws.cloudwatch.MetricAlarm] * 2


def _role_policy(synthesis, role: str) -> list[dict]:
    (policy,) = [
        r for r in synthesis.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role
    ]
    return json.loads(policy.inputs["policy"])["Statement"]


def test_the_deploy_hooks_smoke_check_inside_each_deployment(synthesis, decide):
    hooks = synthesis.one("aws:lambda/function:Function", "canary-hooks")
    assert hooks.inputs["name"] == HOOKS
    # The typical row is built from the model's own features.
    features = json.loads(hooks.inputs["environment"]["variables"]["MODEL_FEATURES"])
    assert features and features == canary_module.model_features()
    hooks_arn = f"arn:aws:lambda:{REGION}:{MOCK_ACCOUNT_ID}:function:{HOOKS}"
    group = (
        f"arn:aws:codedeploy:{REGION}:{MOCK_ACCOUNT_ID}:deploymentgroup:{BASE}-model/{BASE}-canary"
    )
    statements = _role_policy(synthesis, f"{BASE}-deploy-hooks")
    # It may invoke the model's versions, and report to its own deployment group only,
    # under the boundary its deploy role sets.
    assert decide(statements, Request("lambda:InvokeFunction", f"{FUNCTION_ARN}:7")) == ALLOW
    assert decide(statements, Request("lambda:InvokeFunction", hooks_arn)) != ALLOW
    for action in ("codedeploy:GetDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus"):
        assert decide(statements, Request(action, group)) == ALLOW, action
        other = group.replace("feature-x", "other")
        assert decide(statements, Request(action, other)) != ALLOW, action
    # CodeDeploy, which runs the hooks, may invoke this function (and not the model).
    service = json.loads(service_policy(synthesis).inputs["policy"])["Statement"]
    assert decide(service, Request("lambda:InvokeFunction", hooks_arn)) == ALLOW
    assert decide(service, Request("lambda:InvokeFunction", f"{FUNCTION_ARN}:7")) != ALLOW
