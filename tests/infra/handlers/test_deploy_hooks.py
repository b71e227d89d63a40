"""The CodeDeploy hooks smoke-check the target version and always report back."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from scripts.lib.codedeploy import appspec
from tests.project import ROOT


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load("deploy_hooks", ROOT / "infra/handlers/deploy_hooks/handler.py")
model = _load("model_for_hooks", ROOT / "infra/handlers/model/handler.py")
FEATURES = json.loads((ROOT / "infra/handlers/model/model.json").read_text())["features"]
EVENT = {"DeploymentId": "d-ABC123", "LifecycleEventHookExecutionId": "hook-exec-1"}


class ModelLambda:
    """Lambda Invoke answered by the real model handler, or by a broken one."""

    def __init__(self, broken: bool = False) -> None:
        self.broken, self.calls = broken, []

    def invoke(self, FunctionName, Qualifier, Payload):
        self.calls.append((FunctionName, Qualifier))
        if self.broken:
            body = {"errorMessage": "ImportError: model.json is invalid"}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _body(body)}
        return {"StatusCode": 200, "Payload": _body(model.handler(json.loads(Payload), None))}


def _body(value) -> io.BytesIO:
    return io.BytesIO(json.dumps(value).encode())


def _appspec(version: str) -> str:
    # What promote sends: the hook reads the deployment's own AppSpec back.
    return appspec("m-model", "live", "1", version, hooks="m-deploy-hooks")


@pytest.fixture
def codedeploy():
    client = boto3.client(
        "codedeploy",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        endpoint_url="https://codedeploy.invalid",
    )
    with Stubber(client) as stub:
        yield client, stub


def _expect(stub, status: str, *, deployment_found: bool = True) -> None:
    if deployment_found:
        stub.add_response(
            "get_deployment",
            {
                "deploymentInfo": {
                    "deploymentId": "d-ABC123",
                    "revision": {
                        "revisionType": "AppSpecContent",
                        "appSpecContent": {"content": _appspec("7")},
                    },
                }
            },
            {"deploymentId": "d-ABC123"},
        )
    else:
        stub.add_client_error("get_deployment", "AccessDeniedException", "not allowed (test)")
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": "hook-exec-1"},
        {
            "deploymentId": "d-ABC123",
            "lifecycleEventHookExecutionId": "hook-exec-1",
            "status": status,
        },
    )


def test_a_healthy_target_version_lets_the_deployment_go_on(codedeploy) -> None:
    client, stub = codedeploy
    _expect(stub, "Succeeded")
    lam = ModelLambda()

    result = hooks.run_hook(EVENT, codedeploy=client, lambda_client=lam, features=FEATURES)

    assert result == {"status": "Succeeded", "problems": []}
    # The target version itself, invoked directly: the typical row, then the bad request.
    assert lam.calls == [("m-model", "7"), ("m-model", "7")]
    stub.assert_no_pending_responses()


def test_a_broken_version_fails_the_deployment(codedeploy) -> None:
    client, stub = codedeploy
    _expect(stub, "Failed")

    result = hooks.run_hook(
        EVENT, codedeploy=client, lambda_client=ModelLambda(broken=True), features=FEATURES
    )

    assert result["status"] == "Failed"
    assert "model.json is invalid" in result["problems"][0]
    stub.assert_no_pending_responses()


def test_a_hook_that_cannot_look_still_reports_failed(codedeploy) -> None:
    # CodeDeploy would otherwise wait an hour for the hook before giving up.
    client, stub = codedeploy
    _expect(stub, "Failed", deployment_found=False)

    result = hooks.run_hook(EVENT, codedeploy=client, lambda_client=ModelLambda(), features=[])

    assert result["status"] == "Failed" and "AccessDenied" in result["problems"][0]
    stub.assert_no_pending_responses()
