"""The push pipeline's job order, old against new under act (`pipeline`): time to the
first test verdict and to the preview. The child side is bench/pipeline.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.harness import Benchmark, Context, last_json
from bench.report import Figure, Target


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
