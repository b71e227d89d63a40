"""junit_summary: a failing test shows in the job summary with its assertion, on its line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scripts import junit_summary
from tests.conftest import starts_processes

SUITE = {
    "pytest.ini": "[pytest]\n",
    "helpers.py": """\
        def check_total(items):
            total = sum(items)
            if total != 10:
                raise ValueError(f"total is {total}, not 10")
        """,
    "tests/test_sample.py": """\
        import pytest

        from helpers import check_total


        def test_passes():
            assert 1 + 1 == 2


        def test_compares():
            expected = {"live": "2"}
            assert {"live": "1"} == expected


        def test_in_a_helper():
            check_total([1, 2, 3])


        @pytest.fixture
        def broken():
            raise RuntimeError("the fixture could not start")


        def test_setup_error(broken):
            pass


        @pytest.mark.skip(reason="not here")
        def test_skipped():
            pass
        """,
}


@pytest.fixture(scope="module")
@starts_processes
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small suite run by a real pytest, leaving its JUnit XML in junit/."""
    root = tmp_path_factory.mktemp("suite")
    for name, text in SUITE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(root)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "tests",
            # Coloured diffs, as on a terminal (act gives pytest one).
            "--color=yes",
            "--junitxml",
            "junit/unit.xml",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    return root


def _run(project: Path, *args: str, monkeypatch, summary: Path | None = None):
    if summary:
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    else:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return junit_summary.main([*args], root=project)


def test_each_failure_is_listed_with_its_assertion_and_line(project, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    assert _run(project, str(project / "junit"), monkeypatch=monkeypatch, summary=summary) == 0

    text = summary.read_text()
    assert "1 passed, 2 failed, 1 errors, 1 skipped" in text
    lines = (project / "tests/test_sample.py").read_text().splitlines()
    compare = lines.index('    assert {"live": "1"} == expected') + 1
    assert (
        f"**`tests/test_sample.py::test_compares`** failed at `tests/test_sample.py:{compare}`"
        in text
    )
    # The assertion with its values, as pytest explained it.
    assert "assert {'live': '1'} == {'live': '2'}" in text
    # A failure raised inside a helper points at the helper's line, where it surfaced.
    raise_line = (project / "helpers.py").read_text().splitlines().index(
        '        raise ValueError(f"total is {total}, not 10")'
    ) + 1
    assert f"failed at `helpers.py:{raise_line}`" in text
    assert "ValueError: total is 6, not 10" in text
    assert "**`tests/test_sample.py::test_setup_error`** error at" in text
    assert "the fixture could not start" in text
    assert "test_passes" not in text and "test_skipped" not in text
    assert "\x1b" not in text and "#x1B" not in text  # colour codes stripped


def test_annotations_point_at_the_failing_lines(project, monkeypatch, capsys, tmp_path):
    _run(
        project,
        str(project / "junit/unit.xml"),
        "--annotate",
        monkeypatch=monkeypatch,
        summary=tmp_path / "s.md",
    )
    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert len(annotations) == 3
    compare = next(a for a in annotations if "test_compares" in a)
    assert compare.startswith("::error file=tests/test_sample.py,line=")
    # Workflow-command escaping: the node id's colons and the message's newlines survive.
    assert "title=tests/test_sample.py%3A%3Atest_compares::" in compare
    assert "\n" not in compare and "%0A" in compare
    assert any(a.startswith("::error file=helpers.py,line=") for a in annotations)


def test_without_a_summary_file_it_prints_markdown_and_no_annotations(project, monkeypatch, capsys):
    assert _run(project, str(project / "junit"), "--no-annotate", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Tests ❌")
    assert "::error" not in out


def test_a_green_run_says_so(tmp_path, monkeypatch, capsys):
    report = tmp_path / "ok.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest" tests="3" failures="0" errors="0" skipped="1">'
        '<testcase classname="tests.test_a" name="test_x"/></testsuite></testsuites>'
    )
    assert _run(tmp_path, str(report), monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == "### Tests ✅\n\n2 passed, 0 failed, 0 errors, 1 skipped\n"


def test_no_report_says_the_session_stopped_before_pytest(tmp_path, monkeypatch, capsys):
    (tmp_path / "junit").mkdir()
    assert _run(tmp_path, str(tmp_path / "junit"), monkeypatch=monkeypatch) == 0
    assert "No test report was written" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "not xml", "<html/>"])
def test_a_bad_path_exits_2_naming_it(tmp_path, monkeypatch, capsys, content):
    path = tmp_path / "report.xml"
    if content is not None:
        path.write_text(content)
    summary = tmp_path / "summary.md"
    assert _run(tmp_path, str(path), monkeypatch=monkeypatch, summary=summary) == 2
    assert str(path) in capsys.readouterr().err
    assert not summary.exists()
