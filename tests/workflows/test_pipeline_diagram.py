"""The README's pipeline diagram is generated from the workflow files and kept current."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import pipeline_diagram
from tests.project import ROOT

WORKFLOWS = ROOT / ".github/workflows"


def test_the_readme_block_is_current():
    # Fails when a workflow changed and `python -m scripts.pipeline_diagram` was not run.
    assert pipeline_diagram.main(["--check"]) == 0


@pytest.fixture
def copy(tmp_path: Path) -> tuple[Path, Path]:
    """A README and workflows to change: (readme, workflows dir)."""
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- pipeline:start -->\nold\n<!-- pipeline:end -->\n\n## after\n")
    return readme, tmp_path / ".github/workflows"


def test_a_stale_block_fails_the_check_and_is_rewritten_in_place(copy, capsys):
    readme, workflows = copy
    check = ["--check", "--readme", str(readme), "--workflows", str(workflows)]
    assert pipeline_diagram.main(check) == 1
    assert "stale" in capsys.readouterr().err
    assert pipeline_diagram.main(check[1:]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n<!-- pipeline:start -->\n<!-- Generated")
    assert text.endswith("<!-- pipeline:end -->\n\n## after\n")
    assert "old" not in text
    assert pipeline_diagram.main(check) == 0


def test_changing_a_workflow_makes_the_block_stale(copy):
    readme, workflows = copy
    args = ["--readme", str(readme), "--workflows", str(workflows)]
    assert pipeline_diagram.main(args) == 0
    push = workflows / "push.yml"
    text = push.read_text()
    assert "needs: [preview, deploy, train, promote]" in text
    push.write_text(
        text.replace("needs: [preview, deploy, train, promote]", "needs: [preview, deploy]")
    )
    assert pipeline_diagram.main(["--check", *args]) == 1


def test_the_readme_needs_its_markers(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    assert pipeline_diagram.main(["--check", "--readme", str(readme)]) == 2
    assert "pipeline:start" in capsys.readouterr().err


def test_the_diagram_shows_the_gates_in_front_of_traffic_and_release():
    block = pipeline_diagram.render(WORKFLOWS, ROOT)
    mermaid = block.split("```mermaid\n", 1)[1].split("```", 1)[0]
    for edge in (
        "push_unit --> push_preview",
        "push_preview --> push_deploy",
        "push_integration --> push_deploy",
        "pull_request_unit --> pull_request_preview",
        "push_deploy --> push_train",
        "push_train --> push_promote_gate",
        "push_promote_gate --> push_promote",
        "push_promote --> push_release_gate",
        "push_release_gate --> push_release",
        "rollback_rollback_gate --> rollback_rollback",
        "pull_request_preview --> pull_request_comment",
    ):
        assert edge in mermaid
    # Fail fast: the slow tiers never stand between a push and its preview.
    assert "push_integration --> push_preview" not in mermaid
    assert 'push_promote_gate{{"approval: canary-promotion"}}' in mermaid
    assert 'push_release_gate{{"approval: api-release"}}' in mermaid
    assert "env branch/{stack}" in mermaid
    assert "${{" not in block  # expressions are shown as {names}


def test_sessions_given_through_inputs_are_followed_to_their_value():
    jobs = {
        (job.workflow, job.id): job
        for workflow in pipeline_diagram.read_workflows(WORKFLOWS, ROOT)
        for job in workflow.jobs
    }
    assert jobs["push", "unit"].runs == ["nox -s lint unit", "python -m scripts.junit_summary"]
    assert jobs["push", "integration"].runs == [
        "nox -s integration",
        "python -m scripts.junit_summary",
    ]
    assert jobs["push", "deploy"].runs == [
        "nox -s policy",
        "nox -s package",
        "nox -s deploy",
        "nox -s unlock",
        "nox -s smoke",
        "nox -s events",
        "nox -s release",  # --check: did the API change?
    ]
    assert jobs["push", "deploy"].roles == ["deploy-protected", "deploy"]
    assert jobs["push", "train"].runs == [
        "nox -s package",
        "nox -s train-remote",
        "nox -s promote",  # --check: is there a new version to promote?
    ]
    assert jobs["push", "train"].roles == ["deploy-protected", "deploy"]
    assert jobs["pull-request", "comment"].runs == ["python -m scripts.pr_comment"]
