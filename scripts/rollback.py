"""Roll back: put alias `live` back on the previous model version at 100% of traffic.

    python -m scripts.rollback (--outputs FILE | --branch NAME) [--to VERSION] [--reason TEXT]

Stops any CodeDeploy deployment of the stack's group that is still in flight (with
CodeDeploy's own rollback), then points the alias at the version, with no routing
weights, and records a `rolled-back` event.

Which version, first match wins:
1. --to VERSION;
2. the alias's primary version when the alias still splits traffic (a promotion is
   half-way, so its primary is what served before it);
3. the previous version of the last promotion in the event store (`events state`).
Otherwise it stops and asks for --to. A version that is not published is refused with
exit 2 and nothing changed; an alias already fully on the version is a no-op.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scripts import events
from scripts.lib import aws, cli, outputs, summary
from scripts.lib.codedeploy import in_flight_deployments
from scripts.lib.lambda_alias import (
    ConcurrentChange,
    published_versions,
    read_alias,
    require_version,
    set_alias,
)
from scripts.lib.progress import Progress
from scripts.lib.traffic_events import Emit, record

OVERRIDE_ATTEMPTS = 3


@dataclass
class RollbackResult:
    function: str
    alias: str
    to_version: str
    from_version: str
    changed: bool
    message: str
    stopped: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)


def rollback(
    lambda_client: Any,
    codedeploy_client: Any | None,
    *,
    function: str,
    alias: str,
    to_version: str,
    application: str | None = None,
    group: str | None = None,
    reason: str = "manual rollback",
    progress: Progress | None = None,
    emit: Emit | None = None,
) -> RollbackResult:
    """Stop in-flight deployments of the group, then serve `to_version` at 100%."""
    to_version = str(to_version)
    progress = progress or Progress("rollback", total=2)
    require_version(lambda_client, function, to_version, "--to")
    state = read_alias(lambda_client, function, alias)

    stopped: list[str] = []
    if codedeploy_client is not None and application and group:
        for deployment_id in in_flight_deployments(codedeploy_client, application, group):
            # CodeDeploy's own rollback puts the alias back on the deployment's
            # CurrentVersion; the alias update below makes the end state explicit either way.
            aws.call(
                f"stopping deployment {deployment_id}",
                codedeploy_client.stop_deployment,
                deploymentId=deployment_id,
                autoRollbackEnabled=True,
            )
            stopped.append(deployment_id)
    progress.step(
        f"stopped deployment(s) {', '.join(stopped)}" if stopped else "no deployment in flight"
    )

    if state.primary == to_version and not state.weights and not stopped:
        progress.step("nothing to do")
        return RollbackResult(
            function,
            alias,
            to_version,
            to_version,
            changed=False,
            message=(
                f"alias {alias} of {function} already serves version {to_version} at 100%; "
                "nothing to do"
            ),
        )
    leaving = [state.primary] if state.primary != to_version else sorted(state.weights)
    from_version = leaving[0] if leaving else to_version
    # CodeDeploy's stop moves the alias itself: lock on what it left, not on what was read.
    current = read_alias(lambda_client, function, alias) if stopped else state
    for attempt in range(1, OVERRIDE_ATTEMPTS + 1):
        try:
            set_alias(lambda_client, function, alias, to_version, revision=current.revision)
            break
        except ConcurrentChange:
            # A rollback is the way out of a bad promotion, so it wins against one moving
            # the alias at the same time; it still never writes over a state it did not read.
            if attempt == OVERRIDE_ATTEMPTS:
                raise
            current = read_alias(lambda_client, function, alias)
            progress.note(f"alias {alias} moved meanwhile (now {current.describe()}); again")
    progress.step(f"alias {alias} serves version {to_version} at 100%")
    unrecorded: list[str] = []
    if emit:
        record(
            emit,
            "rolled-back",
            unrecorded,
            version=from_version,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            stopped_deployments=stopped,
        )
    return RollbackResult(
        function,
        alias,
        to_version,
        from_version,
        changed=True,
        stopped=stopped,
        unrecorded=unrecorded,
        message=(
            f"rolled back: alias {alias} of {function} serves version {to_version} at 100% "
            f"(was {state.describe()})"
        ),
    )


def resolve_target(
    lambda_client: Any, s3_client: Any, stack: outputs.StackOutputs, explicit: str | None
) -> tuple[str, str]:
    """The version to roll back to, and where that answer came from."""
    if explicit:
        return str(explicit), "--to"
    function, alias = stack.require("model_function"), stack.require("model_alias")
    state = read_alias(lambda_client, function, alias)
    if state.weights:
        return state.primary, f"alias {alias}'s primary version (a shift is half-way)"
    previous = events.fold(events.history(s3_client, stack, function))["previous_version"]
    if previous:
        return str(previous), "the last promotion in the event store"
    published = ", ".join(published_versions(lambda_client, function)) or "none"
    raise aws.UsageError(
        f"no version to roll back to: alias {alias} of {function} serves {state.describe()} "
        "and the event store records no promotion since the last rollback; pass --to VERSION "
        f"(published: {published})"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser(
        "rollback",
        __doc__.splitlines()[0],
        epilog="Without --to: the alias's primary version while a promotion is half-way, "
        "else the version before the last promotion in the event store; otherwise it stops "
        "and asks for --to.",
    )
    outputs.add_arguments(parser)
    parser.add_argument(
        "--to",
        type=cli.lambda_version_arg,
        help="published model version to serve (default: chosen as described below)",
    )
    parser.add_argument("--reason", default="manual rollback", help="recorded in the event")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        stack = outputs.load(args)
        function = stack.require("model_function")
        alias = stack.require("model_alias")
        lambda_client = aws.client("lambda", stack.region)
        to_version, source = resolve_target(
            lambda_client, aws.client("s3", stack.region), stack, args.to
        )
        application = stack.values.get("codedeploy_application")
        group = stack.values.get("codedeploy_group")
        emit = events.emitter(aws.client("events", stack.region), stack, function)

        result = rollback(
            lambda_client,
            aws.client("codedeploy", stack.region) if application and group else None,
            function=function,
            alias=alias,
            to_version=to_version,
            application=application,
            group=group,
            reason=args.reason,
            emit=emit,
        )
        report = "\n".join(
            [
                f"### Rollback of `{function}:{alias}` to version {to_version}",
                "",
                summary.table(
                    ["field", "value"],
                    [
                        ["target chosen by", source],
                        ["from", result.from_version],
                        ["to", result.to_version],
                        ["stopped deployments", ", ".join(result.stopped) or "none"],
                        ["changed", "yes" if result.changed else "no (already there)"],
                    ],
                ),
            ]
        )
        if result.unrecorded:
            report += "\n\n**Not recorded in the event history** (the rollback stands):\n"
            report += "\n".join(f"- {note}" for note in result.unrecorded)
        print(report)
        summary.write_step_summary(report)
        print(f"rollback: {result.message}", file=sys.stderr)
        for note in result.unrecorded:
            print(f"::warning::rollback: {note}", file=sys.stderr)
        return 0

    return aws.run("rollback", body)


if __name__ == "__main__":
    raise SystemExit(main())
