"""Alias promotion in moto (`promotion`): alarm to rollback, AWS calls per step. The
child side is `python -m bench.probe promotion`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.harness import Benchmark, Context, last_json
from bench.measure import median
from bench.report import Figure, Target

POLL_SECONDS = 0.2
BAKE_SECONDS = 1.0
PROMOTION_STEPS = (10, 50, 100)


class Promotion(Benchmark):
    name = "promotion"
    description = "alias promotion in moto: alarm to rollback, AWS calls per step"

    def planned_runs(self, ctx: Context) -> int:
        return ctx.repeat

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            ("promotion.rollback", "alarm -> alias fully back on the previous version", "s"),
            ("promotion.calls_per_step", "AWS calls per promotion step", "calls"),
        ]

    def run(self, ctx: Context) -> list[Figure]:
        results = []
        for rep in range(1, ctx.repeat + 1):
            # The alarm lands at a different phase of the poll cycle each time.
            alarm_after = BAKE_SECONDS / 2 + POLL_SECONDS * (rep - 1) / ctx.repeat
            sample = ctx.run(
                f"promotion: moto, alarm {alarm_after:.2f}s into the first bake "
                f"({rep}/{ctx.repeat})",
                [
                    ctx.python,
                    "-m",
                    "bench.probe",
                    "promotion",
                    "--poll",
                    str(POLL_SECONDS),
                    "--bake",
                    str(BAKE_SECONDS),
                    "--alarm-after",
                    f"{alarm_after:.3f}",
                    "--steps",
                    ",".join(map(str, PROMOTION_STEPS)),
                ],
                timeout=300,
            )
            if not sample.ok:
                raise RuntimeError(sample.failure())
            results.append(last_json(sample))
        return promotion_figures(results)


def promotion_figures(results: Sequence[Mapping[str, Any]]) -> list[Figure]:
    poll = results[0]["poll_s"]
    bad = [
        r
        for r in results
        if r["rollback_outcome"] != "rolled-back"
        or not r["restored"]
        or r["rollback_latency_s"] is None
    ]
    latencies = [r["rollback_latency_s"] for r in results if r["rollback_latency_s"] is not None]
    steps = len(results[0]["steps"])
    per_step = [sum(r["clean_calls"].values()) / steps for r in results]
    operations: dict[str, float] = {}
    for r in results:
        for op, n in r["clean_calls"].items():
            operations[op] = operations.get(op, 0) + n / steps / len(results)
    breakdown = ", ".join(f"{op} {n:.1f}" for op, n in sorted(operations.items()))
    baked = steps - 1
    return [
        Figure(
            "promotion.rollback",
            "alarm -> alias fully back on the previous version (worst run)",
            "s",
            value=max(latencies) if latencies else None,
            floor=poll,
            floor_label="poll interval",
            target=Target("<=", 1.5, on="ratio"),
            samples=latencies,
            error=(
                f"{len(bad)} run(s) did not end rolled back on the previous version"
                if bad
                else None
            ),
            notes=(
                f"median {median(latencies):.3f}s; bake {results[0]['bake_s']:g}s, poll "
                f"{poll:g}s, real clock, moto server in the probe process; the worst of "
                f"{len(results)} alarm phases is reported"
                if latencies
                else ""
            ),
        ),
        Figure(
            "promotion.calls_per_step",
            "AWS calls per promotion step (clean promotion)",
            "calls",
            value=median(per_step),
            floor=float(1 + math.ceil(results[0]["bake_s"] / poll) * baked / steps),
            floor_label="1 UpdateAlias + one alarm read per poll",
            samples=per_step,
            notes=(
                f"{steps} steps ({baked} baked): per step {breakdown}; the alarm reads scale "
                "with bake/poll"
            ),
        ),
    ]
