"""Pin the SHA-256 of the Pulumi CLI archive the setup action installs (needs internet).

    python -m scripts.pin_pulumi [--version X.Y.Z] [--base-url URL]

Reads the version from requirements.txt's `pulumi==` pin (the CLI matches the SDK),
downloads the release's own checksums file, pulumi-VERSION-checksums.txt, and writes the
linux-x64 archive's line into .github/actions/setup/pulumi-cli.sha256, replacing any line
for another version. Commit the result. Exit 0 pinned, 1 download failed or the checksums
file lacks the archive, 2 bad input.
"""

from __future__ import annotations

import argparse
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN_FILE = ROOT / ".github/actions/setup/pulumi-cli.sha256"
RELEASES = "https://github.com/pulumi/pulumi/releases/download"
_VERSION = re.compile(r"\d+\.\d+\.\d+")
_LINE = re.compile(r"(?P<sha>[0-9a-f]{64})\s+\*?(?P<file>\S+)")


def archive_name(version: str) -> str:
    return f"pulumi-v{version}-linux-x64.tar.gz"


def sdk_version(requirements: Path) -> str:
    match = re.search(r"^pulumi==(\S+)", requirements.read_text(), re.M)
    if not match:
        raise ValueError(f"{requirements} pins no pulumi==VERSION")
    return match[1]


def digest_from_checksums(text: str, archive: str) -> str:
    for line in text.splitlines():
        match = _LINE.fullmatch(line.strip())
        if match and match["file"] == archive:
            return match["sha"]
    raise LookupError(f"the checksums file lists no {archive}")


def pinned(pin_file: Path, archive: str) -> bool:
    """Whether the pin file already holds a digest for `archive`."""
    lines = pin_file.read_text().splitlines() if pin_file.is_file() else []
    return any(
        (match := _LINE.fullmatch(line.strip())) and match["file"] == archive for line in lines
    )


def fetch_digest(version: str, base_url: str | None = None) -> str:
    """The archive's SHA-256 from the release's own checksums file (needs the network)."""
    url = f"{base_url or RELEASES}/v{version}/pulumi-{version}-checksums.txt"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed scheme
            text = response.read().decode()
        return digest_from_checksums(text, archive_name(version))
    except (urllib.error.URLError, OSError, LookupError) as error:
        raise LookupError(f"{url}: {error}") from None


def write_pin(pin_file: Path, archive: str, digest: str) -> None:
    """Keep the header comments, replace the archive lines with this one."""
    kept = [line for line in pin_file.read_text().splitlines() if line.startswith("#")]
    pin_file.write_text("\n".join([*kept, f"{digest}  {archive}"]) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pin_pulumi", description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="CLI version (default: requirements.txt's pulumi==)")
    parser.add_argument("--base-url", default=RELEASES, help="where the releases are")
    parser.add_argument("--pin-file", type=Path, default=PIN_FILE)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        version = args.version or sdk_version(ROOT / "requirements.txt")
    except ValueError as error:
        print(f"pin_pulumi: {error}", file=sys.stderr)
        return 2
    if not _VERSION.fullmatch(version):
        print(f"pin_pulumi: --version {version!r} is not X.Y.Z, e.g. 3.272.0", file=sys.stderr)
        return 2
    try:
        digest = fetch_digest(version, args.base_url)
    except LookupError as error:
        print(f"pin_pulumi: {error}", file=sys.stderr)
        return 1
    write_pin(args.pin_file, archive_name(version), digest)
    print(f"pinned {archive_name(version)} at sha256 {digest} in {args.pin_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
