"""The sweeper at scale: hundreds of branch stacks and branches, every page of every listing.

GitHub's branch listing is served page by page (100 a page, `Link: rel="next"`) by a
local stand-in; the stacks come from the fake pulumi's `stack ls --json`. What must
hold: every page is read once, every stack is judged, and the calls grow with the
number of stacks (one `pulumi destroy` per stale stack) and nothing else.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import responses

from infra import config, naming
from scripts import cleanup
from tests.conftest import seed_stack
from tests.github_branches import API, REPO, BranchListing

NOW = "2024-06-01T00:00:00Z"
RECENT = "2024-05-31T23:00:00.000Z"  # an hour before NOW: inside any TTL


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_scale-test-token")
    monkeypatch.setenv("GITHUB_API_URL", API)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with responses.RequestsMock() as mock:
        yield mock


def _world(fake, tmp_path: Path, monkeypatch, github, *, stacks: int, live: int):
    """`stacks` branch stacks, of which the first `live` still have their branch."""
    # cleanup runs pulumi in the project root; by default the fake's fresh workspace.
    monkeypatch.setattr(cleanup, "PROJECT_ROOT", fake.workspace)
    default = cleanup.project_settings(config.REPO_ROOT).default_branch
    branches = [f"feature/scale-{i:04d}" for i in range(stacks)]
    entries = [
        {"name": naming.slugify(b), "lastUpdate": RECENT, "resourceCount": 40} for b in branches
    ]
    entries += [
        {"name": naming.slugify(default), "lastUpdate": RECENT, "resourceCount": 40},
        {"name": naming.SHARED_STACK, "lastUpdate": RECENT, "resourceCount": 20},
    ]
    for entry in entries:  # in the fake's backend, as deploys leave them
        seed_stack(fake, entry["name"])
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"stack ls": json.dumps(entries)}))
    monkeypatch.setenv("FAKE_PULUMI_ANSWERS", str(answers))
    listing = BranchListing(github, [default, *branches[:live]])
    return branches, listing


@pytest.mark.parametrize("stacks", [20, 200])
def test_every_page_is_read_and_calls_grow_only_with_the_stale_stacks(  # noqa: PLR0917
    fake_pulumi, tmp_path, monkeypatch, github, capsys, stacks
):
    live = stacks * 3 // 4
    branches, listing = _world(fake_pulumi, tmp_path, monkeypatch, github, stacks=stacks, live=live)

    code = cleanup.main(["--yes", "--github-repo", REPO, "--now", NOW])

    assert code == 0
    # Every page of the branch listing, once each, in order.
    assert listing.pages == list(range(1, math.ceil((live + 1) / 100) + 1))
    # One listing of the stacks, then one destroy per orphaned stack, nothing else.
    calls = fake_pulumi()
    assert calls[0] == ["stack", "ls", "--json", "--non-interactive"]
    destroyed = sorted(c[2] for c in calls[1:] if c[0] == "destroy")
    assert len(calls) == 1 + len(destroyed)
    assert destroyed == sorted(naming.slugify(b) for b in branches[live:])
    # Every stack is in the report: the live ones kept, the protected ones kept.
    out = capsys.readouterr().out
    assert f"{stacks + 2} stacks: {stacks - live} destroyed, {live + 2} kept" in out


def test_a_branch_on_the_last_page_keeps_its_stack(fake_pulumi, tmp_path, monkeypatch, github):
    _, listing = _world(fake_pulumi, tmp_path, monkeypatch, github, stacks=250, live=250)

    assert cleanup.main(["--github-repo", REPO, "--now", NOW]) == 0

    assert listing.pages == [1, 2, 3]
    assert fake_pulumi() == [["stack", "ls", "--json", "--non-interactive"]]


def test_a_malformed_repository_exits_2_naming_the_flag(fake_pulumi, github, capsys):
    assert cleanup.main(["--github-repo", "not a repo", "--now", NOW]) == 2
    assert "--github-repo 'not a repo' is not OWNER/NAME" in capsys.readouterr().err
    assert fake_pulumi() == []
