"""The mutation score (`mutants`), read from the last `nox -s mutants` run rather than
measured: that run takes minutes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.harness import Benchmark, Context
from bench.mutant_equivalents import EQUIVALENTS
from bench.report import Figure, Target

MUTANTS_STATS = "mutants/mutmut-cicd-stats.json"


class Mutants(Benchmark):
    name = "mutants"
    description = "the last `nox -s mutants` run: share of mutants the tests kill"

    def planned_runs(self, ctx: Context) -> int:
        return 0

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [("mutants.killed", "mutants killed by the tests (mutmut)", "%")]

    def run(self, ctx: Context) -> list[Figure]:
        return [mutants_figure(ctx.root)]


def mutants_figure(root: Path) -> Figure:
    """The score of the last `nox -s mutants` run, read from mutmut's CI/CD stats."""
    path = root / MUTANTS_STATS
    title = "mutants killed by the tests (mutmut)"
    target = Target(">=", 90)
    if not path.is_file():
        return Figure(
            "mutants.killed",
            title,
            "%",
            target=target,
            skipped=f"no {MUTANTS_STATS}: run `nox -s mutants` first (minutes; not on every push)",
        )
    stats = json.loads(path.read_text())
    killed = stats.get("killed", 0)
    # Every mutant counts against the score unless a test killed it: survivors, those no
    # test reaches, timeouts and suspicious ones alike.
    total = stats.get("total") or sum(
        stats.get(k, 0)
        for k in ("killed", "survived", "no_tests", "timeout", "suspicious", "segfault")
    )
    age = os.path.getmtime(path)
    equivalent = _equivalents(root, age)
    judged = total - (equivalent or 0)
    if equivalent is None:
        counted = f"no {EQUIVALENTS} from this run, so none set aside as equivalent"
    else:
        counted = (
            f"{equivalent} survivors set aside as equivalent by the rules of "
            f"bench/mutant_equivalents.py; {100 * killed / total:.1f} % of all {total}"
        )
    return Figure(
        "mutants.killed",
        title,
        "%",
        value=100 * killed / judged if judged else None,
        target=target,
        notes=(
            f"{killed} of {judged} killed ({stats.get('survived', 0)} survived, "
            f"{stats.get('no_tests', 0)} reached by no test, {stats.get('timeout', 0)} timed "
            f"out); {counted}; scope: [tool.mutmut] in pyproject.toml; stats written "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(age))} UTC"
        ),
    )


def _equivalents(root: Path, stats_written: float) -> int | None:
    """How many survivors the equivalence rules matched, if they ran on these stats."""
    path = root / EQUIVALENTS
    if not path.is_file() or os.path.getmtime(path) < stats_written:
        return None
    return len(json.loads(path.read_text())["mutants"])
