"""The test session's environment (`env`): a venv with requirements-dev through uv and
through pip, each with an empty and a warm cache."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.harness import Benchmark, Context, child_env
from bench.measure import Sample, median
from bench.report import Figure, Target


def find_uv(python: str) -> str | None:
    """uv beside the interpreter (as nox's uv backend finds it), else on PATH."""
    beside = Path(python).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


class EnvSetup(Benchmark):
    name = "env"
    description = "the test session's venv: uv vs pip, cold and warm cache"

    def planned_runs(self, ctx: Context) -> int:
        return 0 if ctx.quick else ctx.repeat * 10

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            ("env.uv_cold", "venv + requirements-dev, uv, empty cache", "s"),
            ("env.uv_warm", "venv + requirements-dev, uv, warm cache", "s"),
            ("env.pip_cold", "venv + requirements-dev, pip, empty cache", "s"),
            ("env.pip_warm", "venv + requirements-dev, pip, warm cache", "s"),
            ("env.uv_cold_compiled", "the same with uv, all bytecode compiled up front", "s"),
        ]

    def _setup(
        self,
        ctx: Context,
        tool: str,
        cache: Path,
        venv: Path,
        label: str,
        *,
        compile_bytecode: bool = False,
    ) -> Sample:
        requirements = str(ctx.root / "requirements-dev.txt")
        env = child_env(ctx.env)
        base_python = getattr(sys, "_base_executable", ctx.python) or ctx.python
        if tool == "uv":
            uv = find_uv(ctx.python)
            if uv is None:
                raise RuntimeError("uv is not installed beside the interpreter or on PATH")
            env.update(UV_CACHE_DIR=str(cache), UV_PYTHON_DOWNLOADS="never")
            # No --compile-bytecode: the nox sessions write bytecode lazily, on first import.
            commands = [
                [uv, "venv", "--quiet", "--python", base_python, str(venv)],
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    *(["--compile-bytecode"] if compile_bytecode else []),
                    "--python",
                    str(venv / "bin" / "python"),
                    "-r",
                    requirements,
                ],
            ]
        else:
            env.update(PIP_CACHE_DIR=str(cache), PIP_DISABLE_PIP_VERSION_CHECK="1")
            commands = [
                [base_python, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", requirements],
            ]
        samples = [
            ctx.run(f"{label} [{i + 1}/2]", argv, env=env, timeout=1800)
            for i, argv in enumerate(commands)
        ]
        shutil.rmtree(venv, ignore_errors=True)
        failed = [s for s in samples if not s.ok]
        if failed:
            raise RuntimeError(failed[0].failure())
        return Sample(
            argv=samples[-1].argv,
            wall_s=sum(s.wall_s for s in samples),
            max_rss_kb=max(s.max_rss_kb for s in samples),
            returncode=0,
            stdout="",
            stderr="",
        )

    def run(self, ctx: Context) -> list[Figure]:
        if ctx.quick:
            return [
                Figure(name, title, unit, skipped="--quick: not run, so not checked")
                for name, title, unit in self.figure_names()
            ]
        times: dict[str, list[float]] = {
            k: [] for k in ("uv_cold", "uv_warm", "pip_cold", "pip_warm", "uv_cold_compiled")
        }
        for rep in range(1, ctx.repeat + 1):
            for tool in ("uv", "pip"):
                with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
                    cache = Path(tmp) / "cache"  # empty: cold; the same again: warm
                    for phase in ("cold", "warm"):
                        label = f"env: {tool} {phase} ({rep}/{ctx.repeat})"
                        sample = self._setup(ctx, tool, cache, Path(tmp) / f"venv-{phase}", label)
                        times[f"{tool}_{phase}"].append(sample.wall_s)
            # What compiling all bytecode up front would cost (pip always does).
            with tempfile.TemporaryDirectory(prefix="bench-uv-") as tmp:
                label = f"env: uv cold, compiled ({rep}/{ctx.repeat})"
                sample = self._setup(
                    ctx,
                    "uv",
                    Path(tmp) / "cache",
                    Path(tmp) / "venv",
                    label,
                    compile_bytecode=True,
                )
                times["uv_cold_compiled"].append(sample.wall_s)
        return env_figures(times)


def env_figures(times: Mapping[str, Sequence[float]]) -> list[Figure]:
    m = {k: median(v) for k, v in times.items()}
    how = "`uv venv` + `uv pip install -r requirements-dev.txt` (as the nox sessions do)"
    pip_how = "`python -m venv` + `pip install -r requirements-dev.txt`"
    return [
        Figure(
            "env.uv_cold",
            "venv + requirements-dev, uv, empty cache",
            "s",
            value=m["uv_cold"],
            floor=m["pip_cold"],
            floor_label="pip, empty cache",
            target=Target("<=", 0.2, on="ratio", why="uv at least 5x faster than pip"),
            samples=list(times["uv_cold"]),
            floor_samples=list(times["pip_cold"]),
            notes=f"{how}; speed-up {m['pip_cold'] / m['uv_cold']:.1f}x; network: the registry",
        ),
        Figure(
            "env.uv_warm",
            "venv + requirements-dev, uv, warm cache",
            "s",
            value=m["uv_warm"],
            floor=m["uv_cold"],
            floor_label="uv, empty cache",
            samples=list(times["uv_warm"]),
        ),
        Figure(
            "env.pip_cold",
            "venv + requirements-dev, pip, empty cache",
            "s",
            value=m["pip_cold"],
            samples=list(times["pip_cold"]),
            notes=pip_how,
        ),
        Figure(
            "env.pip_warm",
            "venv + requirements-dev, pip, warm cache",
            "s",
            value=m["pip_warm"],
            floor=m["pip_cold"],
            floor_label="pip, empty cache",
            samples=list(times["pip_warm"]),
        ),
        Figure(
            "env.uv_cold_compiled",
            "the same with uv, empty cache, all bytecode compiled up front",
            "s",
            value=m["uv_cold_compiled"],
            floor=m["uv_cold"],
            floor_label="uv, bytecode written on first import",
            samples=list(times["uv_cold_compiled"]),
            notes=(
                "the difference to env.uv_cold is compiling every module (pulumi_aws alone is "
                "~3,000); the sessions instead let Python write bytecode for the dozen modules "
                "a process imports, the first time it imports them"
            ),
        ),
    ]
