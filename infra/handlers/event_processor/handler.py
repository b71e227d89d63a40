"""Append EventBridge events to the S3 event store, one object per event.

Key layout: events/{detail.model}/{record id}.json, where the record id is the emitter's own
detail.event_id when present (it survives archive replays, which may re-id an event) and else
the EventBridge id; body: the whole event as canonical JSON.

The event schema lives here, in the one file the Lambda ships, and `scripts.events` validates
against the same table before it emits: what the emitter accepts, the store accepts. A
malformed event never reaches the store, where one bad record would break every reader of the
history. It goes to the dead-letter queue with its reason (message attribute `reason`), sent
directly so it does not wait through Lambda's retries first; without a queue configured it
raises, and Lambda's own retries and dead-letter path carry it there instead.
"""

import json
import os
import re

import boto3
from botocore.exceptions import ClientError

_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
_MODEL_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# 412: the key already exists. 409: a concurrent conditional write to the same key is in
# flight; it carries the same event (EventBridge redelivery), so this copy is redundant.
_ALREADY_STORED = {"PreconditionFailed", "ConditionalRequestConflict"}

# Each kind and the detail fields it must carry beyond the common ones.
KINDS = {
    "trained": ("run_id",),
    "deployed": (),
    "canary-started": ("previous_version", "strategy"),
    "promoted": ("previous_version", "strategy"),
    "rolled-back": ("from_version", "to_version", "reason"),
    "released": ("api_version", "stage", "deployment_id"),
    "evaluated": ("run_id", "metrics"),
}
COMMON_FIELDS = ("model", "version")
# Set by the emitter for every event; a caller's extra fields may not replace them, or a
# history could carry a forged author, time or identity.
GENERATED_FIELDS = ("event_id", "kind", "at", "actor", "run")
# Versions are compared as text by every reader of the history ("10" is not 10).
_STRING_FIELDS = ("version", "previous_version", "from_version", "to_version")

_client = None
_sqs_client = None


class MalformedEvent(ValueError):
    """The event cannot be stored as-is; it goes to the dead-letter queue with this reason."""


def _s3():
    # Created on first use, not at import, so tests can swap it in; boto3's default config
    # honours AWS_ENDPOINT_URL for local endpoints.
    global _client  # noqa: PLW0603 - one client per warm Lambda container
    if _client is None:
        _client = boto3.client("s3")
    return _client


def _sqs():
    global _sqs_client  # noqa: PLW0603 - one client per warm Lambda container
    if _sqs_client is None:
        _sqs_client = boto3.client("sqs")
    return _sqs_client


def detail_problems(detail) -> list:
    """What keeps a lifecycle event's detail from fitting its schema; [] when it fits."""
    if not isinstance(detail, dict):
        return ["detail is not an object"]
    kind = detail.get("kind")
    if kind not in KINDS:
        return [f"detail.kind {kind!r:.40} is not one of {', '.join(KINDS)}"]
    problems = []
    for name in (*COMMON_FIELDS, *KINDS[kind]):
        value = detail.get(name)
        if value is None or value == "":
            problems.append(f"a {kind!r} event needs detail.{name}")
        elif name in _STRING_FIELDS and not isinstance(value, str):
            problems.append(f"detail.{name} must be a string, not {type(value).__name__}")
    return problems


def event_key(event) -> str:
    if not isinstance(event, dict):
        raise MalformedEvent("event must be a JSON object")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not _ID_RE.fullmatch(event_id):
        raise MalformedEvent(f"event field 'id' is missing or invalid: {event_id!r:.80}")
    if not isinstance(event.get("time"), str) or not event["time"]:
        raise MalformedEvent("event field 'time' is missing or not a non-empty string")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedEvent("event field 'detail' is missing or not an object")
    model = detail.get("model")
    # "." and ".." pass the character class but read as path traversal to many S3 tools.
    if not isinstance(model, str) or not _MODEL_RE.fullmatch(model) or model in {".", ".."}:
        raise MalformedEvent(f"event field 'detail.model' is missing or invalid: {model!r:.140}")
    record_id = detail.get("event_id", event_id)
    if not isinstance(record_id, str) or not _ID_RE.fullmatch(record_id):
        raise MalformedEvent(f"event field 'detail.event_id' is invalid: {record_id!r:.80}")
    problems = detail_problems(detail)
    if problems:
        raise MalformedEvent("; ".join(problems))
    return f"events/{model}/{record_id}.json"


def store_event(event, *, s3, bucket: str) -> dict:
    key = event_key(event)
    body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")
    try:
        # The conditional write makes the event id the idempotency key without a read first,
        # so a redelivered event cannot overwrite or add a version. moto 5.2.5 honours it too.
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _ALREADY_STORED:
            return {"stored": False, "key": key}
        raise
    return {"stored": True, "key": key}


def dead_letter(event, reason: str, *, sqs, queue_url: str) -> dict:
    """Park an event the store must not take, with the reason a person needs to fix it."""
    try:
        body = json.dumps(event, sort_keys=True)
    except (TypeError, ValueError):
        body = json.dumps(repr(event))
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
    )
    return {"stored": False, "dead_lettered": True, "reason": reason}


def process(event, *, s3, bucket: str, sqs=None, queue_url: str = "") -> dict:
    try:
        return store_event(event, s3=s3, bucket=bucket)
    except MalformedEvent as error:
        if sqs is None or not queue_url:
            raise
        return dead_letter(event, str(error), sqs=sqs, queue_url=queue_url)


def handler(event, context):
    bucket = os.environ.get("EVENT_STORE_BUCKET")
    if not bucket:
        raise RuntimeError("environment variable EVENT_STORE_BUCKET is not set")
    queue_url = os.environ.get("DEAD_LETTER_QUEUE_URL", "")
    return process(
        event, s3=_s3(), bucket=bucket, sqs=_sqs() if queue_url else None, queue_url=queue_url
    )
