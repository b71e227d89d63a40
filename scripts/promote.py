"""Promote the candidate model version: move alias `live` onto it while watching the alarms.

    python -m scripts.promote (--outputs FILE | --branch NAME) [--strategy auto|alias|codedeploy]
        [--version N [--expect-sha256 SHA]] [--steps 10,50,100] [--bake-seconds S]
        [--poll-seconds S] [--waiter-delay S] [--waiter-max-attempts N] [--check]

--check changes nothing and prints candidate-version=, candidate-sha256= and
promote=true|false (false when alias live already serves the candidate: nothing to
approve). --expect-sha256 refuses a --version whose code is not what the deploy recorded.
Before shifting, the alarms that watch one version (the candidate alarm) are pointed at
the candidate; every alias update names the revision it read, so a concurrent move fails
instead of being overwritten.

Strategies:
- codedeploy: a CodeDeploy deployment with a Lambda AppSpec shifts the alias by the
  deployment group's canary config; CodeDeploy watches the group's alarms and rolls back
  by itself. This script creates it (or attaches to one already in flight), waits and
  reports.
- alias: the script shifts RoutingConfig weights itself, in the steps of config
  `promotionSteps` (or --steps), baking `bakeSeconds` between steps while polling the
  alarms; on an alarm it puts the alias back on the previous version at 100%.
- auto (default): codedeploy when the stack outputs name a deployment group (every stack
  this program deploys), else alias. In a real account the AWS-managed path is the better
  one: the shifting and the alarm rollback go on in AWS even if the CI runner dies. The
  alias strategy is the one moto can exercise end to end, and the fallback for stacks
  without CodeDeploy.

Either way the alias ends fully on the candidate or fully on the previous version, and
re-running is safe: a finished promotion is a no-op, an interrupted one resumes or is
rolled back. Exit codes: 0 promoted (or already), 1 rolled back or failed, 2 bad input
(nothing changed), 130 interrupted (rolled back).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from infra import config, naming
from scripts import events
from scripts.lib import aws, cli, outputs, summary
from scripts.lib.candidate import promotion_check, require_deployed_code
from scripts.lib.codedeploy import promote_codedeploy, waiter_attempts
from scripts.lib.promotion import PromotionResult, parse_steps, promote_alias


def choose_strategy(requested: str, stack: outputs.StackOutputs) -> str:
    if requested != "auto":
        return requested
    has_group = all(stack.values.get(k) for k in ("codedeploy_application", "codedeploy_group"))
    return "codedeploy" if has_group else "alias"


def markdown(result: PromotionResult) -> str:
    title = (
        f"### Promotion of `{result.function}:{result.alias}` to version {result.candidate} "
        f"({result.strategy}): {result.outcome}"
    )
    lines = [title, "", result.message, ""]
    if result.steps:
        lines.append(
            summary.table(
                ["weight", "time", "alarms"], [[s.weight, s.time, s.alarms] for s in result.steps]
            )
        )
    if result.deployment_id:
        overview = ", ".join(f"{k} {v}" for k, v in result.overview.items()) or "none"
        lines += ["", f"Deployment `{result.deployment_id}`; targets: {overview}"]
    if result.unrecorded:
        lines += ["", "**Not recorded in the event history** (the traffic move above stands):"]
        lines += [f"- {note}" for note in result.unrecorded]
    return "\n".join(lines) + "\n"


def _promotion_settings(
    args: argparse.Namespace, stack: outputs.StackOutputs
) -> tuple[tuple[int, ...], float]:
    steps: tuple[int, ...] | None = args.steps
    bake = args.bake_seconds
    if steps is None or bake is None:
        branch = stack.require("branch")
        try:
            settings = config.settings_for_stack(naming.slugify(branch))
        except (config.ConfigError, naming.NamingError) as error:
            raise aws.UsageError(f"reading the promotion settings of {branch}: {error}") from None
        steps = steps or settings.promotion_steps
        bake = settings.bake_seconds if bake is None else bake
    return steps, bake


_NOT_CODEDEPLOY = (
    "--steps and --bake-seconds apply to the alias strategy only; CodeDeploy shifts traffic "
    "as the stack's canaryDeploymentConfig says. Pass --strategy alias, or drop them"
)


def _steps_arg(text: str) -> tuple[int, ...]:
    try:
        return parse_steps(text)
    except aws.UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _number(text: str, low: float, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > low if strict else value >= low):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number {'above' if strict else 'of at least'} {low:g}"
        )
    return value


def _non_negative(text: str) -> float:
    return _number(text, 0, strict=False)


def _positive(text: str) -> float:
    return _number(text, 0, strict=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("promote", __doc__.splitlines()[0])
    outputs.add_arguments(parser)
    parser.add_argument(
        "--strategy",
        choices=("auto", "alias", "codedeploy"),
        default="auto",
        help="auto: CodeDeploy when the stack has a deployment group, else alias",
    )
    parser.add_argument(
        "--version",
        type=cli.lambda_version_arg,
        help="candidate version (default: the stack output model_candidate_version)",
    )
    parser.add_argument(
        "--steps",
        type=_steps_arg,
        help="alias strategy only: percentages, e.g. 10,50,100 (default: promotionSteps)",
    )
    parser.add_argument(
        "--bake-seconds",
        type=_non_negative,
        help="alias strategy only: seconds each step watches the alarms (default: bakeSeconds)",
    )
    parser.add_argument(
        "--poll-seconds", type=_positive, default=15.0, help="alarm poll interval, seconds"
    )
    parser.add_argument(
        "--waiter-delay", type=int, default=15, help="codedeploy: seconds between status polls"
    )
    parser.add_argument(
        "--waiter-max-attempts",
        type=int,
        help="codedeploy: status polls at most (default: enough for the longest config allowed)",
    )
    parser.add_argument(
        "--expect-sha256",
        help="refuse unless --version's code has this CodeSha256 (what the run published)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; print candidate-version=, candidate-sha256= and promote=true|false",
    )
    args = parser.parse_args(argv)
    if args.strategy == "codedeploy" and (args.steps or args.bake_seconds is not None):
        parser.error(_NOT_CODEDEPLOY)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        stack = outputs.load(args)
        function = stack.require("model_function")
        alias = stack.require("model_alias")
        candidate = str(args.version or stack.require("model_candidate_version"))
        if args.check:
            values, line = promotion_check(
                aws.client("lambda", stack.region), function, alias, candidate
            )
            summary.report_check("promote", values, line)
            return 0
        if args.expect_sha256:
            require_deployed_code(
                aws.client("lambda", stack.region), function, candidate, args.expect_sha256
            )
        strategy = choose_strategy(args.strategy, stack)
        if strategy == "codedeploy" and (args.steps or args.bake_seconds is not None):
            raise aws.UsageError(f"this stack promotes with CodeDeploy: {_NOT_CODEDEPLOY}")
        emit = events.emitter(aws.client("events", stack.region), stack, function)

        # Either strategy watches these (CodeDeploy through its group): none is no canary.
        alarms = stack.require("alarms")
        if not isinstance(alarms, list) or not all(isinstance(a, str) for a in alarms):
            raise aws.UsageError(f"stack outputs' 'alarms' must be a list of names: {alarms!r}")
        if not alarms:
            raise aws.UsageError("no alarms to watch: the stack outputs' 'alarms' list is empty")
        if strategy == "alias":
            steps, bake = _promotion_settings(args, stack)
            result = promote_alias(
                aws.client("lambda", stack.region),
                aws.client("cloudwatch", stack.region),
                function=function,
                alias=alias,
                candidate=candidate,
                steps=steps,
                bake_seconds=bake,
                poll_seconds=args.poll_seconds,
                alarms=alarms,
                sleep=time.sleep,
                clock=time.monotonic,
                emit=emit,
            )
        else:
            result = promote_codedeploy(
                aws.client("codedeploy", stack.region),
                aws.client("lambda", stack.region),
                application=stack.require("codedeploy_application"),
                group=stack.require("codedeploy_group"),
                function=function,
                alias=alias,
                candidate=candidate,
                waiter_delay=args.waiter_delay,
                waiter_max_attempts=args.waiter_max_attempts or waiter_attempts(args.waiter_delay),
                emit=emit,
                cloudwatch_client=aws.client("cloudwatch", stack.region),
                alarms=alarms,
                # Stacks deployed before the hooks existed have no such output: no hooks.
                hooks=str(stack.values.get("deploy_hooks_function") or ""),
            )
        report = markdown(result)
        print(report)
        summary.write_step_summary(report)
        print(f"promote: {result.message}", file=sys.stderr)
        for note in result.unrecorded:
            print(f"::warning::promote: {note}", file=sys.stderr)
        return result.exit_code

    return aws.run("promote", body)


if __name__ == "__main__":
    raise SystemExit(main())
