"""A cost estimate rendered for its readers: Markdown for the inventory and the step summary,
a short block for the preview PR comment, a few lines under synth's tree, and JSON.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from typing import Any

from scripts.lib import summary
from scripts.lib.cost_estimate import IDLE_TARGET_USD, Estimate, Line


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"


def _render_unpriced(est: Estimate) -> str:
    kinds = sorted({u.type for u in est.unpriced})
    return (
        f"### Cost estimate{f': stack `{est.stack}`' if est.stack else ''}\n\n"
        f"Unpriced: {est.source}. None of its {len(est.unpriced)} AWS resources "
        f"({len(kinds)} types) is in the totals, so there are none.\n"
    )


def render_markdown(est: Estimate) -> str:
    """The estimate for the inventory and the step summary: totals, then per resource."""
    if not est.priced:
        return _render_unpriced(est)
    verdict = {
        True: f"under the ${IDLE_TARGET_USD:.2f}/month target for a branch environment",
        False: f"**over** the ${IDLE_TARGET_USD:.2f}/month target for a branch environment",
        None: "not a branch environment: paid once per account",
    }[est.idle_target_met]
    lines = [
        f"### Cost estimate{f': stack `{est.stack}`' if est.stack else ''}",
        "",
        f"{est.region} list prices as of {est.as_of} ({est.currency}); {est.source}.",
        "",
        f"- **Idle: {_usd(est.idle_monthly)}/month** (no traffic): {verdict}",
        f"- **{_usd(est.per_million_requests)} per million model requests** on top",
        f"- unpriced (not in the totals): {len(est.unpriced) or 'none'}",
        "",
        "What changes the idle cost:",
        "",
        *[f"- {lever.text}" for lever in est.levers],
        "",
    ]
    costly = sorted(
        (line for line in est.lines if line.idle_monthly or line.per_million_requests),
        key=lambda line: (-line.idle_monthly, -line.per_million_requests, line.name),
    )
    if costly:
        lines.append(
            summary.table(
                ["resource", "type", "idle /month", "per 1M requests", "how"],
                [
                    [
                        f"`{line.physical_name or line.name}`",
                        f"`{line.type}`",
                        _usd(line.idle_monthly),
                        _usd(line.per_million_requests),
                        line.note,
                    ]
                    for line in costly
                ],
            )
        )
        lines.append("")
    free: dict[str, list[Line]] = {}
    for line in est.lines:
        if not (line.idle_monthly or line.per_million_requests):
            free.setdefault(line.type, []).append(line)
    if free:
        lines += ["Priced at $0 idle and per model request:", ""]
        lines.append(
            summary.table(
                ["type", "resources", "why"],
                [[f"`{t}`", str(len(group)), group[0].note] for t, group in sorted(free.items())],
            )
        )
        lines.append("")
    if est.unpriced:
        lines += ["Unpriced (not in the price table, so not in the totals):", ""]
        lines += [f"- `{u.type}` {u.name}: {u.reason}" for u in est.unpriced]
        lines.append("")
    lines += ["Assumptions:", "", *[f"- {a}" for a in est.assumptions.describe()]]
    return "\n".join(lines) + "\n"


def render_pr_comment(est: Estimate) -> str:
    """The short block for the preview PR comment."""
    if not est.priced:
        return f"**Cost estimate**: unpriced, {est.source}\n"
    mark = {
        True: f"✅ (target < ${IDLE_TARGET_USD:.2f})",
        False: f"⚠️ over the ${IDLE_TARGET_USD:.2f} target",
        None: "(shared: once per account)",
    }[est.idle_target_met]
    unpriced = ", ".join(sorted({f"`{u.type}`" for u in est.unpriced})) if est.unpriced else "none"
    drivers = "; ".join(
        lever.text for lever in est.levers if lever.monthly or "would" in lever.text
    )
    return (
        f"**Cost estimate** ({est.region} list prices, {est.as_of}): "
        f"idle **{_usd(est.idle_monthly)}/month** {mark} · "
        f"**{_usd(est.per_million_requests)}** per million model requests · "
        f"unpriced: {unpriced}\n" + (f"<sub>{drivers}</sub>\n" if drivers else "")
    )


def render_terminal(est: Estimate, width: int = 100) -> str:
    """A few short lines under synth's tree."""
    if not est.priced:
        return textwrap.fill(f"cost: unpriced, {est.source}", width, subsequent_indent="  ") + "\n"
    target = {
        True: f"under the ${IDLE_TARGET_USD:.2f} target",
        False: f"OVER the ${IDLE_TARGET_USD:.2f} target",
        None: "shared: paid once per account",
    }[est.idle_target_met]
    lines = [
        f"cost ({est.region} list prices, {est.as_of}): idle {_usd(est.idle_monthly)}/month "
        f"({target})",
        f"  {_usd(est.per_million_requests)} per million model requests; unpriced: "
        f"{len(est.unpriced) or 'none'} (--format markdown lists every line)",
    ]
    return "\n".join(lines) + "\n"


def to_dict(est: Estimate) -> dict[str, Any]:
    return {
        "region": est.region,
        "as_of": est.as_of,
        "currency": est.currency,
        "source": est.source,
        "stack": est.stack,
        "priced": est.priced,
        "idle_monthly": round(est.idle_monthly, 6) if est.priced else None,
        "idle_target": IDLE_TARGET_USD,
        "idle_target_met": est.idle_target_met,
        "branch": est.branch,
        "per_million_requests": round(est.per_million_requests, 6) if est.priced else None,
        "resources": [dataclasses.asdict(line) for line in est.lines],
        "unpriced": [dataclasses.asdict(u) for u in est.unpriced],
        "skipped_not_aws": est.skipped,
        "levers": [dataclasses.asdict(lever) for lever in est.levers],
        "assumptions": dataclasses.asdict(est.assumptions),
    }


def render_json(est: Estimate) -> str:
    return json.dumps(to_dict(est), indent=2, sort_keys=True)
