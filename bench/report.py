"""Figures, their targets, and the report: a table for people, JSON for tools, an exit code."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.measure import ratio

PASS, FAIL, INFO, SKIPPED, ERROR = "pass", "fail", "info", "skipped", "error"
MISSED = (FAIL, ERROR)
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


@dataclass(frozen=True)
class Target:
    """`on` the figure's value or its ratio to the floor, compared with `limit` by `op`."""

    op: str
    limit: float
    on: str = "value"
    why: str = ""

    def __post_init__(self) -> None:
        if self.op not in _OPS or self.on not in ("value", "ratio"):
            raise ValueError(f"bad target {self.op!r} on {self.on!r}")

    def describe(self, unit: str) -> str:
        limit = f"{self.limit:g}x floor" if self.on == "ratio" else f"{self.limit:g} {unit}"
        return f"{_SYMBOL[self.op]} {limit}" + (f" ({self.why})" if self.why else "")

    def met(self, value: float | None, floor_ratio: float | None) -> bool:
        measured = floor_ratio if self.on == "ratio" else value
        if measured is None or (isinstance(measured, float) and math.isnan(measured)):
            return False
        return _OPS[self.op](measured, self.limit)


@dataclass
class Figure:
    """One measured number, its floor measured in the same run, and what it must meet."""

    name: str
    title: str
    unit: str
    value: float | None = None
    floor: float | None = None
    floor_label: str = ""
    target: Target | None = None
    notes: str = ""
    samples: Sequence[float] = ()
    floor_samples: Sequence[float] = ()
    error: str | None = None
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.floor)

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return SKIPPED
        if self.error is not None or self.value is None:
            return ERROR
        if self.target is None:
            return INFO
        return PASS if self.target.met(self.value, self.ratio) else FAIL

    def verdict(self) -> str:
        """Why a missed figure missed, in one line."""
        if self.status == ERROR:
            return f"{self.name}: could not be measured: {self.error or 'no value'}"
        shown = f"{fmt(self.value)} {self.unit}"
        if self.ratio is not None:
            shown += f" = {self.ratio:.2f}x floor"
        target = self.target.describe(self.unit) if self.target else ""
        return f"{self.name}: {shown}, target {target}"


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def missed(figures: Sequence[Figure]) -> list[Figure]:
    return [f for f in figures if f.status in MISSED]


def exit_code(figures: Sequence[Figure]) -> int:
    """1 when any figure missed its target or could not be measured; skipped is not a pass."""
    return 1 if missed(figures) else 0


_MARK = {PASS: "✅ pass", FAIL: "❌ FAIL", INFO: "· info", SKIPPED: "⏭ skipped", ERROR: "❌ ERROR"}


def table_rows(figures: Sequence[Figure]) -> list[list[str]]:
    rows = []
    for f in figures:
        floor = f"{fmt(f.floor)} {f.unit}" if f.floor is not None else "—"
        if f.floor_label:
            floor = f"{floor} ({f.floor_label})" if f.floor is not None else f.floor_label
        rows.append(
            [
                f"`{f.name}`",
                f.title,
                f"{fmt(f.value)} {f.unit}" if f.value is not None else "—",
                floor,
                f"{f.ratio:.2f}x" if f.ratio is not None else "—",
                f.target.describe(f.unit) if f.target else "—",
                _MARK[f.status],
            ]
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_line(figures: Sequence[Figure]) -> str:
    counts = {s: sum(1 for f in figures if f.status == s) for s in _MARK}
    parts = [
        f"{counts[PASS]} passed",
        f"{counts[FAIL] + counts[ERROR]} missed",
        f"{counts[INFO]} informational",
    ]
    if counts[SKIPPED]:
        parts.append(f"{counts[SKIPPED]} skipped (not run, so not checked)")
    return ", ".join(parts)


def render_markdown(figures: Sequence[Figure], context: Mapping[str, Any]) -> str:
    header = ["figure", "what", "value", "floor", "ratio", "target", "result"]
    lines = [
        "## Benchmarks",
        "",
        ", ".join(f"{k}: {v}" for k, v in context.items()),
        "",
        _table(header, table_rows(figures)),
        "",
        f"**{summary_line(figures)}.**",
    ]
    gone = missed(figures)
    if gone:
        lines += ["", "Missed:", "", *[f"- {f.verdict()}" for f in gone]]
    noted = [f for f in figures if f.notes or f.skipped or f.error]
    if noted:
        lines += ["", "Notes:", ""]
        for f in noted:
            text = f.skipped or f.error or ""
            text = "; ".join(t for t in (text, f.notes) if t)
            lines.append(f"- `{f.name}`: {text}")
    return "\n".join(lines) + "\n"


def render_json(figures: Sequence[Figure], context: Mapping[str, Any]) -> str:
    document = {
        "context": dict(context),
        "summary": summary_line(figures),
        "missed": [f.name for f in missed(figures)],
        "figures": [
            {
                "name": f.name,
                "title": f.title,
                "unit": f.unit,
                "value": f.value,
                "floor": f.floor,
                "floor_label": f.floor_label,
                "ratio": f.ratio,
                "target": None
                if f.target is None
                else {
                    "op": f.target.op,
                    "limit": f.target.limit,
                    "on": f.target.on,
                    "text": f.target.describe(f.unit),
                },
                "status": f.status,
                "notes": f.notes,
                "error": f.error,
                "skipped": f.skipped,
                "samples": list(f.samples),
                "floor_samples": list(f.floor_samples),
                **({"extra": f.extra} if f.extra else {}),
            }
            for f in figures
        ],
    }
    return json.dumps(document, indent=2, default=str) + "\n"
