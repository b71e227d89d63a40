"""Failed tests where people look: the job summary and annotations on the lines they point at.

    python -m scripts.junit_summary PATH... [--title TEXT] [--annotate | --no-annotate]

Reads pytest's JUnit XML (files, or directories of `*.xml`, as the test sessions write
them when $JUNIT_DIR is set) and writes Markdown to $GITHUB_STEP_SUMMARY (or stdout when
unset): the counts, then each failed or erroring test with the file and line it failed
at and its assertion, as pytest printed it. With --annotate (the default on GitHub
Actions) it also prints one `::error file=...,line=...::` workflow command per failure,
which GitHub shows on that line of the commit and the pull request's diff.

Only the standard library: it runs in the workflow's own Python, after nox.
Exit 0 when it could report (whatever the tests did; the test step carries their
verdict), 2 when a path does not exist or is not a JUnit report.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.lib import summary

# The traceback's location lines: `tests/test_x.py:12: AssertionError` (long format) or
# `tests/test_x.py:12: in test_y` (short). The last one is where the failure surfaced.
_LOCATION = re.compile(r"^(?P<file>[^\s:][^:\n]*\.py):(?P<line>\d+): ", re.M)
# pytest's explanation lines (`E       assert 1 == 2`): the assertion with its values.
_EXPLANATION = re.compile(r"^E {1,7}(?P<text>.*)$", re.M)
# Terminal colours pytest may add to a diff; XML carries ESC as the text `#x1B`.
_COLOUR = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*m")
MAX_DETAIL_LINES = 20
MAX_DETAIL_CHARS = 2000
# GitHub shows at most this many error annotations per step; the summary lists them all.
MAX_ANNOTATIONS = 10


class ReportError(Exception):
    """A path that is not a readable JUnit report; the message names it."""


@dataclass(frozen=True)
class Failure:
    test: str  # pytest's node id, e.g. tests/test_x.py::test_y[case]
    kind: str  # "failure" or "error"
    file: str | None
    line: int | None
    detail: str  # the assertion (or exception) as pytest explained it


@dataclass
class Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


def _node_id(case: ET.Element, root: Path) -> str:
    # JUnit's classname is the dotted module path plus any class: tests.test_x.TestY.
    classname, name = case.get("classname", ""), case.get("name", "")
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = "/".join(parts[:cut]) + ".py"
        if (root / candidate).is_file():
            return "::".join([candidate, *parts[cut:], name])
    return f"{classname}::{name}" if classname else name


def _relative(path: str, root: Path) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return path
    return candidate.as_posix()


def locate(text: str, root: Path) -> tuple[str | None, int | None]:
    """The last traceback location inside `root`: the line the failure points at."""
    found = None
    for match in _LOCATION.finditer(text):
        relative = _relative(match["file"], root)
        if not relative.startswith("/") and not relative.startswith(".."):
            found = (relative, int(match["line"]))
    return found or (None, None)


def explain(message: str, text: str) -> str:
    text, message = _COLOUR.sub("", text), _COLOUR.sub("", message)
    lines = [m["text"].rstrip() for m in _EXPLANATION.finditer(text)]
    detail = "\n".join(lines).strip() if lines else (message or text).strip()
    kept = detail.splitlines()[:MAX_DETAIL_LINES]
    detail = "\n".join(kept)
    return detail[:MAX_DETAIL_CHARS] if len(detail) > MAX_DETAIL_CHARS else detail


def read(path: Path, root: Path) -> tuple[Counts, list[Failure]]:
    try:
        tree = ET.parse(path)  # noqa: S314 - pytest's own report of this run, not foreign input
    except (OSError, ET.ParseError) as error:
        raise ReportError(f"{path}: not a readable JUnit XML report ({error})") from None
    top = tree.getroot()
    suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
    if top.tag not in ("testsuite", "testsuites"):
        raise ReportError(f"{path}: not a JUnit XML report (its root is <{top.tag}>)")
    counts, failures = Counts(), []
    for suite in suites:
        for key in ("tests", "failures", "errors", "skipped"):
            setattr(counts, key, getattr(counts, key) + int(suite.get(key, "0")))
        for case in suite.iter("testcase"):
            for kind in ("failure", "error"):
                for element in case.findall(kind):
                    text = element.text or ""
                    file, line = locate(text, root)
                    if file is None and case.get("file"):
                        file, line = case.get("file"), int(case.get("line", "0")) + 1
                    failures.append(
                        Failure(
                            test=_node_id(case, root),
                            kind=kind,
                            file=file,
                            line=line,
                            detail=explain(element.get("message", ""), text),
                        )
                    )
    return counts, failures


def reports(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.glob("*.xml"))
        elif path.is_file():
            found.append(path)
        else:
            raise ReportError(f"{path}: no such file or directory (give JUnit XML files or dirs)")
    return found


def markdown(title: str, counts: Counts, failures: Sequence[Failure], read_any: bool) -> str:
    if not read_any:
        return (
            f"### {title}\n\nNo test report was written: the session stopped before pytest "
            "finished (see the log of the step above).\n"
        )
    verdict = "❌" if failures else "✅"
    head = (
        f"### {title} {verdict}\n\n{counts.passed} passed, {counts.failures} failed, "
        f"{counts.errors} errors, {counts.skipped} skipped\n"
    )
    if not failures:
        return head
    lines = [head]
    for failure in failures:
        where = f"`{failure.file}:{failure.line}`" if failure.file else "(no location)"
        label = "failed" if failure.kind == "failure" else "error"
        lines += [
            f"**`{failure.test}`** {label} at {where}",
            "",
            "```text",
            failure.detail.replace("```", "'''"),
            "```",
            "",
        ]
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(failure: Failure) -> str:
    """A GitHub workflow command that puts the failure on its line."""
    properties = [f"title={_escape_property(failure.test)}"]
    if failure.file:
        properties.insert(0, f"file={_escape_property(failure.file)}")
        if failure.line:
            properties.insert(1, f"line={failure.line}")
    return f"::error {','.join(properties)}::{_escape_data(failure.detail)}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.junit_summary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="JUnit XML or dirs")
    parser.add_argument("--title", default="Tests", help="heading of the summary section")
    parser.add_argument(
        "--annotate",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("GITHUB_ACTIONS") == "true",
        help="print ::error annotations (default: on GitHub Actions only)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, root: Path | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = Path.cwd() if root is None else root
    total, failures = Counts(), []
    try:
        found = reports(args.paths)
        for path in found:
            counts, failed = read(path, root)
            for key in ("tests", "failures", "errors", "skipped"):
                setattr(total, key, getattr(total, key) + getattr(counts, key))
            failures += failed
    except ReportError as error:
        print(f"junit_summary: {error}", file=sys.stderr)
        return 2
    text = markdown(args.title, total, failures, bool(found))
    if summary.write_step_summary(text) is None:
        sys.stdout.write(text)
    if args.annotate:
        for failure in failures[:MAX_ANNOTATIONS]:
            print(annotation(failure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
