"""The project's name and region as a fork has set them in Pulumi.yaml.

Tests read them from here instead of spelling them, so renaming the project
or moving it to another region is one edit and the suite stays green.
"""

from __future__ import annotations

from pathlib import Path

from infra.config import read_project

# The repository's root, wherever a test module sits below tests/.
ROOT = Path(__file__).resolve().parent.parent

PROJECT, _DEFAULTS = read_project()
REGION = str(_DEFAULTS["aws:region"])
# A region other than the project's, for tests about overriding it.
OTHER_REGION = "eu-central-1" if REGION != "eu-central-1" else "ap-southeast-2"
