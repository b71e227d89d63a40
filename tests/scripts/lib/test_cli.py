"""Every verb judges its own flags first: bad input is exit 2, before AWS, the CLI or a file."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import naming
from scripts.lib import aws
from tests.project import ROOT

# Names git refuses and names it takes, judged by `git check-ref-format --branch`
# ('@' is left out: in that mode git reads it as a shorthand for the current branch).
BRANCHES = [
    "main",
    "feature/x",
    "HEAD",
    "feature/HEAD",
    "a..b",
    "feature/../x",
    "x.lock",
    "x/.hidden",
    "trailing.",
    "-leading",
    "with space",
    "tab\there",
    "caret^",
    "colon:",
    "star*",
    "question?",
    "bracket[",
    "back\\slash",
    "a@{b",
    "double//slash",
    "/leading",
    "trailing/",
    "ok-@-at",
    "Feature/Fancy_Model",
    "feature/日本",
]


def _git_accepts(branch: str) -> bool:
    result = subprocess.run(
        ["git", "check-ref-format", "--branch", branch],
        capture_output=True,
        check=False,
        cwd=ROOT,
    )
    return result.returncode == 0


@pytest.mark.process
@pytest.mark.parametrize("branch", BRANCHES)
def test_git_decides_what_a_branch_name_is(branch: str) -> None:
    try:
        naming.check_git_branch(branch)
    except naming.NamingError:
        accepted = False
    else:
        accepted = True
    assert accepted == _git_accepts(branch)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Pulumi CLI on PATH, no AWS credentials, and any AWS client is a test failure."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    def no_aws(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"an AWS client was asked for before the input was judged: {args}")

    monkeypatch.setattr(aws, "client", no_aws)


@pytest.mark.parametrize(
    ("module", "argv", "named"),
    [
        ("stack", ["destroy", "--branch", "main"], "stack 'main' is protected"),
        ("stack", ["destroy", "--stack", "shared"], "stack 'shared' is protected"),
        ("stack", ["preview", "--branch", "feature/../x"], "'feature/../x' cannot be named"),
        ("stack", ["deploy", "--branch", "HEAD"], "'HEAD' cannot be named"),
        ("release", ["--version", "banana", "--branch", "main"], "API version 'banana'"),
        ("rollback", ["--to", "banana", "--branch", "main"], "Lambda version 'banana'"),
        ("promote", ["--steps", "10,abc", "--branch", "main"], "--steps '10,abc' is not valid"),
        (
            "promote",
            ["--strategy", "codedeploy", "--steps", "10,100", "--branch", "main"],
            "apply to the alias strategy only",
        ),
        ("smoke", ["--version", "latest", "--branch", "main"], "Lambda version 'latest'"),
        ("events", ["history", "--branch", "HEAD"], "'HEAD' cannot be named"),
        ("synth", ["--branch", "main", "--config", "nosuchkey=1"], "'nosuchkey' is not a setting"),
        (
            "cost",
            ["--branch", "main", "--config", "lambdaMemory=1"],
            "did you mean lambdaMemoryMb?",
        ),
        ("cost", ["--refresh-prices", "--region", "Mars"], "'Mars' is not valid"),
        ("names", ["HEAD"], "'HEAD' cannot be named"),
        ("rename", ["--name", "Not_A_Name"], "Not_A_Name"),
    ],
)
def test_bad_input_is_refused_before_aws_or_the_cli(
    offline, capsys: pytest.CaptureFixture[str], module: str, argv: list[str], named: str
) -> None:
    verb = importlib.import_module(f"scripts.{module}")
    assert verb.main(argv) == 2
    out, err = capsys.readouterr()
    assert named in err
    assert "install" not in err.lower()
    assert out == ""


VERBS = [
    "synth",
    "cost",
    "names",
    "smoke",
    "promote",
    "rollback",
    "release",
    "deps",
    "cleanup",
    "bootstrap",
    "preflight",
    "pr_comment",
    "rename",
]


@pytest.mark.parametrize("module", VERBS)
def test_help_shows_a_command_that_works_and_no_placeholders(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    verb = importlib.import_module(f"scripts.{module}")
    try:
        code = verb.main(["--help"])
    except SystemExit as exited:
        code = exited.code
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m scripts.{module} ")
    assert "see the module" not in text and "see above" not in text


@pytest.mark.parametrize("verb", ["preview", "deploy", "destroy", "drift"])
def test_stack_verbs_help_names_the_verb_as_it_must_be_typed(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts import stack  # noqa: PLC0415

    assert stack.main([verb, "--help"]) == 0
    usage = capsys.readouterr().out.split("\n\n", 1)[0]
    assert usage.startswith(f"usage: python -m scripts.stack {verb} ")
    # The usage line, filled in, parses: following it works.
    assert stack.parse_args([verb, "--branch", "feature/x"]).verb == verb


@pytest.mark.process
def test_nox_keeps_machine_output_apart_from_progress(tmp_path: Path) -> None:
    """`nox -s synth -- --format json > f` must leave JSON in f, progress on stderr."""
    bin_dir = os.path.dirname(sys.executable)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "--no-venv",
            "-s",
            "synth",
            "--",
            "--branch",
            "feature/x",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["stack"] == naming.slugify("feature/x")
    assert "evaluating stack" in result.stderr
