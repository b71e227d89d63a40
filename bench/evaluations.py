"""A pytest plugin the bench loads into a test tier's run (`-p bench.evaluations`).

It times every program evaluation under Pulumi's mocks (`scripts.synth.run_under_mocks`:
a whole program for a stack, or the small program a component test builds), and every
act test (a whole workflow run), and writes one JSON line for each to a file per process
in $BENCH_EVALUATIONS_DIR. The feedback benchmark derives a tier's floor from them: the
distinct programs a tier evaluates, and the act runs one worker makes one after another
(they share a module, and a module stays on its worker), are work no arrangement of the
tests can avoid.

Two evaluations are the same program when they registered the same resources with the
same inputs and options, under the same project, stack and config, and returned the same
outputs (or failed with the same error). A component test's program is a closure, so
what it registered is the only key that says two tests evaluated the same thing; keying
by the result can only merge evaluations, never split one program into two.
"""

from __future__ import annotations

import functools
import hashlib
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

    original = synth.run_under_mocks

    @functools.wraps(original)
    def timed(build: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            result = original(build, **kwargs)
        except Exception as error:
            _record(program_key(kwargs, error), time.perf_counter() - start)
            raise
        _record(program_key(kwargs, result), time.perf_counter() - start)
        return result

    synth.run_under_mocks = timed


def _record(key: str, seconds: float) -> None:
    _RECORDS.append({"key": key, "seconds": seconds})


def program_key(arguments: dict[str, Any], outcome: Any) -> str:
    """What identifies one program's evaluation: its settings and what it registered."""
    if isinstance(outcome, BaseException):
        result: Any = f"{type(outcome).__name__}: {outcome}"
    else:
        result = {
            "resources": [vars(r) for r in outcome.resources],
            "outputs": outcome.outputs,
        }
    text = json.dumps([arguments, result], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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
