"""Print what a branch's stack will be called and every physical name it will create.

    python -m scripts.names BRANCH... [--account-id 123456789012]

The output is JSON: one object per branch with its stack, kind, tags and the
map of physical names, so a person can see what a push will create before it
does. Bucket names carry the AWS account id; give the real one to see the
real names (offline, a placeholder account is used and says so).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from infra import config, naming
from scripts.lib import cli

PLACEHOLDER_ACCOUNT = "000000000000"


def describe(settings: config.Settings, ref: str, account_id: str) -> dict[str, object]:
    stack = settings.branch_stack(ref)
    names = naming.branch_names(settings.project, stack, account_id, settings.api_versions)
    return {
        "branch": stack.branch,
        "stack": stack.stack,
        "kind": stack.kind,
        "tags": naming.tags(settings.project, stack, os.environ.get("GITHUB_SHA") or None),
        "names": names.as_dict(),
        "kinds": dict(naming.BRANCH_NAME_KINDS),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("names", __doc__.splitlines()[0])
    parser.add_argument("branches", nargs="+", metavar="BRANCH", type=cli.branch_arg)
    parser.add_argument(
        "--account-id",
        default=os.environ.get("AWS_ACCOUNT_ID", PLACEHOLDER_ACCOUNT),
        help="AWS account the stack deploys to (default: $AWS_ACCOUNT_ID or a placeholder)",
    )
    args = cli.parsed(parser.parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    try:
        settings = config.settings_for_stack(naming.SHARED_STACK)
        result = [describe(settings, branch, args.account_id) for branch in args.branches]
    except (naming.NamingError, config.ConfigError) as error:
        print(f"names: {error}", file=sys.stderr)
        return 2
    if args.account_id == PLACEHOLDER_ACCOUNT:
        print(
            f"names: bucket names use the placeholder account {PLACEHOLDER_ACCOUNT}; "
            "pass --account-id for the real ones",
            file=sys.stderr,
        )
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
