"""How long the test tiers take (`feedback`), beside what no arrangement of the tests
can avoid: collecting them, evaluating each distinct program once (a whole stack's, or the
small one a component test builds), and the act runs that follow one another on one
worker."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import evaluations as evaluations_plugin
from bench import tiers
from bench.harness import Benchmark, Context, contention, idle_target
from bench.measure import median
from bench.report import Figure, Target

# Collection as the tier collects: its workers start and each collects every module, then
# a keyword no test has deselects them all. (`--collect-only` would collect once, in one
# process: pytest-xdist steps aside for it.) pytest then exits 5, "no tests ran".
COLLECT_ONLY = ("-k", "no_test_is_named_this_the_bench_collects_only")
NO_TESTS_RAN = 5


class Feedback(Benchmark):
    name = "feedback"
    description = "pytest: the unit tier and the whole suite in parallel workers, beside collection"

    def planned_runs(self, ctx: Context) -> int:
        return ctx.repeat * (3 if ctx.quick else 6)

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            ("feedback.unit_tier", "unit tier (mocks and pure tests), parallel workers", "s"),
            ("feedback.suite", "whole test suite, parallel workers", "s"),
        ]

    def _tier(self, ctx: Context, label: str, args: Sequence[str]) -> dict[str, Any]:
        pytest = [ctx.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
        walls, collections, cpus, shares, problems = [], [], [], [], []
        work, evaluations, made, acts = [], [], [], []
        for rep in range(1, ctx.repeat + 1):
            with tempfile.TemporaryDirectory(prefix="bench-tier-") as scratch:
                # A fresh --basetemp: pytest would otherwise spend the timed run deleting
                # what earlier runs left in its numbered temporary directories (seconds
                # after the whole suite), which is no cost of this tier.
                base = Path(scratch)
                collect = ctx.run(
                    f"feedback: {label}, collection only ({rep}/{ctx.repeat})",
                    [*pytest, f"--basetemp={base / 'collect'}", *COLLECT_ONLY],
                )
                folder = base / "evaluations"
                folder.mkdir()
                env = {**ctx.env, evaluations_plugin.ENV: str(folder)}
                timed = [*pytest, f"--basetemp={base / 'run'}", "-p", "bench.evaluations"]
                run = ctx.run(f"feedback: {label} ({rep}/{ctx.repeat})", timed, env=env)
                recorded = evaluations_plugin.read(folder)
            distinct = recorded.fastest
            made.append(recorded.made)
            acts.append(recorded.act_chain)
            shares.append(contention(ctx, f"feedback: {label} ({rep}/{ctx.repeat})"))
            collections.append(collect.wall_s)
            walls.append(run.wall_s)
            cpus.append(run.cpu_s)
            evaluations.append(len(distinct))
            work.append(sum(distinct.values()))
            for s in (collect, run):
                if not s.ok and not (s is collect and s.returncode == NO_TESTS_RAN):
                    tail = s.stdout.strip().splitlines()[-1:] or [s.failure()]
                    problems.append(f"exit {s.returncode}: {tail[0]}")
        cores = os.cpu_count() or 1
        return {
            "walls": walls,
            "collections": collections,
            # What the tier cannot avoid: collecting, then evaluating each distinct program
            # once spread over the cores, while one worker runs its act tests one after
            # another: the tier ends after the longer of the two.
            "floors": [
                c + max(w / cores, a) for c, w, a in zip(collections, work, acts, strict=True)
            ],
            "act_chain_s": acts,
            "evaluations": evaluations,
            "evaluations_made": made,
            "evaluation_s": work,
            "cpus": cpus,
            "shares": shares,
            "problem": "; ".join(dict.fromkeys(problems)),
        }

    def run(self, ctx: Context) -> list[Figure]:
        unit = self._tier(ctx, "unit tier", (*tiers.UNIT_TIER, *tiers.PARALLEL))
        figures = [
            tier_figure(
                "feedback.unit_tier",
                "unit tier (mocks and pure tests), parallel workers",
                unit,
                limit=10,
                notes="nox -s unit: pytest " + " ".join((*tiers.UNIT_TIER, *tiers.PARALLEL)),
            )
        ]
        if ctx.quick:
            figures.append(
                Figure(
                    "feedback.suite",
                    "whole test suite, parallel workers",
                    "s",
                    target=Target("<", 180),
                    skipped="--quick: the whole suite was not run, so not checked",
                )
            )
            return figures
        suite = self._tier(ctx, "whole suite", (*tiers.WHOLE_SUITE, *tiers.PARALLEL))
        figures.append(
            tier_figure(
                "feedback.suite",
                "whole test suite, parallel workers",
                suite,
                limit=180,
                notes="nox -s tests: pytest " + " ".join((*tiers.WHOLE_SUITE, *tiers.PARALLEL)),
            )
        )
        return figures


# When the floor is more than 1/FLOOR_SHARE of a tier's limit, the limit cannot hold
# whatever the tests do; the target becomes FLOOR_SHARE times the floor: everything
# besides collecting and evaluating programs may cost at most as much as they do.
FLOOR_SHARE = 2


def tier_target(
    limit: float, floor: float, share: float, evaluations: int, act_chain: float = 0.0
) -> Target:
    """`< limit` seconds on idle cores, unless the floor measured in the same run rules it out."""
    if FLOOR_SHARE * floor <= limit * max(share, 1.0):
        return idle_target("<", limit, share)
    acts = f", while one worker runs its act tests in turn ({act_chain:.0f} s)" if act_chain else ""
    return Target(
        "<=",
        FLOOR_SHARE,
        on="ratio",
        why=(
            f"re-derived: {limit:g} s on idle cores is less than {FLOOR_SHARE}x what this "
            f"tier cannot avoid in this run ({floor:.1f} s): collecting, {evaluations} "
            f"distinct programs evaluated under mocks over the cores{acts}"
        ),
    )


def tier_figure(
    name: str, title: str, tier: Mapping[str, Any], *, limit: float, notes: str
) -> Figure:
    """A tier's wall time beside its floor (collection plus its distinct programs evaluated
    over the cores), against `limit` seconds on idle cores or a multiple of the floor."""
    cores = os.cpu_count() or 1
    cpu, share = median(tier["cpus"]), median(tier["shares"])
    floor, evaluations = median(tier["floors"]), int(median(tier["evaluations"]))
    act_chain = median(tier.get("act_chain_s") or [0.0])
    problem = tier["problem"]
    return Figure(
        name,
        title,
        "s",
        value=median(tier["walls"]),
        floor=floor,
        floor_label="collection + distinct programs evaluated / cores, or act runs in turn",
        target=tier_target(limit, floor, share, evaluations, act_chain),
        samples=list(tier["walls"]),
        floor_samples=list(tier["floors"]),
        error=f"the tests did not pass ({problem}): the time is not comparable"
        if problem
        else None,
        notes=(
            f"{notes}; CPU {cpu:.1f}s over {cores} cores, so at best {cpu / cores:.1f}s on "
            f"idle ones; collection {median(tier['collections']):.1f}s; "
            f"{evaluations} distinct programs evaluated under mocks, whole stacks and "
            f"components ({median(tier['evaluation_s']):.1f}s CPU), "
            f"{int(median(tier['evaluations_made']))} evaluations made; CPU share of a core "
            f"in this run 1/{share:.1f}"
        ),
        extra={
            "cpu_s": cpu,
            "cpu_share": share,
            "evaluations": evaluations,
            "evaluations_made": int(median(tier["evaluations_made"])),
        },
    )
