"""Package the model's dependencies for the Lambda platform, and check Lambda's size limit.

    python -m scripts.package [--root DIR] [--architecture x86_64|arm64]

Installs model/requirements.txt into build/lambda-deps as Linux wheels for the
model function's Python (3.12) and architecture, with uv's platform targeting
(`--python-platform`, `--only-binary :all:`: no source builds, so what is
installed is what Lambda can import). Then measures the handler plus the package
unzipped against Lambda's 250 MB limit. The program and `scripts.train` ship
that folder beside the handler, and refuse to deploy when it is stale.

Exit 0 packaged (or nothing to package), 1 uv failed or the package is too big,
2 bad input.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from infra import packaging
from infra.config import REPO_ROOT
from scripts.lib import summary

HANDLER_DIR = Path("infra/handlers/model")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


MIB = 1024 * 1024


def largest(folder: Path, count: int = 5) -> list[tuple[str, int]]:
    sizes = [
        (p.name, folder_bytes(p) if p.is_dir() else p.stat().st_size)
        for p in folder.iterdir()
        if p.name != packaging.MANIFEST
    ]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def package(root: Path, architecture: str) -> tuple[Path | None, int]:
    """Install the requirements into the package folder; returns it and the unzipped size."""
    handler_bytes = folder_bytes(root / HANDLER_DIR)
    if not packaging.requirements(root):
        return None, handler_bytes
    out = root / packaging.PACKAGE_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    platform = packaging.PLATFORMS[architecture]
    command = [
        *uv(), "pip", "install",
        "--target", str(out),
        "--python-platform", platform,
        "--python-version", packaging.LAMBDA_PYTHON,
        "--only-binary", ":all:",
        "-r", str(root / packaging.REQUIREMENTS),
    ]  # fmt: skip
    print(f"package: {' '.join(command[len(uv()) :])}", file=sys.stderr)
    result = subprocess.run(command, check=False)  # fixed argv, our own file
    if result.returncode != 0:
        shutil.rmtree(out)
        raise SystemExit(
            f"package: uv could not install {packaging.REQUIREMENTS} for {platform}, "
            f"Python {packaging.LAMBDA_PYTHON} (exit {result.returncode}); every requirement "
            "needs a wheel for that platform"
        )
    total = handler_bytes + folder_bytes(out)
    packaging.Manifest(
        packaging.fingerprint(root, architecture), platform, packaging.LAMBDA_PYTHON, total
    ).write(out)
    return out, total


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="package", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--architecture",
        choices=sorted(packaging.PLATFORMS),
        default=packaging.ARCHITECTURE,
        help="the model function's architecture (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    folder, total = package(args.root, args.architecture)
    limit = packaging.UNZIPPED_LIMIT_BYTES
    rows = [["unzipped, handler included", f"{total / MIB:.2f} MiB of {limit / MIB:.0f} MiB"]]
    if folder is not None:
        rows += [[f"largest: {name}", f"{size / MIB:.1f} MiB"] for name, size in largest(folder)]
    markdown = "\n".join(
        [
            f"### Model package: {len(packaging.requirements(args.root))} requirement(s)",
            "",
            summary.table(["what", "size"], rows),
        ]
    )
    print(markdown)
    summary.write_step_summary(markdown)
    if total > limit:
        biggest = ", ".join(name for name, _ in largest(folder)) if folder else "the handler"
        print(
            f"package: {total / MIB:.1f} MiB unzipped is over Lambda's "
            f"{limit / MIB:.0f} MiB limit; largest: {biggest}. "
            f"Trim {packaging.REQUIREMENTS} or serve from a container image",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
