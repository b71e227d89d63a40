"""The program's synthesis: the synth CLI beside `import pulumi, pulumi_aws` (`synth`),
and how an evaluation grows with the API versions in config (`growth`)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.harness import Benchmark, Context, contention, last_json
from bench.measure import median
from bench.report import Figure, Target

SYNTH_BRANCH = "bench/synth"
# Growth axis: API versions (one resource, method, integration, permission, stage and
# documentation parts each). The program has one model Lambda, so "model versions"
# in config do not exist; API versions are what a config change multiplies.
# Sizes far enough apart that each slope is a difference of seconds, not of the ~100 ms
# this machine's noise moves one evaluation by.
GROWTH_VERSIONS = (1, 20, 80)
GROWTH_EVALUATIONS = 4  # per process; the first warms the imports and is not counted
MB = 1024  # ru_maxrss is in KB


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
        # Printed beside the per-resource figure: how much of a core this run had.
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
            # A ratio, not milliseconds: the floor runs through the same SDK, mocks and
            # core in the same run, so the machine's speed and load cancel out. 3x is the
            # 3 ms set when a bare registration took 1 ms on an idle core.
            target=Target("<=", 3, on="ratio", why="3 bare registrations per resource"),
            samples=per_resource,
            floor_samples=bare,
            notes=(
                f"warm evaluation (imports done) / {resources} registrations, components "
                "included; floor: as many plain resources through the same mock monitor; "
                f"CPU share of a core in this run 1/{share:.1f}"
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
        a, b, c = GROWTH_VERSIONS
        return [
            *[
                (f"growth.eval_{n}", f"evaluation with {n} API version(s)", "ms")
                for n in GROWTH_VERSIONS
            ],
            (f"growth.per_version_{a}_{b}", f"cost per added API version, {a} -> {b}", "ms"),
            (f"growth.per_version_{b}_{c}", f"cost per added API version, {b} -> {c}", "ms"),
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
                        str(GROWTH_EVALUATIONS),
                    ],
                )
                if not sample.ok:
                    raise RuntimeError(sample.failure())
                probe = last_json(sample)
                evaluations[n].extend(s * 1000 for s in probe["evaluations_s"][1:])
                resources[n] = probe["resources"]
        return growth_figures(evaluations, resources)


def growth_figures(
    evaluations: Mapping[int, Sequence[float]], resources: Mapping[int, int]
) -> list[Figure]:
    """Per-version slopes from the fastest evaluation (ms) at each of GROWTH_VERSIONS.

    The fastest, not the median: load and collection pauses only ever add time, so the
    fastest of several evaluations is the closest to the program's own cost, and a slope
    is a difference of two of them, which added time at one size would skew.
    """
    a, b, c = GROWTH_VERSIONS
    t = {n: min(evaluations[n]) for n in GROWTH_VERSIONS}
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
            notes=f"{resources[n]} registrations; the fastest of {len(evaluations[n])} evaluations",
        )
        for n in GROWTH_VERSIONS
    ]
    figures += [
        Figure(
            f"growth.per_version_{a}_{b}",
            f"cost per added API version, {a} -> {b}",
            "ms",
            value=first,
            notes=f"{per_version:g} registrations per API version",
        ),
        Figure(
            f"growth.per_version_{b}_{c}",
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
