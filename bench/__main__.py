"""`python -m bench [--only NAME ...] [--quick] [--repeat N] [--output-dir DIR]`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench import report
from bench.benchmarks import BENCHMARKS
from bench.harness import Context, child_env
from scripts.lib import summary
from scripts.lib.progress import Progress

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmarks, each beside its floor; exit 1 on a miss."
    )
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the whole-suite run and the venv setups (reported as skipped, not passed)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    return args


def run(args: argparse.Namespace, stream=None) -> tuple[list[report.Figure], dict[str, object]]:
    chosen = [BENCHMARKS[name] for name in (args.only or BENCHMARKS)]
    chosen = list(dict.fromkeys(chosen))
    ctx = Context(
        root=ROOT,
        python=sys.executable,
        repeat=args.repeat,
        quick=args.quick,
        progress=Progress("bench", total=1, stream=stream),
        env=child_env(),
    )
    ctx.progress.total = max(1, sum(b.planned_runs(ctx) for b in chosen))
    ctx.progress.note(
        f"{len(chosen)} benchmark(s), {ctx.progress.total} child runs, "
        f"{args.repeat} repeat(s){' (--quick)' if args.quick else ''}"
    )
    figures: list[report.Figure] = []
    for benchmark in chosen:
        ctx.progress.note(f"benchmark {benchmark.name}: {benchmark.description}")
        try:
            figures += benchmark.run(ctx)
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the rest
            detail = traceback.format_exception_only(error)[-1].strip()
            ctx.progress.note(f"benchmark {benchmark.name} failed: {detail}")
            figures += [
                report.Figure(name, title, unit, error=detail)
                for name, title, unit in benchmark.figure_names()
            ]
    context: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "repeat": args.repeat,
        "benchmarks": ", ".join(b.name for b in chosen),
        "quick": args.quick,
        "elapsed": f"{ctx.progress.elapsed():.0f}s",
    }
    return figures, context


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    figures, context = run(args)
    markdown = report.render_markdown(figures, context)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.md").write_text(markdown)
    (args.output_dir / "results.json").write_text(report.render_json(figures, context))
    sys.stdout.write(markdown)
    summary.write_step_summary(markdown)
    gone = report.missed(figures)
    for figure in gone:
        print(f"bench: MISSED {figure.verdict()}", file=sys.stderr)
    print(
        f"bench: {report.summary_line(figures)}; results in {args.output_dir}/results.md "
        "and results.json",
        file=sys.stderr,
    )
    return report.exit_code(figures)


if __name__ == "__main__":
    raise SystemExit(main())
