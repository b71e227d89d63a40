"""What a stack costs: idle per month, and per million model requests, from a price table.

    python -m scripts.cost --branch feature/x [--format markdown|json|comment]
    python -m scripts.cost --stack shared --config githubRepository=OWNER/NAME
    python -m scripts.cost --refresh-prices [--region REGION]

This is the command line over `scripts.lib`: the estimate is `cost_estimate`, its
renderings `cost_report`, the tables `price_table` and `--refresh-prices`
`price_refresh`. A region with no table in prices/ is reported as unpriced (exit 0),
never as a failure, so a fork in any region can run the pipeline's cost step.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from infra import config, naming
from scripts import synth
from scripts.lib import cli, cost_estimate, cost_report, price_refresh, price_table


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("cost", __doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--branch", type=cli.branch_arg, help="estimate this branch's stack (synthesized offline)"
    )
    what.add_argument("--stack", choices=(naming.SHARED_STACK,), help="estimate the shared stack")
    what.add_argument(
        "--refresh-prices",
        action="store_true",
        help="rewrite prices/aws-REGION.json from the AWS Price List API (needs credentials)",
    )
    parser.add_argument(
        "--region", type=cli.region_arg, default="us-east-1", help="region of --refresh-prices"
    )
    parser.add_argument("--format", choices=("markdown", "json", "comment"), default="markdown")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=cli.config_arg,
        help="override a setting for the estimate, as synth does (repeatable)",
    )
    parser.add_argument(
        "--duration-ms",
        type=float,
        default=cost_estimate.Assumptions.model_duration_ms,
        help="mean billed duration of one model invocation",
    )
    parser.add_argument(
        "--log-bytes",
        type=int,
        default=cost_estimate.Assumptions.log_bytes_per_request,
        help="log bytes written per model request",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    if args.refresh_prices:
        # Only here: boto3 takes ~0.2 s to import, and an estimate never needs it.
        from scripts.lib import aws  # noqa: PLC0415

        def refresh() -> int:
            # The Price List API is served from us-east-1 (and a few others), whatever
            # region the prices are for.
            try:
                table = price_refresh.refresh_prices(
                    aws.client("pricing", "us-east-1"), args.region, price_table.PRICES_DIR
                )
            except price_table.CostError as error:
                where = price_table.price_file(args.region, price_table.PRICES_DIR)
                raise aws.ScriptError(f"{error}; {where} was not changed") from None
            print(f"cost: wrote {table.path} (as of {table.as_of})", file=sys.stderr)
            return 0

        return aws.run("cost", refresh)

    overrides: dict[str, object] = dict(args.config)
    try:
        stack = args.stack or naming.slugify(args.branch)
        if args.branch:
            overrides["branch"] = args.branch
        synth.check_inputs(stack, overrides)
    except (config.ConfigError, naming.NamingError) as error:
        print(f"cost: {error}", file=sys.stderr)
        return 2
    try:
        synthesis = synth.synthesize(stack, overrides=overrides)
        assumptions = cost_estimate.Assumptions(args.duration_ms, args.log_bytes)
        est = cost_estimate.for_synthesis(synthesis, overrides, assumptions)
    except (
        price_table.CostError,
        synth.SynthError,
        config.ConfigError,
        naming.NamingError,
    ) as error:
        print(f"cost: {error}", file=sys.stderr)
        return 1
    render = {
        "markdown": cost_report.render_markdown,
        "json": cost_report.render_json,
        "comment": cost_report.render_pr_comment,
    }
    sys.stdout.write(render[args.format](est))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
