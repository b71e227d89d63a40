"""YAML files as the tests read them: the same safe loading, through libyaml when PyYAML
has it (about ten times faster than its pure-Python loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_LOADER)
