"""Fetch a branch's latest model evaluation (what its last push's training run compared).

    python -m scripts.evaluation --branch NAME --output FILE

Reads evaluations/latest.json from the branch's artifact bucket (named by
infra.naming from the branch, the project config and the caller's account) and
writes it to FILE for the pull request's comment. A branch not trained yet
writes nothing and exits 0: the comment then says so. Exit 1 on an AWS error,
2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import config, naming
from infra.training import LATEST_EVALUATION_KEY
from scripts.lib import aws


def fetch(s3: Any, sts: Any, branch: str, output: Path) -> bool:
    """Write the branch's latest evaluation to `output`; False when there is none yet."""
    try:
        stack_name = naming.slugify(branch)
    except naming.NamingError as error:
        raise aws.UsageError(f"--branch {branch!r}: {error}") from None
    settings = config.settings_for_stack(stack_name)
    account = sts.get_caller_identity()["Account"]
    bucket = naming.branch_names(
        settings.project, settings.branch_stack(branch), account, settings.api_versions
    ).artifact_bucket
    try:
        body = s3.get_object(Bucket=bucket, Key=LATEST_EVALUATION_KEY)["Body"].read()
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
        return False
    except s3.exceptions.ClientError as error:
        raise aws.translate(error, f"reading s3://{bucket}/{LATEST_EVALUATION_KEY}") from error
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(body)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evaluation", description=__doc__.splitlines()[0])
    parser.add_argument("--branch", required=True, help="the branch whose evaluation to fetch")
    parser.add_argument("--output", type=Path, required=True, help="where to write it")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        found = fetch(aws.client("s3"), aws.client("sts"), args.branch, args.output)
        print(
            f"evaluation: {'wrote ' + str(args.output) if found else 'none yet'} "
            f"for branch {args.branch}",
            file=sys.stderr,
        )
        return 0

    return aws.run("evaluation", body)


if __name__ == "__main__":
    raise SystemExit(main())
