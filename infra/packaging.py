"""The model Lambda's dependencies: declared in one file, packaged for Lambda's platform.

Pure (no Pulumi): `scripts.package` writes the package, the program and
`scripts.train` read it, all through these functions, so they agree on where it
is and whether it is current.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

LAMBDA_PYTHON = "3.12"  # the model function's runtime, python3.12
# Lambda's x86_64 (the default architecture) runs Amazon Linux 2023, glibc 2.34;
# manylinux_2_28 is the newest tag current numpy/scipy wheels ship for it.
PLATFORMS = {"x86_64": "x86_64-manylinux_2_28", "arm64": "aarch64-manylinux_2_28"}
ARCHITECTURE = "x86_64"
REQUIREMENTS = Path("model/requirements.txt")
PACKAGE_DIR = Path("build/lambda-deps")
MANIFEST = ".mlship-package.json"
# Lambda's limit on a function's unzipped code and layers.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


class PackagingError(ValueError):
    """The packaged dependencies are missing or stale; the message says what to run."""


def requirements(root: Path) -> list[str]:
    """The requirement lines of the model's requirements file, comments and blanks dropped."""
    path = root / REQUIREMENTS
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def fingerprint(root: Path, architecture: str = ARCHITECTURE) -> str:
    """What the package was built from: requirements, Python and platform."""
    text = json.dumps([requirements(root), LAMBDA_PYTHON, PLATFORMS[architecture]])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    fingerprint: str
    platform: str
    python: str
    unzipped_bytes: int

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(self.__dict__, indent=2) + "\n")


def dependencies_dir(root: Path, architecture: str = ARCHITECTURE) -> Path | None:
    """The packaged dependencies to ship beside the handler; None when the model needs none.

    Raises PackagingError when the model has requirements and the package is missing
    or was built from other requirements: a deploy must never ship stale libraries.
    """
    if not requirements(root):
        return None
    folder = root / PACKAGE_DIR
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        raise PackagingError(
            f"{REQUIREMENTS} lists dependencies but {PACKAGE_DIR} holds no package; "
            "run `nox -s package`"
        ) from None
    if manifest.get("fingerprint") != fingerprint(root, architecture):
        raise PackagingError(
            f"{PACKAGE_DIR} was built from other requirements than {REQUIREMENTS} now lists; "
            "run `nox -s package`"
        )
    return folder
