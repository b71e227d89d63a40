"""Promotion through CodeDeploy: a deployment with a Lambda AppSpec shifts alias `live` by the
deployment group's config, watches the group's alarms and rolls back by itself; this
module creates the deployment (or attaches to one in flight), waits and reports.

Rollback stops the deployments in flight it finds here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import WaiterError

from infra import config
from scripts.lib import aws
from scripts.lib.alarms import watch_candidate
from scripts.lib.lambda_alias import AliasState, read_alias, require_version, set_alias
from scripts.lib.progress import Progress
from scripts.lib.promotion import ALREADY, PROMOTED, ROLLED_BACK, PromotionResult, Step
from scripts.lib.traffic_events import Emit, record

IN_FLIGHT = ("Created", "Queued", "InProgress", "Ready")
# CodeDeploy's own start-up and its last alarm check, beyond the config's shifting time.
WAIT_MARGIN_MINUTES = 5


def in_flight_deployments(codedeploy_client: Any, application: str, group: str) -> list[str]:
    return list(
        aws.pages(
            codedeploy_client,
            "list_deployments",
            "deployments",
            applicationName=application,
            deploymentGroupName=group,
            includeOnlyStatuses=list(IN_FLIGHT),
        )
    )


def appspec(function: str, alias: str, current: str, target: str, hooks: str = "") -> str:
    """The Lambda AppSpec; with a hook function, CodeDeploy smoke-checks before and after."""
    spec: dict[str, Any] = {}
    if hooks:
        spec["Hooks"] = [{"BeforeAllowTraffic": hooks}, {"AfterAllowTraffic": hooks}]
    return json.dumps(
        {
            **spec,
            "version": 0.0,
            "Resources": [
                {
                    function: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": function,
                            "Alias": alias,
                            "CurrentVersion": current,
                            "TargetVersion": target,
                        },
                    }
                }
            ],
        },
        sort_keys=True,
    )


def _appspec_versions(info: Mapping[str, Any]) -> tuple[str | None, str | None]:
    content: Any = ((info.get("revision") or {}).get("appSpecContent") or {}).get("content")
    try:
        resources = json.loads(content)["Resources"]
        properties = next(iter(resources[0].values()))["Properties"]
        return str(properties["CurrentVersion"]), str(properties["TargetVersion"])
    except (TypeError, ValueError, KeyError, IndexError, StopIteration):
        return None, None


_CANARY = re.compile(r"CodeDeployDefault\.LambdaCanary(\d+)Percent(\d+)Minutes?")
_LINEAR = re.compile(r"CodeDeployDefault\.LambdaLinear(\d+)PercentEvery(\d+)Minutes?")


def traffic_steps(config_name: str) -> list[tuple[int, int]]:
    """(percent, minutes from start) of a built-in Lambda deployment config; [] if custom."""
    # Built-in names spell out their schedule; parsing them avoids a GetDeploymentConfig
    # call (and a permission) just to print a table.
    if canary := _CANARY.fullmatch(config_name):
        percent, minutes = int(canary[1]), int(canary[2])
        return [(percent, 0), (100, minutes)]
    if linear := _LINEAR.fullmatch(config_name):
        percent, minutes = int(linear[1]), int(linear[2])
        count = math.ceil(100 / percent)
        return [(min(100, percent * k), minutes * (k - 1)) for k in range(1, count + 1)]
    if config_name == "CodeDeployDefault.LambdaAllAtOnce":
        return [(100, 0)]
    return []


def _attach(
    codedeploy_client: Any, lambda_client: Any, deployment_id: str, result: PromotionResult
) -> str:
    """The previous version of a deployment in flight to the candidate; refuses any other."""
    info = aws.call(
        f"reading deployment {deployment_id}",
        codedeploy_client.get_deployment,
        deploymentId=deployment_id,
    )["deploymentInfo"]
    current, target = _appspec_versions(info)
    if target is not None and target != result.candidate:
        raise aws.ScriptError(
            f"deployment {deployment_id} of group {info.get('deploymentGroupName')} is in "
            f"flight to version {target}, not {result.candidate}; wait for it to end, or stop "
            "it with `nox -s rollback`"
        )
    return current or read_alias(lambda_client, result.function, result.alias).primary


def _create(
    codedeploy_client: Any,
    lambda_client: Any,
    *,
    application: str,
    group: str,
    result: PromotionResult,
    progress: Progress,
    hooks: str = "",
) -> tuple[str, str] | None:
    """Start a deployment from the alias's version to the candidate; None if already there."""
    function, alias, candidate = result.function, result.alias, result.candidate
    state = read_alias(lambda_client, function, alias)
    if state.weights:
        # CodeDeploy refuses an alias that already splits traffic: a half-way alias
        # shift (an interrupted alias strategy run) goes back to its primary first.
        progress.note(
            f"alias {alias} is at {state.describe()}; restoring version {state.primary} "
            "at 100% before CodeDeploy shifts it"
        )
        set_alias(lambda_client, function, alias, state.primary, revision=state.revision)
    if state.primary == candidate:
        return None
    content = appspec(function, alias, state.primary, candidate, hooks)
    deployment_id = aws.call(
        f"creating a deployment in group {group}",
        codedeploy_client.create_deployment,
        applicationName=application,
        deploymentGroupName=group,
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": {
                "content": content,
                "sha256": hashlib.sha256(content.encode()).hexdigest(),
            },
        },
        description=f"promote {function}:{alias} from version {state.primary} to {candidate}",
    )["deploymentId"]
    return deployment_id, state.primary


def _wait(codedeploy_client: Any, deployment_id: str, delay: int, attempts: int) -> None:
    """Wait for the deployment to end; a timeout or an AWS error raises, Failed/Stopped not."""
    try:
        codedeploy_client.get_waiter("deployment_successful").wait(
            deploymentId=deployment_id,
            WaiterConfig={"Delay": delay, "MaxAttempts": attempts},
        )
    except WaiterError as error:
        last: Mapping[str, Any] = error.last_response or {}
        status = (last.get("deploymentInfo") or {}).get("status")
        if status in ("Failed", "Stopped"):
            return
        if "Error" in last:
            raise aws.ScriptError(
                f"waiting for deployment {deployment_id}: AWS said "
                f"{last['Error'].get('Code')}: {last['Error'].get('Message')}"
            ) from None
        raise aws.ScriptError(
            f"deployment {deployment_id} still {status} after {attempts} check(s) {delay}s "
            "apart; it goes on in AWS: re-run promote to attach to it again, or "
            "`nox -s rollback` to stop it"
        ) from None


def _failure_reason(info: Mapping[str, Any]) -> str:
    failure = info.get("errorInformation") or {}
    reason = (
        f"deployment {info.get('deploymentId')} {info.get('status')}: "
        f"{failure.get('code', '?')}: {failure.get('message', 'no error information')}"
    )
    rollback = info.get("rollbackInfo") or {}
    if rollback:
        reason += (
            f"; rollback {rollback.get('rollbackDeploymentId', '?')}: "
            f"{rollback.get('rollbackMessage', '')}".rstrip(": ")
        )
    return reason


def promote_codedeploy(
    codedeploy_client: Any,
    lambda_client: Any,
    *,
    application: str,
    group: str,
    function: str,
    alias: str,
    candidate: str,
    waiter_delay: int,
    waiter_max_attempts: int,
    progress: Progress | None = None,
    emit: Emit | None = None,
    cloudwatch_client: Any | None = None,
    alarms: Sequence[str] = (),
    hooks: str = "",
) -> PromotionResult:
    """Have CodeDeploy shift the alias (or attach to its deployment in flight) and report."""
    if waiter_delay < 0 or waiter_max_attempts < 1:
        raise aws.UsageError(
            f"--waiter-delay {waiter_delay} / --waiter-max-attempts {waiter_max_attempts}: "
            "give a delay of 0 or more seconds and at least 1 attempt"
        )
    emit = emit or (lambda kind, **fields: None)
    progress = progress or Progress("promote", total=2)
    result = PromotionResult(ALREADY, function, alias, str(candidate), "", "codedeploy")
    candidate = result.candidate
    require_version(lambda_client, function, candidate, "--version")

    running = in_flight_deployments(codedeploy_client, application, group)
    if running:
        # Re-run safety: a second deployment would queue behind (or fight) the first.
        deployment_id = running[0]
        previous = _attach(codedeploy_client, lambda_client, deployment_id, result)
        progress.step(f"attached to deployment {deployment_id} already in flight")
    else:
        if cloudwatch_client is not None and alarms:
            # CodeDeploy stops on the group's alarms: they must watch this candidate.
            watch_candidate(cloudwatch_client, alarms, candidate)
        created = _create(
            codedeploy_client,
            lambda_client,
            application=application,
            group=group,
            result=result,
            progress=progress,
            hooks=hooks,
        )
        if created is None:
            result.previous_version = candidate
            result.message = (
                f"already promoted: alias {alias} of {function} serves version {candidate} "
                "at 100%; nothing to do"
            )
            return result
        deployment_id, previous = created
        record(
            emit,
            "canary-started",
            result.unrecorded,
            version=candidate,
            previous_version=previous,
            strategy="codedeploy",
            deployment_id=deployment_id,
        )
        progress.step(f"created deployment {deployment_id}: version {previous} -> {candidate}")

    result.previous_version, result.deployment_id = previous, deployment_id
    progress.note(
        f"waiting for deployment {deployment_id} "
        f"(up to {waiter_max_attempts} checks, {waiter_delay}s apart)"
    )
    _wait(codedeploy_client, deployment_id, waiter_delay, waiter_max_attempts)
    info = aws.call(
        f"reading deployment {deployment_id}",
        codedeploy_client.get_deployment,
        deploymentId=deployment_id,
    )["deploymentInfo"]
    result.overview = dict(info.get("deploymentOverview") or {})
    config_name = info.get("deploymentConfigName", "?")
    result.steps = [
        Step(f"{percent}%", f"+{minutes} min", "watched by CodeDeploy")
        for percent, minutes in traffic_steps(config_name)
    ] or [Step("see config", config_name, "watched by CodeDeploy")]
    progress.step(f"deployment {deployment_id} {info.get('status')}")
    if info.get("status") == "Succeeded":
        record(
            emit,
            "promoted",
            result.unrecorded,
            version=candidate,
            previous_version=previous,
            strategy="codedeploy",
            deployment_id=deployment_id,
        )
        result.outcome = PROMOTED
        result.message = (
            f"promoted: deployment {deployment_id} ({config_name}) moved alias {alias} of "
            f"{function} to version {candidate} (was {previous})"
        )
        return result

    reason = _failure_reason(info)
    # CodeDeploy shifts traffic back on failure; make sure, so the alias is never half-way.
    current = read_alias(lambda_client, function, alias)
    if current != AliasState(previous, {}):
        set_alias(lambda_client, function, alias, previous, revision=current.revision)
    record(
        emit,
        "rolled-back",
        result.unrecorded,
        version=candidate,
        from_version=candidate,
        to_version=previous,
        reason=reason,
        strategy="codedeploy",
        deployment_id=deployment_id,
    )
    result.outcome = ROLLED_BACK
    result.message = f"rolled back: {reason}; alias {alias} serves version {previous} at 100%"
    return result


def waiter_attempts(delay: int) -> int:
    """Checks enough to see the longest accepted config through, with a margin for CodeDeploy."""
    return math.ceil((config.MAX_CANARY_MINUTES + WAIT_MARGIN_MINUTES) * 60 / max(delay, 1))
