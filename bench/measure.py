"""Run a command in a fresh process and measure it: wall time and the child's peak RSS."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One child run. `max_rss_kb` is the largest resident set of the child (or of a
    descendant it waited for), from the rusage `wait4` returns for it."""

    argv: tuple[str, ...]
    wall_s: float
    max_rss_kb: int
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    # User + system CPU of the child and the descendants it waited for (pytest-xdist's
    # workers included): what the run would take on idle cores is at least cpu_s / cores.
    cpu_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def failure(self, limit: int = 600) -> str:
        """A one-line account of why the run failed, ending with its last output."""
        if self.timed_out:
            head = f"timed out after {self.wall_s:.0f}s"
        else:
            head = f"exit {self.returncode}"
        tail = (self.stderr.strip() or self.stdout.strip())[-limit:].replace("\n", " | ")
        return f"`{' '.join(self.argv[:4])}…` {head}: {tail}"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 1800,
) -> Sample:
    """Run `argv` to completion; output goes to temp files (no pipe can fill and block it)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so a timeout kills the tree
        )
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill_group(process.pid)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            # wait4 reaps the child and returns its own rusage, unlike getrusage
            # (RUSAGE_CHILDREN), which only keeps the maximum over every child so far.
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Sample(
            argv=tuple(argv),
            wall_s=wall,
            max_rss_kb=int(usage.ru_maxrss),  # kilobytes on Linux
            returncode=process.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            timed_out=expired.is_set(),
            cpu_s=usage.ru_utime + usage.ru_stime,
        )


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or floor is None or floor <= 0:
        return None
    return value / floor
