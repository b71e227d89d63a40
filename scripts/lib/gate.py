"""Compare a run's metrics with the default branch's model and apply the quality gate.

A library for `scripts.train` (and the PR comment, which renders the same table).
The gate is config `qualityGate` (Pulumi.yaml): per metric, `min` and/or `max`
bounds on the value and `maxRegression`, the largest change in the worse direction
against the baseline. Which direction is worse comes from the run's metrics.json
(`higher_is_better`), so a team adding a metric says it once, where it computes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scripts.lib import summary

# Float noise must not fail a model that matches its baseline exactly.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Row:
    metric: str
    value: float | None
    baseline: float | None
    higher_is_better: bool | None
    rules: Mapping[str, float]
    failures: tuple[str, ...]

    @property
    def delta(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline


@dataclass(frozen=True)
class Comparison:
    rows: tuple[Row, ...]
    baseline_label: str | None  # e.g. "main @ 1a2b3c4 (run ...)"; None: nothing to compare
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[str]:
        return [failure for row in self.rows for failure in row.failures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "baseline": self.baseline_label,
            "failures": self.failures(),
            "notes": list(self.notes),
            "metrics": {
                row.metric: {
                    "value": row.value,
                    "baseline": row.baseline,
                    "delta": row.delta,
                    "higher_is_better": row.higher_is_better,
                    "gate": dict(row.rules),
                    "failures": list(row.failures),
                }
                for row in self.rows
            },
        }


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _check(
    metric: str,
    value: float | None,
    baseline: float | None,
    higher: bool | None,
    rules: Mapping[str, float],
) -> list[str]:
    if value is None:
        return [f"{metric}: the run reported no finite value, and qualityGate checks it"]
    failures = []
    if "min" in rules and value < rules["min"] - TOLERANCE:
        failures.append(f"{metric} {value:g} is below the minimum {rules['min']:g}")
    if "max" in rules and value > rules["max"] + TOLERANCE:
        failures.append(f"{metric} {value:g} is above the maximum {rules['max']:g}")
    if "maxRegression" in rules and baseline is not None:
        if higher is None:
            failures.append(
                f"{metric}: metrics.json does not say whether higher is better "
                "(higher_is_better), so its regression cannot be judged"
            )
        else:
            regression = baseline - value if higher else value - baseline
            if regression > rules["maxRegression"] + TOLERANCE:
                failures.append(
                    f"{metric} regressed by {regression:g} against the default branch "
                    f"({baseline:g} -> {value:g}); at most {rules['maxRegression']:g} is allowed"
                )
    return failures


def compare(
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    gate: Mapping[str, Mapping[str, float]],
    baseline_label: str | None = None,
    notes: tuple[str, ...] = (),
) -> Comparison:
    """Each metric of the run beside the baseline's, with the gate's verdict on it."""
    values = metrics.get("metrics") or {}
    directions = metrics.get("higher_is_better") or {}
    base_values = (baseline or {}).get("metrics") or {}
    rows = []
    for metric in [*values, *(m for m in gate if m not in values)]:
        value = _number(values.get(metric))
        base = _number(base_values.get(metric)) if baseline is not None else None
        higher = directions.get(metric) if isinstance(directions.get(metric), bool) else None
        rules = gate.get(metric, {})
        failures = _check(metric, value, base, higher, rules) if rules else []
        rows.append(Row(metric, value, base, higher, rules, tuple(failures)))
    label = baseline_label if baseline is not None else None
    return Comparison(tuple(rows), label, notes)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _delta(row: Row) -> str:
    if row.delta is None:
        return "-"
    arrow = ""
    if row.higher_is_better is not None and abs(row.delta) > TOLERANCE:
        better = (row.delta > 0) == row.higher_is_better
        arrow = " ▲ better" if better else " ▼ worse"
    return f"{row.delta:+.4g}{arrow}"


def _rules(rules: Mapping[str, float]) -> str:
    names = {"min": "min", "max": "max", "maxRegression": "max regression"}
    return ", ".join(f"{names[k]} {v:g}" for k, v in rules.items()) or "-"


def markdown(comparison: Comparison, title: str) -> str:
    verdict = "passed" if comparison.passed else "FAILED"
    baseline = comparison.baseline_label or "none yet"
    lines = [
        f"### {title}: quality gate {verdict}",
        "",
        f"Compared with: {baseline}",
        "",
        summary.table(
            ["metric", "this run", "baseline", "delta", "gate", "result"],
            [
                [
                    row.metric,
                    _fmt(row.value),
                    _fmt(row.baseline),
                    _delta(row),
                    _rules(row.rules),
                    "FAILED" if row.failures else ("ok" if row.rules else "-"),
                ]
                for row in comparison.rows
            ],
        ),
    ]
    if comparison.failures():
        lines += ["", "Promotion stops here:", *(f"- {f}" for f in comparison.failures())]
    lines += [f"\n_{note}_" for note in comparison.notes]
    return "\n".join(lines)


def title(fields: Mapping[str, Any]) -> str:
    """The heading of an evaluation: which model, from which run."""
    return f"Model `{fields.get('model_version')}` from run `{fields.get('run_id')}`"


def load(path_text: str) -> Comparison:
    """A comparison saved with `as_dict` (the train job's artifact), for the PR comment."""
    data = json.loads(path_text)
    rows = tuple(
        Row(
            metric,
            entry.get("value"),
            entry.get("baseline"),
            entry.get("higher_is_better"),
            entry.get("gate") or {},
            tuple(entry.get("failures") or ()),
        )
        for metric, entry in (data.get("metrics") or {}).items()
    )
    return Comparison(rows, data.get("baseline"), tuple(data.get("notes") or ()))
