"""scripts.stack against the stand-in CLI (tests/fake_pulumi.py) on a file:// diy backend.

Each test's workspace holds only Pulumi.yaml, as a fresh CI runner's checkout does; a
"new runner" below is that workspace with the stack settings file pulumi wrote removed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infra import naming
from scripts import stack
from tests.conftest import policy_pack_with_venv
from tests.project import PROJECT, ROOT

BRANCH = "feature/Fancy_Model"
STACK = naming.slugify(BRANCH)
KMS = "awskms://alias/test-pulumi-secrets?region=us-east-1"


def checkpoint(fake, name: str = STACK) -> Path:
    return fake.backend / ".pulumi" / "stacks" / PROJECT / f"{name}.json"


def lock_files(fake, name: str = STACK) -> list[Path]:
    directory = fake.backend / ".pulumi" / "locks" / "organization" / PROJECT / name
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def new_runner(fake, name: str = STACK) -> None:
    """What a fresh runner lacks: the settings file the last job's pulumi wrote."""
    (fake.workspace / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def verbs(fake) -> list[str]:
    return [call[0] for call in fake() if call[0] in {"preview", "up", "destroy", "refresh"}]


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PULUMI_SECRETS_PROVIDER", KMS)
    return KMS


def test_preview_creates_the_stack_with_the_kms_provider_and_keeps_what_deploy_needs(
    fake_pulumi, kms, tmp_path: Path
) -> None:
    plan = tmp_path / "preview" / "plan.json"
    plan.parent.mkdir()
    assert stack.main(["preview", "--branch", f"refs/heads/{BRANCH}", "--plan", str(plan)]) == 0

    assert fake_pulumi()[0] == [
        "stack",
        "select",
        STACK,
        "--create",
        "--secrets-provider",
        kms,
        "--non-interactive",
    ]
    assert checkpoint(fake_pulumi).is_file()
    assert lock_files(fake_pulumi) == []  # creation locked the stack, and unlocked it
    settings = yaml.safe_load((fake_pulumi.workspace / f"Pulumi.{STACK}.yaml").read_text())
    assert settings["secretsprovider"] == kms
    assert settings["config"] == {f"{PROJECT}:branch": BRANCH}
    preview = next(c for c in fake_pulumi() if c[0] == "preview")
    assert preview[preview.index("--policy-pack") + 1] == str(fake_pulumi.pack)
    assert preview[preview.index("--save-plan") + 1] == str(plan)
    assert sorted(p.name for p in plan.parent.iterdir()) == [
        "plan.json",
        "plan.settings.yaml",
        "plan.state.json",
    ]


def test_a_branch_s_second_push_deploys_and_previews_on_fresh_runners(
    fake_pulumi, kms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "true")
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    new_runner(fake_pulumi)
    # The new stack's state has no secrets provider yet: deploy needs the preview's file.
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0
    for _ in range(2):
        new_runner(fake_pulumi)
        assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
        new_runner(fake_pulumi)
        assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert verbs(fake_pulumi) == ["preview", "up"] * 3
    latest = json.loads(checkpoint(fake_pulumi).read_text())["checkpoint"]["latest"]
    assert latest["secrets_providers"]["state"]["url"] == kms
    assert lock_files(fake_pulumi) == []


def test_without_the_fallback_variable_an_existing_stack_wants_a_passphrase(
    fake_pulumi, kms, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Why the workflows set PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER (secrets.go).
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0
    new_runner(fake_pulumi)
    assert stack.main(["drift", "--branch", BRANCH]) == 1
    assert "passphrase must be set" in capfd.readouterr().err


def test_only_preview_creates_a_stack(fake_pulumi, kms, capfd: pytest.CaptureFixture[str]):
    assert stack.main(["destroy", "--branch", BRANCH]) == 0
    assert "nothing to destroy" in capfd.readouterr().err
    assert stack.main(["drift", "--branch", BRANCH]) == 6
    assert stack.main(["deploy", "--branch", BRANCH]) == 6
    assert "no stack named" in capfd.readouterr().err
    assert not checkpoint(fake_pulumi).exists()
    assert verbs(fake_pulumi) == []
    assert all("--create" not in call for call in fake_pulumi())


def test_destroy_removes_a_deployed_stack_on_a_fresh_runner(fake_pulumi, kms, tmp_path: Path):
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0
    new_runner(fake_pulumi)
    # destroy always falls back to the state's secrets provider (operations/destroy.go).
    assert stack.main(["destroy", "--branch", BRANCH]) == 0
    assert fake_pulumi()[-1] == [
        "destroy",
        "--stack",
        STACK,
        "--yes",
        "--remove",
        "--non-interactive",
    ]
    assert not checkpoint(fake_pulumi).exists()
    assert lock_files(fake_pulumi) == []


def test_a_stack_previewed_but_never_deployed_is_destroyed_on_a_fresh_runner(
    fake_pulumi, kms, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its state names no secrets provider, so the fallback finds none: the file must.
    monkeypatch.setenv("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "true")
    assert stack.main(["preview", "--branch", BRANCH]) == 0
    new_runner(fake_pulumi)
    assert stack.main(["destroy", "--branch", BRANCH]) == 0
    assert not checkpoint(fake_pulumi).exists()


@pytest.mark.parametrize(
    "target", [["--branch", "main"], ["--branch", "refs/heads/main"], ["--stack", "shared"]]
)
def test_destroy_refuses_protected_stacks_and_calls_nothing(
    fake_pulumi, target: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    assert stack.main(["destroy", *target]) == 2
    assert fake_pulumi() == []
    assert "is protected" in capfd.readouterr().err


def test_drift_is_exit_7_and_no_drift_is_0(
    fake_pulumi, kms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert stack.main(["drift", "--branch", BRANCH]) == 0
    assert fake_pulumi()[-1] == [
        "refresh",
        "--stack",
        STACK,
        "--preview-only",
        "--expect-no-changes",
        "--non-interactive",
    ]
    monkeypatch.setenv("FAKE_PULUMI_DRIFT", "1")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert stack.main(["drift", "--branch", BRANCH]) == 7
    assert "drifted" in summary.read_text()


@pytest.mark.parametrize("code", [1, 3, 6, 8])
def test_pulumi_s_exit_code_is_passed_through(
    fake_pulumi, kms, monkeypatch: pytest.MonkeyPatch, code: int, capfd
) -> None:
    monkeypatch.setenv("FAKE_PULUMI_FAIL_ON", "preview")
    monkeypatch.setenv("FAKE_PULUMI_FAIL_CODE", str(code))
    assert stack.main(["preview", "--branch", BRANCH]) == code
    assert f"failed with exit code {code}" in capfd.readouterr().err


def test_an_authentication_failure_is_exit_3(
    fake_pulumi, kms, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    # No backend URL is Pulumi Cloud, which wants a token in a non-interactive run.
    monkeypatch.delenv("PULUMI_BACKEND_URL")
    monkeypatch.delenv("PULUMI_ACCESS_TOKEN", raising=False)
    assert stack.main(["preview", "--branch", BRANCH]) == 3
    assert "PULUMI_ACCESS_TOKEN must be set" in capfd.readouterr().err


def test_deploy_refuses_a_plan_whose_state_changed_since_the_preview(
    fake_pulumi, kms, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a" / "plan.json", tmp_path / "b" / "plan.json"
    first.parent.mkdir()
    second.parent.mkdir()
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(first)]) == 0
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(second)]) == 0
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(second)]) == 0
    # The first plan was computed from the state before that deploy.
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(first)]) == 1
    assert "changed since the preview" in capfd.readouterr().err
    assert verbs(fake_pulumi) == ["preview", "preview", "up"]


def test_two_previews_creating_the_same_new_stack_both_succeed(
    fake_pulumi, kms, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PULUMI_RACE_CREATE", "1")
    assert stack.main(["preview", "--branch", BRANCH]) == 0
    assert verbs(fake_pulumi) == ["preview"]
    assert [c[:3] for c in fake_pulumi()[:2]] == [["stack", "select", STACK]] * 2


def test_a_missing_policy_venv_is_named_with_its_remedy(
    fake_pulumi, kms, capfd: pytest.CaptureFixture[str]
) -> None:
    python = fake_pulumi.pack / "venv" / "bin" / "python"
    python.unlink()
    assert stack.main(["preview", "--branch", BRANCH]) == 2
    assert "nox -s policy" in capfd.readouterr().err
    assert verbs(fake_pulumi) == []


def test_the_stand_in_runs_the_pack_only_with_its_dependencies(
    fake_pulumi, kms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    # A venv made with `python -m venv` alone: pulumi_policy is not in it.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    pack = policy_pack_with_venv(tmp_path / "other", python=str(bare / "bin" / "python"))
    monkeypatch.setattr(stack, "POLICY_PACK", pack)
    assert stack.main(["preview", "--branch", BRANCH]) == 1
    assert "No module named 'pulumi_policy'" in capfd.readouterr().err


def _deploy_in_a_process(fake, plan: Path, marker: Path) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path; from scripts import stack; "
        f"stack.PROJECT_ROOT = Path({str(fake.workspace)!r}); "
        f"stack.POLICY_PACK = Path({str(fake.pack)!r}); "
        f"sys.exit(stack.main(['deploy', '--branch', {BRANCH!r}, '--plan', {str(plan)!r}]))"
    )
    env = {**os.environ, "FAKE_PULUMI_HANG": "up", "FAKE_PULUMI_HANG_MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    for _ in range(400):
        if marker.is_file() and marker.read_text():
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the deploy never reached pulumi up: {process.communicate()[1]}")


def test_a_signal_reaches_pulumi_which_cancels_and_unlocks(fake_pulumi, kms, tmp_path: Path):
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    process = _deploy_in_a_process(fake_pulumi, plan, tmp_path / "pid")
    assert len(lock_files(fake_pulumi)) == 1
    process.send_signal(signal.SIGTERM)  # what nox passes on from a cancelled job
    _, err = process.communicate(timeout=60)
    assert process.returncode == 8, err
    assert lock_files(fake_pulumi) == []


def test_a_killed_deploy_leaves_its_lock_until_unlock_and_then_deploys(
    fake_pulumi, kms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    monkeypatch.setenv("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "true")
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    marker = tmp_path / "pid"
    process = _deploy_in_a_process(fake_pulumi, plan, marker)
    os.kill(int(marker.read_text()), signal.SIGKILL)  # the runner kills the process tree
    process.kill()
    process.communicate(timeout=60)
    assert len(lock_files(fake_pulumi)) == 1

    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 1
    assert "currently locked by 1 lock(s)" in capfd.readouterr().err

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert stack.main(["unlock", "--branch", BRANCH]) == 0
    assert lock_files(fake_pulumi) == []
    assert "--import-pending-creates" in summary.read_text()
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0


def test_unlock_keeps_another_machine_s_lock_and_drift_waits_for_it(
    fake_pulumi, kms, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    assert stack.main(["deploy", "--branch", BRANCH, "--plan", str(plan)]) == 0
    directory = fake_pulumi.backend / ".pulumi/locks/organization" / PROJECT / STACK
    directory.mkdir(parents=True, exist_ok=True)
    other = {"pid": 7, "username": "runner", "hostname": "elsewhere", "timestamp": "t"}
    (directory / "other.json").write_text(json.dumps(other))
    assert stack.main(["drift", "--branch", BRANCH]) == 1
    assert "runner@elsewhere" in capfd.readouterr().err
    assert stack.main(["unlock", "--branch", BRANCH]) == 0
    assert lock_files(fake_pulumi) == [directory / "other.json"]
    assert verbs(fake_pulumi) == ["preview", "up"]


def test_without_pulumi_it_says_how_to_install_it(
    fake_pulumi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert stack.main(["preview", "--branch", "feature/x"]) == 2
    err = capfd.readouterr().err
    assert "pulumi CLI is not on PATH" in err
    assert "nox -s synth" in err


def test_bad_branch_and_unknown_stack_are_refused(
    fake_pulumi, capfd: pytest.CaptureFixture[str]
) -> None:
    assert stack.main(["preview", "--branch", "bad..branch"]) == 2
    assert stack.main(["preview", "--stack", "prod"]) == 2
    err = capfd.readouterr().err
    assert "'bad..branch' cannot be named" in err
    assert "invalid choice: 'prod' (choose from 'shared')" in err
    assert fake_pulumi() == []


def test_deploy_saves_outputs_and_hands_the_api_url_to_github(
    fake_pulumi, kms, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack_outputs = {"api_url": "https://abc.execute-api.us-east-1.amazonaws.com/v2/v2", "x": 1}
    recorded = tmp_path / "outputs-up-records.json"
    recorded.write_text(json.dumps(stack_outputs))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(recorded))
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    plan, saved = tmp_path / "plan.json", tmp_path / "out" / "outputs.json"
    assert stack.main(["preview", "--branch", BRANCH, "--plan", str(plan)]) == 0
    args = ["deploy", "--branch", BRANCH, "--plan", str(plan), "--outputs-file", str(saved)]
    assert stack.main(args) == 0
    assert json.loads(saved.read_text()) == stack_outputs
    assert github_output.read_text() == f"api_url={stack_outputs['api_url']}\n"
    assert f"### deploy `{STACK}`" in summary.read_text()


def test_the_policy_pack_is_the_repository_s_own() -> None:
    assert (stack.POLICY_PACK / "PulumiPolicy.yaml").is_file()
    assert (stack.POLICY_PACK / "__main__.py").is_file()
