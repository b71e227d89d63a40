"""Write docs/configuration.md from Pulumi.yaml: every setting, its type, default and meaning.

    python -m scripts.config_reference [--check] [--output PATH]

Pulumi.yaml is where each setting is declared with its default and description,
so the reference is generated from it and never drifts. --check rewrites nothing
and exits 1 while the file is stale (`nox -s docs` regenerates it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"

HEADER = """\
# Configuration reference

<!-- Generated from Pulumi.yaml by `nox -s docs` (python -m scripts.config_reference):
edit Pulumi.yaml, then run it (a test fails while this file is stale). -->

Every setting has its default in `Pulumi.yaml`. Override one for one stack with
`pulumi config set KEY VALUE --stack STACK` (it lands in `Pulumi.STACK.yaml`, which
you commit), or for every stack by changing the default in `Pulumi.yaml`. In stack
files and `pulumi config`, project settings are spelled `PROJECT:KEY`, PROJECT being
`name:` in Pulumi.yaml; the offline
tools take them as `--config KEY=VALUE` (`nox -s synth -- --branch B --config
apiVersions='["v1","v2","v3"]'`). A bad value stops the program, synth and the
pipeline verbs with a message naming the key, the value and what is valid; an
unknown key is refused with the closest valid one.
"""


class ConfigReferenceError(Exception):
    """Pulumi.yaml cannot be turned into the reference."""


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True)
    text = text.strip().removesuffix("\n...").strip()
    return f"`{text}`" if text else '`""`'


def render(document: Mapping[str, Any]) -> str:
    project = document.get("name")
    settings = document.get("config")
    if not isinstance(project, str) or not isinstance(settings, Mapping):
        raise ConfigReferenceError("Pulumi.yaml needs a `name:` and a `config:` mapping")
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for key, declared in settings.items():
        spec = declared if isinstance(declared, Mapping) else {"value": declared}
        kind = spec.get("type", "string")
        if kind == "array":
            kind = f"array of {(spec.get('items') or {}).get('type', 'string')}"
        what = " ".join(str(spec.get("description", "")).split())
        if "default" in spec:
            default = _cell(spec["default"])
        else:
            # A provider setting (aws:region) is a value, not a default: a fork sets it
            # (bootstrap --region does), so the reference does not repeat it.
            default = "set in Pulumi.yaml"
            namespace, _, name = key.partition(":")
            what = what or f"the {namespace} provider's {name}, for every stack"
        rows.append(f"| `{key}` | {kind} | {default} | {what} |")
    return HEADER + "\n" + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.config_reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--project", type=Path, default=ROOT / "Pulumi.yaml")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        text = render(yaml.safe_load(args.project.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ConfigReferenceError) as error:
        print(f"config_reference: {error}", file=sys.stderr)
        return 2
    current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
    if args.check:
        if current != text:
            print(
                f"config_reference: {args.output} is stale; run `nox -s docs` and commit it",
                file=sys.stderr,
            )
            return 1
        print(f"config_reference: {args.output} is current", file=sys.stderr)
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"config_reference: updated {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
