"""Progress of long operations: what step, how far, how long left."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Prints `[step/total] what (elapsed, ~left)` lines; the estimate is the mean step so far."""

    def __init__(
        self,
        verb: str,
        total: int,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verb = verb
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.clock = clock
        self.started = clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float | None:
        if self.done == 0:
            return None
        return self.elapsed() / self.done * (self.total - self.done)

    def step(self, what: str) -> None:
        self.done = min(self.done + 1, self.total)
        self.note(f"[{self.done}/{self.total}] {what}")

    def note(self, what: str) -> None:
        left = self.remaining()
        estimate = f", ~{left:.0f}s left" if left is not None and self.done < self.total else ""
        print(
            f"{self.verb}: {what} ({self.elapsed():.0f}s elapsed{estimate})",
            file=self.stream,
            flush=True,
        )
