"""Moving alias `live` onto a candidate version: by stepping its weights while watching the
alarms (the alias strategy) or through a CodeDeploy deployment, and checking a candidate.

`python -m scripts.promote` is the command line; its docstring describes the strategies,
the exit codes and why re-running is safe. Rollback reuses the alias reading and writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from botocore.exceptions import ClientError, WaiterError

from infra import config
from scripts.lib import aws
from scripts.lib.progress import Progress

PROMOTED = "promoted"
ALREADY = "already-promoted"
ROLLED_BACK = "rolled-back"
INTERRUPTED = "interrupted"
EXIT_CODES = {PROMOTED: 0, ALREADY: 0, ROLLED_BACK: 1, INTERRUPTED: 130}

IN_FLIGHT = ("Created", "Queued", "InProgress", "Ready")
# CodeDeploy's own start-up and its last alarm check, beyond the config's shifting time.
WAIT_MARGIN_MINUTES = 5
STEPS_VALID = "percentages rising strictly from 1 to exactly 100, e.g. 10,50,100"

Emit = Callable[..., object]


class ConcurrentChange(aws.ScriptError):
    """The alias moved since this run read it: another promotion or a rollback owns it now."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job), raised where the process was so the promotion rolls back."""


@dataclass(frozen=True)
class AliasState:
    primary: str
    weights: Mapping[str, float]
    # Lambda's alias revision: every traffic move names the one it read, so a move made
    # by someone else in between fails instead of being silently overwritten.
    revision: str = field(default="", compare=False)

    def weight_of(self, version: str) -> int:
        return round(self.weights.get(version, 0.0) * 100)

    def describe(self) -> str:
        if not self.weights:
            return f"version {self.primary} at 100%"
        shares = [f"version {v} at {round(w * 100)}%" for v, w in sorted(self.weights.items())]
        rest = 100 - sum(round(w * 100) for w in self.weights.values())
        return ", ".join([f"version {self.primary} at {rest}%", *shares])


@dataclass(frozen=True)
class Step:
    weight: str
    time: str
    alarms: str


@dataclass
class PromotionResult:
    outcome: str
    function: str
    alias: str
    candidate: str
    previous_version: str
    strategy: str
    message: str = ""
    steps: list[Step] = field(default_factory=list)
    deployment_id: str | None = None
    overview: Mapping[str, int] = field(default_factory=dict)
    # Events that could not be recorded after traffic moved, each with its repair command.
    unrecorded: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


# --- shared with rollback -------------------------------------------------------------


def repair_command(kind: str, fields: Mapping[str, Any]) -> str:
    """The command that records an event a verb could not, for its summary."""
    extra = {k: v for k, v in fields.items() if k not in ("model", "version")}
    detail = json.dumps(extra, sort_keys=True).replace("'", "'\\''")
    return (
        f"nox -s events -- emit {kind} --version {fields.get('version')} "
        f"--detail '{detail}' --outputs OUTPUTS.json"
    )


def record(emit: Emit, kind: str, unrecorded: list[str], **fields: Any) -> bool:
    """Emit an event about traffic that already moved; a failure is noted, never raised.

    The move stands whether or not its record does, so the verb must report the move as
    it happened and say how to add the missing record, not fail as if nothing changed.
    """
    try:
        emit(kind, **fields)
    except aws.ScriptError as error:
        unrecorded.append(
            f"the `{kind}` event was not recorded ({error}); record it with "
            f"`{repair_command(kind, fields)}`"
        )
        return False
    return True


def published_versions(lambda_client: Any, function: str) -> list[str]:
    listing = aws.pages(
        lambda_client, "list_versions_by_function", "Versions", FunctionName=function
    )
    return [v["Version"] for v in listing if v["Version"] != "$LATEST"]


def require_version(lambda_client: Any, function: str, version: str, flag: str) -> None:
    """Refuse, before anything changes, a version that is not a published one."""
    if str(version).isdigit():
        try:
            lambda_client.get_function(FunctionName=function, Qualifier=str(version))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise aws.translate(error, f"checking version {version} of {function}") from error
        else:
            return
    published = ", ".join(published_versions(lambda_client, function)) or "none"
    raise aws.UsageError(
        f"{flag} {version}: function {function} has no published version {version!r} "
        f"(published: {published}); pass one of those"
    )


def read_alias(lambda_client: Any, function: str, alias: str) -> AliasState:
    response = aws.call(
        f"reading alias {alias} of {function}",
        lambda_client.get_alias,
        FunctionName=function,
        Name=alias,
    )
    weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return AliasState(
        str(response["FunctionVersion"]),
        {str(v): float(w) for v, w in weights.items() if w > 0},
        str(response.get("RevisionId") or ""),
    )


def set_alias(
    lambda_client: Any,
    function: str,
    alias: str,
    version: str,
    weights: Mapping[str, float] | None = None,
    *,
    revision: str,
) -> str:
    """Point the alias at `version` (without weights: 100%) if it is still at `revision`.

    Returns the alias's new revision, for the next move. ConcurrentChange when the alias
    moved since `revision` was read: nothing is overwritten.
    """
    # The primary version is always sent too, so each call states the whole routing and
    # repeating it (a re-run) lands in the same place.
    lock = {"RevisionId": revision} if revision else {}
    try:
        response = lambda_client.update_alias(
            FunctionName=function,
            Name=alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": dict(weights or {})},
            **lock,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailedException":
            raise ConcurrentChange(
                f"alias {alias} of {function} changed since this run read it (another "
                "promotion or a rollback moved it); this run left it as it is. See `nox -s "
                "events -- history`, then re-run if this promotion is still wanted"
            ) from None
        raise aws.translate(
            error, f"pointing alias {alias} of {function} at version {version}"
        ) from error
    return str(response.get("RevisionId") or "")


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


def check_steps(steps: Sequence[int], source: str) -> tuple[int, ...]:
    values = tuple(steps)
    if (
        not values
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in values)
        or values[0] < 1
        or values[-1] != 100
        or any(a >= b for a, b in itertools.pairwise(values))
    ):
        raise aws.UsageError(f"{source} {list(values)} is not valid: {STEPS_VALID}")
    return values


def parse_steps(text: str) -> tuple[int, ...]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise aws.UsageError(f"--steps {text!r} is not valid: {STEPS_VALID}") from None
    return check_steps(values, "--steps")


# --- alarms ------------------------------------------------------------------------------


def alarm_states(cloudwatch_client: Any, alarms: Sequence[str]) -> dict[str, str]:
    found = aws.pages(cloudwatch_client, "describe_alarms", "MetricAlarms", AlarmNames=list(alarms))
    return {a["AlarmName"]: a["StateValue"] for a in found}


_ALARM_SETTINGS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def watch_candidate(cloudwatch_client: Any, alarms: Sequence[str], candidate: str) -> list[str]:
    """Point each alarm that watches one version (ExecutedVersion) at the candidate.

    The deploy sets that dimension once (canary.py ignores later changes), so a newer
    deploy during this canary does not move the watch away from the version taking traffic.
    Returns the alarms re-pointed.
    """
    moved = []
    for alarm in aws.pages(
        cloudwatch_client, "describe_alarms", "MetricAlarms", AlarmNames=list(alarms)
    ):
        dimensions = alarm.get("Dimensions") or []
        versions = [d["Value"] for d in dimensions if d["Name"] == "ExecutedVersion"]
        if not versions or versions == [candidate]:
            continue
        settings = {k: alarm[k] for k in _ALARM_SETTINGS if alarm.get(k) not in (None, "")}
        aws.call(
            f"pointing alarm {alarm['AlarmName']} at version {candidate}",
            cloudwatch_client.put_metric_alarm,
            **settings,
            Dimensions=[
                {**d, "Value": candidate} if d["Name"] == "ExecutedVersion" else d
                for d in dimensions
            ],
        )
        moved.append(alarm["AlarmName"])
    return moved


def _firing(states: Mapping[str, str]) -> list[str]:
    return sorted(name for name, state in states.items() if state == "ALARM")


def _alarm_text(states: Mapping[str, str]) -> str:
    firing = _firing(states)
    if firing:
        return "ALARM: " + ", ".join(firing)
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(states.values()).items()))


def _bake(
    cloudwatch_client: Any,
    alarms: Sequence[str],
    *,
    weight: int,
    bake_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    progress: Progress,
) -> dict[str, str]:
    """Watch the alarms for bake_seconds; returns the last states (early if one fires)."""
    started = clock()
    # Bounded by the number of polls as well as by the clock, so an injected clock that
    # never advances cannot spin forever.
    polls = math.ceil(bake_seconds / poll_seconds)
    states: dict[str, str] = {}
    for poll in range(polls + 1):
        states = alarm_states(cloudwatch_client, alarms)
        waited = clock() - started
        if _firing(states) or poll == polls or waited >= bake_seconds:
            return states
        progress.note(
            f"baking at {weight}%: {waited:.0f}s of {bake_seconds:g}s, {_alarm_text(states)}"
        )
        sleep(min(poll_seconds, bake_seconds - waited))
    return states


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    # Signal handlers can only be installed from the main thread; elsewhere SIGTERM keeps
    # its default and a re-run (which resumes or restores) is the recovery.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- alias strategy ----------------------------------------------------------------------


@dataclass
class _AliasShift:
    """One run of the alias strategy, from the moment the alias may change."""

    lambda_client: Any
    cloudwatch_client: Any
    result: PromotionResult
    alarms: Sequence[str]
    bake_seconds: float
    poll_seconds: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    progress: Progress
    emit: Emit

    revision: str = ""

    def __post_init__(self) -> None:
        self.started = self.clock()

    def record(self, weight: str, alarms: str) -> None:
        self.result.steps.append(Step(weight, f"+{self.clock() - self.started:.0f}s", alarms))

    def set_weight(self, weight: int) -> None:
        r = self.result
        if weight == 100:
            self.revision = set_alias(
                self.lambda_client, r.function, r.alias, r.candidate, revision=self.revision
            )
        else:
            weights = {r.candidate: weight / 100}
            self.revision = set_alias(
                self.lambda_client,
                r.function,
                r.alias,
                r.previous_version,
                weights,
                revision=self.revision,
            )
        self.progress.step(f"version {r.candidate} serves {weight}% of alias {r.alias}")

    def bake(self, weight: int, label: str = "") -> list[str]:
        """Watch the alarms for bake_seconds at this weight; the alarms that fired, if any."""
        states = _bake(
            self.cloudwatch_client,
            self.alarms,
            weight=weight,
            bake_seconds=self.bake_seconds,
            poll_seconds=self.poll_seconds,
            sleep=self.sleep,
            clock=self.clock,
            progress=self.progress,
        )
        return self.checked(states, label or f"{weight}%")

    def checked(self, states: Mapping[str, str], label: str) -> list[str]:
        self.record(label, _alarm_text(states))
        return _firing(states)

    def record_rollback(self, reason: str) -> None:
        r = self.result
        record(
            self.emit,
            "rolled-back",
            r.unrecorded,
            version=r.candidate,
            from_version=r.candidate,
            to_version=r.previous_version,
            reason=reason,
            strategy="alias",
        )

    def put_back(self) -> None:
        r = self.result
        self.revision = set_alias(
            self.lambda_client, r.function, r.alias, r.previous_version, revision=self.revision
        )

    def roll_back(self, reason: str, outcome: str) -> PromotionResult:
        r = self.result
        # Traffic first, record second: a failing bus must never leave the split in place.
        self.put_back()
        self.record_rollback(reason)
        r.outcome = outcome
        r.message = (
            f"rolled back: {reason}; alias {r.alias} of {r.function} serves version "
            f"{r.previous_version} at 100%"
        )
        return r

    def abandon(self, error: aws.ScriptError, weight: int) -> NoReturn:
        """An AWS call failed mid-shift: put the alias back rather than leave it half-way."""
        r = self.result
        if isinstance(error, ConcurrentChange):
            # Someone else moved the alias: putting it back would undo their move.
            raise aws.ScriptError(f"at {weight}%: {error}") from error
        try:
            self.put_back()
        except aws.ScriptError as second:
            raise aws.ScriptError(
                f"{error}; rolling back failed too ({second}): alias {r.alias} may still "
                "split traffic; run `nox -s rollback` (or re-run promote)"
            ) from error
        self.record_rollback(f"error at {weight}%: {error}")
        unrecorded = "".join(f" ({note})" for note in r.unrecorded)
        raise aws.ScriptError(
            f"{error}; alias {r.alias} was put back on version {r.previous_version} at "
            f"100%{unrecorded}"
        ) from error

    def run(
        self, plan: Sequence[int], resumed: int, states: Mapping[str, str], steps: Sequence[int]
    ) -> PromotionResult:
        r = self.result
        weight = resumed
        if not resumed:
            self.emit(
                "canary-started",
                version=r.candidate,
                previous_version=r.previous_version,
                strategy="alias",
                steps=list(steps),
            )
        with _sigterm_raises():
            try:
                if resumed:
                    # How long the interrupted run baked is unknown: bake this weight anew
                    # (unless an alarm already fires, then there is nothing to wait for).
                    label = f"{resumed}% (resumed)"
                    if _firing(states):
                        firing = self.checked(states, label)
                    else:
                        firing = self.bake(resumed, label)
                    if firing:
                        return self.roll_back(
                            f"alarm {', '.join(firing)} in ALARM at {resumed}%", ROLLED_BACK
                        )
                for weight in plan:
                    self.set_weight(weight)
                    if weight == 100:
                        self.record("100%", "(final step: not baked)")
                        break
                    firing = self.bake(weight)
                    if firing:
                        return self.roll_back(
                            f"alarm {', '.join(firing)} in ALARM at {weight}%", ROLLED_BACK
                        )
            except KeyboardInterrupt as interruption:
                cause = "SIGTERM" if isinstance(interruption, Terminated) else "interrupt"
                self.progress.note(
                    f"{cause} at {weight}%: putting alias {r.alias} back on {r.previous_version}"
                )
                self.record(f"{weight}%", f"({cause}: rolled back)")
                return self.roll_back(f"{cause} at {weight}%", INTERRUPTED)
            except aws.ScriptError as error:
                self.record(f"{weight}%", "(AWS error: rolled back)")
                self.abandon(error, weight)
        record(
            self.emit,
            "promoted",
            r.unrecorded,
            version=r.candidate,
            previous_version=r.previous_version,
            strategy="alias",
            steps=list(steps),
        )
        r.outcome = PROMOTED
        r.message = (
            f"promoted: alias {r.alias} of {r.function} serves version {r.candidate} at 100% "
            f"(was {r.previous_version})"
        )
        return r


def _check_alias_inputs(
    steps: Sequence[int], bake_seconds: float, poll_seconds: float, alarms: Sequence[str]
) -> tuple[int, ...]:
    if bake_seconds < 0:
        raise aws.UsageError(f"--bake-seconds {bake_seconds:g} is negative; give 0 or more")
    if poll_seconds <= 0:
        raise aws.UsageError(f"--poll-seconds {poll_seconds:g} must be more than 0")
    if not alarms:
        raise aws.UsageError("no alarms to watch: the stack outputs' 'alarms' list is empty")
    return check_steps(steps, "promotion steps")


def promote_alias(
    lambda_client: Any,
    cloudwatch_client: Any,
    *,
    function: str,
    alias: str,
    candidate: str,
    steps: Sequence[int],
    bake_seconds: float,
    poll_seconds: float,
    alarms: Sequence[str],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
    emit: Emit | None = None,
) -> PromotionResult:
    """Shift the alias to `candidate` in `steps`, baking between them; roll back on alarm.

    Re-run safe: on the candidate already -> no-op; weights on the candidate left by a
    killed run -> resume from that weight; weights on another version -> that version's
    share is removed first.
    """
    candidate = str(candidate)
    steps = _check_alias_inputs(steps, bake_seconds, poll_seconds, alarms)
    require_version(lambda_client, function, candidate, "--version")
    states = alarm_states(cloudwatch_client, alarms)
    missing = sorted(set(alarms) - set(states))
    if missing:
        raise aws.UsageError(
            f"alarm(s) {', '.join(missing)} do not exist in CloudWatch; a promotion watching "
            "them would watch nothing. Deploy the stack, or fix the outputs' 'alarms'"
        )
    state = read_alias(lambda_client, function, alias)
    progress = progress or Progress("promote", total=len(steps), clock=clock)
    result = PromotionResult(ALREADY, function, alias, candidate, state.primary, "alias")

    others = {v: w for v, w in state.weights.items() if v != candidate}
    if others:
        # Another shift was left half-way (a different candidate); its version must not
        # keep a share while this one is measured.
        progress.note(
            f"alias {alias} routes to other versions ({state.describe()}); "
            f"restoring version {state.primary} at 100% first"
        )
        revision = set_alias(lambda_client, function, alias, state.primary, revision=state.revision)
        state = AliasState(state.primary, {}, revision)
    if state.primary == candidate:
        result.message = (
            f"already promoted: alias {alias} of {function} serves version {candidate} at "
            f"100%; {'stray weights removed' if others else 'nothing to do'}"
        )
        return result

    resumed = state.weight_of(candidate)
    firing = _firing(states)
    if not firing and watch_candidate(cloudwatch_client, alarms, candidate):
        # A re-pointed alarm starts over on the candidate's own metric.
        states = alarm_states(cloudwatch_client, alarms)
        firing = _firing(states)
    if firing and not resumed:
        raise aws.ScriptError(
            f"alarm {', '.join(firing)} is in ALARM before the canary starts; "
            f"{'only the stray weights were removed' if others else 'nothing changed'} "
            f"(alias {alias} stays on version {state.primary}). Find out why, then re-run"
        )
    if resumed:
        progress.note(f"resuming an interrupted promotion: alias {alias} is at {state.describe()}")
    plan = [s for s in steps if s > resumed or s == 100]
    progress.total = len(plan)
    shift = _AliasShift(
        lambda_client,
        cloudwatch_client,
        result,
        alarms,
        bake_seconds,
        poll_seconds,
        sleep,
        clock,
        progress,
        emit or (lambda kind, **fields: None),
        state.revision,
    )
    return shift.run(plan, resumed, states, steps)


# --- codedeploy strategy ------------------------------------------------------------------


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


# --- what the run deployed ----------------------------------------------------------------


def code_sha256(lambda_client: Any, function: str, version: str) -> str:
    require_version(lambda_client, function, version, "--version")
    response = aws.call(
        f"reading version {version} of {function}",
        lambda_client.get_function,
        FunctionName=function,
        Qualifier=str(version),
    )
    return str(response["Configuration"]["CodeSha256"])


def require_deployed_code(lambda_client: Any, function: str, version: str, expected: str) -> None:
    """Refuse a version whose code is not what the deploy that asked for it published.

    Version numbers restart when a stack is destroyed and deployed again, so an approval
    given days ago may name a number that now holds other code.
    """
    actual = code_sha256(lambda_client, function, version)
    if actual != expected:
        raise aws.UsageError(
            f"--version {version}: its code (CodeSha256 {actual}) is not what this run "
            f"deployed ({expected}); the stack was redeployed since. Nothing changed: "
            "promote from the run that deployed the version you mean"
        )


def promotion_check(
    lambda_client: Any, function: str, alias: str, candidate: str
) -> tuple[dict[str, str], str]:
    """What the pipeline's promote job should be asked: its outputs, and the summary line."""
    sha = code_sha256(lambda_client, function, candidate)
    state = read_alias(lambda_client, function, alias)
    needed = state.primary != candidate or bool(state.weights)
    values = {
        "candidate-version": candidate,
        "candidate-sha256": sha,
        "promote": "true" if needed else "false",
    }
    if needed:
        line = (
            f"Promotion of version {candidate} awaits approval in `canary-promotion` "
            f"(alias {alias} serves {state.describe()})."
        )
    else:
        line = (
            f"Promotion skipped: alias {alias} already serves version {candidate} at 100% "
            "(this deploy published no new model version)."
        )
    return values, line


# --- command line ----------------------------------------------------------------------------


def waiter_attempts(delay: int) -> int:
    """Checks enough to see the longest accepted config through, with a margin for CodeDeploy."""
    return math.ceil((config.MAX_CANARY_MINUTES + WAIT_MARGIN_MINUTES) * 60 / max(delay, 1))
