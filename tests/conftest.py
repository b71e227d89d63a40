"""Fixtures shared across the suite."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python}
    # Stands in for the Pulumi CLI: records its argv, answers from a script.
    import json, os, sys
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    failing = os.environ.get("FAKE_PULUMI_FAIL_ON", "")
    sys.exit(3 if failing and failing in sys.argv[1:] else 0)
    """
)


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[list[str]]]:
    """A `pulumi` on PATH that records each call; returns a reader of the calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "pulumi"
    executable.write_text(FAKE_PULUMI.format(python=sys.executable))
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "pulumi-calls.jsonl"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls
