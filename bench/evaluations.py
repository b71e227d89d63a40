"""A pytest plugin the bench loads into a test tier's run (`-p bench.evaluations`).

It times every whole-program evaluation (`scripts.synth.synthesize`) the tests make and
writes one JSON line per evaluation, its configuration and seconds, to a file per process
in $BENCH_EVALUATIONS_DIR. The feedback benchmark derives the tier's floor from them:
the distinct configurations a tier evaluates are work no test arrangement can avoid.
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


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.get(ENV)
    if not folder or not _RECORDS:
        return
    with (Path(folder) / f"{os.getpid()}.jsonl").open("a") as out:
        out.writelines(json.dumps(record) + "\n" for record in _RECORDS)


def read(folder: Path) -> dict[str, float]:
    """Each distinct configuration evaluated under `folder`, with its fastest time."""
    fastest: dict[str, float] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            key, seconds = record["key"], float(record["seconds"])
            fastest[key] = min(seconds, fastest.get(key, seconds))
    return fastest


def count(folder: Path) -> int:
    """How many evaluations were made under `folder`, repeats included."""
    return sum(len(p.read_text().splitlines()) for p in folder.glob("*.jsonl"))
