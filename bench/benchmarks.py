"""The benchmarks: each plans its child runs, runs them through `Context`, returns figures."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import evaluations as evaluations_plugin
from bench import tiers
from bench.harness import Benchmark, Context, child_env, contention, idle_target, last_json
from bench.measure import Sample, median
from bench.report import Figure, Target

SYNTH_BRANCH = "bench/synth"
# Growth axis: API versions (one resource, method, integration, permission, stage and
# documentation parts each). The program has one model Lambda, so "model versions"
# in config do not exist; API versions are what a config change multiplies.
GROWTH_VERSIONS = (1, 10, 50)
POLL_SECONDS = 0.2
BAKE_SECONDS = 1.0
PROMOTION_STEPS = (10, 50, 100)
MB = 1024  # ru_maxrss is in KB


# --- synth -------------------------------------------------------------------------------


class Synth(Benchmark):
    name = "synth"
    description = "synth of a full branch stack vs a bare `import pulumi, pulumi_aws`"

    def planned_runs(self, ctx: Context) -> int:
        return ctx.repeat + 1 + 3 * (ctx.repeat + 1)

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            ("synth.wall", "synth CLI, full branch stack: wall time", "s"),
            ("synth.imports", "the service modules the program uses: import time", "s"),
            ("synth.ms_per_resource", "synth evaluation per registered resource", "ms"),
            ("synth.peak_rss", "synth CLI: peak RSS", "MB"),
        ]

    def run(self, ctx: Context) -> list[Figure]:
        # The probes first: they say which pulumi_aws service modules the program loads.
        probes = []
        for rep in range(1, ctx.repeat + 1):
            sample = ctx.run(
                f"synth: in-process evaluation probe ({rep}/{ctx.repeat})",
                [ctx.python, "-m", "bench.probe", "synth", "--evaluations", "3", "--bare"],
            )
            if not sample.ok:
                raise RuntimeError(sample.failure())
            probes.append(last_json(sample))
        # The evaluation's per-resource target is set for an idle core.
        share = contention(ctx, "synth")
        modules = list(probes[0].get("aws_modules", []))
        floor_argv = [ctx.python, "-c", "import pulumi, pulumi_aws"]
        # `import pulumi_aws.s3` would only fetch the lazy placeholder pulumi_aws put in
        # sys.modules; reading an attribute (not an introspection one such as __file__)
        # is what loads a module, as the program's `aws.s3.Bucket` does.
        modules_argv = [
            ctx.python,
            "-c",
            "; ".join(
                ["import pulumi, pulumi_aws", *(f"getattr({m}, '_load', None)" for m in modules)]
            ),
        ]
        walls, floors, module_floors, rss, floor_rss = [], [], [], [], []
        with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
            cli = [
                ctx.python,
                "-m",
                "scripts.synth",
                "--branch",
                SYNTH_BRANCH,
                "--output",
                str(Path(tmp) / "inventory.md"),
            ]
            # One discarded round first (page cache), then the floors and the CLI
            # interleaved so any drift of the machine's load hits all three alike.
            for rep in range(ctx.repeat + 1):
                tag = "warm-up" if rep == 0 else f"{rep}/{ctx.repeat}"
                floor = ctx.run(f"synth: floor `import pulumi, pulumi_aws` ({tag})", floor_argv)
                with_modules = ctx.run(
                    f"synth: floor + the {len(modules)} modules the program uses ({tag})",
                    modules_argv,
                )
                sample = ctx.run(f"synth: CLI --branch {SYNTH_BRANCH} ({tag})", cli)
                for s in (floor, with_modules, sample):
                    if not s.ok:
                        raise RuntimeError(s.failure())
                if rep:
                    floors.append(floor.wall_s)
                    module_floors.append(with_modules.wall_s)
                    walls.append(sample.wall_s)
                    floor_rss.append(floor.max_rss_kb / MB)
                    rss.append(sample.max_rss_kb / MB)
        return synth_figures(
            probes, walls, floors, module_floors, rss, floor_rss, modules, share=share
        )


def synth_figures(  # noqa: PLR0917 - one figure set from one run's measurements
    probes: Sequence[Mapping[str, Any]],
    walls: Sequence[float],
    floors: Sequence[float],
    module_floors: Sequence[float],
    rss: Sequence[float],
    floor_rss: Sequence[float],
    modules: Sequence[str],
    *,
    share: float = 1.0,
) -> list[Figure]:
    resources = probes[0]["resources"]
    # Warm evaluations only: the first one also imports the pulumi_aws modules the
    # program touches (lazily loaded), which the wall-time figure already covers.
    per_resource = [median(p["evaluations_s"][1:]) / p["resources"] * 1000 for p in probes]
    bare = [median(p["bare_evaluations_s"][1:]) / p["resources"] * 1000 for p in probes]
    first = median([p["evaluations_s"][0] for p in probes])
    imports = median([p["import_s"] for p in probes])
    warm = median([median(p["evaluations_s"][1:]) for p in probes])
    floor, module_floor, wall = median(floors), median(module_floors), median(walls)
    services = [m.split(".", 1)[1] for m in modules if not m.split(".", 1)[1].startswith("get_")]
    target = Target("<", 3, on="ratio")
    if wall / floor >= 3:
        # The bare import loads none of the service modules (pulumi_aws loads each on first
        # use), so it is no floor for a program that must load them: 3x of a floor that
        # does, expressed against the bare import.
        target = Target(
            "<",
            round(3 * module_floor / floor, 2),
            on="ratio",
            why=(
                f"re-derived: 3x of `import pulumi, pulumi_aws` + the {len(services)} service "
                f"modules the program uses ({module_floor:.2f}s in this run)"
            ),
        )
    return [
        Figure(
            "synth.wall",
            "synth CLI, full branch stack: wall time",
            "s",
            value=wall,
            floor=floor,
            floor_label="`import pulumi, pulumi_aws`",
            target=target,
            samples=list(walls),
            floor_samples=list(floors),
            notes=(
                f"{resources} registrations; {wall / module_floor:.2f}x of the floor that also "
                f"imports the service modules it uses ({', '.join(services)}); in a probe: "
                f"imports {imports:.2f}s, first evaluation {first:.2f}s (includes importing "
                f"those modules), a second evaluation {warm:.2f}s"
            ),
        ),
        Figure(
            "synth.imports",
            "`import pulumi, pulumi_aws` + the service modules the program uses",
            "s",
            value=module_floor,
            floor=floor,
            floor_label="`import pulumi, pulumi_aws`",
            samples=list(module_floors),
            notes=(
                "the program already imports lazily: `pulumi_aws` registers ~250 service "
                "modules and loads only those an attribute is read from; this is what loading "
                "the ones it needs costs, the part of the synth no lazier import can remove"
            ),
        ),
        Figure(
            "synth.ms_per_resource",
            "synth evaluation per registered resource",
            "ms",
            value=median(per_resource),
            floor=median(bare),
            floor_label="bare CustomResource, same mocks",
            target=idle_target("<=", 3, share, "ms"),
            samples=per_resource,
            floor_samples=bare,
            notes=(
                f"warm evaluation (imports done) / {resources} registrations, components "
                "included; floor: as many plain resources through the same mock monitor"
            ),
        ),
        Figure(
            "synth.peak_rss",
            "synth CLI: peak RSS",
            "MB",
            value=median(rss),
            floor=median(floor_rss),
            floor_label="`import pulumi, pulumi_aws`",
            target=Target("<", 250),
            samples=list(rss),
            floor_samples=list(floor_rss),
        ),
    ]


# --- growth ------------------------------------------------------------------------------


class Growth(Benchmark):
    name = "growth"
    description = "synth with 1, 10 and 50 API versions in config"

    def planned_runs(self, ctx: Context) -> int:
        return ctx.repeat * len(GROWTH_VERSIONS)

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            *[
                (f"growth.eval_{n}", f"evaluation with {n} API version(s)", "ms")
                for n in GROWTH_VERSIONS
            ],
            ("growth.per_version_1_10", "cost per added API version, 1 -> 10", "ms"),
            ("growth.per_version_10_50", "cost per added API version, 10 -> 50", "ms"),
        ]

    def run(self, ctx: Context) -> list[Figure]:
        evaluations: dict[int, list[float]] = {n: [] for n in GROWTH_VERSIONS}
        resources: dict[int, int] = {}
        for rep in range(1, ctx.repeat + 1):
            for n in GROWTH_VERSIONS:  # interleaved, so load drift spreads over all three
                sample = ctx.run(
                    f"growth: {n} API version(s) ({rep}/{ctx.repeat})",
                    [
                        ctx.python,
                        "-m",
                        "bench.probe",
                        "synth",
                        "--api-versions",
                        str(n),
                        "--evaluations",
                        "3",
                    ],
                )
                if not sample.ok:
                    raise RuntimeError(sample.failure())
                probe = last_json(sample)
                evaluations[n].append(median(probe["evaluations_s"][1:]) * 1000)
                resources[n] = probe["resources"]
        return growth_figures(evaluations, resources)


def growth_figures(
    evaluations: Mapping[int, Sequence[float]], resources: Mapping[int, int]
) -> list[Figure]:
    """Per-version slopes from median evaluation times (ms) at 1, 10 and 50 versions."""
    a, b, c = GROWTH_VERSIONS
    t = {n: median(evaluations[n]) for n in GROWTH_VERSIONS}
    first = (t[b] - t[a]) / (b - a)
    second = (t[c] - t[b]) / (c - b)
    per_version = (resources[c] - resources[b]) / (c - b)
    figures = [
        Figure(
            f"growth.eval_{n}",
            f"evaluation with {n} API version(s)",
            "ms",
            value=t[n],
            samples=list(evaluations[n]),
            notes=f"{resources[n]} registrations",
        )
        for n in GROWTH_VERSIONS
    ]
    figures += [
        Figure(
            "growth.per_version_1_10",
            f"cost per added API version, {a} -> {b}",
            "ms",
            value=first,
            notes=f"{per_version:g} registrations per API version",
        ),
        Figure(
            "growth.per_version_10_50",
            f"cost per added API version, {b} -> {c}",
            "ms",
            value=second,
            floor=first,
            floor_label=f"slope {a} -> {b}",
            target=Target("<=", 1.5, on="ratio", why="flat: linear total"),
            notes=(
                "the growth axis is API versions: the program has one model Lambda, so "
                "config holds no list of model versions to grow"
            ),
        ),
    ]
    return figures


# --- feedback ----------------------------------------------------------------------------


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
        timed = [*pytest, "-p", "bench.evaluations"]
        walls, collections, cpus, shares, problems = [], [], [], [], []
        work, evaluations, made = [], [], []
        for rep in range(1, ctx.repeat + 1):
            collect = ctx.run(
                f"feedback: {label}, collection only ({rep}/{ctx.repeat})",
                [*pytest, "--collect-only"],
            )
            with tempfile.TemporaryDirectory(prefix="bench-evaluations-") as folder:
                env = {**ctx.env, evaluations_plugin.ENV: folder}
                run = ctx.run(f"feedback: {label} ({rep}/{ctx.repeat})", timed, env=env)
                distinct = evaluations_plugin.read(Path(folder))
                made.append(evaluations_plugin.count(Path(folder)))
            shares.append(contention(ctx, f"feedback: {label} ({rep}/{ctx.repeat})"))
            collections.append(collect.wall_s)
            walls.append(run.wall_s)
            cpus.append(run.cpu_s)
            evaluations.append(len(distinct))
            work.append(sum(distinct.values()))
            for s in (collect, run):
                if not s.ok:
                    tail = s.stdout.strip().splitlines()[-1:] or [s.failure()]
                    problems.append(f"exit {s.returncode}: {tail[0]}")
        cores = os.cpu_count() or 1
        return {
            "walls": walls,
            "collections": collections,
            # What the tier cannot avoid: collecting, and evaluating each distinct program
            # configuration once, spread over the cores.
            "floors": [c + w / cores for c, w in zip(collections, work, strict=True)],
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


def tier_target(limit: float, floor: float, share: float, evaluations: int) -> Target:
    """`< limit` seconds on idle cores, unless the floor measured in the same run rules it out."""
    if FLOOR_SHARE * floor <= limit * max(share, 1.0):
        return idle_target("<", limit, share)
    return Target(
        "<=",
        FLOOR_SHARE,
        on="ratio",
        why=(
            f"re-derived: {limit:g} s on idle cores is less than {FLOOR_SHARE}x what this "
            f"tier cannot avoid in this run, collecting and {evaluations} distinct program "
            f"evaluations over the cores ({floor:.1f} s)"
        ),
    )


def tier_figure(
    name: str, title: str, tier: Mapping[str, Any], *, limit: float, notes: str
) -> Figure:
    """A tier's wall time beside its floor (collection plus its distinct program evaluations
    over the cores), against `limit` seconds on idle cores or a multiple of the floor."""
    cores = os.cpu_count() or 1
    cpu, share = median(tier["cpus"]), median(tier["shares"])
    floor, evaluations = median(tier["floors"]), int(median(tier["evaluations"]))
    problem = tier["problem"]
    return Figure(
        name,
        title,
        "s",
        value=median(tier["walls"]),
        floor=floor,
        floor_label="collection + distinct program evaluations / cores",
        target=tier_target(limit, floor, share, evaluations),
        samples=list(tier["walls"]),
        floor_samples=list(tier["floors"]),
        error=f"the tests did not pass ({problem}): the time is not comparable"
        if problem
        else None,
        notes=(
            f"{notes}; CPU {cpu:.1f}s over {cores} cores, so at best {cpu / cores:.1f}s on "
            f"idle ones; collection {median(tier['collections']):.1f}s; "
            f"{evaluations} distinct program evaluations ({median(tier['evaluation_s']):.1f}s "
            f"CPU), {int(median(tier['evaluations_made']))} made; CPU share of a core in this "
            f"run 1/{share:.1f}"
        ),
        extra={
            "cpu_s": cpu,
            "cpu_share": share,
            "evaluations": evaluations,
            "evaluations_made": int(median(tier["evaluations_made"])),
        },
    )


# --- environment setup -------------------------------------------------------------------


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


# --- promotion ---------------------------------------------------------------------------


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


# --- pipeline ----------------------------------------------------------------------------


class Pipeline(Benchmark):
    name = "pipeline"
    description = "push pipeline under act: time to the first test verdict and to preview"

    def planned_runs(self, ctx: Context) -> int:
        return 0 if ctx.quick else 2

    def figure_names(self) -> list[tuple[str, str, str]]:
        return [
            ("pipeline.first_verdict", "push -> first test verdict, under act", "s"),
            ("pipeline.preview", "push -> preview done, under act", "s"),
            ("pipeline.job_sum", "sum of the jobs' durations (runner time)", "s"),
        ]

    def run(self, ctx: Context) -> list[Figure]:
        if ctx.quick:
            return [
                Figure(name, title, unit, skipped="--quick: not run, so not checked")
                for name, title, unit in self.figure_names()
            ]
        # One run per order, old first: each runs the whole suite under act, minutes long.
        results = {}
        for order in ("old", "new"):
            sample = ctx.run(
                f"pipeline: push.yml to preview under act, {order} order",
                [ctx.python, "-m", "bench.pipeline", "--order", order],
                timeout=3600,
            )
            if not sample.ok:
                raise RuntimeError(sample.failure())
            results[order] = last_json(sample)
        return pipeline_figures(results["old"], results["new"])


def pipeline_figures(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Figure]:
    bad = [
        f"{r['order']}: act exit {r['returncode']}, results {r['results']} "
        f"({' | '.join(r.get('failed', []))})"
        for r in (old, new)
        if r["returncode"] != 0
    ]
    error = ("the pipeline did not pass: " + "; ".join(bad)) if bad else None

    def figure(key: str, name: str, title: str, **kwargs: Any) -> Figure:
        return Figure(
            name,
            title,
            "s",
            value=new[key],
            floor=old[key],
            floor_label="old order, same run",
            error=error,
            **kwargs,
        )

    jobs = ", ".join(
        f"{job} {span['end'] - span['start']:.0f}s" for job, span in sorted(new["jobs"].items())
    )
    return [
        figure(
            "first_verdict_s",
            "pipeline.first_verdict",
            "push -> first test verdict, under act",
            target=Target("<=", 1 / 3, on="ratio", why="a third of the old order's"),
            notes=(
                "new: `lint unit` gates the preview, `integration` runs beside it; old: one "
                "job `lint tests` before the preview; both from today's push.yml, the real "
                "suite under act (host mode, `--job preview`: the jobs on the critical path), "
                f"one run each; new jobs: {jobs}"
            ),
        ),
        figure(
            "preview_s",
            "pipeline.preview",
            "push -> preview done, under act",
            target=Target("<", 1, on="ratio", why="sooner than the old order"),
        ),
        figure(
            "job_sum_s",
            "pipeline.job_sum",
            "sum of the jobs' durations (runner time)",
            notes="the jobs on the critical path; the new order's integration job (moto and "
            "act tiers, beside the preview) adds its own runner time",
        ),
    ]


# --- sweeper -----------------------------------------------------------------------------

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


# --- mutants -----------------------------------------------------------------------------

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
    return Figure(
        "mutants.killed",
        title,
        "%",
        value=100 * killed / total if total else None,
        target=target,
        notes=(
            f"{killed} of {total} killed ({stats.get('survived', 0)} survived, "
            f"{stats.get('no_tests', 0)} reached by no test, {stats.get('timeout', 0)} timed "
            f"out); scope: [tool.mutmut] in pyproject.toml; stats written "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(age))} UTC"
        ),
    )


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Synth(),
        Growth(),
        Feedback(),
        EnvSetup(),
        Promotion(),
        Pipeline(),
        Sweeper(),
        Mutants(),
    )
}
