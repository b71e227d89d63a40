"""Versioned ML dependencies: log pip into CodeArtifact, publish the model package.

    python -m scripts.deps login (--outputs F | --shared) [--pip-conf PATH | --print-index-url]
                                 [--duration-seconds N]
    python -m scripts.deps publish (--outputs F | --shared) [--version V]

Both read the `shared` stack's outputs (codeartifact_domain,
codeartifact_domain_owner, codeartifact_repository): from a JSON file, or with
`--shared` live through the Pulumi CLI.

`login` asks CodeArtifact for a token and the team repository's PyPI endpoint
and writes the index URL into a pip config file (mode 0600), printing only a
redacted URL; `--print-index-url` prints the full URL to stdout instead, for
`pip install --index-url "$(python -m scripts.deps login --shared --print-index-url)"`.
The token never reaches stderr or the step summary; on GitHub Actions it is
masked (`::add-mask::`) before anything else is printed.

`publish` uploads infra/handlers/model/ as the generic package
`<project>/model`, version `model_version` from the trained model.json. Versions are
immutable: publishing the same content again is a no-op, different content
under a published version is refused.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from infra import config, naming
from scripts.lib import aws, cli, outputs, summary

MODEL_DIR = config.REPO_ROOT / "infra" / "handlers" / "model"
PACKAGE = "model"
DEFAULT_DURATION_SECONDS = 3600
# CodeArtifact takes 0 (the token lives as long as the caller's session) or 15 min to 12 h.
MIN_DURATION_SECONDS, MAX_DURATION_SECONDS = 900, 43200
# Generic versions: botocore's pattern for PackageVersion is [^#/\s]{1,255}; the
# version is also part of the asset name, so it must use only what asset names
# allow (Unicode letters and digits, ~!@^&()-`_+[]{};,.) and leave room for
# "model-" and ".zip" in the asset name's 255 characters.
_VERSION_RE = re.compile(r"[\w~!@^&()\-`+\[\]{};,.]+")
_VERSION_MAX = 255 - len(f"{PACKAGE}-.zip")
# 1980-01-01 is the earliest time a zip entry can carry: a fixed stamp makes
# the archive depend on the files' contents only.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_REDACTED = "****"


@dataclasses.dataclass(frozen=True)
class Repository:
    """The team repository in the shared stack's CodeArtifact domain."""

    domain: str
    owner: str
    name: str

    @classmethod
    def from_outputs(cls, stack: outputs.StackOutputs) -> Repository:
        return cls(
            domain=str(stack.require("codeartifact_domain")),
            owner=str(stack.require("codeartifact_domain_owner")),
            name=str(stack.require("codeartifact_repository")),
        )

    def where(self) -> dict[str, str]:
        return {"domain": self.domain, "domainOwner": self.owner, "repository": self.name}


@dataclasses.dataclass(frozen=True)
class Login:
    # Kept out of repr, so no traceback or debug print can show the token.
    token: str = dataclasses.field(repr=False)
    expiration: dt.datetime | None
    index_url: str = dataclasses.field(repr=False)

    @property
    def redacted_url(self) -> str:
        return redact(self.index_url)


@dataclasses.dataclass(frozen=True)
class Asset:
    name: str
    content: bytes
    sha256: str
    files: tuple[str, ...]


def _error(error: ClientError, doing: str, needs: str) -> aws.ScriptError:
    """The project's error for a CodeArtifact failure, pointing at the shared stack."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    if code == "ResourceNotFoundException":
        return aws.NotFoundError(
            f"{doing}: domain/repository not found ({message}): deploy the shared stack "
            "(`python -m scripts.stack deploy --stack shared`), or check the outputs used"
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return aws.AccessError(
            f"{doing}: access denied ({message}); the role in use needs {needs} on the "
            "domain/repository, and the shared stack's policies must name it"
        )
    return aws.translate(error, doing)


def _call(doing: str, needs: str, operation: Any, /, **kwargs: object) -> dict:
    try:
        return operation(**kwargs)
    except ClientError as error:
        raise _error(error, doing, needs) from error


# ---------------------------------------------------------------- login


def check_duration(seconds: int) -> int:
    if seconds != 0 and not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise aws.UsageError(
            f"--duration-seconds {seconds}: CodeArtifact takes 0 (as long as the current "
            f"session) or {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}"
        )
    return seconds


def index_url(endpoint: str, token: str) -> str:
    """pip's index URL: the PyPI endpoint's `simple/` page, with the token as the password."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise aws.ScriptError(f"CodeArtifact returned an unusable endpoint {endpoint!r}")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"https://aws:{urllib.parse.quote(token, safe='')}@{parts.netloc}{path}simple/"


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:{_REDACTED}@{host}"))


def login(codeartifact: Any, repository: Repository, duration_seconds: int) -> Login:
    """A token and the index URL pip needs for the team repository (which upstreams PyPI)."""
    check_duration(duration_seconds)
    token_response = _call(
        f"getting a CodeArtifact token for domain {repository.domain}",
        "codeartifact:GetAuthorizationToken and sts:GetServiceBearerToken",
        codeartifact.get_authorization_token,
        domain=repository.domain,
        domainOwner=repository.owner,
        durationSeconds=duration_seconds,
    )
    endpoint = _call(
        f"getting the PyPI endpoint of {repository.domain}/{repository.name}",
        "codeartifact:GetRepositoryEndpoint",
        codeartifact.get_repository_endpoint,
        **repository.where(),
        format="pypi",
    )["repositoryEndpoint"]
    token = token_response["authorizationToken"]
    return Login(token, token_response.get("expiration"), index_url(endpoint, token))


def mask_lines(token: str) -> list[str]:
    """GitHub workflow commands that hide the token (and its URL-quoted form) in the job log."""
    forms = dict.fromkeys([token, urllib.parse.quote(token, safe="")])
    return [f"::add-mask::{form}" for form in forms]


def default_pip_conf(environ: dict[str, str] | None = None) -> Path:
    """The file pip reads for this environment: the venv's own, else the user's."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("VIRTUAL_ENV"):
        return Path(environ["VIRTUAL_ENV"]) / "pip.conf"
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pip" / "pip.conf"


def read_pip_conf(path: Path) -> configparser.ConfigParser:
    """The existing pip config, so a login keeps its other settings; refused if unreadable."""
    # pip reads its files raw: a `%` in a URL is not an interpolation.
    parser = configparser.ConfigParser(interpolation=None)
    if path.is_dir():
        raise aws.UsageError(f"--pip-conf {path} is a directory; name a file")
    if path.exists():
        try:
            with path.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except (configparser.Error, OSError, UnicodeDecodeError) as error:
            raise aws.UsageError(
                f"--pip-conf {path} is not an INI file pip could read ({error}); "
                "fix it or name another file"
            ) from None
    return parser


def write_pip_conf(path: Path, url: str, parser: configparser.ConfigParser | None = None) -> Path:
    """Set [global] index-url, keeping the file's other settings; the file is 0600 throughout."""
    parser = read_pip_conf(path) if parser is None else parser
    if not parser.has_section("global"):
        parser.add_section("global")
    parser.set("global", "index-url", url)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so the token is never readable by others,
    # not even between writing and renaming.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".pip.conf.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            parser.write(handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _until(expiration: dt.datetime | None) -> str:
    return expiration.isoformat(timespec="minutes") if expiration else "unknown"


# ---------------------------------------------------------------- publish


def check_version(version: str) -> str:
    if not version or len(version) > _VERSION_MAX or not _VERSION_RE.fullmatch(version):
        raise aws.UsageError(
            f"model version {version!r} is not a CodeArtifact generic package version: use 1-"
            f"{_VERSION_MAX} letters, digits and ~!@^&()-`_+[]{{}};,. (no spaces, '/' or '#'), "
            "e.g. 1.2.0"
        )
    if version in (".", ".."):
        raise aws.UsageError(f"model version {version!r} is not allowed by CodeArtifact")
    return version


def model_version(model_dir: Path = MODEL_DIR) -> str:
    artifact = model_dir / "model.json"
    try:
        value = json.loads(artifact.read_text(encoding="utf-8")).get("model_version")
    except (OSError, json.JSONDecodeError, AttributeError) as error:
        raise aws.UsageError(f"cannot read model_version from {artifact}: {error}") from None
    if not isinstance(value, str):
        raise aws.UsageError(f'{artifact} needs a string model_version, e.g. "1.0.0"')
    return value


def _source_files(model_dir: Path) -> list[Path]:
    files = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files.append(path)
    return files


def build_asset(version: str, model_dir: Path = MODEL_DIR) -> Asset:
    """The model directory as a zip whose bytes depend only on the names and contents."""
    files = _source_files(model_dir)
    if not files:
        raise aws.UsageError(f"{model_dir} holds no model files to publish")
    buffer = io.BytesIO()
    # Stored, not deflated: compressed bytes can differ between zlib builds, and
    # the hash must be equal on every machine for a re-publish to be a no-op.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(model_dir).as_posix(), date_time=_ZIP_EPOCH)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, path.read_bytes())
    content = buffer.getvalue()
    return Asset(
        name=f"{PACKAGE}-{version}.zip",
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        files=tuple(path.relative_to(model_dir).as_posix() for path in files),
    )


def _published_hash(
    codeartifact: Any, repository: Repository, namespace: str, version: str, asset_name: str
) -> str | None:
    try:
        assets = aws.pages(
            codeartifact,
            "list_package_version_assets",
            "assets",
            **repository.where(),
            format="generic",
            namespace=namespace,
            package=PACKAGE,
            packageVersion=version,
        )
    except ClientError as error:
        raise _error(
            error,
            f"listing the assets of {namespace}/{PACKAGE} {version}",
            "codeartifact:ListPackageVersionAssets",
        ) from error
    for item in assets:
        if item.get("name") == asset_name:
            return item.get("hashes", {}).get("SHA-256")
    return None


def publish(
    codeartifact: Any, repository: Repository, namespace: str, version: str, asset: Asset
) -> dict[str, Any]:
    """Publish the model package version; the same content again changes nothing."""
    check_version(version)
    doing = f"publishing {namespace}/{PACKAGE} {version} to {repository.domain}/{repository.name}"
    needs = "codeartifact:PublishPackageVersion"
    try:
        response = codeartifact.publish_package_version(
            **repository.where(),
            format="generic",
            namespace=namespace,
            package=PACKAGE,
            packageVersion=version,
            assetContent=asset.content,
            assetName=asset.name,
            assetSHA256=asset.sha256,
            unfinished=False,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConflictException":
            raise _error(error, doing, needs) from error
        existing = _published_hash(codeartifact, repository, namespace, version, asset.name)
        if existing == asset.sha256:
            return {"status": "unchanged", "version": version, "sha256": asset.sha256}
        raise aws.ScriptError(
            f"{doing}: version {version} is already published with different content "
            f"(asset {asset.name}: {existing or 'absent'}, ours: {asset.sha256}); package "
            "versions are immutable: bump model_version in model/spec.json and run nox -s train"
        ) from None
    return {
        "status": response.get("status", "Published"),
        "version": version,
        "sha256": asset.sha256,
        "revision": response.get("versionRevision", ""),
    }


# ---------------------------------------------------------------- CLI


def shared_outputs() -> outputs.StackOutputs:
    """The shared stack's outputs, read live with the Pulumi CLI."""
    return outputs.from_stack_name(naming.SHARED_STACK)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("deps", __doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="command", required=True)
    login_parser = verbs.add_parser("login", help="point pip at the CodeArtifact team repository")
    destination = login_parser.add_mutually_exclusive_group()
    destination.add_argument(
        "--pip-conf",
        type=Path,
        help="pip config file to write (default: $VIRTUAL_ENV/pip.conf, else the user's)",
    )
    destination.add_argument(
        "--print-index-url",
        action="store_true",
        help="print the full index URL (with its token) to stdout instead of writing a file",
    )
    login_parser.add_argument(
        "--duration-seconds",
        type=int,
        default=DEFAULT_DURATION_SECONDS,
        help=f"token lifetime: 0 or {MIN_DURATION_SECONDS}-{MAX_DURATION_SECONDS} "
        f"(default {DEFAULT_DURATION_SECONDS})",
    )
    publish_parser = verbs.add_parser("publish", help="publish the model as a generic package")
    publish_parser.add_argument(
        "--version", help="package version (default: model_version in model.json)"
    )
    for sub in (login_parser, publish_parser):
        source = sub.add_mutually_exclusive_group(required=True)
        source.add_argument("--outputs", type=Path, help="the shared stack's outputs (JSON file)")
        source.add_argument(
            "--shared", action="store_true", help="read the shared stack's outputs with pulumi"
        )
    return parser.parse_args(argv)


def _load(args: argparse.Namespace) -> Repository:
    stack = outputs.from_file(args.outputs) if args.outputs else shared_outputs()
    return Repository.from_outputs(stack)


def _login(args: argparse.Namespace) -> int:
    check_duration(args.duration_seconds)
    repository = _load(args)
    on_github = bool(os.environ.get("GITHUB_ACTIONS"))
    if args.print_index_url:
        result = login(aws.client("codeartifact"), repository, args.duration_seconds)
        # stdout is the URL a caller captures with $(...); the runner reads
        # workflow commands from stderr as well, so the mask goes there.
        if on_github:
            print("\n".join(mask_lines(result.token)), file=sys.stderr, flush=True)
        print(result.index_url, flush=True)
        print(
            f"deps: index URL {result.redacted_url} printed; token valid until "
            f"{_until(result.expiration)}",
            file=sys.stderr,
        )
        return 0
    target = args.pip_conf or default_pip_conf()
    existing = read_pip_conf(target)
    result = login(aws.client("codeartifact"), repository, args.duration_seconds)
    if on_github:
        print("\n".join(mask_lines(result.token)), flush=True)
    write_pip_conf(target, result.index_url, existing)
    if os.environ.get("PIP_INDEX_URL"):
        print(
            "deps: PIP_INDEX_URL is set and overrides the config file; unset it to use "
            "CodeArtifact",
            file=sys.stderr,
        )
    text = (
        f"pip logged into CodeArtifact `{repository.domain}/{repository.name}` through "
        f"`{target}`: index `{result.redacted_url}`, token valid until "
        f"{_until(result.expiration)}"
    )
    print(text)
    summary.write_step_summary(text)
    return 0


def _publish(args: argparse.Namespace) -> int:
    version = check_version(model_version() if args.version is None else args.version)
    namespace = config.settings_for_stack(naming.SHARED_STACK).project
    repository = _load(args)
    asset = build_asset(version)
    result = publish(aws.client("codeartifact"), repository, namespace, version, asset)
    where = f"`{repository.domain}/{repository.name}`"
    if result["status"] == "unchanged":
        text = (
            f"`{namespace}/{PACKAGE}` {version} is already published in {where} with the "
            f"same content (sha256 `{asset.sha256}`): nothing to do"
        )
    else:
        text = (
            f"Published `{namespace}/{PACKAGE}` {version} to {where}: asset `{asset.name}` "
            f"({len(asset.content)} bytes, {len(asset.files)} files, sha256 `{asset.sha256}`), "
            f"status {result['status']}"
        )
    print(text)
    summary.write_step_summary(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        try:
            return _login(args) if args.command == "login" else _publish(args)
        except config.ConfigError as error:
            raise aws.UsageError(str(error)) from None

    return aws.run(f"deps {args.command}", body)


if __name__ == "__main__":
    raise SystemExit(main())
