"""The CloudWatch alarms a promotion watches: their states, pointing the alarm on one
version at the candidate, and watching them through a bake.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scripts.lib import aws
from scripts.lib.progress import Progress


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


def firing_alarms(states: Mapping[str, str]) -> list[str]:
    return sorted(name for name, state in states.items() if state == "ALARM")


def alarm_summary(states: Mapping[str, str]) -> str:
    firing = firing_alarms(states)
    if firing:
        return "ALARM: " + ", ".join(firing)
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(states.values()).items()))


def watch_alarms(
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
        if firing_alarms(states) or poll == polls or waited >= bake_seconds:
            return states
        progress.note(
            f"baking at {weight}%: {waited:.0f}s of {bake_seconds:g}s, {alarm_summary(states)}"
        )
        sleep(min(poll_seconds, bake_seconds - waited))
    return states
