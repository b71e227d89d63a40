"""Moving alias `live` onto a candidate version by stepping its weights while watching the
alarms (the alias strategy), and what a promotion reports.

`python -m scripts.promote` is the command line; its docstring describes the strategies,
the exit codes and why re-running is safe. The CodeDeploy strategy is
`scripts.lib.codedeploy`; both report a `PromotionResult`.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from scripts.lib import aws
from scripts.lib.alarms import (
    alarm_states,
    alarm_summary,
    firing_alarms,
    watch_alarms,
    watch_candidate,
)
from scripts.lib.lambda_alias import (
    AliasState,
    ConcurrentChange,
    read_alias,
    require_version,
    set_alias,
)
from scripts.lib.progress import Progress
from scripts.lib.traffic_events import Emit, record

PROMOTED = "promoted"
ALREADY = "already-promoted"
ROLLED_BACK = "rolled-back"
INTERRUPTED = "interrupted"
EXIT_CODES = {PROMOTED: 0, ALREADY: 0, ROLLED_BACK: 1, INTERRUPTED: 130}

STEPS_VALID = "percentages rising strictly from 1 to exactly 100, e.g. 10,50,100"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job), raised where the process was so the promotion rolls back."""


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
        states = watch_alarms(
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
        self.record(label, alarm_summary(states))
        return firing_alarms(states)

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
                    if firing_alarms(states):
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
    firing = firing_alarms(states)
    if not firing and watch_candidate(cloudwatch_client, alarms, candidate):
        # A re-pointed alarm starts over on the candidate's own metric.
        states = alarm_states(cloudwatch_client, alarms)
        firing = firing_alarms(states)
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
