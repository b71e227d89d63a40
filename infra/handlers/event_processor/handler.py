"""Append EventBridge events to the S3 event store, one object per event.

Key layout: events/{detail.model}/{record id}.json, where the record id is the emitter's own
detail.event_id when present (it survives archive replays, which may re-id an event) and else
the EventBridge id; body: the whole event as canonical JSON.
Malformed events raise ValueError on purpose: Lambda then retries and finally sends the event
to the dead-letter queue, so nothing is dropped silently.
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

_client = None


class MalformedEvent(ValueError):
    """The event cannot be stored as-is; raising sends it through retries to the DLQ."""


def _s3():
    # Created on first use, not at import, so tests can swap it in; boto3's default config
    # honours AWS_ENDPOINT_URL for local endpoints.
    global _client  # noqa: PLW0603 - one client per warm Lambda container
    if _client is None:
        _client = boto3.client("s3")
    return _client


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


def handler(event, context):
    bucket = os.environ.get("EVENT_STORE_BUCKET")
    if not bucket:
        raise RuntimeError("environment variable EVENT_STORE_BUCKET is not set")
    return store_event(event, s3=_s3(), bucket=bucket)
