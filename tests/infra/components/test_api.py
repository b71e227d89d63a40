"""ApiVersions: one REST API, one path, integration, permission and stage per major version."""

from __future__ import annotations

import json

import pulumi_aws as aws
import pytest
from pulumi.runtime.sync_await import _sync_await

from infra.components.api import ApiVersions, ApiVersionsArgs, versions_hash
from scripts.synth import MOCK_ACCOUNT_ID, SynthError, run_under_mocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REGION = "eu-west-1"
FUNCTION = "mlship-feature-x-model"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{MOCK_ACCOUNT_ID}:function:{FUNCTION}"
VERSION_SETS = [["v1"], ["v1", "v2", "v3"]]

T_RESOURCE = "aws:apigateway/resource:Resource"
T_METHOD = "aws:apigateway/method:Method"
T_INTEGRATION = "aws:apigateway/integration:Integration"
T_PERMISSION = "aws:lambda/permission:Permission"
T_STAGE = "aws:apigateway/stage:Stage"
T_DOC = "aws:apigateway/documentationPart:DocumentationPart"
T_DEPLOYMENT = "aws:apigateway/deployment:Deployment"


def make_args(versions: list[str], **overrides: object) -> ApiVersionsArgs:
    values: dict[str, object] = dict(
        api_name="mlship-feature-x-api",
        stages={v: f"{v}-stage" for v in versions},
        function_name=FUNCTION,
        function_arn=FUNCTION_ARN,
        alias_name="live",
        region=REGION,
        access_log_group="/aws/apigateway/mlship-feature-x-api",
        log_retention_days=14,
    )
    values.update(overrides)
    return ApiVersionsArgs(**values)  # type: ignore[arg-type]


def synth(versions: list[str], captured: list[ApiVersions] | None = None):
    def build() -> None:
        api = ApiVersions("api", make_args(versions))
        if captured is not None:
            captured.append(api)

    return run_under_mocks(build, project="mlship", stack="feature-x", region=REGION)


@pytest.fixture(scope="module", params=VERSION_SETS, ids="+".join)
def case(request):
    return request.param, synth(request.param)


def mocked_api_id(synthesis) -> str:
    """The id ProgramMocks gives the REST API (it derives it from the API's name)."""
    return synthesis.one("aws:apigateway/restApi:RestApi").inputs["name"][:6] + "api01"


def test_one_regional_rest_api(case):
    _, synthesis = case
    api = synthesis.one("aws:apigateway/restApi:RestApi")
    assert api.inputs["name"] == "mlship-feature-x-api"
    assert api.inputs["endpointConfiguration"] == {"types": "REGIONAL"}
    assert "model" in api.inputs["description"].lower()


def test_one_of_everything_per_version(case):
    versions, synthesis = case
    for type_ in (T_RESOURCE, T_METHOD, T_INTEGRATION, T_PERMISSION, T_STAGE):
        assert len(synthesis.of_type(type_)) == len(versions), type_
    assert len(synthesis.of_type(T_DOC)) == 2 * len(versions)
    assert len(synthesis.of_type(T_DEPLOYMENT)) == 1


def test_resources_are_versions_under_the_root(case):
    versions, synthesis = case
    resources = synthesis.of_type(T_RESOURCE)
    assert sorted(r.inputs["pathPart"] for r in resources) == sorted(versions)
    for r in resources:
        assert r.inputs["restApi"] == mocked_api_id(synthesis)
        assert r.inputs["parentId"] == f"{mocked_api_id(synthesis)}-root"


def test_methods_are_any_and_signed_by_default(case):
    _, synthesis = case
    for method in synthesis.of_type(T_METHOD):
        assert method.inputs["httpMethod"] == "ANY"
        assert method.inputs["authorization"] == "AWS_IAM"
        assert not method.inputs.get("apiKeyRequired")
    assert synthesis.of_type("aws:apigateway/usagePlan:UsagePlan") == []


@pytest.mark.parametrize(
    ("auth", "authorization", "key_required"),
    [("none", "NONE", False), ("api-key", "NONE", True), ("iam", "AWS_IAM", False)],
)
def test_auth_choice_decides_what_a_caller_must_bring(auth, authorization, key_required):
    synthesis = run_under_mocks(
        lambda: ApiVersions("api", make_args(["v1", "v2"], auth=auth)),
        project="mlship",
        stack="feature-x",
        region=REGION,
    )
    for method in synthesis.of_type(T_METHOD):
        assert method.inputs["authorization"] == authorization
        assert bool(method.inputs.get("apiKeyRequired")) is key_required
    plans = synthesis.of_type("aws:apigateway/usagePlan:UsagePlan")
    if key_required:
        (plan,) = plans
        api_id = mocked_api_id(synthesis)
        assert sorted(plan.inputs["apiStages"], key=lambda s: s["stage"]) == [
            {"apiId": api_id, "stage": "v1-stage"},
            {"apiId": api_id, "stage": "v2-stage"},
        ]
        assert plan.inputs["throttleSettings"] == {"rateLimit": 10, "burstLimit": 20}
        assert plan.inputs["name"] == "mlship-feature-x-api"
        key = synthesis.one("aws:apigateway/apiKey:ApiKey")
        assert key.inputs["name"] == "mlship-feature-x-api"
        link = synthesis.one("aws:apigateway/usagePlanKey:UsagePlanKey")
        assert link.inputs["keyType"] == "API_KEY"
        component = synthesis.one("mlship:components:ApiVersions", "api")
        assert {r.parent for r in (plan, key, link)} == {component.urn}
    else:
        assert plans == []


def test_an_unknown_auth_choice_is_refused():
    with pytest.raises(SynthError, match="auth 'cognito'"):
        run_under_mocks(
            lambda: ApiVersions("api", make_args(["v1"], auth="cognito")),
            project="mlship",
            stack="feature-x",
        )


def test_every_stage_is_throttled_logged_and_measured(case):
    versions, synthesis = case
    (log_group,) = synthesis.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == "/aws/apigateway/mlship-feature-x-api"
    assert log_group.inputs["retentionInDays"] == 14
    for stage in synthesis.of_type(T_STAGE):
        access = stage.inputs["accessLogSettings"]
        assert access["destinationArn"].endswith(":log-group:/aws/apigateway/mlship-feature-x-api")
        assert "$context.status" in json.loads(access["format"]).values()
    settings = synthesis.of_type("aws:apigateway/methodSettings:MethodSettings")
    assert sorted(s.inputs["stageName"] for s in settings) == sorted(f"{v}-stage" for v in versions)
    for s in settings:
        assert s.inputs["methodPath"] == "*/*"
        assert s.inputs["settings"] == {
            "metricsEnabled": True,
            "loggingLevel": "ERROR",
            "dataTraceEnabled": False,
            "throttlingRateLimit": 10,
            "throttlingBurstLimit": 20,
        }


def test_integrations_proxy_to_the_alias_named_by_a_stage_variable(case):
    _, synthesis = case
    expected = (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
        f"{FUNCTION_ARN}:${{stageVariables.alias}}/invocations"
    )
    for integration in synthesis.of_type(T_INTEGRATION):
        assert integration.inputs["type"] == "AWS_PROXY"
        assert integration.inputs["integrationHttpMethod"] == "POST"
        assert integration.inputs["httpMethod"] == "ANY"
        assert integration.inputs["uri"] == expected


def test_permissions_scoped_to_this_api_alias_and_version_path(case):
    versions, synthesis = case
    execution_arn = f"arn:aws:execute-api:{REGION}:{MOCK_ACCOUNT_ID}:{mocked_api_id(synthesis)}"
    source_arns = []
    for permission in synthesis.of_type(T_PERMISSION):
        assert permission.inputs["function"] == FUNCTION
        assert permission.inputs["qualifier"] == "live"
        assert permission.inputs["principal"] == "apigateway.amazonaws.com"
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["sourceArn"].startswith(f"{execution_arn}/")
        source_arns.append(permission.inputs["sourceArn"])
    # Any stage, any verb (the method is ANY), only this version's path.
    assert sorted(source_arns) == sorted(f"{execution_arn}/*/*/{v}" for v in versions)


def test_documentation_parts_cover_each_resource_and_method(case):
    versions, synthesis = case
    locations = []
    for part in synthesis.of_type(T_DOC):
        assert part.inputs["restApiId"] == mocked_api_id(synthesis)
        properties = json.loads(part.inputs["properties"])
        assert set(properties) == {"description", "summary"}
        assert all(isinstance(v, str) and v for v in properties.values())
        locations.append(part.inputs["location"])
    expected = [{"type": "RESOURCE", "path": f"/{v}"} for v in versions] + [
        {"type": "METHOD", "path": f"/{v}", "method": "*"} for v in versions
    ]

    def key(location):
        return json.dumps(location, sort_keys=True)

    assert sorted(map(key, locations)) == sorted(map(key, expected))


def test_deployment_waits_for_every_method_integration_and_doc_part(case):
    versions, synthesis = case
    deployment = synthesis.one(T_DEPLOYMENT)
    needed = {r.urn for t in (T_METHOD, T_INTEGRATION, T_DOC) for r in synthesis.of_type(t)}
    assert needed <= set(deployment.depends_on)
    assert deployment.inputs["triggers"] == {"versions": versions_hash(make_args(versions).stages)}
    # Stages the release step has not moved still use it: never delete it.
    assert deployment.retain_on_delete


def test_triggers_change_when_versions_change():
    assert versions_hash({"v1": "v1"}) != versions_hash({"v1": "v1", "v2": "v2"})
    assert versions_hash({"v1": "v1", "v2": "v2"}) == versions_hash({"v2": "v2", "v1": "v1"})


def test_stages_start_on_the_deployment_and_leave_releases_to_the_script(case):
    versions, synthesis = case
    deployment = synthesis.one(T_DEPLOYMENT)
    stages = synthesis.of_type(T_STAGE)
    assert sorted(s.inputs["stageName"] for s in stages) == sorted(f"{v}-stage" for v in versions)
    for stage in stages:
        assert stage.inputs["deployment"] == f"{deployment.name}-id"  # the mocked deployment id
        assert stage.inputs["variables"] == {"alias": "live"}
        assert sorted(stage.ignore_changes) == ["deployment", "documentationVersion", "variables"]


@pytest.mark.parametrize("versions", VERSION_SETS, ids="+".join)
def test_component_exposes_stages_and_client_urls(versions):
    captured: list[ApiVersions] = []
    synthesis = synth(versions, captured)
    [api] = captured
    assert isinstance(api.rest_api, aws.apigateway.RestApi)
    assert list(api.stages) == versions
    assert all(isinstance(s, aws.apigateway.Stage) for s in api.stages.values())
    assert list(api.urls) == versions
    rest_api_id = mocked_api_id(synthesis)
    resolved = run_outputs(api.urls)
    for version in versions:
        assert resolved[version] == (
            f"https://{rest_api_id}.execute-api.{REGION}.amazonaws.com/{version}-stage/{version}"
        )


def run_outputs(outputs):
    return {k: _sync_await(v.future()) for k, v in outputs.items()}


def test_every_child_is_parented_to_the_component(case):
    _, synthesis = case
    component = synthesis.one("mlship:components:ApiVersions", "api")
    for r in synthesis.resources:
        if r is not component:
            assert r.parent == component.urn, r.name
            assert r.name.startswith("api"), r.name


def test_no_versions_is_refused():
    with pytest.raises(Exception, match="at least one version"):
        synth([])


def test_documentation_waits_for_what_it_documents(case):
    # API Gateway refuses a documentation part for a path or method that does not exist yet.
    versions, synthesis = case
    for version in versions:
        resource = synthesis.one(T_RESOURCE, f"api-{version}")
        method = synthesis.one(T_METHOD, f"api-{version}-any")
        assert resource.urn in synthesis.one(T_DOC, f"api-{version}-doc").depends_on
        assert method.urn in synthesis.one(T_DOC, f"api-{version}-any-doc").depends_on
