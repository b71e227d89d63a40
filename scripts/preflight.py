"""Refuse to move traffic unless the approval environment really gates it.

    python -m scripts.preflight --environment canary-promotion [--repo OWNER/NAME]

(`nox -s preflight -- ...`; the repository defaults to `$GITHUB_REPOSITORY`, the
token is `$GITHUB_TOKEN`, the API `$GITHUB_API_URL`.) GitHub creates an
environment the first time a job names it, with no protection at all, so a
job that names `canary-promotion` in a fork that never ran bootstrap would
run unapproved, and the promote role trusts that environment. This check
runs first in the promote and release jobs and stops them unless the
environment exists and has at least one required reviewer.

Exit codes: 0 the environment is gated (its reviewers are listed), 1 refused
(no such environment, no required reviewer, or GitHub could not be asked:
fail closed), 2 bad input (no token, no repository).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from urllib.parse import quote

from scripts.lib import aws, cli, github, summary

# Approval environments are plain names (unlike the deploy jobs' `branch/...` ones).
_ENVIRONMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
FIX = "nox -s bootstrap -- --repo {repo} --reviewers LOGIN[,LOGIN...]"


class Refused(aws.ScriptError):
    """The environment does not gate anything: the job must stop before traffic moves."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("preflight", __doc__.splitlines()[0])
    parser.add_argument(
        "--environment",
        required=True,
        help="the approval environment to check: canary-promotion or api-release",
    )
    parser.add_argument("--repo", help="OWNER/NAME (default: $GITHUB_REPOSITORY)")
    parser.add_argument(
        "--branch",
        help="refuse too if this branch was deleted (its stack is destroyed or being destroyed)",
    )
    return parser.parse_args(argv)


def _existing(client: github.Client, repo: str) -> str:
    """The repository's environments, to spot a typo; empty when they cannot be listed."""
    try:
        names = [
            str(item.get("name"))
            for item in client.paginate(
                f"/repos/{repo}/environments",
                doing="listing environments",
                needs=github.ACTIONS_READ,
                key="environments",
            )
        ]
    except github.GitHubError:
        return ""
    return f" (it has: {', '.join(names)})" if names else " (it has none)"


def check(client: github.Client, repo: str, environment: str) -> list[str]:
    """The reviewers of an environment that gates; Refused (exit 1) when it does not gate."""
    owner, name = github.parse_repo(repo)
    current = client.get(
        # Protected stacks' approval environments hold a '/': one path segment.
        f"/repos/{owner}/{name}/environments/{quote(environment, safe='')}",
        doing=f"reading environment {environment} of {repo}",
        needs=github.ACTIONS_READ,
        missing_ok=True,
    )
    fix = FIX.format(repo=repo)
    if current is None:
        raise Refused(
            f"refusing to move traffic: environment {environment} does not exist in "
            f"{repo}{_existing(client, f'{owner}/{name}')}, so nobody approves this job. "
            f"Fix: run `{fix}`"
        )
    reviewers = [login for _, _, login in github.reviewers_of(current)]
    if not reviewers:
        raise Refused(
            f"refusing to move traffic: environment {environment} of {repo} has no required "
            f"reviewer, so this job ran without anybody's approval. Fix: run `{fix}` (or "
            f"Settings > Environments > {environment} > Required reviewers). Note: "
            f"{github.PLAN_NOTE}"
        )
    return reviewers


def check_branch(client: github.Client, repo: str, branch: str) -> None:
    """Refuse for a deleted branch: an approval given after the deletion moves nothing.

    The delete workflow waits for a promotion that is running; one approved later, while
    or after the stack is destroyed, stops here.
    """
    owner, name = github.parse_repo(repo)
    found = client.get(
        f"/repos/{owner}/{name}/branches/{quote(branch, safe='')}",
        doing=f"checking that branch {branch} still exists",
        needs=github.METADATA_READ,
        missing_ok=True,
    )
    if found is None:
        raise Refused(
            f"refusing to move traffic: branch {branch} was deleted, so its stack is destroyed "
            "(or being destroyed); there is nothing to promote or release"
        )


def run(args: argparse.Namespace) -> int:
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if not repo:
        raise aws.UsageError("no repository: pass --repo OWNER/NAME or set $GITHUB_REPOSITORY")
    github.parse_repo(repo)
    if not _ENVIRONMENT_RE.fullmatch(args.environment or ""):
        raise aws.UsageError(
            f"--environment {args.environment!r} is not an environment name such as "
            "canary-promotion"
        )
    client = github.Client.from_env()
    try:
        reviewers = check(client, repo, args.environment)
        if args.branch:
            check_branch(client, repo, args.branch)
    except (Refused, github.GitHubError) as error:
        # Fail closed: a question GitHub did not answer is not an approval.
        refusal = (
            error if isinstance(error, Refused) else Refused(f"refusing to move traffic: {error}")
        )
        summary.write_step_summary(f"### Preflight `{args.environment}`: refused\n\n{refusal}\n")
        raise refusal from None
    line = (
        f"environment {args.environment} of {repo} requires approval by "
        f"{', '.join(reviewers)}: traffic may move once they approve"
    )
    print(f"preflight: {line}")
    summary.write_step_summary(f"### Preflight `{args.environment}`: gated\n\n{line}.\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return aws.run("preflight", lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
