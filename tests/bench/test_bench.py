"""The bench's pure parts: statistics, targets, reports and the exit code. No timing asserted."""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import __main__ as cli
from bench import (
    alias_promotion,
    env_setup,
    evaluations,
    feedback,
    harness,
    measure,
    mutants,
    pipeline_order,
    report,
    sweeper,
    synthesis,
    tiers,
)
from bench.measure import Sample
from bench.report import Figure, Target
from scripts.lib.progress import Progress
from tests.project import ROOT


def test_median_and_ratio() -> None:
    assert measure.median([3.0, 1.0, 2.0]) == 2.0
    assert measure.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    with pytest.raises(ValueError, match="no values"):
        measure.median([])
    assert measure.ratio(3.0, 1.5) == 2.0
    assert measure.ratio(3.0, 0.0) is None
    assert measure.ratio(None, 1.0) is None


@pytest.mark.parametrize(
    ("target", "value", "floor", "met"),
    [
        (Target("<", 3, on="ratio"), 2.9, 1.0, True),
        (Target("<", 3, on="ratio"), 3.0, 1.0, False),
        (Target("<=", 3), 3.0, None, True),
        (Target("<=", 3), 3.01, None, False),
        (Target(">=", 5), 5.0, None, True),
        (Target("<=", 0.2, on="ratio"), 1.0, 5.0, True),
        (Target("<=", 0.2, on="ratio"), 1.0, 4.0, False),
        (Target("<", 3, on="ratio"), 1.0, None, False),  # no floor: cannot be met
    ],
)
def test_targets(target: Target, value: float, floor: float | None, met: bool) -> None:
    assert Figure("x", "x", "s", value=value, floor=floor, target=target).status == (
        report.PASS if met else report.FAIL
    )


def test_target_descriptions() -> None:
    assert Target("<", 3, on="ratio").describe("s") == "< 3x floor"
    assert Target("<=", 3).describe("ms") == "≤ 3 ms"
    assert Target("<=", 1.5, on="ratio", why="flat").describe("ms") == "≤ 1.5x floor (flat)"
    with pytest.raises(ValueError, match="bad target"):
        Target("=", 1)


def test_statuses() -> None:
    assert Figure("a", "a", "s", value=1.0).status == report.INFO
    assert Figure("a", "a", "s", value=None, target=Target("<", 1)).status == report.ERROR
    assert Figure("a", "a", "s", value=0.5, target=Target("<", 1), error="boom").status == (
        report.ERROR
    )
    assert Figure("a", "a", "s", target=Target("<", 1), skipped="--quick").status == (
        report.SKIPPED
    )


def _figures() -> list[Figure]:
    return [
        Figure("synth.wall", "synth", "s", value=2.0, floor=1.0, target=Target("<", 3, on="ratio")),
        Figure("synth.peak_rss", "rss", "MB", value=300.0, floor=50.0, target=Target("<", 250)),
        Figure("growth.eval_1", "eval", "ms", value=150.0, notes="57 registrations"),
        Figure("feedback.suite", "suite", "s", target=Target("<", 180), skipped="--quick: not run"),
        Figure("promotion.rollback", "rollback", "s", target=Target("<=", 1.5), error="no moto"),
    ]


def test_exit_code_and_verdicts_name_each_missed_figure() -> None:
    figures = _figures()
    assert [f.name for f in report.missed(figures)] == ["synth.peak_rss", "promotion.rollback"]
    assert report.exit_code(figures) == 1
    assert report.exit_code(figures[:1] + figures[2:4]) == 0  # pass, info, skipped
    peak = figures[1].verdict()
    assert peak.startswith("synth.peak_rss: 300 MB = 6.00x floor")
    assert "< 250 MB" in peak
    assert figures[4].verdict() == "promotion.rollback: could not be measured: no moto"


def test_markdown_report() -> None:
    context = {"date": "2026-01-01", "repeat": 3}
    markdown = report.render_markdown(_figures(), context)
    assert "| figure | what | value | floor | ratio | target | result |" in markdown
    assert "| `synth.wall` | synth | 2.00 s | 1.00 s | 2.00x | < 3x floor | ✅ pass |" in markdown
    assert "❌ FAIL" in markdown and "❌ ERROR" in markdown and "⏭ skipped" in markdown
    assert "1 passed, 2 missed, 1 informational, 1 skipped (not run, so not checked)" in markdown
    assert "- synth.peak_rss: 300 MB" in markdown
    assert "- `feedback.suite`: --quick: not run" in markdown
    assert "- `growth.eval_1`: 57 registrations" in markdown
    assert "date: 2026-01-01, repeat: 3" in markdown


def test_json_report() -> None:
    document = json.loads(report.render_json(_figures(), {"repeat": 3}))
    assert document["missed"] == ["synth.peak_rss", "promotion.rollback"]
    by_name = {f["name"]: f for f in document["figures"]}
    assert by_name["synth.wall"]["ratio"] == 2.0
    assert by_name["synth.wall"]["target"]["text"] == "< 3x floor"
    assert by_name["feedback.suite"]["status"] == "skipped"
    assert set(by_name["synth.wall"]) >= {"value", "floor", "ratio", "target", "status"}


def test_format_of_numbers() -> None:
    assert [report.fmt(v) for v in (None, 0, 0.0421, 0.5, 12.34, 1466.2)] == [
        "—",
        "0.00",
        "0.0421",
        "0.50",
        "12.3",
        "1466",
    ]


# --- figures computed from (fake) measurements ---------------------------------------


def test_growth_slopes_and_flatness() -> None:
    a, b, c = synthesis.GROWTH_VERSIONS
    resources = {a: 50, b: 50 + 7 * (b - a), c: 50 + 7 * (c - a)}

    def evaluations(per_version: tuple[float, float], noise: float = 0.0) -> dict:
        # Each size measured three times; one of them slowed by `noise` ms.
        at_b = 100.0 + per_version[0] * (b - a)
        at_c = at_b + per_version[1] * (c - b)
        return {n: [t + noise, t, t + 1.0] for n, t in ((a, 100.0), (b, at_b), (c, at_c))}

    first, second = f"growth.per_version_{a}_{b}", f"growth.per_version_{b}_{c}"
    flat = {f.name: f for f in synthesis.growth_figures(evaluations((20.0, 20.0)), resources)}
    assert flat[first].value == pytest.approx(20.0)
    assert flat[second].value == pytest.approx(20.0)
    assert flat[second].status == report.PASS
    assert "7 registrations per API version" in flat[first].notes
    # A slowed evaluation at any size leaves the slopes where they are: the fastest counts.
    noisy = synthesis.growth_figures(evaluations((20.0, 20.0), noise=500.0), resources)
    assert {f.name: f.value for f in noisy} == {f.name: f.value for f in flat.values()}
    steep = synthesis.growth_figures(evaluations((20.0, 31.0)), resources)
    assert {f.name: f for f in steep}[second].status == report.FAIL


def test_env_figures_check_uv_against_pip_cold() -> None:
    times = {
        "uv_cold": [4.0],
        "uv_warm": [1.0],
        "pip_cold": [40.0],
        "pip_warm": [20.0],
        "uv_cold_compiled": [2.0],
    }
    by_name = {f.name: f for f in env_setup.env_figures(times)}
    assert by_name["env.uv_cold"].ratio == pytest.approx(0.1)
    assert by_name["env.uv_cold"].status == report.PASS
    times["uv_cold"] = [10.0]
    assert {f.name: f for f in env_setup.env_figures(times)}["env.uv_cold"].status == report.FAIL


def _promotion_result(latency: float | None, restored: bool = True) -> dict:
    return {
        "poll_s": 0.2,
        "bake_s": 1.0,
        "steps": [10, 50, 100],
        "clean_calls": {
            "lambda:UpdateAlias": 3,
            "cloudwatch:DescribeAlarms": 12,
            "lambda:GetAlias": 3,
        },
        "rollback_outcome": "rolled-back",
        "restored": restored,
        "rollback_latency_s": latency,
    }


def test_promotion_figures_report_the_worst_rollback_in_polls() -> None:
    figures = alias_promotion.promotion_figures(
        [_promotion_result(0.1), _promotion_result(0.28), _promotion_result(0.2)]
    )
    rollback, calls = figures
    assert rollback.value == pytest.approx(0.28)
    assert rollback.ratio == pytest.approx(1.4)
    assert rollback.status == report.PASS
    assert calls.value == pytest.approx(6.0)
    assert "lambda:UpdateAlias 1.0" in calls.notes
    late = alias_promotion.promotion_figures([_promotion_result(0.31)])
    assert late[0].status == report.FAIL
    stuck = alias_promotion.promotion_figures([_promotion_result(0.1, restored=False)])
    assert stuck[0].status == report.ERROR


# --- the benchmarks' control flow, with a fake runner ---------------------------------


class FakeRunner:
    """Answers each child run with a canned Sample; records what was run."""

    def __init__(self, probe: dict | None = None, returncode: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.probe = probe or {}
        self.returncode = returncode

    def __call__(self, argv: Sequence[str], *, cwd: Path, env: dict, timeout: float) -> Sample:
        self.calls.append(list(argv))
        collecting = feedback.COLLECT_ONLY[-1] in argv
        is_floor = "import pulumi, pulumi_aws" in argv or collecting
        stdout = json.dumps(self.probe) if "bench.probe" in argv else "5 passed in 1.0s\n"
        returncode = self.returncode
        if collecting and returncode == 0:  # every test deselected: pytest's "no tests ran"
            stdout, returncode = "5 deselected in 1.0s\n", feedback.NO_TESTS_RAN
        if "calibrate" in argv:  # an idle machine: the probe got a whole core
            stdout, returncode = json.dumps({"wall_s": 0.2, "cpu_s": 0.2}), 0
        return Sample(
            argv=tuple(argv),
            wall_s=1.0 if is_floor else 2.0,
            max_rss_kb=100 * 1024,
            returncode=returncode,
            stdout=stdout,
            stderr="",
        )


def _context(runner: FakeRunner, quick: bool = False, stream: io.StringIO | None = None):
    return harness.Context(
        root=ROOT,
        python=sys.executable,
        repeat=2,
        quick=quick,
        progress=Progress("bench", total=10, stream=stream or io.StringIO()),
        runner=runner,
    )


def test_synth_benchmark_interleaves_floor_and_program() -> None:
    runner = FakeRunner(
        {
            "resources": 64,
            "import_s": 0.2,
            "evaluations_s": [1.0, 0.128, 0.128],
            "bare_evaluations_s": [0.1, 0.064, 0.064],
            "aws_modules": ["pulumi_aws.s3", "pulumi_aws.iam"],
        }
    )
    ctx = _context(runner)
    figures = {f.name: f for f in synthesis.Synth().run(ctx)}
    assert len(runner.calls) == synthesis.Synth().planned_runs(ctx)
    kinds = [
        "probe"
        if "bench.probe" in c
        else "cli"
        if "scripts.synth" in c
        else "floor"
        if c[-1] == "import pulumi, pulumi_aws"
        else "modules"
        for c in runner.calls
    ]
    # The probes say which modules to import; then floors and CLI interleaved.
    assert kinds == ["probe"] * 3 + ["floor", "modules", "cli"] * 3  # 2 probes, CPU share
    modules_floor = runner.calls[4][-1]
    # Reading an attribute loads a lazy pulumi_aws module, as the program's code does.
    assert modules_floor == (
        "import pulumi, pulumi_aws; getattr(pulumi_aws.s3, '_load', None); "
        "getattr(pulumi_aws.iam, '_load', None)"
    )
    assert figures["synth.wall"].ratio == pytest.approx(2.0)
    assert figures["synth.wall"].target == Target("<", 3, on="ratio")
    assert figures["synth.ms_per_resource"].value == pytest.approx(2.0)
    assert figures["synth.ms_per_resource"].floor == pytest.approx(1.0)
    assert figures["synth.peak_rss"].value == pytest.approx(100.0)
    assert figures["synth.imports"].status == report.INFO
    assert all(f.status == report.PASS for n, f in figures.items() if n != "synth.imports")


def test_quick_skips_the_whole_suite_and_venv_setup_without_running_them() -> None:
    runner = FakeRunner()
    ctx = _context(runner, quick=True)
    figures = feedback.Feedback().run(ctx) + env_setup.EnvSetup().run(ctx)
    statuses = {f.name: f.status for f in figures}
    assert statuses["feedback.unit_tier"] == report.PASS
    assert statuses["feedback.suite"] == report.SKIPPED
    env = [n for n in statuses if n.startswith("env.")]
    assert len(env) == 5
    assert {statuses[n] for n in env} == {report.SKIPPED}
    # Only the unit tier ran (with its collection and a CPU-share probe each time), on the
    # tier's marker expression, in parallel workers.
    assert len(runner.calls) == 6 == feedback.Feedback().planned_runs(ctx)
    unit = [*tiers.UNIT_TIER, *tiers.PARALLEL]
    for collect, timed in zip(runner.calls[0::3], runner.calls[1::3], strict=True):
        for argv in (collect, timed):
            assert any(argv[i : i + len(unit)] == unit for i in range(len(argv))), argv
        # The collection runs the same workers and runs no test; only the timed run is timed
        # per evaluation; each starts from its own empty temporary directory.
        assert [*feedback.COLLECT_ONLY] == collect[-2:]
        assert "bench.evaluations" in timed and "bench.evaluations" not in collect
        (one,), (two,) = (
            [a for a in argv if a.startswith("--basetemp=")] for argv in (collect, timed)
        )
        assert one != two


@pytest.mark.process
def test_the_collection_run_starts_the_workers_and_runs_no_test(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", PURE),
            *(*tiers.PARALLEL, f"--basetemp={tmp_path}", *feedback.COLLECT_ONLY),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == feedback.NO_TESTS_RAN, result.stdout
    assert "no tests ran" in result.stdout and "passed" not in result.stdout
    # pytest-xdist brought its workers up, which is what the tier pays to collect.
    assert "bringing up nodes" in result.stdout


def test_a_failing_test_run_is_an_error_not_a_time() -> None:
    figures = feedback.Feedback().run(_context(FakeRunner(returncode=1), quick=True))
    assert figures[0].status == report.ERROR
    assert "did not pass" in figures[0].error


def test_progress_says_which_run_how_far_and_how_long() -> None:
    stream = io.StringIO()
    ctx = _context(FakeRunner(), stream=stream)
    ctx.run("synth: floor (1/2)", [sys.executable, "-c", "pass"])
    text = stream.getvalue()
    assert "bench: running synth: floor (1/2)" in text
    assert "bench: [1/10] synth: floor (1/2): 2.00s (" in text
    assert "elapsed" in text


def test_a_wall_time_target_is_rederived_only_on_a_shared_machine() -> None:
    assert harness.idle_target("<", 10, 1.1) == Target("<", 10)
    shared = harness.idle_target("<", 10, 2.5)
    assert shared.limit == 25 and shared.op == "<"
    assert "1/2.5 of a core" in shared.why and "10 s on idle cores" in shared.why
    tier = _tier(walls=[20.0], floors=[2.0], shares=[2.5])
    figure = feedback.tier_figure("t", "t", tier, limit=10, notes="n")
    assert figure.status == report.PASS  # 20 s where a core is shared 2.5 ways
    assert "re-derived" in figure.target.describe("s")
    idle = feedback.tier_figure("t", "t", {**tier, "shares": [1.0]}, limit=10, notes="n")
    assert idle.status == report.FAIL  # the same 20 s on an idle machine misses


def _tier(*, walls: list[float], floors: list[float], shares: list[float]) -> dict:
    return {
        "walls": walls,
        "floors": floors,
        "collections": [f / 2 for f in floors],
        "evaluations": [30] * len(walls),
        "evaluations_made": [40] * len(walls),
        "evaluation_s": [12.0] * len(walls),
        "cpus": [30.0] * len(walls),
        "shares": shares,
        "problem": "",
    }


def test_a_floor_that_rules_the_limit_out_re_derives_the_target_as_a_multiple_of_it() -> None:
    # Collecting and evaluating take 8 s on idle cores: 10 s cannot hold twice that.
    tier = _tier(walls=[15.0], floors=[8.0], shares=[1.0])
    figure = feedback.tier_figure("t", "t", tier, limit=10, notes="n")
    assert figure.target.on == "ratio" and figure.target.limit == feedback.FLOOR_SHARE
    assert "30 distinct programs evaluated" in figure.target.why
    assert figure.status == report.PASS  # 15 s is within twice the 8 s floor
    slow = feedback.tier_figure("t", "t", {**tier, "walls": [17.0]}, limit=10, notes="n")
    assert slow.status == report.FAIL  # the rest costs more than the floor itself
    # A floor well under the limit leaves the limit as it was set.
    light = _tier(walls=[9.0], floors=[3.0], shares=[1.0])
    assert feedback.tier_figure("t", "t", light, limit=10, notes="n").target == Target("<", 10)


def test_the_evaluation_plugin_times_each_program_and_keeps_the_fastest_of_a_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pulumi  # noqa: PLC0415

    from scripts import synth  # noqa: PLC0415

    def thing(name: str) -> Callable[[], None]:
        return lambda: pulumi.CustomResource("test:index:Thing", name, props={"n": name})

    # A stand-in for the whole program that registers one resource named after its branch:
    # synthesize reaches the timed function as a whole-program run would.
    branch_program = SimpleNamespace(main=lambda _env: thing(pulumi.Config().require("branch"))())
    monkeypatch.setattr(synth, "program", branch_program)
    # The plugin wraps it for the rest of its process, which goes on after this test; and
    # under the bench it is wrapped already.
    monkeypatch.setattr(synth, "run_under_mocks", inspect.unwrap(synth.run_under_mocks))
    monkeypatch.setattr(evaluations, "_RECORDS", [])
    monkeypatch.setenv(evaluations.ENV, str(tmp_path))
    evaluations.pytest_configure(None)
    for stack in ("main", "feature-x", "main"):
        synth.synthesize(stack, overrides={"branch": stack})

    for name in ("one", "two", "one"):
        synth.run_under_mocks(thing(name), project="p", stack="s")
    with pytest.raises(synth.SynthError):
        synth.run_under_mocks(lambda: 1 / 0, project="p", stack="s")
    evaluations.pytest_unconfigure(None)
    recorded = evaluations.read(tmp_path)
    # main and feature-x, one and two, and the failing program: five, of seven made.
    assert len(recorded.fastest) == 5 and recorded.made == 7
    lines = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    # The same program evaluated twice keeps its faster time.
    assert lines[0]["key"] == lines[2]["key"] != lines[1]["key"]
    assert recorded.fastest[lines[0]["key"]] == min(lines[0]["seconds"], lines[2]["seconds"])
    assert lines[3]["key"] == lines[5]["key"] != lines[4]["key"]


def test_programs_differ_by_what_they_register_and_their_settings() -> None:
    def synthesis(**inputs: object) -> SimpleNamespace:
        registration = SimpleNamespace(type="t", name="n", inputs=inputs)
        return SimpleNamespace(resources=[registration], outputs={})

    settings = {"project": "p", "stack": "s"}
    same = evaluations.program_key(settings, synthesis(size=1))
    assert evaluations.program_key(dict(settings), synthesis(size=1)) == same
    assert evaluations.program_key(settings, synthesis(size=2)) != same
    assert evaluations.program_key({**settings, "stack": "t"}, synthesis(size=1)) != same
    assert evaluations.program_key(settings, ValueError("x")) != same
    assert evaluations.program_key(settings, ValueError("x")) == evaluations.program_key(
        settings, ValueError("x")
    )


def test_synth_target_is_rederived_from_the_modules_floor_only_when_missed() -> None:
    probe = {
        "resources": 64,
        "import_s": 0.2,
        "evaluations_s": [1.0, 0.1, 0.1],
        "bare_evaluations_s": [0.1, 0.05, 0.05],
    }
    modules = ["pulumi_aws.s3", "pulumi_aws.get_region"]

    def wall(walls: list[float], module_floor: float) -> Figure:
        figures = synthesis.synth_figures(
            [probe], walls, [1.0], [module_floor], [100.0], [50.0], modules
        )
        return figures[0]

    assert wall([2.5], 1.5).target == Target("<", 3, on="ratio")
    slow = wall([3.6], 1.5)
    assert slow.target.limit == pytest.approx(4.5)
    assert "3x of `import pulumi, pulumi_aws` + the 1 service modules" in slow.target.why
    assert slow.status == report.PASS
    assert wall([4.8], 1.5).status == report.FAIL  # over 3x even of the modules' floor


def test_a_resource_may_cost_three_bare_registrations_whatever_the_machine() -> None:
    def per_resource(program_s: float, bare_s: float) -> Figure:
        probe = {
            "resources": 100,
            "import_s": 0.2,
            "evaluations_s": [1.0, program_s, program_s],
            "bare_evaluations_s": [bare_s, bare_s, bare_s],
        }
        figures = synthesis.synth_figures([probe], [2.0], [1.0], [1.5], [100.0], [50.0], [])
        return next(f for f in figures if f.name == "synth.ms_per_resource")

    # 4 ms a resource on a slow machine whose bare registration takes 2 ms: within 3x.
    assert per_resource(0.4, 0.2).status == report.PASS
    # 2 ms a resource where a bare one takes 0.5 ms: 4x, over, fast machine or not.
    assert per_resource(0.2, 0.05).status == report.FAIL


def _pipeline(order: str, first: float, preview: float, code: int = 0) -> dict:
    return {
        "order": order,
        "returncode": code,
        "results": {},
        "jobs": {"unit": {"start": 1.0, "end": first}, "preview": {"start": first, "end": preview}},
        "first_verdict_s": first,
        "all_tests_s": first * 2,
        "preview_s": preview,
        "job_sum_s": preview,
    }


def test_pipeline_figures_compare_the_new_order_with_the_old() -> None:
    first, preview, *_ = pipeline_order.pipeline_figures(
        _pipeline("old", 120.0, 150.0), _pipeline("new", 30.0, 60.0)
    )
    assert first.ratio == pytest.approx(0.25) and first.status == report.PASS
    assert preview.ratio == pytest.approx(0.4) and preview.status == report.PASS
    slow, *_ = pipeline_order.pipeline_figures(
        _pipeline("old", 120.0, 150.0), _pipeline("new", 50.0, 80.0)
    )
    assert slow.status == report.FAIL  # more than a third of the old order's
    broken, *_ = pipeline_order.pipeline_figures(
        _pipeline("old", 120.0, 150.0), _pipeline("new", 30.0, 60.0, code=1)
    )
    assert broken.status == report.ERROR


def _sweep(stacks: int, seconds: float, pages: int, **changes) -> dict:
    stale = (stacks - 1) // 4
    result = {
        "stacks": stacks,
        "exit": 0,
        "seconds": seconds,
        "github_pages": pages,
        "expected_pages": pages,
        "pulumi_calls": 1 + stale,
        "destroyed": stale,
        "stale": stale,
    }
    return {**result, **changes}


def test_sweeper_figures_check_calls_and_time_grow_linearly() -> None:
    linear = {50: [_sweep(51, 1.0, 1)], 200: [_sweep(201, 4.0, 2)]}
    calls, ms = sweeper.sweeper_figures(linear)
    assert calls.status == report.PASS and ms.status == report.PASS
    assert calls.value == pytest.approx((2 + 51) / 201)
    quadratic = {50: [_sweep(51, 1.0, 1)], 200: [_sweep(201, 16.0, 2)]}
    assert sweeper.sweeper_figures(quadratic)[1].status == report.FAIL
    unpaged = {50: [_sweep(51, 1.0, 1)], 200: [_sweep(201, 4.0, 1, expected_pages=2)]}
    assert sweeper.sweeper_figures(unpaged)[0].status == report.ERROR


def test_the_mutation_score_comes_from_the_last_mutants_run(tmp_path: Path) -> None:
    missing = mutants.mutants_figure(tmp_path)
    assert missing.status == report.SKIPPED and "nox -s mutants" in missing.skipped
    stats = tmp_path / mutants.MUTANTS_STATS
    stats.parent.mkdir()
    stats.write_text(json.dumps({"killed": 92, "survived": 6, "no_tests": 2, "total": 100}))
    figure = mutants.mutants_figure(tmp_path)
    assert figure.value == pytest.approx(92.0) and figure.status == report.PASS
    stats.write_text(json.dumps({"killed": 80, "survived": 10, "no_tests": 10, "total": 100}))
    assert mutants.mutants_figure(tmp_path).status == report.FAIL


def test_survivors_the_rules_call_equivalent_leave_the_score_only_for_that_run(
    tmp_path: Path,
) -> None:
    stats = tmp_path / mutants.MUTANTS_STATS
    stats.parent.mkdir()
    stats.write_text(json.dumps({"killed": 88, "survived": 12, "total": 100}))
    equivalents = tmp_path / mutants.EQUIVALENTS
    equivalents.write_text(json.dumps({"mutants": {f"m{i}": "case" for i in range(4)}}))
    figure = mutants.mutants_figure(tmp_path)
    # 88 of the 96 that a test could kill; the share of all is printed beside it.
    assert figure.value == pytest.approx(100 * 88 / 96) and figure.status == report.PASS
    assert "88.0 % of all 100" in figure.notes
    # Rules that ran before the last stats were written say nothing about them.
    os.utime(equivalents, (1, 1))
    assert mutants.mutants_figure(tmp_path).value == pytest.approx(88.0)


# In one module: a test that uses the Pulumi CLI stand-in and one that does not.
DRIVES_THE_CLI = "test_only_preview_creates_a_stack"
READS_A_PATH = "test_the_policy_pack_is_the_repository_s_own"
PURE = "tests/infra/test_config.py"


@pytest.mark.process
def test_unit_tier_leaves_out_the_tests_that_need_a_moto_server_or_a_process() -> None:
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", *tiers.UNIT_TIER]
    # One collection of a moto-backed module, one whose tests drive the Pulumi CLI
    # stand-in, and a pure one (a pytest start-up is the cost of this test).
    moto, cli = "tests/iam/test_traffic_in_moto.py", "tests/scripts/test_stack.py"
    listing = subprocess.run(
        [*collect, moto, f"{cli}::{DRIVES_THE_CLI}", f"{cli}::{READS_A_PATH}", PURE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "deselected" in listing
    assert f"{moto}::" not in listing
    assert f"{cli}::{DRIVES_THE_CLI}" not in listing
    assert f"{cli}::{READS_A_PATH}" in listing
    assert f"{PURE}::" in listing


SPAWNING_TESTS = """\
import subprocess

import pytest


def test_unmarked():
    subprocess.run(["true"], check=True)


@pytest.mark.process
def test_marked():
    subprocess.run(["true"], check=True)
"""


@pytest.mark.process
def test_a_test_that_starts_a_process_must_say_so(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SPAWNING_TESTS)
    # tests/conftest.py as a plugin: its guard applies to a file outside tests/.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-rf", str(sample)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout
    assert "1 failed, 1 passed" in run.stdout
    assert "test_unmarked starts a process" in run.stdout
    assert "mark it so it runs in the integration tier" in run.stdout


@pytest.mark.process
def test_run_child_reports_exit_output_and_rss() -> None:
    sample = measure.run_child(
        [sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], cwd=ROOT, env={}
    )
    assert sample.returncode == 3 and not sample.ok
    assert sample.stdout == "out\n"
    assert sample.max_rss_kb > 0
    assert "exit 3" in sample.failure()


@pytest.mark.process
def test_run_child_kills_what_outlives_its_timeout() -> None:
    sample = measure.run_child(
        [sys.executable, "-c", "import time; time.sleep(60)"], cwd=ROOT, env={}, timeout=0.2
    )
    assert sample.timed_out and not sample.ok
    assert "timed out" in sample.failure()


# --- the command line ------------------------------------------------------------------


class Canned(harness.Benchmark):
    name = "canned"
    description = "figures without measuring"

    def __init__(self, figures: list[Figure] | None = None) -> None:
        self.figures = figures

    def planned_runs(self, ctx) -> int:
        return 0

    def figure_names(self):
        return [("canned.a", "a", "s"), ("canned.b", "b", "s")]

    def run(self, ctx) -> list[Figure]:
        if self.figures is None:
            raise RuntimeError("the machine caught fire")
        return self.figures


def _main(monkeypatch, tmp_path: Path, bench: harness.Benchmark, *args: str) -> int:
    monkeypatch.setattr(cli, "BENCHMARKS", {"canned": bench})
    return cli.main(["--output-dir", str(tmp_path / "out"), *args])


def test_cli_exits_1_naming_the_missed_figure_and_writes_every_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    figures = [
        Figure("canned.a", "a", "s", value=1.0, target=Target("<", 2)),
        Figure("canned.b", "b", "s", value=5.0, target=Target("<", 2)),
    ]
    assert _main(monkeypatch, tmp_path, Canned(figures)) == 1
    captured = capsys.readouterr()
    assert "bench: MISSED canned.b: 5.00 s, target < 2 s" in captured.err
    assert "canned.a" not in captured.err.split("MISSED", 1)[1].split("\n")[0]
    assert "| `canned.b` |" in captured.out
    assert (tmp_path / "out" / "results.md").read_text() == captured.out
    assert json.loads((tmp_path / "out" / "results.json").read_text())["missed"] == ["canned.b"]
    assert "| `canned.b` |" in summary.read_text()


def test_cli_exits_0_when_every_target_is_met(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    figures = [Figure("canned.a", "a", "s", value=1.0, target=Target("<", 2))]
    assert _main(monkeypatch, tmp_path, Canned(figures), "--only", "canned") == 0


def test_a_crashing_benchmark_is_reported_as_errors_and_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert _main(monkeypatch, tmp_path, Canned(None)) == 1
    err = capsys.readouterr().err
    assert "benchmark canned failed: RuntimeError: the machine caught fire" in err
    assert "MISSED canned.a: could not be measured" in err
    assert "MISSED canned.b: could not be measured" in err


def test_cli_rejects_unknown_benchmarks_and_bad_repeat() -> None:
    with pytest.raises(SystemExit):
        cli.parse_args(["--only", "nope"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--repeat", "0"])
    assert cli.parse_args(["--only", "synth", "growth", "--quick"]).only == ["synth", "growth"]


def test_the_act_runs_of_one_worker_make_a_chain_and_the_longest_is_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(evaluations.ENV, str(tmp_path))

    def report(nodeid: str, seconds: float, *markers: str) -> SimpleNamespace:
        keywords = {nodeid.rsplit("::", maxsplit=1)[-1]: 1, **dict.fromkeys(markers, 1)}
        return SimpleNamespace(nodeid=nodeid, duration=seconds, keywords=keywords)

    # Two workers: one ran three act tests (one's setup and call), the other one.
    for worker, reports in {
        "1": [
            report("a::t1", 1.0, "act"),
            report("a::t1", 29.0, "act"),
            report("a::t2", 30.0, "act"),
        ],
        "2": [report("b::t3", 40.0, "act"), report("c::t4", 500.0)],
    }.items():
        monkeypatch.setattr(evaluations, "_RECORDS", [])
        monkeypatch.setattr(evaluations.os, "getpid", lambda worker=worker: int(worker))
        for r in reports:
            evaluations.pytest_runtest_logreport(r)
        evaluations.pytest_unconfigure(None)
    # Not the sum of all act tests (they ran side by side), not the test without `act`.
    recorded = evaluations.read(tmp_path)
    assert recorded.act_chain == pytest.approx(60.0)
    assert recorded.made == 0 and recorded.fastest == {}
