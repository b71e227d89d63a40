"""`python -m scripts.names` tells a user what their branch will create."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra import naming
from tests.project import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.names", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.process
def test_prints_stack_kind_tags_and_every_name_per_branch() -> None:
    result = _run("main", "refs/heads/feature/Fancy_Model", "--account-id", "210987654321")
    assert result.returncode == 0, result.stderr
    main, feature = json.loads(result.stdout)
    assert (main["branch"], main["stack"], main["kind"]) == ("main", "main", "protected")
    assert (feature["branch"], feature["kind"]) == ("feature/Fancy_Model", "ephemeral")
    assert feature["stack"] == naming.slugify("feature/Fancy_Model")
    assert feature["tags"]["stack"] == feature["stack"]
    assert set(feature["names"]) == set(naming.BRANCH_NAME_KINDS)
    assert feature["names"]["artifact_bucket"].endswith("-210987654321")
    assert not set(map(str, main["names"].values())) & set(map(str, feature["names"].values())) - {
        "live",
        str({"v1": "v1", "v2": "v2"}),
    }


@pytest.mark.process
def test_unnameable_branch_exits_2_naming_it() -> None:
    result = _run("ok", "bad..name")
    assert result.returncode == 2
    assert "'bad..name' cannot be named" in result.stderr
    assert result.stdout == ""
