"""A team's own model (extra feature, new version string, a third-party library) trains,
packages for Lambda and goes into the program, with no test edited.

Packaging installs a real wheel with uv from the package index; the program is
evaluated under mocks with the variant repository in place of this one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import config, packaging
from infra.components import function
from scripts import package, synth
from tests import model_packages
from tests.conftest import starts_processes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    return model_packages.variant(tmp_path_factory.mktemp("variant-repo"))


@pytest.fixture(scope="module")
def root(variant):
    return variant.folder.parents[2]


@pytest.fixture(scope="module")
@starts_processes
def packaged(root):
    assert package.main(["--root", str(root)]) == 0
    return root / packaging.PACKAGE_DIR


def _synth(monkeypatch, root):
    monkeypatch.setattr(config, "REPO_ROOT", root)
    monkeypatch.setattr(function, "HANDLERS", root / "infra/handlers")
    return synth.synthesize("feature-x-217d2bf5", overrides={"branch": "feature/x"})


def test_the_package_holds_linux_wheels_for_the_lambda_python(packaged, root) -> None:
    name = model_packages.VARIANT_REQUIREMENT.split("==")[0]
    assert (packaged / f"{name}.py").is_file()
    manifest = json.loads((packaged / packaging.MANIFEST).read_text())
    assert manifest["platform"] == packaging.PLATFORMS[packaging.ARCHITECTURE]
    assert manifest["python"] == packaging.LAMBDA_PYTHON
    assert 0 < manifest["unzipped_bytes"] < packaging.UNZIPPED_LIMIT_BYTES
    assert packaging.dependencies_dir(root) == packaged


def test_the_program_ships_handler_artifact_and_library(packaged, root, monkeypatch) -> None:
    synthesis = _synth(monkeypatch, root)
    code = next(r for r in synthesis.of_type(FUNCTION) if r.name.endswith("model")).inputs["code"]
    name = model_packages.VARIANT_REQUIREMENT.split("==")[0]
    assert code.assets[f"{name}.py"].path == str(packaged / f"{name}.py")
    artifact = json.loads(Path(code.assets["model.json"].path).read_text())
    assert artifact["model_version"] == model_packages.VARIANT_VERSION
    assert model_packages.EXTRA_FEATURE in artifact["features"]
    assert packaging.MANIFEST not in code.assets


def test_stale_or_missing_packages_stop_the_program(packaged, root, monkeypatch) -> None:
    requirements = root / packaging.REQUIREMENTS
    original = requirements.read_text()
    try:
        requirements.write_text(original + "attrs==25.3.0\n")
        with pytest.raises(synth.SynthError, match="run `nox -s package`"):
            _synth(monkeypatch, root)
    finally:
        requirements.write_text(original)


def test_over_the_size_limit_fails_naming_the_largest(packaged, root, monkeypatch, capsys) -> None:
    monkeypatch.setattr(packaging, "UNZIPPED_LIMIT_BYTES", 1000)
    assert package.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "over Lambda's" in err and "largest:" in err
