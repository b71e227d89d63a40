"""A stack's outputs: where the verbs find the resources they operate.

From a JSON file (`pulumi stack output --json > outputs.json`, or what a
workflow saved after deploy), or read live with the Pulumi CLI when present.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import naming
from scripts.lib import cli
from scripts.lib.aws import UsageError


@dataclass(frozen=True)
class StackOutputs:
    values: Mapping[str, Any]
    source: str

    def require(self, key: str) -> Any:
        if key not in self.values or self.values[key] in (None, ""):
            present = ", ".join(sorted(self.values)) or "none"
            raise UsageError(
                f"stack outputs from {self.source} have no {key!r} (present: {present}); "
                "was the stack deployed with this version of the program?"
            )
        return self.values[key]

    @property
    def region(self) -> str | None:
        """The region the stack lives in; the verbs call AWS there, whatever the profile says."""
        region = self.values.get("region")
        if region is not None and not (isinstance(region, str) and region):
            raise UsageError(
                f"stack outputs from {self.source}: 'region' must name an AWS region, "
                f"e.g. us-east-1; got {region!r}"
            )
        return region or None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--outputs", type=Path, help="stack outputs as JSON (a file)")
    source.add_argument(
        "--branch",
        type=cli.branch_arg,
        help="read the outputs of this branch's stack with the Pulumi CLI",
    )


def from_file(path: Path) -> StackOutputs:
    if not path.is_file():
        raise UsageError(
            f"stack outputs file {path} does not exist; write it with "
            "`pulumi stack output --json --stack STACK > FILE`"
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise UsageError(
            f"stack outputs file {path} is not UTF-8 text ({error.reason} at byte "
            f"{error.start}); write it with `pulumi stack output --json > FILE`"
        ) from None
    except json.JSONDecodeError as error:
        raise UsageError(f"stack outputs file {path} is not JSON: {error}") from None
    if not isinstance(values, dict):
        raise UsageError(f"stack outputs file {path} must hold a JSON object of outputs")
    return StackOutputs(values, str(path))


def from_stack(branch: str) -> StackOutputs:
    try:
        stack = naming.slugify(branch)
    except naming.NamingError as error:
        raise UsageError(f"--branch {branch!r}: {error}") from None
    return from_stack_name(stack)


def from_stack_name(stack: str) -> StackOutputs:
    """Outputs of a stack by its own name (`shared`, or a branch's slug)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError(
            "the pulumi CLI is not on PATH to read the stack outputs; install it or pass "
            "--outputs FILE"
        )
    result = subprocess.run(
        [pulumi, "stack", "output", "--json", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise UsageError(f"cannot read outputs of stack {stack!r}: {result.stderr.strip()}")
    try:
        values = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as error:
        raise UsageError(
            f"pulumi printed outputs of stack {stack!r} that are not JSON: {error}"
        ) from None
    if not isinstance(values, dict):
        raise UsageError(f"pulumi printed outputs of stack {stack!r} that are not an object")
    return StackOutputs(values, f"stack {stack}")


def load(args: argparse.Namespace) -> StackOutputs:
    return from_file(args.outputs) if args.outputs else from_stack(args.branch)
