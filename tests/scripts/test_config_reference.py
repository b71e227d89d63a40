"""docs/configuration.md is generated from Pulumi.yaml and kept current."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra import config
from scripts import config_reference
from tests.project import ROOT


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_the_reference_is_current() -> None:
    # Fails when Pulumi.yaml changed and `nox -s docs` was not run.
    assert config_reference.main(["--check"]) == 0


def test_every_setting_is_in_the_reference_with_its_default_and_meaning() -> None:
    rows = _rows((ROOT / "docs" / "configuration.md").read_text())
    assert set(rows) == set(config.config_keys().values())
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for key, spec in document["config"].items():
        if "default" in spec:
            # Each project setting says what it does, so the reference is worth reading.
            assert spec.get("description"), f"Pulumi.yaml: {key} needs a description"
            assert rows[key][3] == " ".join(spec["description"].split())
            assert yaml.safe_load(rows[key][2].strip("`") or '""') == spec["default"]


def test_a_stale_reference_fails_the_check_and_is_rewritten(tmp_path: Path, capsys) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    document["config"]["bakeSeconds"]["description"] = "Seconds of bake, rewritten."
    document["config"]["bakeSeconds"]["default"] = 90
    project = tmp_path / "Pulumi.yaml"
    project.write_text(yaml.safe_dump(document))
    output = tmp_path / "configuration.md"
    output.write_text((ROOT / "docs" / "configuration.md").read_text())
    args = ["--project", str(project), "--output", str(output)]
    assert config_reference.main([*args, "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert config_reference.main(args) == 0
    assert _rows(output.read_text())["bakeSeconds"][2:] == ["`90`", "Seconds of bake, rewritten."]
    assert config_reference.main([*args, "--check"]) == 0
