"""A pytest plugin the bench loads into a test tier's run (`-p bench.evaluations`).

It times every whole-program evaluation (`scripts.synth.synthesize`) the tests make, and
every act test (a whole workflow run), and writes one JSON line for each to a file per
process in $BENCH_EVALUATIONS_DIR. The feedback benchmark derives a tier's floor from
them: the distinct configurations a tier evaluates, and the act runs one worker makes one
after another (they share a module, and a module stays on its worker), are work no
arrangement of the tests can avoid.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = "BENCH_EVALUATIONS_DIR"
_RECORDS: list[dict[str, Any]] = []


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(ENV):
        return
    from scripts import synth  # noqa: PLC0415 - only a bench run pays for it

    original = synth.synthesize

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            key = json.dumps([args, kwargs], sort_keys=True, default=str)
            _RECORDS.append({"key": key, "seconds": time.perf_counter() - start})

    synth.synthesize = timed


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get(ENV) and "act" in report.keywords:
        _RECORDS.append({"act": report.nodeid, "seconds": report.duration})


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.get(ENV)
    if not folder or not _RECORDS:
        return
    with (Path(folder) / f"{os.getpid()}.jsonl").open("a") as out:
        out.writelines(json.dumps(record) + "\n" for record in _RECORDS)


@dataclass(frozen=True)
class Recorded:
    """What one tier's run recorded, read in one pass."""

    fastest: dict[str, float]  # each distinct configuration, with its fastest time
    made: int  # evaluations made, repeats included
    act_chain: float  # the longest run of act tests one process made in turn, seconds


def read(folder: Path) -> Recorded:
    fastest: dict[str, float] = {}
    made, chains = 0, [0.0]
    for path in sorted(folder.glob("*.jsonl")):
        chain = 0.0
        for line in path.read_text().splitlines():
            record = json.loads(line)
            seconds = float(record["seconds"])
            if "key" in record:
                made += 1
                fastest[record["key"]] = min(seconds, fastest.get(record["key"], seconds))
            elif "act" in record:
                chain += seconds
        chains.append(chain)
    return Recorded(fastest, made, max(chains))
