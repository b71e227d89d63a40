"""Build in moto what `pulumi up` creates for a branch, named by the same naming module.

The Pulumi engine cannot run here, so the operations tests start from the
state a deploy leaves: these are the resources and outputs the program
declares, created through the real AWS APIs (served by moto).
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import config, naming
from infra.components import model_testing
from scripts import events
from scripts.lib import outputs
from scripts.lib.aws import client

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


def _processor() -> Any:
    spec = importlib.util.spec_from_file_location(
        "event_processor_handler", ROOT / "infra/handlers/event_processor/handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in (ROOT / "infra/handlers/model").iterdir():
            if path.is_file():
                archive.write(path, path.name)
    return buffer.getvalue()


@dataclass
class DeployedStack:
    branch: str
    names: naming.BranchNames
    outputs: dict[str, Any]
    clients: dict[str, Any] = field(default_factory=dict)
    outputs_file: Path | None = None
    test_queue_url: str = ""

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = client(service, REGION)
        return self.clients[service]

    def deliver_events(self) -> list[dict]:
        """Hand what the bus delivered to the real processor handler, as Lambda would."""
        processor = _processor()
        sqs, s3 = self.client("sqs"), self.client("s3")
        results = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.test_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return results
            for message in messages:
                event = json.loads(message["Body"])
                results.append(
                    processor.process(
                        event,
                        s3=s3,
                        bucket=self.names.event_store_bucket,
                        sqs=sqs,
                        queue_url=self.outputs["event_dlq_url"],
                    )
                )
                sqs.delete_message(
                    QueueUrl=self.test_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def stack_outputs(self) -> outputs.StackOutputs:
        return outputs.from_file(self.outputs_file)

    def alias_state(self) -> tuple[str, dict]:
        """The alias's primary version and its extra version weights."""
        response = self.client("lambda").get_alias(
            FunctionName=self.names.model_function, Name=self.names.model_alias
        )
        weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return response["FunctionVersion"], weights

    def set_alias(self, primary: str, weights: dict) -> None:
        """Leave the alias as a killed promotion would, or as a person set it."""
        self.client("lambda").update_alias(
            FunctionName=self.names.model_function,
            Name=self.names.model_alias,
            FunctionVersion=primary,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    def history(self) -> list[dict]:
        """The details of the model's stored events, after the bus's deliveries are processed."""
        self.deliver_events()
        return [e["detail"] for e in events.history(self.client("s3"), self.stack_outputs())]

    def publish_candidate(self) -> str:
        """What the next deploy does: new code, new published version; the alias stays."""
        lam = self.client("lambda")
        lam.update_function_code(
            FunctionName=self.names.model_function, ZipFile=_model_zip(), Publish=False
        )
        version = lam.publish_version(FunctionName=self.names.model_function)["Version"]
        self.outputs["model_candidate_version"] = version
        if self.outputs_file:
            self.outputs_file.write_text(json.dumps(self.outputs))
        return version


def build_deployed_stack(branch: str) -> DeployedStack:
    settings = config.settings_for_stack(naming.slugify(branch))
    stack = settings.branch_stack(branch)
    names = naming.branch_names(settings.project, stack, ACCOUNT, settings.api_versions)
    result = DeployedStack(branch, names, {})
    s3, events, sqs = result.client("s3"), result.client("events"), result.client("sqs")
    lam, iam, cw = result.client("lambda"), result.client("iam"), result.client("cloudwatch")
    codedeploy, apigw = result.client("codedeploy"), result.client("apigateway")

    for bucket in (names.artifact_bucket, names.event_store_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # The runner as the program declares it: same buildspec, variables and log group.
    result.client("codebuild").create_project(
        name=names.training_project,
        source={
            "type": "S3",
            "location": f"{names.artifact_bucket}/{model_testing.SOURCE_KEY}",
            "buildspec": model_testing.buildspec(settings.training_command),
        },
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "computeType": settings.training_compute_type,
            "image": settings.training_image,
            "environmentVariables": [
                {"name": "ARTIFACT_BUCKET", "value": names.artifact_bucket, "type": "PLAINTEXT"},
                {"name": "BRANCH", "value": stack.branch, "type": "PLAINTEXT"},
            ],
        },
        serviceRole=f"arn:aws:iam::{ACCOUNT}:role/{names.training_role}",
        logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": names.training_log_group}},
    )

    source = naming.event_source(settings.project)
    bus_arn = events.create_event_bus(Name=names.event_bus)["EventBusArn"]
    events.create_archive(
        ArchiveName=names.event_archive,
        EventSourceArn=bus_arn,
        EventPattern=json.dumps({"source": [source]}),
    )
    rule_arn = events.put_rule(
        Name=names.event_rule,
        EventBusName=names.event_bus,
        EventPattern=json.dumps({"source": [source]}),
    )["RuleArn"]
    # moto cannot deliver to a Lambda target; a queue on the same rule shows
    # what the processor would receive, and tests hand it to the real handler.
    queue_url = sqs.create_queue(QueueName=f"{names.event_rule}-observed")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_targets(
        Rule=names.event_rule,
        EventBusName=names.event_bus,
        Targets=[{"Id": "observed", "Arn": queue_arn}],
    )
    result.test_queue_url = queue_url
    dlq_url = sqs.create_queue(QueueName=names.event_dlq)["QueueUrl"]

    role_arn = iam.create_role(
        RoleName=names.model_role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    function = lam.create_function(
        FunctionName=names.model_function,
        Runtime="python3.12",
        Role=role_arn,
        Handler="handler.handler",
        Code={"ZipFile": _model_zip()},
        Publish=True,
    )
    first_version = function["Version"]
    lam.create_alias(
        FunctionName=names.model_function, Name=names.model_alias, FunctionVersion=first_version
    )
    for alarm, dimensions in (
        (names.alias_errors_alarm, [{"Name": "Resource", "Value": "x:live"}]),
        (names.version_errors_alarm, [{"Name": "ExecutedVersion", "Value": "2"}]),
    ):
        cw.put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Dimensions=[{"Name": "FunctionName", "Value": names.model_function}, *dimensions],
        )
    topic_arn = result.client("sns").create_topic(Name=names.deploy_topic)["TopicArn"]
    codedeploy.create_application(
        applicationName=names.deploy_application, computePlatform="Lambda"
    )
    codedeploy.create_deployment_group(
        applicationName=names.deploy_application,
        deploymentGroupName=names.deploy_group,
        serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{names.deploy_role}",
        deploymentConfigName=settings.canary_deployment_config,
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        alarmConfiguration={
            "enabled": True,
            "alarms": [{"name": names.alias_errors_alarm}, {"name": names.version_errors_alarm}],
        },
        autoRollbackConfiguration={
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
        },
    )

    api_id = apigw.create_rest_api(name=names.api)["id"]
    root_id = next(
        r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/"
    )
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{names.model_function}"
    for version in settings.api_versions:
        resource_id = apigw.create_resource(restApiId=api_id, parentId=root_id, pathPart=version)[
            "id"
        ]
        apigw.put_method(
            restApiId=api_id, resourceId=resource_id, httpMethod="ANY", authorizationType="NONE"
        )
        apigw.put_integration(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod="ANY",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=(
                f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                f"{function_arn}:${{stageVariables.alias}}/invocations"
            ),
        )
    deployment_id = apigw.create_deployment(restApiId=api_id, description="initial")["id"]
    for stage in names.api_stages.values():
        apigw.create_stage(
            restApiId=api_id,
            stageName=stage,
            deploymentId=deployment_id,
            variables={"alias": names.model_alias},
        )

    url = f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    result.outputs = {
        "branch": stack.branch,
        "stack_kind": stack.kind,
        "region": REGION,
        "artifact_bucket": names.artifact_bucket,
        "training_project": names.training_project,
        "model_function": names.model_function,
        "model_alias": names.model_alias,
        "model_candidate_version": first_version,
        "codedeploy_application": names.deploy_application,
        "codedeploy_group": names.deploy_group,
        "deploy_topic_arn": topic_arn,
        "deploy_hooks_function": names.deploy_hooks_function,
        "alarms": [names.alias_errors_alarm, names.version_errors_alarm],
        "api_id": api_id,
        "api_stages": dict(names.api_stages),
        "api_urls": {v: f"{url}/{s}/{v}" for v, s in names.api_stages.items()},
        "api_url": f"{url}/{settings.api_versions[-1]}/{settings.api_versions[-1]}",
        "event_bus": names.event_bus,
        "event_archive": names.event_archive,
        "event_source": source,
        "event_store_bucket": names.event_store_bucket,
        "event_rule_arn": rule_arn,
        "event_dlq_url": dlq_url,
        "event_dlq_alarm": names.event_dlq_alarm,
    }
    return result
