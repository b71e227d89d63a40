"""Renaming the project or moving its region is one command, and the copy still synthesizes."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra import config
from scripts import rename, synth
from tests.project import OTHER_REGION, PROJECT


def test_a_renamed_copy_in_another_region_names_everything_anew(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    assert (
        rename.main(["--copy-to", str(copy), "--name", "renamed-x", "--region", OTHER_REGION]) == 0
    )
    # The original is untouched; the copy carries the new name and region, comments kept.
    assert config.read_project()[0] == PROJECT
    project, defaults = config.read_project(copy)
    assert (project, defaults["aws:region"]) == ("renamed-x", OTHER_REGION)
    original = (config.REPO_ROOT / "Pulumi.yaml").read_text().splitlines()
    edited = (copy / "Pulumi.yaml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(original, edited, strict=True) if a != b]
    assert len(changed) == 2
    assert not (copy / ".git").exists() and not (copy / ".nox").exists()

    result = synth.synthesize("main", root=copy, overrides={"branch": "main"})
    assert result.project == "renamed-x"
    assert result.outputs["region"] == OTHER_REGION
    names = [r.physical_name for r in result.resources if r.custom and r.physical_name]
    assert any(name.startswith("renamed-x-main-") for name in names)
    assert not any(name.startswith(f"{PROJECT}-") for name in names)


def test_stack_files_follow_the_new_name(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((config.REPO_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.main.yaml").write_text(
        yaml.safe_dump({"config": {f"{PROJECT}:apiVersions": ["v1", "v3"], "aws:profile": "x"}})
    )
    assert rename.main(["--root", str(tmp_path), "--name", "other-name"]) == 0
    settings = config.settings_for_stack("main", tmp_path)
    assert settings.project == "other-name"
    assert settings.api_versions == ("v1", "v3")


def test_nothing_to_do_is_refused(tmp_path: Path, capsys) -> None:
    assert rename.main(["--root", str(tmp_path)]) == 2
    assert "give --name, --region or both" in capsys.readouterr().err
