"""Delete a deleted branch's GitHub environment (`branch/<slug>`) once its stack is gone.

    python -m scripts.environments delete --branch NAME [--repo OWNER/NAME]

The deploy job names one environment per branch; GitHub keeps it after the branch is
deleted, so without this the repository collects one per branch ever pushed. Deleting an
environment needs `Administration: write`, which a workflow's GITHUB_TOKEN can never hold:
the token comes from $GITHUB_TOKEN, which the workflow fills from the optional
ENVIRONMENTS_TOKEN secret. Without one the verb says what to delete by hand and exits 0
(the stack is gone either way). Protected branches' environments are never touched.
Exit codes: 0 deleted, already gone or left with instructions; 1 GitHub refused; 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from urllib.parse import quote

from infra import config, naming
from scripts.lib import aws, github, summary

ENVIRONMENT_PREFIX = "branch/"


def environment_for(branch: str) -> str:
    try:
        return f"{ENVIRONMENT_PREFIX}{naming.slugify(branch)}"
    except naming.NamingError as error:
        raise aws.UsageError(f"--branch {branch!r}: {error}") from None


def delete(client: github.Client, repo: str, environment: str) -> bool:
    """Delete the environment; False when it did not exist."""
    path = f"/repos/{repo}/environments/{quote(environment, safe='')}"
    found = client.get(
        path, doing=f"reading environment {environment}", needs=github.ACTIONS_READ, missing_ok=True
    )
    if found is None:
        return False
    client.request(
        "DELETE",
        path,
        doing=f"deleting environment {environment}",
        needs=github.ADMINISTRATION_WRITE,
    )
    return True


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="environments", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="command", required=True)
    remove = verbs.add_parser("delete", help="delete a deleted branch's environment")
    remove.add_argument("--branch", required=True)
    remove.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        repo = "/".join(github.parse_repo(args.repo))
        environment = environment_for(args.branch)
        settings = config.settings_for_stack(naming.slugify(args.branch))
        if settings.branch_stack(args.branch).protected:
            raise aws.UsageError(
                f"--branch {args.branch}: a protected branch keeps its environment"
            )
        if not os.environ.get(github.TOKEN_ENV, "").strip():
            report = (
                f"Environment `{environment}` was left in place: deleting it needs a token with "
                "Administration: write (secret ENVIRONMENTS_TOKEN). Delete it under Settings > "
                f"Environments, or `gh api -X DELETE repos/{repo}/environments/"
                f"{quote(environment, safe='')}`."
            )
        elif delete(github.Client.from_env(), repo, environment):
            report = f"Environment `{environment}` deleted with its branch."
        else:
            report = f"Environment `{environment}` did not exist; nothing to delete."
        print(report)
        summary.write_step_summary(report)
        return 0

    return aws.run("environments", body)


if __name__ == "__main__":
    raise SystemExit(main())
