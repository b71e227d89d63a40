"""The branch-stack sweeper, scripts/cleanup.py, over 50 and 200 stacks (`sweeper`): API
calls and time per stack. The child side is `python -m bench.probe sweeper`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.harness import Benchmark, Context, last_json
from bench.measure import median
from bench.report import Figure, Target

SWEEPER_STACKS = (50, 200)


class Sweeper(Benchmark):
    name = "sweeper"
    description = "scripts.cleanup over 50 and 200 branch stacks: calls and time per stack"

    def planned_runs(self, ctx: Context) -> int:
        return ctx.repeat * len(SWEEPER_STACKS)

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            ("sweeper.calls_per_stack", "sweeper: API calls per stack, 200 stacks", "calls"),
            ("sweeper.ms_per_stack", "sweeper: time per stack, 200 stacks", "ms"),
        ]

    def run(self, ctx: Context) -> list[Figure]:
        results: dict[int, list[dict[str, Any]]] = {n: [] for n in SWEEPER_STACKS}
        for rep in range(1, ctx.repeat + 1):
            for n in SWEEPER_STACKS:
                sample = ctx.run(
                    f"sweeper: {n} branch stacks ({rep}/{ctx.repeat})",
                    [ctx.python, "-m", "bench.probe", "sweeper", "--stacks", str(n)],
                    timeout=900,
                )
                if not sample.ok:
                    raise RuntimeError(sample.failure())
                results[n].append(last_json(sample))
        return sweeper_figures(results)


def sweeper_figures(results: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[Figure]:
    small, large = SWEEPER_STACKS

    def calls(r: Mapping[str, Any]) -> float:
        return (r["github_pages"] + r["pulumi_calls"]) / r["stacks"]

    def ms(r: Mapping[str, Any]) -> float:
        return r["seconds"] / r["stacks"] * 1000

    wrong = [
        f"{r['stacks']} stacks: exit {r['exit']}, {r['github_pages']}/{r['expected_pages']} "
        f"pages, {r['destroyed']}/{r['stale']} destroyed"
        for rs in results.values()
        for r in rs
        if r["exit"] != 0
        or r["github_pages"] != r["expected_pages"]
        or r["destroyed"] != r["stale"]
    ]
    error = ("the sweeper did not do its job: " + "; ".join(wrong)) if wrong else None
    big = results[large][0]
    return [
        Figure(
            "sweeper.calls_per_stack",
            f"sweeper: API calls per stack, {large} stacks",
            "calls",
            value=median([calls(r) for r in results[large]]),
            floor=median([calls(r) for r in results[small]]),
            floor_label=f"the same at {small} stacks",
            target=Target("<=", 1.1, on="ratio", why="linear: no per-stack growth"),
            error=error,
            notes=(
                f"{big['stacks']} stacks, {big['stale']} orphaned: {big['github_pages']} pages "
                f"of GitHub branches (100 a page, every page read), 1 `pulumi stack ls`, one "
                "`pulumi destroy` per stale stack; the S3 state backend is listed by the "
                "Pulumi CLI itself, not by the sweeper"
            ),
        ),
        Figure(
            "sweeper.ms_per_stack",
            f"sweeper: time per stack, {large} stacks",
            "ms",
            value=median([ms(r) for r in results[large]]),
            floor=median([ms(r) for r in results[small]]),
            floor_label=f"the same at {small} stacks",
            target=Target("<=", 1.5, on="ratio", why="linear total time"),
            error=error,
            notes=(
                "the sweeper's own work with a stand-in `pulumi` (a process per call); a real "
                "destroy takes minutes per stack and dominates the scheduled job's 120 min"
            ),
        ),
    ]
