"""The setup action installs the Pulumi CLI only from an archive matching the repo's pin."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from scripts import pin_pulumi
from tests.project import ROOT

SETUP = ROOT / ".github/actions/setup"
INSTALL = SETUP / "install-pulumi.sh"
VERSION = "3.999.0"
ARCHIVE = f"pulumi-v{VERSION}-linux-x64.tar.gz"


def _archive(marker: str) -> bytes:
    script = f"#!/bin/sh\necho v{VERSION}-{marker}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


@pytest.fixture
def release(tmp_path: Path):
    """A local release server (file://) with a genuine archive, and a pin file for it."""
    genuine = _archive("genuine")
    (tmp_path / "releases" / f"v{VERSION}").mkdir(parents=True)
    (tmp_path / "releases" / f"v{VERSION}" / ARCHIVE).write_bytes(genuine)
    pins = tmp_path / "pins.sha256"
    pins.write_text(f"# header\n{hashlib.sha256(genuine).hexdigest()}  {ARCHIVE}\n")
    return tmp_path, pins


def _install(tmp_path: Path, pins: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(INSTALL),
            VERSION,
            str(pins),
            str(tmp_path / "cache"),
            str(tmp_path / "cli"),
            (tmp_path / "releases").as_uri(),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _run_cli(bin_dir: str) -> str:
    return subprocess.run(
        [f"{bin_dir}/pulumi"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.process
def test_the_pinned_archive_is_installed_and_its_cache_reused(release) -> None:
    tmp_path, pins = release
    first = _install(tmp_path, pins)
    assert first.returncode == 0, first.stderr
    assert _run_cli(first.stdout.strip()) == f"v{VERSION}-genuine"
    # A second run finds the verified archive in the cache and downloads nothing.
    (tmp_path / "releases" / f"v{VERSION}" / ARCHIVE).unlink()
    second = _install(tmp_path, pins)
    assert second.returncode == 0, second.stderr
    assert "downloading" not in second.stderr


@pytest.mark.process
def test_an_archive_that_does_not_match_the_pin_is_refused(release) -> None:
    tmp_path, pins = release
    (tmp_path / "releases" / f"v{VERSION}" / ARCHIVE).write_bytes(_archive("tampered"))
    result = _install(tmp_path, pins)
    assert result.returncode == 1
    assert f"{ARCHIVE} has SHA-256" in result.stderr and "refusing it" in result.stderr
    assert not (tmp_path / "cli").exists()
    assert not (tmp_path / "cache" / ARCHIVE).exists()


@pytest.mark.process
def test_a_poisoned_cache_is_replaced_by_the_genuine_archive(release) -> None:
    tmp_path, pins = release
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / ARCHIVE).write_bytes(_archive("poisoned"))
    result = _install(tmp_path, pins)
    assert result.returncode == 0, result.stderr
    assert _run_cli(result.stdout.strip()) == f"v{VERSION}-genuine"


@pytest.mark.process
def test_without_a_pin_for_the_version_nothing_is_downloaded(release) -> None:
    tmp_path, pins = release
    pins.write_text("# header only\n")
    result = _install(tmp_path, pins)
    assert result.returncode == 1
    assert f"no pinned SHA-256 for {ARCHIVE}" in result.stderr
    assert "python -m scripts.pin_pulumi" in result.stderr
    assert not (tmp_path / "cache" / ARCHIVE).exists()


def test_the_setup_action_installs_only_through_the_pinned_archive() -> None:
    action = (SETUP / "action.yml").read_text()
    assert "get.pulumi.com" not in action and "| sh" not in action
    assert '"$ACTION_DIR/install-pulumi.sh" "$version" "$ACTION_DIR/pulumi-cli.sha256"' in action


def test_pin_pulumi_writes_the_digest_from_the_release_checksums(tmp_path, capsys) -> None:
    digest = "ab" * 32
    folder = tmp_path / "releases" / f"v{VERSION}"
    folder.mkdir(parents=True)
    (folder / f"pulumi-{VERSION}-checksums.txt").write_text(
        f"{'cd' * 32}  pulumi-v{VERSION}-darwin-arm64.tar.gz\n{digest}  {ARCHIVE}\n"
    )
    pins = tmp_path / "pins.sha256"
    pins.write_text(f"# kept\n{'ef' * 32}  pulumi-v1.0.0-linux-x64.tar.gz\n")
    base = (tmp_path / "releases").as_uri()

    assert pin_pulumi.main(["--version", VERSION, "--base-url", base, "--pin-file", str(pins)]) == 0
    assert pins.read_text() == f"# kept\n{digest}  {ARCHIVE}\n"
    assert pin_pulumi.main(["--version", "3.x", "--pin-file", str(pins)]) == 2
    assert pin_pulumi.main(["--version", "1.2.3", "--base-url", base, "--pin-file", str(pins)]) == 1
    assert "pin_pulumi: " in capsys.readouterr().err
