"""The protected stacks, from config: `shared`, the default branch and every protectedBranches.

    python -m scripts.protected [--github-output]

Prints them as the drift job's matrix (`targets=[{"option": "--stack", "name": "shared"},
...]` with --github-output, else one `OPTION NAME` per line), so the scheduled drift check
watches whatever Pulumi.yaml protects, not a list copied into the workflow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from infra import config, naming
from scripts.lib import summary


def targets(settings: config.Settings) -> list[dict[str, str]]:
    branches = dict.fromkeys([settings.default_branch, *settings.protected_branches])
    return [{"option": "--stack", "name": naming.SHARED_STACK}] + [
        {"option": "--branch", "name": branch} for branch in branches
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="protected", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--github-output", action="store_true", help="print targets=JSON, also to $GITHUB_OUTPUT"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    project, values = config.read_project(config.REPO_ROOT)
    try:
        found = targets(config.settings_from_mapping(project, values))
    except config.ConfigError as error:
        print(f"protected: Pulumi.yaml: {error}", file=sys.stderr)
        return 2
    if args.github_output:
        listed = {"targets": json.dumps(found, separators=(",", ":"))}
        print(f"targets={listed['targets']}")
        summary.write_github_output(listed)
    else:
        print("\n".join(f"{t['option']} {t['name']}" for t in found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
