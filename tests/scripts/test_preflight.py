"""preflight: traffic moves only when the approval environment has a required reviewer."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from scripts import preflight

API = "https://api.github.test"
# A fake, distinctive enough to search every output for.
TOKEN = "ghp_PreflightTestTokenDoNotLeak0123456789"
REPO = "octo-org/ml-models"
ENVIRONMENT = f"{API}/repos/{REPO}/environments/canary-promotion"
LISTING = f"{API}/repos/{REPO}/environments"


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", API)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """Run preflight; returns (exit code, stdout, stderr, step summary)."""

    def call(*argv: str) -> tuple[int, str, str, str]:
        code = preflight.main(list(argv or ["--environment", "canary-promotion"]))
        out, err = capsys.readouterr()
        path = tmp_path / "summary.md"
        return code, out, err, path.read_text() if path.exists() else ""

    return call


def _environment(*rules: dict) -> dict:
    return {"name": "canary-promotion", "protection_rules": list(rules)}


def _reviewers(*logins: str) -> dict:
    return {
        "type": "required_reviewers",
        "prevent_self_review": False,
        "reviewers": [
            {"type": "User", "reviewer": {"login": login, "id": n}}
            for n, login in enumerate(logins, 1)
        ],
    }


def test_an_environment_with_reviewers_lets_traffic_move(mock, run) -> None:
    mock.get(ENVIRONMENT, json=_environment(_reviewers("alice", "bob")))

    code, out, err, summary = run()

    assert code == 0, err
    assert (
        "environment canary-promotion of octo-org/ml-models requires approval by alice, bob" in out
    )
    assert "gated" in summary


def test_a_team_counts_as_a_reviewer(mock, run) -> None:
    team = {"type": "Team", "reviewer": {"slug": "ml-leads", "id": 9}}
    mock.get(ENVIRONMENT, json=_environment({"type": "required_reviewers", "reviewers": [team]}))

    code, out, _, _ = run()

    assert code == 0
    assert "approval by ml-leads" in out


def test_a_missing_environment_is_refused_with_the_fix(mock, run) -> None:
    mock.get(ENVIRONMENT, status=404, json={"message": "Not Found"})
    mock.get(
        LISTING,
        json={"total_count": 1, "environments": [{"name": "branch/main"}]},
        headers={"Link": f'<{LISTING}?per_page=100&page=2>; rel="next"'},
    )
    mock.get(
        f"{LISTING}?per_page=100&page=2",
        json={"total_count": 2, "environments": [{"name": "canary-promotoin"}]},
    )

    code, out, err, summary = run()

    assert code == 1
    assert "refusing to move traffic: environment canary-promotion does not exist" in err
    assert "(it has: branch/main, canary-promotoin)" in err
    assert f"run `nox -s bootstrap -- --repo {REPO} --reviewers LOGIN[,LOGIN...]`" in err
    assert out == ""
    assert "refused" in summary


def test_a_missing_environment_when_the_list_cannot_be_read(mock, run) -> None:
    mock.get(ENVIRONMENT, status=404, json={"message": "Not Found"})
    mock.get(LISTING, status=404, json={"message": "Not Found"})

    code, _, err, _ = run()

    assert code == 1
    assert "environment canary-promotion does not exist in octo-org/ml-models, so" in err


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [{"type": "wait_timer", "wait_timer": 10}],
        [{"type": "branch_policy"}, _reviewers()],
    ],
    ids=["no rules", "wait timer only", "empty reviewer list"],
)
def test_an_environment_without_reviewers_is_refused(mock, run, rules: list[dict]) -> None:
    mock.get(ENVIRONMENT, json=_environment(*rules))

    code, out, err, summary = run()

    assert code == 1
    assert "environment canary-promotion of octo-org/ml-models has no required reviewer" in err
    assert "nox -s bootstrap -- --repo" in err
    assert "Settings > Environments > canary-promotion > Required reviewers" in err
    assert "required reviewers need a public repository, or a plan that offers them" in err
    assert out == ""
    assert "refused" in summary


@pytest.mark.parametrize("status", [401, 403, 500])
def test_github_not_answering_fails_closed(mock, run, status: int) -> None:
    mock.get(ENVIRONMENT, status=status, json={"message": "Nope"})

    code, _, err, summary = run()

    assert code == 1
    assert "refusing to move traffic: reading environment canary-promotion" in err
    assert "refused" in summary


def test_the_repository_may_be_given(mock, run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY")
    mock.get(
        f"{API}/repos/other/repo/environments/api-release",
        json=_environment(_reviewers("carol")),
    )

    code, out, _, _ = run("--environment", "api-release", "--repo", "other/repo")

    assert code == 0
    assert "environment api-release of other/repo requires approval by carol" in out


def test_no_token_is_bad_input(mock, run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")

    code, _, err, _ = run()

    assert code == 2
    assert "$GITHUB_TOKEN is not set" in err


def test_no_repository_is_bad_input(mock, run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY")

    code, _, err, _ = run()

    assert code == 2
    assert "pass --repo OWNER/NAME or set $GITHUB_REPOSITORY" in err


@pytest.mark.parametrize("name", ["", "../secrets", "a/b"])
def test_a_bad_environment_name_is_bad_input(mock, run, name: str) -> None:
    code, _, err, _ = run("--environment", name)

    assert code == 2
    assert "is not an environment name" in err


def test_the_token_never_appears(mock, run) -> None:
    mock.get(ENVIRONMENT, status=401, json={"message": f"bad token {TOKEN}"})
    first = run()
    mock.replace(responses.GET, ENVIRONMENT, json=_environment(_reviewers("alice")))
    second = run()

    assert first[0] == 1
    assert second[0] == 0
    assert all(TOKEN not in text for text in (*first[1:], *second[1:]))


def test_an_approval_for_a_deleted_branch_moves_nothing(mock, run) -> None:
    mock.get(ENVIRONMENT, json=_environment(_reviewers("alice")))
    mock.get(f"{API}/repos/{REPO}/branches/feature%2Fx", status=404, json={"message": "nope"})

    code, _, err, summary = run("--environment", "canary-promotion", "--branch", "feature/x")

    assert code == 1
    assert "branch feature/x was deleted" in err and "refused" in summary


def test_a_live_branch_passes(mock, run) -> None:
    mock.get(ENVIRONMENT, json=_environment(_reviewers("alice")))
    mock.get(f"{API}/repos/{REPO}/branches/feature%2Fx", json={"name": "feature/x"})

    code, _, err, _ = run("--environment", "canary-promotion", "--branch", "feature/x")

    assert code == 0, err
