"""cleanup: stale ephemeral stacks are destroyed, protected stacks never are.

Live branches come from a real bare git repository used as the remote; the
stacks come from the fake pulumi's answer to `pulumi stack ls --json`.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from infra import config, naming
from scripts import cleanup
from scripts.lib import aws
from tests.conftest import seed_stack
from tests.project import PROJECT

NOW = "2024-06-01T00:00:00Z"
STACK_LS = ["stack", "ls", "--json", "--non-interactive"]


def _ago(hours: float) -> str:
    moment = dt.datetime(2024, 6, 1, tzinfo=dt.UTC) - dt.timedelta(hours=hours)
    return moment.isoformat().replace("+00:00", ".000Z")


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def remote(tmp_path: Path):
    """A bare repository holding the given branches, as `git ls-remote` sees a remote."""

    def make(*branches: str) -> str:
        bare = tmp_path / "remote.git"
        work = tmp_path / "work"
        bare.mkdir()
        work.mkdir()
        _git("init", "--quiet", "--bare", str(bare), cwd=tmp_path)
        _git("init", "--quiet", cwd=work)
        _git("commit", "--quiet", "--allow-empty", "-m", "init", cwd=work)
        for branch in branches:
            _git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=work)
        return str(bare)

    return make


@pytest.fixture
def stacks(fake_pulumi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Sets what `pulumi stack ls --json` answers; returns the fake's call log."""

    # cleanup runs pulumi in the project root; by default the fake's fresh workspace.
    monkeypatch.setattr(cleanup, "PROJECT_ROOT", fake_pulumi.workspace)

    def answer(*entries: dict) -> None:
        for entry in entries:
            seed_stack(fake_pulumi, entry["name"].rsplit("/", 1)[-1])
        answers = tmp_path / "pulumi-answers.json"
        answers.write_text(json.dumps({"stack ls": json.dumps(list(entries))}))
        monkeypatch.setenv("FAKE_PULUMI_ANSWERS", str(answers))

    answer.calls = fake_pulumi
    answer.fake = fake_pulumi
    return answer


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A project root with the real Pulumi.yaml, some defaults changed, and stack files."""

    def make(defaults: dict | None = None, stack_files: dict | None = None) -> Path:
        root = tmp_path / "project"
        root.mkdir()
        document = yaml.safe_load((config.REPO_ROOT / "Pulumi.yaml").read_text())
        for key, value in (defaults or {}).items():
            document["config"][key]["default"] = value
        (root / "Pulumi.yaml").write_text(yaml.safe_dump(document))
        for stack, values in (stack_files or {}).items():
            (root / f"Pulumi.{stack}.yaml").write_text(
                yaml.safe_dump({"config": {f"{PROJECT}:{k}": v for k, v in values.items()}})
            )
        monkeypatch.setattr(cleanup, "PROJECT_ROOT", root)
        return root

    return make


def _stack(name: str, hours: float | None, **extra) -> dict:
    entry = {"name": name, "current": False, "resourceCount": 42, **extra}
    if hours is not None:
        entry["lastUpdate"] = _ago(hours)
    return entry


def _destroyed(calls: list[list[str]]) -> list[str]:
    return [call[2] for call in calls if call[0] == "destroy"]


def _destroy_argv(stack: str) -> list[str]:
    return ["destroy", "--stack", stack, "--yes", "--remove", "--non-interactive"]


def _row(markdown: str, stack: str) -> list[str]:
    (line,) = [line for line in markdown.splitlines() if line.startswith(f"| {stack} |")]
    return [cell.strip() for cell in line.strip("|").split(" | ")]


GONE = naming.slugify("feature/gone")
OLD = naming.slugify("feature/old")
FRESH = naming.slugify("feature/fresh")


def test_dry_run_selects_the_orphan_and_destroys_nothing(
    remote, stacks, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = remote("main", "feature/fresh")
    stacks(
        _stack("main", 5000),
        _stack("shared", 5000),
        _stack(GONE, 1),
        _stack(FRESH, 1),
    )
    assert cleanup.main(["--remote", origin, "--now", NOW]) == 0
    assert stacks.calls() == [STACK_LS]
    out = capsys.readouterr().out
    assert _row(out, GONE) == [
        GONE,
        "(deleted)",
        "1h 0m",
        "stale: its branch is gone",
        "would destroy",
    ]
    assert _row(out, FRESH)[1] == "feature/fresh"
    assert _row(out, FRESH)[4] == "keep"
    assert _row(out, "main")[3] == "protected: default branch main"
    assert _row(out, "shared")[1:] == [
        "-",
        "208d 8h",
        "protected: the account-wide shared stack",
        "keep",
    ]
    assert "4 stacks: 1 would be destroyed, 3 kept" in out


def test_yes_destroys_the_orphan_and_the_idle_live_stack_and_keeps_the_fresh_one(
    remote, stacks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    step_summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    origin = remote("main", "feature/old", "feature/fresh")
    stacks(
        _stack("main", 5000),
        _stack("shared", 5000),
        _stack(GONE, 2),
        _stack(OLD, 169),  # default TTL 168h
        _stack(FRESH, 167),
    )
    assert cleanup.main(["--yes", "--remote", origin, "--now", NOW]) == 0
    # One at a time, in stack-name order.
    assert stacks.calls() == [STACK_LS, _destroy_argv(GONE), _destroy_argv(OLD)]
    captured = capsys.readouterr()
    assert _row(captured.out, OLD)[3:] == ["stale: not updated for 7d 1h, TTL 168h", "destroyed"]
    assert _row(captured.out, FRESH)[3:] == [
        "kept: branch live, updated 6d 23h ago (TTL 168h)",
        "keep",
    ]
    assert "[1/2]" in captured.err
    assert "[2/2]" in captured.err
    written = step_summary.read_text()
    assert "5 stacks: 2 destroyed, 3 kept" in written
    assert "(dry run" not in written


def test_protected_stacks_are_never_destroyed_even_orphaned_and_old(
    remote, stacks, project, capsys
) -> None:
    long_lived = naming.slugify("release/2024")
    project(defaults={"protectedBranches": ["main", "release/2024"]})
    origin = remote("main")  # release/2024 was deleted, yet its stack stays
    stacks(
        _stack("main", 100_000),
        _stack("shared", 100_000),
        _stack(long_lived, 100_000),
        _stack(f"acme/{PROJECT}/shared", 100_000),
    )
    assert cleanup.main(["--yes", "--remote", origin, "--now", NOW]) == 0
    assert stacks.calls() == [STACK_LS]
    out = capsys.readouterr().out
    assert _row(out, long_lived)[1:] == [
        "(deleted)",
        "4166d 16h",
        "protected: long-lived branch release/2024",
        "keep",
    ]
    assert "4 stacks: 0 destroyed, 4 kept" in out


def test_a_stack_file_that_protects_its_own_branch_is_honoured(
    remote, stacks, project, capsys
) -> None:
    pinned = naming.slugify("demo/customer")
    project(stack_files={pinned: {"protectedBranches": ["main", "demo/customer"]}})
    stacks(_stack(pinned, 10_000))
    assert cleanup.main(["--yes", "--remote", remote("main"), "--now", NOW]) == 0
    assert stacks.calls() == [STACK_LS]
    assert "protected: long-lived branch demo/customer" in capsys.readouterr().out


def test_the_destroy_guard_refuses_protected_stacks_whatever_the_plan_says(
    fake_pulumi, project
) -> None:
    root = project()
    settings = cleanup.project_settings(root)
    for name in ("shared", "main", f"org/{PROJECT}/shared"):
        forged = cleanup.Decision(
            cleanup.StackInfo(name, None, 1), None, None, "stale: forged", destroy=True
        )
        with pytest.raises(aws.ScriptError, match="refusing to destroy"):
            cleanup.destroy("pulumi", forged, settings, root, stream=None)  # type: ignore[arg-type]
    assert fake_pulumi() == []


def test_ttl_comes_from_each_stack_config(remote, stacks, project, capsys) -> None:
    project(stack_files={OLD: {"stackTtlHours": 1}})
    stacks(_stack(OLD, 2), _stack(FRESH, 2))
    origin = remote("main", "feature/old", "feature/fresh")
    assert cleanup.main(["--yes", "--remote", origin, "--now", NOW]) == 0
    assert _destroyed(stacks.calls()) == [OLD]
    out = capsys.readouterr().out
    assert _row(out, OLD)[3] == "stale: not updated for 2h 0m, TTL 1h"
    assert _row(out, FRESH)[3] == "kept: branch live, updated 2h 0m ago (TTL 168h)"


def test_a_failing_destroy_is_reported_and_the_others_proceed(
    remote, stacks, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    stacks(_stack(GONE, 1), _stack(OLD, 1))
    monkeypatch.setenv("FAKE_PULUMI_FAIL_ON", GONE)
    assert cleanup.main(["--yes", "--remote", remote("main"), "--now", NOW]) == 1
    assert sorted(_destroyed(stacks.calls())) == sorted([GONE, OLD])
    captured = capsys.readouterr()
    assert _row(captured.out, GONE)[4] == "FAILED (exit 3)"
    assert _row(captured.out, OLD)[4] == "destroyed"
    assert f"2 stacks: 1 destroyed, 0 kept, 1 failed ({GONE})" in captured.out
    assert f"{GONE}: FAILED (exit 3)" in captured.err


def test_running_updates_and_never_updated_live_stacks_are_kept(remote, stacks, capsys) -> None:
    stacks(_stack(GONE, 1, updateInProgress=True), _stack(FRESH, None))
    assert cleanup.main(["--yes", "--remote", remote("main", "feature/fresh"), "--now", NOW]) == 0
    assert _destroyed(stacks.calls()) == []
    out = capsys.readouterr().out
    assert _row(out, GONE)[3] == "kept: an update is running on it"
    assert _row(out, FRESH)[2:4] == ["?", "kept: branch live, never updated (TTL 168h)"]


def test_a_locked_stack_is_kept_however_stale(
    remote, stacks, capsys: pytest.CaptureFixture[str]
) -> None:
    # The diy backend never reports a running update in `stack ls`; its lock file does.
    stacks(_stack(GONE, 1), _stack(OLD, 1))
    seed_stack(stacks.fake, GONE, locked_by="fv-az12-34")
    assert cleanup.main(["--yes", "--remote", remote("main"), "--now", NOW]) == 0
    assert _destroyed(stacks.calls()) == [OLD]
    assert _row(capsys.readouterr().out, GONE)[3].startswith("kept: locked by runner@fv-az12-34")


def test_branches_file_accepts_names_and_ls_remote_output(
    stacks, tmp_path: Path, remote, capsys
) -> None:
    listing = subprocess.run(
        ["git", "ls-remote", "--heads", remote("main", "feature/old")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    branches = tmp_path / "branches.txt"
    branches.write_text(f"# live branches\n{listing}\nrefs/heads/feature/fresh\n\n")
    stacks(_stack(GONE, 1), _stack(OLD, 1), _stack(FRESH, 1))
    assert cleanup.main(["--yes", "--branches-file", str(branches), "--now", NOW]) == 0
    assert _destroyed(stacks.calls()) == [GONE]


def test_qualified_stack_names_are_destroyed_by_their_full_name(remote, stacks) -> None:
    stacks(_stack(f"acme/{PROJECT}/{GONE}", 1), _stack(f"acme/{PROJECT}/main", 1))
    assert cleanup.main(["--yes", "--remote", remote("main"), "--now", NOW]) == 0
    assert _destroyed(stacks.calls()) == [f"acme/{PROJECT}/{GONE}"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--now", "yesterday"], "--now 'yesterday' is not an ISO 8601 time"),
        (["--branches-file", "/nonexistent/branches.txt"], "cannot be read"),
        (["--remote", "/nonexistent/remote.git"], "`git ls-remote --heads` failed"),
    ],
)
def test_bad_input_exits_2_and_touches_nothing(
    stacks, argv: list[str], message: str, capsys
) -> None:
    stacks(_stack(GONE, 1))
    assert cleanup.main(["--yes", *argv]) == 2
    assert stacks.calls() == []
    assert message in capsys.readouterr().err


def test_a_branch_list_without_the_default_branch_is_refused(
    remote, stacks, tmp_path: Path, capsys
) -> None:
    stacks(_stack(GONE, 1))
    empty = tmp_path / "branches.txt"
    empty.write_text("")
    assert cleanup.main(["--yes", "--branches-file", str(empty)]) == 2
    assert cleanup.main(["--yes", "--remote", remote("feature/fresh")]) == 2
    assert stacks.calls() == []
    assert "do not include the default branch 'main'" in capsys.readouterr().err


@pytest.mark.process
def test_without_pulumi_it_says_how_to_install_it(
    remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    origin = remote("main")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert cleanup.main(["--remote", origin]) == 2
    assert "pulumi CLI is not on PATH" in capsys.readouterr().err


def test_a_failing_stack_listing_stops_before_anything_is_destroyed(
    remote, stacks, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    stacks(_stack(GONE, 1))
    monkeypatch.setenv("FAKE_PULUMI_FAIL_ON", "ls")
    assert cleanup.main(["--yes", "--remote", remote("main")]) == 1
    assert stacks.calls() == [STACK_LS]
    assert "`pulumi stack ls` failed with exit code 3" in capsys.readouterr().err


def test_a_stack_whose_own_config_is_invalid_is_kept(remote, stacks, project, capsys) -> None:
    project(stack_files={GONE: {"stackTtlHours": "soon"}})
    stacks(_stack(GONE, 1000))
    assert cleanup.main(["--yes", "--remote", remote("main"), "--now", NOW]) == 0
    assert _destroyed(stacks.calls()) == []
    reason = _row(capsys.readouterr().out, GONE)[3]
    assert reason.startswith("kept: its config is invalid (config stackTtlHours='soon'")
