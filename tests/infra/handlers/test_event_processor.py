import importlib.util
import json
import uuid
from pathlib import Path

import boto3
import pytest

from tests.project import ROOT


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


processor = _load("event_processor", ROOT / "infra/handlers/event_processor/handler.py")


@pytest.fixture(scope="module")
def s3(moto_server):
    # Server mode exercises the real HTTP path (headers such as If-None-Match, status codes)
    # rather than moto's in-process patching of botocore.
    return boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3):
    # A fresh bucket per test lets "writes nothing" mean an empty bucket.
    name = f"event-store-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def make_event(event_id: str = "6a7e8feb-b491-4cf7-a9f1-bf3703467718", model="churn") -> dict:
    return {
        "version": "0",
        "id": event_id,
        "source": "mlops.models",
        "detail-type": "ModelDeployed",
        "account": "123456789012",
        "time": "2026-11-22T08:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"model": model, "version": "1.0.0", "kind": "deployed", "alias": "live"},
    }


def versions(s3, bucket: str) -> list[dict]:
    return s3.list_object_versions(Bucket=bucket).get("Versions", [])


def test_event_is_stored_as_canonical_json(s3, bucket):
    event = make_event()
    result = processor.store_event(event, s3=s3, bucket=bucket)
    key = f"events/churn/{event['id']}.json"
    assert result == {"stored": True, "key": key}
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    assert json.loads(body) == event


def test_duplicate_id_is_a_no_op(s3, bucket):
    first = make_event()
    redelivered = make_event() | {"time": "2026-11-22T09:00:00Z"}
    assert processor.store_event(first, s3=s3, bucket=bucket)["stored"] is True
    result = processor.store_event(redelivered, s3=s3, bucket=bucket)
    assert result == {"stored": False, "key": f"events/churn/{first['id']}.json"}
    assert len(versions(s3, bucket)) == 1
    stored = json.loads(s3.get_object(Bucket=bucket, Key=result["key"])["Body"].read())
    assert stored == first


def test_a_replayed_event_under_a_new_id_is_still_stored_once(s3, bucket):
    original = make_event("eb-id-1")
    original["detail"]["event_id"] = "3f1c2a9e-0000-4000-8000-00000000abcd"
    replayed = {**original, "id": "eb-id-2", "replay-name": "r1"}
    assert processor.store_event(original, s3=s3, bucket=bucket)["stored"] is True
    result = processor.store_event(replayed, s3=s3, bucket=bucket)
    assert result == {
        "stored": False,
        "key": "events/churn/3f1c2a9e-0000-4000-8000-00000000abcd.json",
    }
    assert len(versions(s3, bucket)) == 1


def test_an_invalid_emitter_id_is_refused(s3, bucket):
    event = make_event()
    event["detail"]["event_id"] = "../../escape"
    with pytest.raises(ValueError, match=r"detail\.event_id"):
        processor.store_event(event, s3=s3, bucket=bucket)
    assert versions(s3, bucket) == []


def test_different_events_are_both_stored(s3, bucket):
    a, b = make_event("id-a"), make_event("id-b", model="credit.v2_x-y")
    assert processor.store_event(a, s3=s3, bucket=bucket)["stored"] is True
    assert processor.store_event(b, s3=s3, bucket=bucket)["stored"] is True
    assert sorted(v["Key"] for v in versions(s3, bucket)) == [
        "events/churn/id-a.json",
        "events/credit.v2_x-y/id-b.json",
    ]


def _without(key: str) -> dict:
    event = make_event()
    del event[key]
    return event


MALFORMED = [
    (_without("id"), "'id'"),
    (_without("time"), "'time'"),
    (_without("detail"), "'detail'"),
    (make_event() | {"time": ""}, "'time'"),
    (make_event() | {"detail": "churn"}, "'detail'"),
    (make_event() | {"detail": {"version": "1"}}, "'detail.model'"),
    (make_event(model=""), "'detail.model'"),
    (make_event(model="a/b"), "'detail.model'"),
    (make_event(model=".."), "'detail.model'"),
    (make_event(model="m" * 129), "'detail.model'"),
    (make_event(model=7), "'detail.model'"),
    (make_event(""), "'id'"),
    (make_event("../x"), "'id'"),
    (make_event("a_b"), "'id'"),
    (make_event("x" * 65), "'id'"),
    (make_event() | {"id": 12}, "'id'"),
    (["not", "an", "event"], "object"),
    # The lifecycle schema the emitter checks too: a kind, and the fields that kind needs.
    (make_event() | {"detail": {"model": "churn", "version": "1"}}, "detail.kind"),
    (make_event() | {"detail": {"model": "churn", "version": "1", "kind": "x"}}, "detail.kind"),
    (make_event() | {"detail": {"model": "churn", "kind": "deployed"}}, "detail.version"),
    (
        make_event() | {"detail": {"model": "churn", "version": 2, "kind": "deployed"}},
        "detail.version must be a string",
    ),
    (
        make_event() | {"detail": {"model": "churn", "version": "2", "kind": "rolled-back"}},
        "detail.from_version",
    ),
]


@pytest.mark.parametrize(("event", "field"), MALFORMED)
def test_malformed_event_raises_and_writes_nothing(s3, bucket, event, field):
    with pytest.raises(ValueError, match=field):
        processor.store_event(event, s3=s3, bucket=bucket)
    assert versions(s3, bucket) == []


def test_handler_uses_env_bucket_and_cached_client(s3, bucket, monkeypatch):
    monkeypatch.setenv("EVENT_STORE_BUCKET", bucket)
    monkeypatch.setattr(processor, "_client", s3)
    event = make_event("from-handler")
    assert processor.handler(event, None) == {
        "stored": True,
        "key": "events/churn/from-handler.json",
    }
    assert processor.handler(event, None)["stored"] is False
    assert len(versions(s3, bucket)) == 1


def test_handler_without_bucket_env_raises(s3, monkeypatch):
    monkeypatch.delenv("EVENT_STORE_BUCKET", raising=False)
    monkeypatch.setattr(processor, "_client", s3)
    with pytest.raises(RuntimeError, match="EVENT_STORE_BUCKET"):
        processor.handler(make_event(), None)


def test_lazy_client_honours_aws_endpoint_url(s3, bucket, monkeypatch):
    monkeypatch.setattr(processor, "_client", None)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.meta.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("EVENT_STORE_BUCKET", bucket)
    assert processor.handler(make_event("lazy"), None)["stored"] is True
    assert processor._client is not None
    assert processor._s3() is processor._client


@pytest.fixture
def queue(moto_server):
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return sqs, url


@pytest.fixture
def deployed_processor(s3, bucket, queue, monkeypatch):
    """The handler as the stack configures it: store bucket and dead-letter queue."""
    sqs, url = queue
    monkeypatch.setenv("EVENT_STORE_BUCKET", bucket)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", url)
    monkeypatch.setattr(processor, "_client", s3)
    monkeypatch.setattr(processor, "_sqs_client", sqs)
    return sqs, url


def parked(sqs, url: str) -> list[dict]:
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])


@pytest.mark.parametrize(("event", "field"), MALFORMED[-5:])
def test_a_malformed_event_goes_to_the_dlq_with_its_reason_never_to_the_store(
    s3, bucket, deployed_processor, event, field
):
    sqs, url = deployed_processor

    result = processor.handler(event, None)

    assert result["stored"] is False and result["dead_lettered"] is True
    assert versions(s3, bucket) == []
    (message,) = parked(sqs, url)
    assert json.loads(message["Body"]) == event
    reason = message["MessageAttributes"]["reason"]["StringValue"]
    assert field in reason and reason == result["reason"]


def test_a_valid_event_is_stored_and_nothing_is_parked(s3, bucket, queue):
    sqs, url = queue
    result = processor.process(make_event(), s3=s3, bucket=bucket, sqs=sqs, queue_url=url)
    assert result["stored"] is True
    assert parked(sqs, url) == []
