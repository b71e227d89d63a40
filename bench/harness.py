"""What every benchmark shares: the context its child runs go through, the environment
they run in, the machine's CPU share and the wall-time targets it re-derives."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Sample, run_child
from bench.report import Figure, Target
from scripts.lib.progress import Progress


@dataclass
class Context:
    root: Path
    python: str
    repeat: int
    quick: bool
    progress: Progress
    env: dict[str, str] = field(default_factory=dict)
    runner: Callable[..., Sample] = run_child

    def run(
        self,
        label: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 1800,
    ) -> Sample:
        self.progress.note(f"running {label}")
        sample = self.runner(argv, cwd=self.root, env=env or self.env, timeout=timeout)
        state = ""
        if not sample.ok:
            state = f" — FAILED ({'timeout' if sample.timed_out else sample.returncode})"
        self.progress.step(f"{label}: {sample.wall_s:.2f}s{state}")
        return sample


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment children run in: the bench's, minus what would make them write elsewhere."""
    env = dict(os.environ if base is None else base)
    # The synth CLI appends its inventory to the step summary; the bench writes its own.
    env.pop("GITHUB_STEP_SUMMARY", None)
    # As under nox (noxfile.py): a machine that sets it would have every timed process
    # recompile the modules it imports, which is not what a developer's run pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def contention(ctx: Context, label: str) -> float:
    """How many times slower than its CPU time a CPU-bound child ran just now (>= 1).

    1.0 on idle cores; on a machine others are using, the share of a core each process
    gets. Measured beside a figure, it re-derives a wall-time target set for idle cores.
    """
    sample = ctx.run(f"{label}: CPU share probe", [ctx.python, "-m", "bench.probe", "calibrate"])
    if not sample.ok:
        raise RuntimeError(sample.failure())
    probe = last_json(sample)
    return max(1.0, probe["wall_s"] / max(probe["cpu_s"], 1e-6))


# Below this, the machine counts as idle and a target set for idle cores stands as it is.
SHARED_MACHINE = 1.25


def idle_target(op: str, limit: float, share: float, unit: str = "s") -> Target:
    """`op limit` on idle cores; on a shared machine, scaled by the CPU share measured in
    the same run, with the reason beside it."""
    if share < SHARED_MACHINE:
        return Target(op, limit)
    return Target(
        op,
        round(limit * share, 1),
        why=(
            f"re-derived: {limit:g} {unit} on idle cores; a CPU-bound probe in this run got "
            f"1/{share:.1f} of a core (machine shared)"
        ),
    )


def last_json(sample: Sample) -> dict[str, Any]:
    """The result a child printed: its last line that is a JSON object."""
    for line in reversed(sample.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON result in the output of {' '.join(sample.argv[:4])}")


class Benchmark:
    name = ""
    description = ""

    def planned_runs(self, ctx: Context) -> int:
        raise NotImplementedError

    def run(self, ctx: Context) -> list[Figure]:
        raise NotImplementedError

    def figure_names(self) -> list[tuple[str, str, str]]:
        """(name, title, unit) of every figure, for reporting a benchmark that crashed."""
        raise NotImplementedError
