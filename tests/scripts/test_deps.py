"""deps: pip login to CodeArtifact and publishing the model package.

moto has no CodeArtifact, so every call is checked with botocore's Stubber:
the exact request each operation sends, and the errors AWS can answer.
"""

from __future__ import annotations

import configparser
import datetime as dt
import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from scripts import deps
from scripts.lib import aws
from tests.project import PROJECT

# Distinctive, with characters that need quoting in a URL: a leak is easy to spot.
TOKEN = "eyJ2ZXIiOjF9.S3CR3T-t0ken_value/with+plus="
QUOTED = "eyJ2ZXIiOjF9.S3CR3T-t0ken_value%2Fwith%2Bplus%3D"
HOST = f"{PROJECT}-123456789012.d.codeartifact.us-east-1.amazonaws.com"
ENDPOINT = f"https://{HOST}/pypi/{PROJECT}-ml/"
INDEX_URL = f"https://aws:{QUOTED}@{HOST}/pypi/{PROJECT}-ml/simple/"
REDACTED_URL = f"https://aws:****@{HOST}/pypi/{PROJECT}-ml/simple/"
EXPIRES = dt.datetime(2024, 6, 1, 13, 0, tzinfo=dt.UTC)
SHARED = {
    "stack_kind": "protected",
    "codeartifact_domain": PROJECT,
    "codeartifact_domain_owner": "123456789012",
    "codeartifact_domain_arn": f"arn:aws:codeartifact:us-east-1:123456789012:domain/{PROJECT}",
    "codeartifact_repository": f"{PROJECT}-ml",
    "codeartifact_repository_arn": (
        f"arn:aws:codeartifact:us-east-1:123456789012:repository/{PROJECT}/{PROJECT}-ml"
    ),
}
WHERE = {"domain": PROJECT, "domainOwner": "123456789012", "repository": f"{PROJECT}-ml"}
VERSION = json.loads((deps.MODEL_DIR / "model.json").read_text())["model_version"]


@pytest.fixture
def codeartifact(monkeypatch: pytest.MonkeyPatch):
    """A Stubber on the client `scripts.lib.aws.client("codeartifact")` hands out."""
    client = boto3.client(
        "codeartifact",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)

    def factory(service: str, region: str | None = None):
        assert service == "codeartifact"
        return client

    monkeypatch.setattr(aws, "client", factory)
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def shared_outputs(tmp_path: Path) -> Path:
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(SHARED))
    return path


@pytest.fixture
def step_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    return path


def _expect_login(stubber: Stubber, duration: int = deps.DEFAULT_DURATION_SECONDS) -> None:
    stubber.add_response(
        "get_authorization_token",
        {"authorizationToken": TOKEN, "expiration": EXPIRES},
        {"domain": PROJECT, "domainOwner": "123456789012", "durationSeconds": duration},
    )
    stubber.add_response(
        "get_repository_endpoint",
        {"repositoryEndpoint": ENDPOINT},
        {**WHERE, "format": "pypi"},
    )


def _no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert QUOTED not in text


# ---------------------------------------------------------------- login


def test_login_writes_a_private_pip_config_and_prints_only_the_redacted_url(
    codeartifact, shared_outputs: Path, tmp_path: Path, step_summary: Path, capsys
) -> None:
    _expect_login(codeartifact)
    pip_conf = tmp_path / "venv" / "pip.conf"
    argv = ["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]
    assert deps.main(argv) == 0
    assert stat.S_IMODE(pip_conf.stat().st_mode) == 0o600
    written = configparser.ConfigParser(interpolation=None)
    written.read(pip_conf)
    assert written.get("global", "index-url") == INDEX_URL
    captured = capsys.readouterr()
    assert REDACTED_URL in captured.out
    assert "2024-06-01T13:00+00:00" in captured.out
    _no_token(captured.out, captured.err, step_summary.read_text())
    assert REDACTED_URL in step_summary.read_text()


def test_login_keeps_other_pip_settings_and_tightens_the_file_mode(
    codeartifact, shared_outputs: Path, tmp_path: Path, step_summary: Path
) -> None:
    _expect_login(codeartifact)
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(
        "[global]\nindex-url = https://old.example/simple/\ntimeout = 60\n"
        "[install]\nno-cache-dir = true\n"
    )
    pip_conf.chmod(0o644)
    assert deps.main(["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]) == 0
    written = configparser.ConfigParser(interpolation=None)
    written.read(pip_conf)
    assert dict(written["global"]) == {"index-url": INDEX_URL, "timeout": "60"}
    assert dict(written["install"]) == {"no-cache-dir": "true"}
    assert stat.S_IMODE(pip_conf.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pip.conf")] == []


def test_on_github_the_token_is_masked_before_anything_is_printed(
    codeartifact, shared_outputs: Path, step_summary: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _expect_login(codeartifact)
    pip_conf = shared_outputs.parent / "pip.conf"
    assert deps.main(["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[:2] == [f"::add-mask::{TOKEN}", f"::add-mask::{QUOTED}"]
    _no_token("\n".join(lines[2:]), captured.err, step_summary.read_text())


def test_print_index_url_prints_the_url_alone_on_stdout(
    codeartifact, shared_outputs: Path, step_summary: Path, capsys
) -> None:
    _expect_login(codeartifact, duration=900)
    argv = ["login", "--outputs", str(shared_outputs), "--print-index-url"]
    assert deps.main([*argv, "--duration-seconds", "900"]) == 0
    captured = capsys.readouterr()
    assert captured.out == INDEX_URL + "\n"
    assert REDACTED_URL in captured.err
    _no_token(captured.err)
    assert not step_summary.exists()


def test_print_index_url_on_github_masks_through_stderr_so_stdout_stays_the_url(
    codeartifact, shared_outputs: Path, step_summary: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _expect_login(codeartifact)
    assert deps.main(["login", "--outputs", str(shared_outputs), "--print-index-url"]) == 0
    captured = capsys.readouterr()
    assert captured.out == INDEX_URL + "\n"
    err = captured.err.splitlines()
    # The runner consumes workflow commands on stderr too; nothing else there holds the token.
    assert err[:2] == [f"::add-mask::{TOKEN}", f"::add-mask::{QUOTED}"]
    _no_token("\n".join(err[2:]))


def test_login_reads_the_shared_stack_with_pulumi(
    codeartifact, fake_pulumi, tmp_path: Path, step_summary: Path, monkeypatch
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"stack output": json.dumps(SHARED)}))
    monkeypatch.setenv("FAKE_PULUMI_ANSWERS", str(answers))
    _expect_login(codeartifact)
    pip_conf = tmp_path / "pip.conf"
    assert deps.main(["login", "--shared", "--pip-conf", str(pip_conf)]) == 0
    assert fake_pulumi() == [["stack", "output", "--json", "--stack", "shared"]]
    assert pip_conf.exists()


def test_default_pip_config_is_the_venvs_else_the_users() -> None:
    assert deps.default_pip_conf({"VIRTUAL_ENV": "/v"}) == Path("/v/pip.conf")
    assert deps.default_pip_conf({"XDG_CONFIG_HOME": "/c"}) == Path("/c/pip/pip.conf")
    assert deps.default_pip_conf({}) == Path.home() / ".config" / "pip" / "pip.conf"


def test_login_without_pip_conf_writes_the_venv_config(
    codeartifact, shared_outputs: Path, tmp_path: Path, step_summary: Path, monkeypatch
) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "venv"))
    _expect_login(codeartifact)
    assert deps.main(["login", "--outputs", str(shared_outputs)]) == 0
    assert stat.S_IMODE((tmp_path / "venv" / "pip.conf").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ResourceNotFoundException", "domain/repository not found"),
        ("AccessDeniedException", "access denied"),
    ],
)
@pytest.mark.usefixtures("step_summary")
def test_login_errors_say_what_to_do_and_write_nothing(
    codeartifact, shared_outputs: Path, code: str, expected: str, capsys
) -> None:
    codeartifact.add_client_error(
        "get_authorization_token",
        service_error_code=code,
        service_message="no such thing",
        http_status_code=404 if code.startswith("Resource") else 403,
        expected_params={
            "domain": PROJECT,
            "domainOwner": "123456789012",
            "durationSeconds": 3600,
        },
    )
    pip_conf = shared_outputs.parent / "pip.conf"
    assert deps.main(["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]) == 1
    err = capsys.readouterr().err
    doing = f"deps login: getting a CodeArtifact token for domain {PROJECT}: "
    assert err.startswith(doing + expected)
    if code.startswith("Resource"):
        assert "deploy the shared stack" in err
    else:
        assert "codeartifact:GetAuthorizationToken and sts:GetServiceBearerToken" in err
    assert not pip_conf.exists()


def test_endpoint_not_found_points_at_the_shared_stack(
    codeartifact, shared_outputs: Path, tmp_path: Path, step_summary, capsys
) -> None:
    codeartifact.add_response(
        "get_authorization_token",
        {"authorizationToken": TOKEN, "expiration": EXPIRES},
        {"domain": PROJECT, "domainOwner": "123456789012", "durationSeconds": 3600},
    )
    codeartifact.add_client_error(
        "get_repository_endpoint",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={**WHERE, "format": "pypi"},
    )
    pip_conf = tmp_path / "pip.conf"
    assert deps.main(["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]) == 1
    err = capsys.readouterr().err
    assert "domain/repository not found" in err
    assert "deploy the shared stack" in err
    _no_token(err)
    assert not pip_conf.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration-seconds", "60"], "--duration-seconds 60: CodeArtifact takes 0"),
        (["--duration-seconds", "43201"], "or 900 to 43200"),
    ],
)
def test_bad_login_input_exits_2_before_any_call(
    codeartifact, shared_outputs: Path, argv: list[str], message: str, capsys
) -> None:
    pip_conf = shared_outputs.parent / "pip.conf"
    base = ["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]
    assert deps.main([*base, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not pip_conf.exists()


def test_outputs_without_the_repository_are_refused(codeartifact, tmp_path: Path, capsys) -> None:
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"codeartifact_domain": PROJECT}))
    assert deps.main(["login", "--outputs", str(partial), "--print-index-url"]) == 2
    assert "have no 'codeartifact_domain_owner'" in capsys.readouterr().err


def test_an_unreadable_pip_config_is_refused_before_asking_for_a_token(
    codeartifact, shared_outputs: Path, tmp_path: Path, capsys
) -> None:
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text("index-url = no section header\n")
    assert deps.main(["login", "--outputs", str(shared_outputs), "--pip-conf", str(pip_conf)]) == 2
    assert "is not an INI file pip could read" in capsys.readouterr().err


def test_index_url_quotes_the_token_and_redaction_hides_it() -> None:
    url = deps.index_url(ENDPOINT.rstrip("/"), TOKEN)
    assert url == INDEX_URL
    assert deps.redact(url) == REDACTED_URL
    assert deps.mask_lines("plain") == ["::add-mask::plain"]
    with pytest.raises(aws.ScriptError, match="unusable endpoint"):
        deps.index_url("http://insecure.example/pypi/x/", TOKEN)


# ---------------------------------------------------------------- publish


def _publish_params(asset: deps.Asset, version: str = VERSION) -> dict:
    return {
        **WHERE,
        "format": "generic",
        "namespace": PROJECT,
        "package": "model",
        "packageVersion": version,
        "assetContent": asset.content,
        "assetName": f"model-{version}.zip",
        "assetSHA256": hashlib.sha256(asset.content).hexdigest(),
        "unfinished": False,
    }


def _assets_params(version: str = VERSION) -> dict:
    return {
        **WHERE,
        "format": "generic",
        "namespace": PROJECT,
        "package": "model",
        "packageVersion": version,
    }


def test_publish_uploads_the_model_directory_as_the_artifact_version(
    codeartifact, shared_outputs: Path, step_summary: Path, capsys
) -> None:
    asset = deps.build_asset(VERSION)
    codeartifact.add_response(
        "publish_package_version",
        {
            "format": "generic",
            "namespace": PROJECT,
            "package": "model",
            "version": VERSION,
            "versionRevision": "rev1",
            "status": "Published",
            "asset": {
                "name": asset.name,
                "size": len(asset.content),
                "hashes": {"SHA-256": asset.sha256},
            },
        },
        _publish_params(asset),
    )
    assert deps.main(["publish", "--outputs", str(shared_outputs)]) == 0
    out = capsys.readouterr().out
    assert f"Published `{PROJECT}/model` {VERSION} to `{PROJECT}/{PROJECT}-ml`" in out
    assert asset.sha256 in step_summary.read_text()
    with zipfile.ZipFile(io.BytesIO(asset.content)) as archive:
        assert archive.namelist() == ["handler.py", "model.json"]
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert archive.read(info) == (deps.MODEL_DIR / info.filename).read_bytes()


def test_publish_with_an_explicit_version(codeartifact, shared_outputs: Path, step_summary) -> None:
    asset = deps.build_asset("2.0.0-rc1")
    codeartifact.add_response(
        "publish_package_version", {"status": "Published"}, _publish_params(asset, "2.0.0-rc1")
    )
    assert deps.main(["publish", "--outputs", str(shared_outputs), "--version", "2.0.0-rc1"]) == 0


def test_republishing_the_same_content_is_a_no_op(
    codeartifact, shared_outputs: Path, step_summary: Path, capsys
) -> None:
    asset = deps.build_asset(VERSION)
    codeartifact.add_client_error(
        "publish_package_version",
        service_error_code="ConflictException",
        http_status_code=409,
        expected_params=_publish_params(asset),
    )
    codeartifact.add_response(
        "list_package_version_assets",
        {"assets": [{"name": asset.name, "size": 1, "hashes": {"SHA-256": asset.sha256}}]},
        _assets_params(),
    )
    assert deps.main(["publish", "--outputs", str(shared_outputs)]) == 0
    assert "with the same content" in capsys.readouterr().out
    assert "nothing to do" in step_summary.read_text()


def test_republishing_different_content_under_a_version_is_refused(
    codeartifact, shared_outputs: Path, capsys
) -> None:
    asset = deps.build_asset(VERSION)
    codeartifact.add_client_error(
        "publish_package_version",
        service_error_code="ConflictException",
        http_status_code=409,
        expected_params=_publish_params(asset),
    )
    codeartifact.add_response(
        "list_package_version_assets",
        {"assets": [{"name": asset.name, "hashes": {"SHA-256": "0" * 64}}]},
        _assets_params(),
    )
    assert deps.main(["publish", "--outputs", str(shared_outputs)]) == 1
    err = capsys.readouterr().err
    assert f"version {VERSION} is already published with different content" in err
    assert "bump model_version in model/spec.json" in err


def test_publish_to_a_missing_repository_points_at_the_shared_stack(
    codeartifact, shared_outputs: Path, capsys
) -> None:
    asset = deps.build_asset(VERSION)
    codeartifact.add_client_error(
        "publish_package_version",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params=_publish_params(asset),
    )
    assert deps.main(["publish", "--outputs", str(shared_outputs)]) == 1
    err = capsys.readouterr().err
    assert "domain/repository not found" in err
    assert "deploy the shared stack" in err


def test_publish_without_permission_names_the_permission(
    codeartifact, shared_outputs: Path, capsys
) -> None:
    codeartifact.add_client_error(
        "publish_package_version",
        service_error_code="AccessDeniedException",
        http_status_code=403,
        expected_params=_publish_params(deps.build_asset(VERSION)),
    )
    assert deps.main(["publish", "--outputs", str(shared_outputs)]) == 1
    assert "access denied" in (err := capsys.readouterr().err)
    assert "codeartifact:PublishPackageVersion" in err


@pytest.mark.parametrize("version", ["", "1.0 beta", "1/0", "1#0", "..", "v" * 300, "1.0\n"])
def test_bad_versions_are_refused_before_any_call(
    codeartifact, shared_outputs: Path, version: str, capsys
) -> None:
    assert deps.main(["publish", "--outputs", str(shared_outputs), "--version", version]) == 2
    assert "is not" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["1.0.0", "2024.06.01", "1.0.0-rc.1+build_7", "v2"])
def test_good_versions_pass(version: str) -> None:
    assert deps.check_version(version) == version


def test_the_asset_depends_only_on_source_names_and_contents(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "__pycache__").mkdir(parents=True)
    (model / "handler.py").write_text("print('hi')\n")
    (model / "model.json").write_text('{"model_version": "3.1"}')
    (model / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    (model / "stale.pyc").write_bytes(b"\0")
    (model / ".DS_Store").write_bytes(b"\0")
    first = deps.build_asset("3.1", model)
    os.utime(model / "handler.py", (0, 0))
    (model / "model.json").chmod(0o600)
    second = deps.build_asset("3.1", model)
    assert first == second
    assert first.files == ("handler.py", "model.json")
    assert deps.model_version(model) == "3.1"
    (model / "model.json").write_text("{}")
    with pytest.raises(aws.UsageError, match="needs a string model_version"):
        deps.model_version(model)
