"""CodeDeploy lifecycle hooks: smoke-check the model inside the deployment itself.

BeforeAllowTraffic invokes the deployment's target version directly (before any traffic
reaches it); AfterAllowTraffic invokes it again once the alias serves it. Each reports
Succeeded or Failed to CodeDeploy, which rolls back on Failed, so a broken version never
keeps live traffic even when the CI runner that started the promotion is gone. This is
the shape of AWS's safe-deployment samples for Lambda.

Stdlib and boto3 only; the typical row is built from the model's features, which the
stack passes in MODEL_FEATURES (a JSON list), so a retrained model needs no change here.
"""

import json
import os
from typing import Any

import boto3

_clients: dict = {}
# A request the model must refuse with its 400 error: proves input validation is live.
BAD_PAYLOAD = {"instances": [{"no_such_feature": 1.0}]}


def _client(service: Any):
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


def target_version(codedeploy, deployment_id: str) -> tuple[str, str]:
    """(function, version) the deployment shifts to, from its AppSpec."""
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    content = info["revision"]["appSpecContent"]["content"]
    properties = next(iter(json.loads(content)["Resources"][0].values()))["Properties"]
    return str(properties["Name"]), str(properties["TargetVersion"])


def _invoke(lambda_client, function: str, version: str, payload: dict) -> tuple[dict, object]:
    response = lambda_client.invoke(
        FunctionName=function, Qualifier=version, Payload=json.dumps(payload).encode()
    )
    raw = response["Payload"].read()
    try:
        return response, json.loads(raw)
    except ValueError:
        return response, raw.decode(errors="replace")


def problems(lambda_client, function: str, version: str, features: list) -> list:
    """What is wrong with `function:version`; [] when it answers as the model must."""
    found = []
    rows = [dict.fromkeys(features, 1.0)]
    response, body = _invoke(lambda_client, function, version, {"instances": rows})
    if response.get("FunctionError") or response.get("StatusCode") != 200:
        found.append(f"typical row: the function failed ({response.get('FunctionError')}): {body}")
    elif not (
        isinstance(body, dict)
        and isinstance(body.get("predictions"), list)
        and len(body["predictions"]) == len(rows)
    ):
        found.append(f"typical row: unexpected answer {str(body)[:200]!r}")
    response, body = _invoke(lambda_client, function, version, BAD_PAYLOAD)
    if not (isinstance(body, dict) and body.get("statusCode") == 400):
        found.append(f"bad request: expected the model's 400, got {str(body)[:200]!r}")
    return found


def run_hook(event, *, codedeploy, lambda_client, features: list) -> dict:
    deployment_id = event["DeploymentId"]
    hook_id = event["LifecycleEventHookExecutionId"]
    try:
        function, version = target_version(codedeploy, deployment_id)
        found = problems(lambda_client, function, version, features)
    except Exception as error:  # noqa: BLE001 - any failure must fail the deployment
        found = [f"{type(error).__name__}: {error}"]
    status = "Failed" if found else "Succeeded"
    # The deployment waits for this call (up to an hour): it must be made whatever happened.
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id, lifecycleEventHookExecutionId=hook_id, status=status
    )
    print(json.dumps({"deployment": deployment_id, "status": status, "problems": found}))
    return {"status": status, "problems": found}


def handler(event, context):
    features = json.loads(os.environ.get("MODEL_FEATURES") or "[]")
    return run_hook(
        event,
        codedeploy=_client("codedeploy"),
        lambda_client=_client("lambda"),
        features=features,
    )
