"""Rename the project or move it to another region: the one edit to Pulumi.yaml a fork makes.

    python -m scripts.rename [--name NAME] [--region REGION] [--root DIR] [--copy-to DIR]

`name:` is the prefix of every physical name (at most 12 characters, lowercase
letters, digits and single hyphens); `aws:region` under `config:` is the region
of every stack. Both lines are edited in place, keeping the file's comments and
layout. With --copy-to, the project is first copied there (without .git, .nox
and caches) and only the copy is edited: `nox -s renamed` runs the offline tests
in such a copy to prove that a renamed fork in another region stays green.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from infra import config, naming
from scripts.lib import aws, cli

_NAME_RE = re.compile(r"(?m)^(name: )(\S+)$")
_REGION_RE = re.compile(r"(?m)^(  aws:region:\n(?:    #[^\n]*\n)*    value: )(\S+)$")
_NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".nox",
    ".venv",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".pulumi-bootstrap",
)


def set_region(text: str, region: str) -> tuple[str, str]:
    """Pulumi.yaml's text with `aws:region` set; and the region it had."""
    found = _REGION_RE.search(text)
    if found is None:
        raise aws.UsageError(
            "Pulumi.yaml has no `aws:region:` with `value:` under config; set it by hand"
        )
    return _REGION_RE.sub(rf"\g<1>{region}", text, count=1), found.group(2)


def set_name(text: str, name: str) -> tuple[str, str]:
    found = _NAME_RE.search(text)
    if found is None:
        raise aws.UsageError("Pulumi.yaml has no top-level `name:` line; set it by hand")
    return _NAME_RE.sub(rf"\g<1>{name}", text, count=1), found.group(2)


def _name_arg(text: str) -> str:
    try:
        naming.check_project(text)
    except naming.NamingError as error:
        raise cli.argparse.ArgumentTypeError(str(error)) from None
    return text


def parse_args(argv: Sequence[str]) -> cli.argparse.Namespace:
    parser = cli.parser("rename", __doc__.splitlines()[0])
    parser.add_argument("--name", type=_name_arg, help="new project name")
    parser.add_argument("--region", type=cli.region_arg, help="new region of every stack")
    parser.add_argument("--root", type=Path, default=config.REPO_ROOT, help="the project to edit")
    parser.add_argument("--copy-to", type=Path, help="copy the project here and edit the copy")
    args = parser.parse_args(argv)
    if not (args.name or args.region):
        parser.error("give --name, --region or both")
    if args.copy_to and args.copy_to.exists() and any(args.copy_to.iterdir()):
        parser.error(f"--copy-to {args.copy_to} is not empty")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        root: Path = args.root
        if args.copy_to:
            shutil.copytree(root, args.copy_to, ignore=_NOT_COPIED, dirs_exist_ok=True)
            root = args.copy_to
        path = root / "Pulumi.yaml"
        text = path.read_text()
        changes = []
        if args.name:
            text, old = set_name(text, args.name)
            changes.append(f"name {old} -> {args.name}")
            # Stack files key the project's settings by its name (`old:apiVersions`).
            for stack_file in sorted(root.glob("Pulumi.*.yaml")):
                keys = re.compile(rf"(?m)^(\s+){re.escape(old)}:")
                renamed = keys.sub(rf"\g<1>{args.name}:", stack_file.read_text())
                stack_file.write_text(renamed)
                changes.append(f"{stack_file.name}: keys {old}:* -> {args.name}:*")
        if args.region:
            text, old = set_region(text, args.region)
            changes.append(f"aws:region {old} -> {args.region}")
        path.write_text(text)
        print(f"rename: {path}: {'; '.join(changes)}", file=sys.stderr)
        return 0

    return aws.run("rename", body)


if __name__ == "__main__":
    raise SystemExit(main())
