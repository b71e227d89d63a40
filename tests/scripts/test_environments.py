"""A deleted branch's `branch/<slug>` environment goes with it; protected ones never do."""

from __future__ import annotations

import pytest
import responses

from infra import naming
from scripts import environments

API = "https://api.github.test"
BRANCH = "feature/Fancy_Model"
PATH = f"{API}/repos/acme/mlship/environments/branch%2F{naming.slugify(BRANCH)}"


@pytest.fixture
def github_env(monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", API)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_environmentsTOKEN123")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/mlship")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@responses.activate
def test_the_branch_environment_is_deleted(github_env, capsys) -> None:
    responses.get(PATH, json={"name": f"branch/{naming.slugify(BRANCH)}"})
    responses.delete(PATH, status=204)

    assert environments.main(["delete", "--branch", BRANCH]) == 0

    assert [c.request.method for c in responses.calls] == ["GET", "DELETE"]
    assert "deleted with its branch" in capsys.readouterr().out


@responses.activate
def test_an_environment_already_gone_is_fine(github_env, capsys) -> None:
    responses.get(PATH, status=404, json={"message": "Not Found"})
    assert environments.main(["delete", "--branch", BRANCH]) == 0
    assert "did not exist" in capsys.readouterr().out
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_without_an_admin_token_it_says_what_to_delete_by_hand(
    github_env, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    assert environments.main(["delete", "--branch", BRANCH]) == 0
    out = capsys.readouterr().out
    assert "was left in place" in out and "gh api -X DELETE" in out
    assert len(responses.calls) == 0


@responses.activate
def test_a_refusal_exits_1_naming_the_permission(github_env, capsys) -> None:
    responses.get(PATH, json={})
    responses.delete(PATH, status=403, json={"message": "Must have admin rights"})
    assert environments.main(["delete", "--branch", BRANCH]) == 1
    assert "Administration: write" in capsys.readouterr().err


@responses.activate
@pytest.mark.parametrize("branch", ["main", "bad..name"])
def test_protected_or_impossible_branches_exit_2_untouched(github_env, branch, capsys) -> None:
    assert environments.main(["delete", "--branch", branch]) == 2
    assert f"--branch {branch}" in capsys.readouterr().err.replace("'", "")
    assert len(responses.calls) == 0
