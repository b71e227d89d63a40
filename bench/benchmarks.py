"""The benchmarks, by the name `python -m bench --only` takes, in the order they run."""

from __future__ import annotations

from bench.alias_promotion import Promotion
from bench.env_setup import EnvSetup
from bench.feedback import Feedback
from bench.harness import Benchmark
from bench.mutants import Mutants
from bench.pipeline_order import Pipeline
from bench.sweeper import Sweeper
from bench.synthesis import Growth, Synth

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
