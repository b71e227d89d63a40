"""The environment the bench's timed children run in."""

from __future__ import annotations

from bench.harness import child_env


def test_children_write_bytecode_and_no_step_summary_whatever_the_caller_set() -> None:
    caller = {"PATH": "/bin", "PYTHONDONTWRITEBYTECODE": "1", "GITHUB_STEP_SUMMARY": "/s.md"}
    assert child_env(caller) == {"PATH": "/bin"}
    # The caller's own environment is left as it was.
    assert caller["PYTHONDONTWRITEBYTECODE"] == "1"
