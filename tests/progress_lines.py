"""What a verb's own progress printed on stderr: its `[done/total]` steps, in order."""

from __future__ import annotations

import re


def assert_climbs_one_step_at_a_time_to_its_total(stderr: str, verb: str) -> None:
    """Each step counted once, from [1/N] to [N/N]: none skipped, none past the end."""
    steps = [
        (int(done), int(total))
        for done, total in re.findall(rf"^{re.escape(verb)}: \[(\d+)/(\d+)\]", stderr, re.M)
    ]
    assert steps, f"no `{verb}: [done/total]` line in:\n{stderr}"
    total = steps[-1][1]
    assert steps == [(n, total) for n in range(1, total + 1)], stderr
