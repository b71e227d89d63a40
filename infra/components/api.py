"""A REST API with one resource and one stage per major version, all served by the model alias."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.components import type_token
from infra.components.base import child

AUTHORIZATION = {"iam": "AWS_IAM", "api-key": "NONE", "none": "NONE"}
# One JSON line per request: who, what, how it ended, how long it took.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "user": "$context.identity.userArn",
        "apiKeyId": "$context.identity.apiKeyId",
        "time": "$context.requestTime",
        "method": "$context.httpMethod",
        "path": "$context.resourcePath",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
    },
    sort_keys=True,
)

ALIAS_VARIABLE = naming.STAGE_ALIAS_VARIABLE


@dataclass(frozen=True)
class ApiVersionsArgs:
    api_name: str
    stages: Mapping[str, str]  # major version ("v1") -> stage name
    function_name: pulumi.Input[str]
    function_arn: pulumi.Input[str]
    alias_name: str
    region: str
    access_log_group: str
    log_retention_days: int
    # Who may call: "iam" (SigV4, execute-api:Invoke), "api-key" (usage plan) or "none".
    auth: str = "iam"
    throttle_rate_limit: int = 10
    throttle_burst_limit: int = 20


def versions_hash(stages: Mapping[str, str]) -> str:
    """Changes exactly when a version or its stage is added, removed or renamed."""
    return hashlib.sha256(json.dumps(dict(stages), sort_keys=True).encode()).hexdigest()


class ApiVersions(pulumi.ComponentResource):
    rest_api: aws.apigateway.RestApi
    stages: dict[str, aws.apigateway.Stage]
    urls: dict[str, pulumi.Output[str]]
    api_key: aws.apigateway.ApiKey | None

    def __init__(
        self, name: str, args: ApiVersionsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("ApiVersions"), name, None, opts)
        if not args.stages:
            raise ValueError("ApiVersions needs at least one version")
        if args.auth not in AUTHORIZATION:
            raise ValueError(
                f"ApiVersions auth {args.auth!r} is not one of {sorted(AUTHORIZATION)}"
            )
        self.rest_api = aws.apigateway.RestApi(
            name,
            name=args.api_name,
            description="Model API: one path and one stage per major version (/v1, /v2, ...)",
            endpoint_configuration={"types": "REGIONAL"},
            opts=child(self),
        )
        deployed: list[pulumi.Resource] = []
        for version in args.stages:
            resource = aws.apigateway.Resource(
                f"{name}-{version}",
                rest_api=self.rest_api.id,
                parent_id=self.rest_api.root_resource_id,
                path_part=version,
                opts=child(self),
            )
            # config apiAuth decides who may call; stage throttling bounds
            # what any caller, signed or not, can cost or set off alarms with.
            method = aws.apigateway.Method(
                f"{name}-{version}-any",
                rest_api=self.rest_api.id,
                resource_id=resource.id,
                http_method="ANY",
                authorization=AUTHORIZATION[args.auth],
                api_key_required=args.auth == "api-key",
                opts=child(self),
            )
            # The alias comes from a stage variable, so the release step can
            # point one version's stage at another alias without Pulumi.
            uri = pulumi.Output.from_input(args.function_arn).apply(
                lambda arn: (
                    f"arn:aws:apigateway:{args.region}:lambda:path/2015-03-31/functions/"
                    f"{arn}:${{stageVariables.{ALIAS_VARIABLE}}}/invocations"
                )
            )
            integration = aws.apigateway.Integration(
                f"{name}-{version}-integration",
                rest_api=self.rest_api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                type="AWS_PROXY",
                integration_http_method="POST",  # Lambda is always invoked by POST
                uri=uri,
                opts=child(self),
            )
            # Source ARN = {execution ARN}/{stage}/{HTTP method}/{path}. An ANY
            # method is invoked with the request's own verb, so the method part
            # must be "*"; any stage of this API may call, only on this path.
            aws.lambda_.Permission(
                f"{name}-{version}-invoke",
                function=args.function_name,
                qualifier=args.alias_name,
                action="lambda:InvokeFunction",
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(self.rest_api.execution_arn, f"/*/*/{version}"),
                opts=child(self),
            )
            resource_doc = aws.apigateway.DocumentationPart(
                f"{name}-{version}-doc",
                rest_api_id=self.rest_api.id,
                location={"type": "RESOURCE", "path": f"/{version}"},
                properties=json.dumps(
                    {
                        "description": f"Version {version} of the model API.",
                        "summary": f"Model API {version}",
                    }
                ),
                opts=child(self, depends_on=[resource]),
            )
            # "*" is the location's documented wildcard ("any method"), which is
            # what an ANY method is; the method-specific values are HTTP verbs.
            method_doc = aws.apigateway.DocumentationPart(
                f"{name}-{version}-any-doc",
                rest_api_id=self.rest_api.id,
                location={"type": "METHOD", "path": f"/{version}", "method": "*"},
                properties=json.dumps(
                    {
                        "description": "Scores instances with the model: POST "
                        '{"instances": [{feature: number, ...}]}.',
                        "summary": f"Predict with model API {version}",
                    }
                ),
                opts=child(self, depends_on=[method]),
            )
            deployed += [method, integration, resource_doc, method_doc]

        # The program's deployment only seeds new stages; releases create their
        # own. A stage the release step has not moved yet still uses this one,
        # and API Gateway refuses to delete a deployment a stage uses, so a
        # replaced deployment is kept until the REST API itself goes.
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            description="Initial deployment of new API versions; releases replace it per stage",
            triggers={"versions": versions_hash(args.stages)},
            opts=child(self, depends_on=deployed, retain_on_delete=True),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=args.access_log_group,
            retention_in_days=args.log_retention_days,
            opts=child(self),
        )
        self.stages = {}
        self.urls = {}
        for version, stage_name in args.stages.items():
            stage = aws.apigateway.Stage(
                f"{name}-{version}-stage",
                rest_api=self.rest_api.id,
                stage_name=stage_name,
                deployment=deployment.id,
                description=f"Serves /{version} of the model API",
                variables={ALIAS_VARIABLE: args.alias_name},
                access_log_settings={
                    "destination_arn": access_logs.arn,
                    "format": ACCESS_LOG_FORMAT,
                },
                # Pulumi creates the stage; after that the release script owns
                # which deployment it serves, its variables and its
                # documentation version (set after human approval), so the next
                # `pulumi up` never reverts a release.
                opts=child(
                    self, ignore_changes=["deployment", "variables", "documentation_version"]
                ),
            )
            # Execution logs of errors only, metrics, and the throttle: free while idle.
            # Logging needs the account's API Gateway role, which the shared stack sets.
            aws.apigateway.MethodSettings(
                f"{name}-{version}-settings",
                rest_api=self.rest_api.id,
                stage_name=stage.stage_name,
                method_path="*/*",
                settings={
                    "metrics_enabled": True,
                    "logging_level": "ERROR",
                    "data_trace_enabled": False,
                    "throttling_rate_limit": args.throttle_rate_limit,
                    "throttling_burst_limit": args.throttle_burst_limit,
                },
                opts=child(self),
            )
            self.stages[version] = stage
            self.urls[version] = pulumi.Output.concat(stage.invoke_url, f"/{version}")
        self.api_key = self._usage_plan(name, args) if args.auth == "api-key" else None
        self.register_outputs({"rest_api_id": self.rest_api.id, "urls": self.urls})

    def _usage_plan(self, name: str, args: ApiVersionsArgs) -> aws.apigateway.ApiKey:
        """With api-key auth: one key, in a usage plan over every stage, with the same throttle."""
        plan = aws.apigateway.UsagePlan(
            f"{name}-usage-plan",
            name=args.api_name,
            description="Callers of the model API (config apiAuth=api-key)",
            api_stages=[
                {"api_id": self.rest_api.id, "stage": stage.stage_name}
                for stage in self.stages.values()
            ],
            throttle_settings={
                "rate_limit": args.throttle_rate_limit,
                "burst_limit": args.throttle_burst_limit,
            },
            opts=child(self),
        )
        key = aws.apigateway.ApiKey(
            f"{name}-key", name=args.api_name, description="Model API key", opts=child(self)
        )
        aws.apigateway.UsagePlanKey(
            f"{name}-plan-key",
            key_id=key.id,
            key_type="API_KEY",
            usage_plan_id=plan.id,
            opts=child(self),
        )
        return key
