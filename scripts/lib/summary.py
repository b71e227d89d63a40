"""Markdown for people: tables, and the GitHub step summary when there is one."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_step_summary(markdown: str) -> Path | None:
    """Append to `$GITHUB_STEP_SUMMARY` when set (GitHub Actions, or a person who sets it)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


def write_github_output(values: Mapping[str, str]) -> Path | None:
    """Append `key=value` lines to `$GITHUB_OUTPUT` when set: a step's outputs.

    Written by the script itself, not through a shell redirect, because nox merges a
    session's stderr into its stdout.
    """
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        for key, value in values.items():
            handle.write(f"{key}={value}\n")
    return path


def report_check(verb: str, values: Mapping[str, str], line: str) -> None:
    """A `--check` verdict: `key=value` on stdout and as the step's outputs, `line` in the
    job summary and on stderr. The pipeline decides from it whether a gated job runs."""
    print("\n".join(f"{k}={v}" for k, v in values.items()))
    write_github_output(values)
    write_step_summary(line)
    print(f"{verb}: {line}", file=sys.stderr)
