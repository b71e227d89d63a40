"""preview/deploy/destroy drive the pulumi CLI on the branch's own stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import naming
from scripts import stack
from tests.project import PROJECT


def test_preview_creates_the_branch_stack_records_its_branch_and_saves_a_plan(
    fake_pulumi, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    assert (
        stack.main(["preview", "--branch", "refs/heads/feature/Fancy_Model", "--plan", str(plan)])
        == 0
    )
    assert fake_pulumi() == [
        ["stack", "select", "feature-fancy-mode-c084cfc5", "--create", "--non-interactive"],
        [
            "config",
            "set",
            f"{PROJECT}:branch",
            "feature/Fancy_Model",
            "--stack",
            "feature-fancy-mode-c084cfc5",
            "--non-interactive",
        ],
        [
            "preview",
            "--stack",
            "feature-fancy-mode-c084cfc5",
            "--diff",
            "--policy-pack",
            str(stack.POLICY_PACK),
            "--save-plan",
            str(plan),
            "--non-interactive",
        ],
    ]


def test_deploy_applies_the_reviewed_plan(fake_pulumi, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert stack.main(["deploy", "--branch", "main", "--plan", str(plan)]) == 0
    assert fake_pulumi()[-1] == [
        "up",
        "--stack",
        "main",
        "--yes",
        "--skip-preview",
        "--policy-pack",
        str(stack.POLICY_PACK),
        "--plan",
        str(plan),
        "--non-interactive",
    ]


def test_destroy_removes_an_ephemeral_stack(fake_pulumi) -> None:
    assert stack.main(["destroy", "--branch", "feature/x"]) == 0
    assert fake_pulumi()[-1] == [
        "destroy",
        "--stack",
        naming.slugify("feature/x"),
        "--yes",
        "--remove",
        "--non-interactive",
    ]


@pytest.mark.parametrize(
    "target", [["--branch", "main"], ["--branch", "refs/heads/main"], ["--stack", "shared"]]
)
def test_destroy_refuses_protected_stacks_and_calls_nothing(
    fake_pulumi, target: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.main(["destroy", *target]) == 2
    assert fake_pulumi() == []
    assert "is protected" in capsys.readouterr().err


def test_a_failing_pulumi_stops_with_its_command_and_exit_code(
    fake_pulumi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_PULUMI_FAIL_ON", "preview")
    assert stack.main(["preview", "--branch", "feature/x"]) == 2
    assert "failed with exit code 3" in capsys.readouterr().err
    assert fake_pulumi()[-1][0] == "preview"


def test_without_pulumi_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert stack.main(["preview", "--branch", "feature/x"]) == 2
    err = capsys.readouterr().err
    assert "pulumi CLI is not on PATH" in err
    assert "nox -s synth" in err


def test_bad_branch_and_unknown_stack_are_refused(
    fake_pulumi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.main(["preview", "--branch", "bad..branch"]) == 2
    assert stack.main(["preview", "--stack", "prod"]) == 2
    err = capsys.readouterr().err
    assert "'bad..branch' cannot be named" in err
    assert "invalid choice: 'prod' (choose from 'shared')" in err
    assert fake_pulumi() == []


def test_step_summary_is_written_when_github_asks(
    fake_pulumi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert stack.main(["preview", "--branch", "feature/x"]) == 0
    assert summary.read_text().startswith("### preview `feature-x-")


def test_deploy_saves_outputs_and_hands_the_api_url_to_github(
    fake_pulumi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    answers = tmp_path / "answers.json"
    stack_outputs = {"api_url": "https://abc.execute-api.us-east-1.amazonaws.com/v2/v2", "x": 1}
    answers.write_text(json.dumps({"stack output": json.dumps(stack_outputs)}))
    monkeypatch.setenv("FAKE_PULUMI_ANSWERS", str(answers))
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    saved = tmp_path / "out" / "outputs.json"
    assert stack.main(["deploy", "--branch", "main", "--outputs-file", str(saved)]) == 0
    assert json.loads(saved.read_text()) == stack_outputs
    assert github_output.read_text() == f"api_url={stack_outputs['api_url']}\n"
    assert fake_pulumi()[-1] == [
        "stack",
        "output",
        "--json",
        "--stack",
        "main",
        "--non-interactive",
    ]


def test_drift_refreshes_without_changes_and_fails_on_drift(
    fake_pulumi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.main(["drift", "--branch", "main"]) == 0
    assert fake_pulumi()[-1] == [
        "refresh",
        "--stack",
        "main",
        "--preview-only",
        "--expect-no-changes",
        "--non-interactive",
    ]
    monkeypatch.setenv("FAKE_PULUMI_FAIL_ON", "refresh")
    assert stack.main(["drift", "--branch", "main"]) == 2


def test_new_stacks_use_the_shared_secrets_provider_when_given(
    fake_pulumi, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = "awskms://alias/mlship--shared-pulumi-secrets?region=us-east-1"
    monkeypatch.setenv("PULUMI_SECRETS_PROVIDER", provider)
    assert stack.main(["preview", "--branch", "main"]) == 0
    assert fake_pulumi()[0] == [
        "stack",
        "select",
        "main",
        "--create",
        "--secrets-provider",
        provider,
        "--non-interactive",
    ]


def test_the_policy_pack_is_the_repository_s_own() -> None:
    assert (stack.POLICY_PACK / "PulumiPolicy.yaml").is_file()
    assert (stack.POLICY_PACK / "__main__.py").is_file()
