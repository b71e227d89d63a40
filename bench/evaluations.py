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


def read(folder: Path) -> dict[str, float]:
    """Each distinct configuration evaluated under `folder`, with its fastest time."""
    fastest: dict[str, float] = {}
    for record in _records(folder):
        if "key" in record:
            key, seconds = record["key"], float(record["seconds"])
            fastest[key] = min(seconds, fastest.get(key, seconds))
    return fastest


def count(folder: Path) -> int:
    """How many evaluations were made under `folder`, repeats included."""
    return sum(1 for record in _records(folder) if "key" in record)


def act_chain(folder: Path) -> float:
    """The longest run of act tests one process made, one after another, in seconds."""
    chains = [
        sum(float(r["seconds"]) for r in _records(folder, path) if "act" in r)
        for path in folder.glob("*.jsonl")
    ]
    return max(chains, default=0.0)


def _records(folder: Path, path: Path | None = None) -> list[dict[str, Any]]:
    paths = [path] if path else sorted(folder.glob("*.jsonl"))
    return [json.loads(line) for p in paths for line in p.read_text().splitlines()]
