"""Lifecycle events of a model: emit them, list their history, rebuild state by replay.

    python -m scripts.events emit KIND --outputs F [--detail JSON]
    python -m scripts.events history --outputs F [--model NAME] [--format table|json]
    python -m scripts.events state --outputs F [--model NAME]
    python -m scripts.events replay --outputs F --start ISO --end ISO
    python -m scripts.events dlq --outputs F [--redrive]

Every other verb emits through `emit`, so the history of a model (trained,
evaluated, deployed, canary-started, promoted, rolled-back, released) lives in one place:
the branch's event bus, archived for replay and stored by the processor
Lambda in the append-only S3 event store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from infra.handlers.event_processor import handler as processor
from scripts.lib import aws, cli, outputs, summary
from scripts.lib.progress import Progress

# One schema for both ends: the processor refuses to store what does not fit it.
KINDS: Mapping[str, tuple[str, ...]] = processor.KINDS
COMMON_FIELDS = processor.COMMON_FIELDS
RESERVED_FIELDS = processor.GENERATED_FIELDS
REPLAY_FINAL = {"COMPLETED", "FAILED", "CANCELLED"}
# Recording an event after traffic moved must not be lost to one throttled or dropped call:
# a few tries, backing off, on top of botocore's own retries.
EMIT_ATTEMPTS = 3
EMIT_BACKOFF_SECONDS = 2.0


class EventError(aws.UsageError):
    """A lifecycle event that does not fit its schema; nothing was sent."""


def build_detail(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The detail of a lifecycle event, validated against its kind's schema."""
    if kind not in KINDS:
        raise EventError(f"event kind {kind!r} is not one of {', '.join(KINDS)}")
    required = COMMON_FIELDS + KINDS[kind]
    reserved = sorted(set(fields) & set(RESERVED_FIELDS))
    if reserved:
        raise EventError(
            f"a {kind!r} event's fields may not set {', '.join(reserved)}: the emitter sets "
            f"{', '.join(RESERVED_FIELDS)} itself"
        )
    missing = [name for name in required if fields.get(name) in (None, "")]
    if missing:
        raise EventError(
            f"a {kind!r} event needs {', '.join(required)}; missing: {', '.join(missing)}"
        )
    detail = {
        "event_id": str(uuid.uuid4()),
        "kind": kind,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "actor": os.environ.get("GITHUB_ACTOR", os.environ.get("USER", "unknown")),
        "run": os.environ.get("GITHUB_RUN_ID", ""),
        **{key: value for key, value in fields.items() if value is not None},
    }
    detail["version"] = str(detail["version"])
    try:
        json.dumps(detail)
    except TypeError as error:
        raise EventError(f"a {kind!r} event's detail must be JSON: {error}") from None
    problems = processor.detail_problems(detail)
    if problems:
        raise EventError("; ".join(problems))
    return detail


def emit(events_client: Any, stack: outputs.StackOutputs, kind: str, **fields: Any) -> str:
    """Put one lifecycle event on the branch's bus; returns its id. A rejected event raises."""
    detail = build_detail(kind, fields)
    bus = stack.require("event_bus")
    response = aws.call(
        f"emitting {kind!r} to bus {bus}",
        events_client.put_events,
        Entries=[
            {
                "EventBusName": bus,
                "Source": stack.require("event_source"),
                "DetailType": kind,
                "Detail": json.dumps(detail, sort_keys=True),
            }
        ],
    )
    entry = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in entry:
        raise aws.ScriptError(
            f"bus {bus} refused the {kind!r} event: "
            f"{entry.get('ErrorCode', '?')}: {entry.get('ErrorMessage', '')}"
        )
    return detail["event_id"]


def emitter(
    events_client: Any,
    stack: outputs.StackOutputs,
    model: str,
    *,
    attempts: int = EMIT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[..., str]:
    """`emit` bound to a stack and model, after checking the stack can take events.

    Checked before the verb acts: an operation whose events could not be
    recorded must not start. A failed put is tried again (bad input is not).
    """
    stack.require("event_bus")
    stack.require("event_source")

    def emit_for_model(kind: str, **fields: Any) -> str:
        for attempt in range(1, attempts + 1):
            try:
                return emit(events_client, stack, kind, model=model, **fields)
            except aws.UsageError:
                raise
            except aws.ScriptError:
                if attempt == attempts:
                    raise
                sleep(EMIT_BACKOFF_SECONDS * attempt)
        # With one attempt or more (the verbs use EMIT_ATTEMPTS) the loop returns or raises on
        # its last: nothing reaches this line, so no test can tell its mutants apart.
        raise AssertionError("unreachable")  # pragma: no cover, no mutate

    return emit_for_model


def history(s3: Any, stack: outputs.StackOutputs, model: str | None = None) -> list[dict]:
    """A model's events from the event store, oldest first, each event once."""
    bucket = stack.require("event_store_bucket")
    model = model or stack.require("model_function")
    listing = aws.pages(s3, "list_objects_v2", "Contents", Bucket=bucket, Prefix=f"events/{model}/")
    seen: dict[str, dict] = {}
    for item in listing:
        body = aws.call(
            f"reading {item['Key']} from {bucket}",
            s3.get_object,
            Bucket=bucket,
            Key=item["Key"],
        )["Body"].read()
        event = json.loads(body)
        # A replayed event may come back under a new EventBridge id; the
        # detail's own id says it is the same event.
        seen.setdefault(event["detail"].get("event_id", event["id"]), event)
    return sorted(seen.values(), key=lambda e: (e["detail"].get("at", e["time"]), e["id"]))


def fold(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Current state of a model, rebuilt from its history alone."""
    state: dict[str, Any] = {
        "live_version": None,
        "previous_version": None,
        "candidate_version": None,
        "releases": {},
        # version -> the training run it serves (scripts.train publishes one per run)
        "runs": {},
        "last_event": None,
    }
    for event in events:
        detail = event["detail"]
        kind = detail["kind"]
        if kind in ("deployed", "canary-started"):
            state["candidate_version"] = detail["version"]
            if state["live_version"] is None and kind == "deployed":
                state["live_version"] = detail["version"]
        elif kind == "promoted":
            state["previous_version"] = detail["previous_version"]
            state["live_version"] = detail["version"]
        elif kind == "rolled-back":
            state["live_version"] = detail["to_version"]
            state["previous_version"] = None
        elif kind == "trained":
            state["runs"][detail["version"]] = detail["run_id"]
        elif kind == "released":
            state["releases"][detail["api_version"]] = {
                "stage": detail["stage"],
                "deployment_id": detail["deployment_id"],
                "model_version": detail["version"],
            }
        state["last_event"] = f"{kind} at {detail.get('at', event['time'])}"
    state["live_run"] = state["runs"].get(state["live_version"])
    return state


def replay(
    events_client: Any,
    stack: outputs.StackOutputs,
    start: dt.datetime,
    end: dt.datetime,
    *,
    poll_seconds: float = 10.0,
    timeout_seconds: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replay the archive's events of [start, end) onto the bus and wait for the replay to end."""
    if end <= start:
        raise aws.UsageError(f"replay window is empty: --end {end} is not after --start {start}")
    archive = stack.require("event_archive")
    bus = stack.require("event_bus")
    archive_arn = aws.call(
        f"describing archive {archive}", events_client.describe_archive, ArchiveName=archive
    )["ArchiveArn"]
    bus_arn = aws.call(f"describing bus {bus}", events_client.describe_event_bus, Name=bus)["Arn"]
    name = f"{archive[:40]}-{int(time.time())}"
    aws.call(
        f"starting replay {name}",
        events_client.start_replay,
        ReplayName=name,
        EventSourceArn=archive_arn,
        EventStartTime=start,
        EventEndTime=end,
        Destination={"Arn": bus_arn},
    )
    # EventBridge has no waiter for replays: poll, bounded by the timeout.
    progress = progress or Progress("replay", total=1)
    waited = 0.0
    while True:
        state = aws.call(
            f"describing replay {name}", events_client.describe_replay, ReplayName=name
        )
        if state["State"] in REPLAY_FINAL:
            break
        if waited >= timeout_seconds:
            raise aws.ScriptError(f"replay {name} still {state['State']} after {waited:.0f}s")
        progress.note(f"replay {name} is {state['State']}")
        sleep(poll_seconds)
        waited += poll_seconds
    progress.step(f"replay {name} {state['State']}")
    if state["State"] != "COMPLETED":
        raise aws.ScriptError(f"replay {name} ended {state['State']}: {state.get('StateReason')}")
    return {"replay": name, "state": state["State"], "start": start, "end": end}


_REASON_ATTRIBUTES = ("reason", "ErrorMessage", "ERROR_MESSAGE")


def _reason(message: Mapping[str, Any]) -> str:
    # The processor names its own reason; Lambda's and EventBridge's dead-letter paths
    # carry theirs under their own attribute names.
    attributes = message.get("MessageAttributes") or {}
    for name in _REASON_ATTRIBUTES:
        if name in attributes:
            return str(attributes[name].get("StringValue", ""))
    return "no reason recorded"


def _receive(sqs: Any, queue: str, visibility: int, limit: int) -> list[dict]:
    seen: dict[str, dict] = {}
    while len(seen) < limit:
        batch = aws.call(
            f"reading dead-letter queue {queue}",
            sqs.receive_message,
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((m["MessageId"], m) for m in fresh)
    return list(seen.values())[:limit]


def dead_letters(
    sqs: Any, events_client: Any, stack: outputs.StackOutputs, *, redrive: bool, limit: int = 100
) -> list[dict[str, Any]]:
    """What the dead-letter queue holds and why; with redrive, put the valid ones back on the bus.

    An event that is still malformed stays in the queue: redriving it would only park it
    again. A redriven event keeps its detail.event_id, so the store takes it at most once.
    """
    queue = stack.require("event_dlq_url")
    # Inspecting leaves the messages visible; redriving hides each while it is handled.
    messages = _receive(sqs, queue, 60 if redrive else 0, limit)
    report = []
    for message in messages:
        entry: dict[str, Any] = {"message_id": message["MessageId"], "reason": _reason(message)}
        try:
            event = json.loads(message["Body"])
            processor.event_key(event)
        except (ValueError, processor.MalformedEvent) as error:
            entry.update(kind="?", version="?", action="kept: still malformed", problem=str(error))
            report.append(entry)
            continue
        detail = event["detail"]
        entry.update(kind=detail["kind"], version=detail["version"], action="listed")
        if redrive:
            emitted = aws.call(
                f"redriving {message['MessageId']} to bus {stack.require('event_bus')}",
                events_client.put_events,
                Entries=[
                    {
                        "EventBusName": stack.require("event_bus"),
                        "Source": event.get("source") or stack.require("event_source"),
                        "DetailType": detail["kind"],
                        "Detail": json.dumps(detail, sort_keys=True),
                    }
                ],
            )
            if emitted.get("FailedEntryCount"):
                entry["action"] = "kept: the bus refused it"
            else:
                aws.call(
                    f"deleting {message['MessageId']} from {queue}",
                    sqs.delete_message,
                    QueueUrl=queue,
                    ReceiptHandle=message["ReceiptHandle"],
                )
                entry["action"] = "redriven"
        report.append(entry)
    return report


def _history_table(events: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            e["detail"].get("at", e["time"]),
            e["detail"]["kind"],
            e["detail"]["version"],
            ", ".join(
                f"{k}={v}"
                for k, v in sorted(e["detail"].items())
                if k not in {"at", "kind", "version", "model", "event_id", "actor", "run"}
            ),
            e["detail"].get("actor", ""),
        ]
        for e in events
    ]
    return summary.table(["at", "event", "version", "details", "actor"], rows)


def _timestamp(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"--detail is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--detail must be a JSON object")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("events", __doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="command", required=True)
    emit_parser = verbs.add_parser("emit", help="put a lifecycle event on the bus")
    emit_parser.add_argument("kind", choices=list(KINDS))
    emit_parser.add_argument("--version", required=True, help="model version the event is about")
    emit_parser.add_argument("--detail", type=_detail, default={}, help="more fields, as JSON")
    for name in ("history", "state"):
        sub = verbs.add_parser(name, help=f"the model's {name} from the event store")
        sub.add_argument("--model", help="function name (default: the stack's model)")
        sub.add_argument("--format", choices=("table", "json"), default="table")
    replay_parser = verbs.add_parser("replay", help="replay archived events onto the bus")
    replay_parser.add_argument("--start", type=_timestamp, required=True)
    replay_parser.add_argument("--end", type=_timestamp, required=True)
    replay_parser.add_argument("--poll-seconds", type=float, default=10.0)
    dlq_parser = verbs.add_parser("dlq", help="list the dead-letter queue's events and why")
    dlq_parser.add_argument(
        "--redrive", action="store_true", help="put the valid ones back on the bus"
    )
    for sub in verbs.choices.values():
        outputs.add_arguments(sub)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        stack = outputs.load(args)
        if args.command == "emit":
            named = sorted(set(args.detail) & {"model", "version"})
            if named:
                raise EventError(
                    f"--detail may not set {', '.join(named)}: the model is the stack's and the "
                    "version is --version"
                )
            fields = {**args.detail, "model": stack.require("model_function")}
            fields["version"] = args.version
            event_id = emit(aws.client("events", stack.region), stack, args.kind, **fields)
            print(event_id)
            summary.write_step_summary(f"Event `{args.kind}` emitted: `{event_id}`")
        elif args.command in ("history", "state"):
            events = history(aws.client("s3", stack.region), stack, args.model)
            result: Any = events if args.command == "history" else fold(events)
            if args.format == "json":
                json.dump(result, sys.stdout, indent=2, default=str)
                print()
            elif args.command == "history":
                print(_history_table(events))
            else:
                print(summary.table(["field", "value"], [[k, str(v)] for k, v in result.items()]))
        elif args.command == "dlq":
            parked = dead_letters(
                aws.client("sqs", stack.region),
                aws.client("events", stack.region),
                stack,
                redrive=args.redrive,
            )
            table = summary.table(
                ["message", "event", "version", "reason", "action"],
                [
                    [p["message_id"], p["kind"], p["version"], p["reason"], p["action"]]
                    for p in parked
                ],
            )
            report = f"### Dead-letter queue: {len(parked)} event(s)\n\n{table}\n"
            print(report)
            summary.write_step_summary(report)
        else:
            result = replay(
                aws.client("events", stack.region),
                stack,
                args.start,
                args.end,
                poll_seconds=args.poll_seconds,
            )
            summary.write_step_summary(
                f"Replay `{result['replay']}` of {args.start} to {args.end}: {result['state']}"
            )
        return 0

    return aws.run("events", body)


if __name__ == "__main__":
    raise SystemExit(main())
