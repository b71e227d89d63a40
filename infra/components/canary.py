"""The model Lambda and the CodeDeploy canary that shifts traffic to each new version."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.components import type_token
from infra.components.base import child, service_role, statement
from infra.components.function import PythonFunction, PythonFunctionArgs

# CodeDeploy stops on either alarm and rolls back, whichever way the deployment ends badly.
ROLLBACK_EVENTS = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM")
NOTIFIED_EVENTS = ("DeploymentFailure", "DeploymentStop", "DeploymentRollback", "DeploymentSuccess")
# A hook must report within CodeDeploy's hour; the smoke check takes seconds.
HOOK_TIMEOUT_SECONDS = 60
MODEL_ARTIFACT = Path(__file__).resolve().parent.parent / "handlers/model/model.json"


def model_features() -> list[str]:
    return list(json.loads(MODEL_ARTIFACT.read_text())["features"])


# What a publisher needs on an encrypted topic's key (SNS's server-side encryption docs).
SNS_KEY_ACTIONS = ("kms:GenerateDataKey*", "kms:Decrypt")


def sns_key_conditions(region: str, account: str) -> dict:
    """Key use only through SNS in this region, by this account."""
    return {"kms:ViaService": f"sns.{region}.amazonaws.com", "kms:CallerAccount": account}


@dataclass(frozen=True)
class CanaryDeploymentArgs:
    function_name: str
    role_name: str
    log_group_name: str
    alias_name: str
    application: str
    deployment_group: str
    service_role: str
    topic: str
    alias_alarm: str
    candidate_alarm: str
    # The Lambda that runs the smoke check inside each deployment (BeforeAllowTraffic and
    # AfterAllowTraffic), so a broken version is rolled back even if no runner watches.
    hooks_function: str
    hooks_role: str
    hooks_log_group: str
    deployment_config: (
        str  # a canary or linear config, e.g. CodeDeployDefault.LambdaCanary10Percent5Minutes
    )
    error_threshold: int
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    # The shared stack's role boundary; every role the component makes carries it.
    permissions_boundary: pulumi.Input[str] | None = None
    # The model's packaged dependencies (infra.packaging), None when it needs none.
    dependencies_dir: Path | None = None


class CanaryDeployment(pulumi.ComponentResource):
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias
    topic: aws.sns.Topic
    alarms: list[aws.cloudwatch.MetricAlarm]
    service_role: aws.iam.Role
    application: aws.codedeploy.Application
    deployment_group: aws.codedeploy.DeploymentGroup

    def __init__(
        self, name: str, args: CanaryDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("CanaryDeployment"), name, None, opts)
        model = PythonFunction(
            f"{name}-model",
            PythonFunctionArgs(
                function_name=args.function_name,
                role_name=args.role_name,
                log_group_name=args.log_group_name,
                source_dir="model",
                description="Serves the ML model; each deploy publishes a candidate version "
                f"that CodeDeploy shifts the '{args.alias_name}' alias to",
                memory_mb=args.memory_mb,
                timeout_seconds=args.timeout_seconds,
                log_retention_days=args.log_retention_days,
                publish=True,
                environment={"MODEL_ALIAS": args.alias_name},
                permissions_boundary=args.permissions_boundary,
                dependencies_dir=args.dependencies_dir,
            ),
            # The code Pulumi ships is the repository's model.json (`nox -s train`); each
            # push's training run then publishes a version with its own artifact
            # (scripts.train), which promote moves traffic to. Pulumi does not read back
            # code it did not write, so a later `up` changes the code only when the
            # handler, the local artifact or the dependencies change in git.
            opts=child(self),
        )
        self.function = model.function
        self.alias = aws.lambda_.Alias(
            f"{name}-alias",
            name=args.alias_name,
            function_name=self.function.name,
            function_version=self.function.version,
            description="Traffic the clients get; moved only by the promote step",
            # Pulumi sets the first version; after that the promote script owns
            # which version(s) the alias serves (it shifts traffic after human
            # approval, and CodeDeploy rolls back), so `pulumi up` publishing a
            # candidate must never revert an approved promotion.
            opts=child(self, ignore_changes=["function_version", "routing_config"]),
        )
        # AWS-managed key: encrypted at rest at no key cost. CodeDeploy publishes
        # with its service role; publishing to an encrypted topic takes
        # kms:GenerateDataKey* and kms:Decrypt on the key, granted below (and in the
        # role boundary) only through SNS, so the stop and rollback notices arrive.
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=args.topic,
            kms_master_key_id="alias/aws/sns",
            opts=child(self),
        )
        self.alarms = [
            self._errors_alarm(f"{name}-alias-errors", args.alias_alarm, args, version=None),
            # Only the new version's errors while traffic shifts: a candidate
            # failing on its 10% share must stop the deployment even when the
            # alias as a whole stays under the threshold.
            self._errors_alarm(
                f"{name}-candidate-errors",
                args.candidate_alarm,
                args,
                version=self.function.version,
            ),
        ]

        invoke = pulumi.InvokeOptions(parent=self)
        account_id = aws.get_caller_identity(opts=invoke).account_id
        region = aws.get_region(opts=invoke).region
        group_arn = pulumi.Output.concat(
            "arn:aws:codedeploy:",
            region,
            ":",
            account_id,
            ":deploymentgroup:",
            args.application,
            "/",
            args.deployment_group,
        )
        self.hooks = PythonFunction(
            f"{name}-hooks",
            PythonFunctionArgs(
                function_name=args.hooks_function,
                role_name=args.hooks_role,
                log_group_name=args.hooks_log_group,
                source_dir="deploy_hooks",
                description="CodeDeploy BeforeAllowTraffic/AfterAllowTraffic: smoke-checks "
                "the version a deployment shifts to, and fails the deployment if it is broken",
                memory_mb=128,
                timeout_seconds=HOOK_TIMEOUT_SECONDS,
                log_retention_days=args.log_retention_days,
                # The model's features, so the check's typical row fits a retrained model.
                environment={"MODEL_FEATURES": json.dumps(model_features())},
                statements=(
                    statement(
                        ["lambda:InvokeFunction"],
                        [self.function.arn.apply(lambda arn: f"{arn}:*")],
                    ),
                    statement(
                        [
                            "codedeploy:GetDeployment",
                            "codedeploy:PutLifecycleEventHookExecutionStatus",
                        ],
                        [group_arn],
                    ),
                ),
                permissions_boundary=args.permissions_boundary,
            ),
            opts=child(self),
        )

        # What AWSCodeDeployRoleForLambdaLimited grants, scoped to this stack, and the
        # invocation of this stack's hook function (the AppSpec's lifecycle hooks).
        function_arns = [self.function.arn, self.function.arn.apply(lambda arn: f"{arn}:*")]
        self.service_role, service_policy = service_role(
            self,
            f"{name}-codedeploy",
            role_name=args.service_role,
            service="codedeploy.amazonaws.com",
            permissions_boundary=args.permissions_boundary,
            statements=[
                statement(
                    [
                        "lambda:GetAlias",
                        "lambda:UpdateAlias",
                        "lambda:GetProvisionedConcurrencyConfig",
                    ],
                    function_arns,
                ),
                # DescribeAlarms takes the alarm resource type: these two only.
                statement(["cloudwatch:DescribeAlarms"], [alarm.arn for alarm in self.alarms]),
                statement(["sns:Publish"], [self.topic.arn]),
                statement(["lambda:InvokeFunction"], [self.hooks.function.arn]),
                # The AWS-managed key's id is not known before it exists: any key of
                # this account and region, and only as SNS uses it.
                statement(
                    list(SNS_KEY_ACTIONS),
                    [f"arn:aws:kms:{region}:{account_id}:key/*"],
                    Condition={"StringEquals": sns_key_conditions(region, account_id)},
                ),
            ],
        )
        self.application = aws.codedeploy.Application(
            f"{name}-application",
            name=args.application,
            compute_platform="Lambda",
            opts=child(self),
        )
        self.deployment_group = aws.codedeploy.DeploymentGroup(
            f"{name}-group",
            app_name=self.application.name,
            deployment_group_name=args.deployment_group,
            service_role_arn=self.service_role.arn,
            deployment_config_name=args.deployment_config,
            deployment_style={
                "deployment_option": "WITH_TRAFFIC_CONTROL",
                "deployment_type": "BLUE_GREEN",
            },
            alarm_configuration={
                "enabled": True,
                "alarms": [alarm.name for alarm in self.alarms],
            },
            auto_rollback_configuration={"enabled": True, "events": list(ROLLBACK_EVENTS)},
            trigger_configurations=[
                {
                    "trigger_name": "deployment-notifications",
                    "trigger_events": list(NOTIFIED_EVENTS),
                    "trigger_target_arn": self.topic.arn,
                }
            ],
            # CodeDeploy checks at creation that it can assume the role and
            # publish to the trigger topic.
            opts=child(self, depends_on=[service_policy]),
        )
        self.register_outputs(
            {
                "function_name": self.function.name,
                "hooks_function": self.hooks.function.name,
                "alias": self.alias.name,
                "candidate_version": self.function.version,
                "application": self.application.name,
                "deployment_group": self.deployment_group.deployment_group_name,
                "topic_arn": self.topic.arn,
            }
        )

    def _errors_alarm(
        self,
        name: str,
        alarm_name: str,
        args: CanaryDeploymentArgs,
        version: pulumi.Output[str] | None,
    ) -> aws.cloudwatch.MetricAlarm:
        dimensions: dict[str, pulumi.Input[str]] = {
            "FunctionName": args.function_name,
            "Resource": f"{args.function_name}:{args.alias_name}",
        }
        if version is not None:
            dimensions["ExecutedVersion"] = version
        # No alarm_actions: CloudWatch cannot publish to a topic encrypted with
        # the AWS-managed SNS key (its key policy admits no service principals).
        # CodeDeploy polls the alarm state itself and notifies through its
        # DeploymentStop/DeploymentRollback triggers, which do reach the topic.
        return aws.cloudwatch.MetricAlarm(
            name,
            name=alarm_name,
            alarm_description=f"Errors of {args.function_name} through alias {args.alias_name}"
            + (" on the candidate version" if version is not None else ""),
            namespace="AWS/Lambda",
            metric_name="Errors",
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            threshold=args.error_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            # No invocations is no evidence of failure; a quiet branch must not roll back.
            treat_missing_data="notBreaching",
            dimensions=dimensions,
            # Pulumi sets the candidate alarm's version once; after that the promote script
            # owns it and points it at the version it shifts, so a push during a canary
            # cannot move the watch onto a newer version while the old one takes traffic.
            opts=child(self, ignore_changes=["dimensions"] if version is not None else None),
        )
