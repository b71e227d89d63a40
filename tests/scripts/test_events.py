"""Lifecycle events: emitted to the bus, stored once each, listed in order, replayed."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import uuid

import pytest

from infra import naming
from scripts import events
from scripts.lib import aws, outputs
from tests.fake_aws import FakeClient, client_error
from tests.project import PROJECT


def _emit(deployed, kind: str, **fields) -> str:
    stack = deployed.stack_outputs()
    return events.emit(
        deployed.client("events"), stack, kind, model=stack.require("model_function"), **fields
    )


def test_an_emitted_event_reaches_the_store_through_the_bus(deployed) -> None:
    event_id = _emit(deployed, "deployed", version="2", api_url="https://x/v2")
    assert deployed.deliver_events() == [
        {"stored": True, "key": f"events/{deployed.names.model_function}/{event_id}.json"}
    ]
    (stored,) = events.history(deployed.client("s3"), deployed.stack_outputs())
    assert stored["source"] == naming.event_source(PROJECT)
    assert stored["detail-type"] == "deployed"
    assert stored["detail"]["event_id"] == event_id
    assert stored["detail"]["version"] == "2"
    assert stored["detail"]["api_url"] == "https://x/v2"


def test_history_is_ordered_and_each_event_counted_once(deployed) -> None:
    _emit(deployed, "deployed", version="1")
    _emit(deployed, "canary-started", version="2", previous_version="1", strategy="alias")
    _emit(deployed, "promoted", version="2", previous_version="1", strategy="alias")
    raw = deployed.client("sqs").receive_message(
        QueueUrl=deployed.test_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
    )["Messages"]
    delivered = deployed.deliver_events()
    assert [r["stored"] for r in delivered] == [True, True, True]
    # At-least-once delivery: the same events arriving again change nothing.
    processor_results = []
    for message in raw:
        deployed.client("sqs").send_message(
            QueueUrl=deployed.test_queue_url, MessageBody=message["Body"]
        )
    processor_results = deployed.deliver_events()
    assert [r["stored"] for r in processor_results] == [False, False, False]
    kinds = [
        e["detail"]["kind"] for e in events.history(deployed.client("s3"), deployed.stack_outputs())
    ]
    assert kinds == ["deployed", "canary-started", "promoted"]


def test_state_is_rebuilt_from_history_alone(deployed) -> None:
    _emit(deployed, "deployed", version="1")
    _emit(deployed, "promoted", version="2", previous_version="1", strategy="alias")
    _emit(deployed, "released", version="2", api_version="v2", stage="v2", deployment_id="d1")
    _emit(deployed, "promoted", version="3", previous_version="2", strategy="codedeploy")
    _emit(deployed, "rolled-back", version="3", from_version="3", to_version="2", reason="alarm")
    deployed.deliver_events()
    state = events.fold(events.history(deployed.client("s3"), deployed.stack_outputs()))
    assert state["live_version"] == "2"
    assert state["releases"] == {"v2": {"stage": "v2", "deployment_id": "d1", "model_version": "2"}}
    assert state["last_event"].startswith("rolled-back at ")


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("launched", {"version": "1"}, "'launched' is not one of trained, deployed"),
        ("promoted", {"version": "2"}, "missing: previous_version, strategy"),
        ("deployed", {"version": ""}, "missing: version"),
        ("deployed", {"version": "1", "blob": object()}, "must be JSON"),
    ],
)
def test_a_malformed_event_is_refused_and_nothing_is_sent(
    deployed, kind: str, fields: dict, message: str
) -> None:
    with pytest.raises(events.EventError, match=message):
        _emit(deployed, kind, **fields)
    assert deployed.deliver_events() == []


def test_cli_emit_and_history(deployed, capsys: pytest.CaptureFixture[str]) -> None:
    source = ["--outputs", str(deployed.outputs_file)]
    assert (
        events.main(["emit", "trained", "--version", "1", "--detail", '{"run_id": "r-7"}', *source])
        == 0
    )
    event_id = capsys.readouterr().out.strip()
    deployed.deliver_events()
    assert events.main(["history", "--format", "json", *source]) == 0
    (stored,) = json.loads(capsys.readouterr().out)
    assert stored["detail"]["event_id"] == event_id
    assert stored["detail"]["run_id"] == "r-7"
    assert events.main(["history", *source]) == 0
    assert "| trained | 1 | run_id=r-7 |" in capsys.readouterr().out


def test_cli_bad_input_exits_2_naming_it(deployed, tmp_path, capsys) -> None:
    source = ["--outputs", str(deployed.outputs_file)]
    assert events.main(["emit", "promoted", "--version", "2", *source]) == 2
    assert "missing: previous_version, strategy" in capsys.readouterr().err
    assert events.main(["history", "--outputs", str(tmp_path / "nope.json")]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"model_function": "m"}))
    assert events.main(["emit", "deployed", "--version", "1", "--outputs", str(partial)]) == 2
    assert "have no 'event_bus'" in capsys.readouterr().err
    assert deployed.deliver_events() == []


def test_replay_puts_archived_events_back_and_the_store_stays_one_per_event(deployed) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    _emit(deployed, "deployed", version="1")
    deployed.deliver_events()
    after = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    naps: list[float] = []
    result = events.replay(
        deployed.client("events"), deployed.stack_outputs(), before, after, sleep=naps.append
    )
    assert result["state"] == "COMPLETED"
    replayed = deployed.deliver_events()
    assert replayed and all(r["stored"] is False for r in replayed)
    assert len(events.history(deployed.client("s3"), deployed.stack_outputs())) == 1


def test_replay_refuses_an_empty_window(deployed) -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(events.aws.UsageError, match="replay window is empty"):
        events.replay(deployed.client("events"), deployed.stack_outputs(), now, now)


@pytest.mark.parametrize("field", ["event_id", "kind", "at", "actor", "run"])
def test_the_emitter_s_own_fields_cannot_be_overridden(deployed, field: str) -> None:
    stack = deployed.stack_outputs()
    fields = {"model": deployed.names.model_function, "version": "1", field: "forged"}
    with pytest.raises(events.EventError, match=f"may not set {field}"):
        events.build_detail("deployed", fields)
    if field != "kind":  # a Python keyword argument cannot even name it twice
        emit = events.emitter(deployed.client("events"), stack, deployed.names.model_function)
        with pytest.raises(events.EventError, match=f"may not set {field}"):
            emit("deployed", **{k: v for k, v in fields.items() if k != "model"})
    assert deployed.deliver_events() == []


def test_cli_detail_cannot_forge_the_author_or_the_model(deployed, capsys) -> None:
    source = ["--outputs", str(deployed.outputs_file)]
    forged = json.dumps({"actor": "someone-else", "at": "1999-01-01T00:00:00+00:00"})
    assert events.main(["emit", "deployed", "--version", "1", "--detail", forged, *source]) == 2
    assert "may not set actor, at" in capsys.readouterr().err
    other_model = json.dumps({"model": "another-model"})
    assert (
        events.main(["emit", "deployed", "--version", "1", "--detail", other_model, *source]) == 2
    )
    assert "--detail may not set model" in capsys.readouterr().err
    assert deployed.deliver_events() == []


def _park(deployed, event: dict, reason: str) -> None:
    deployed.client("sqs").send_message(
        QueueUrl=deployed.outputs["event_dlq_url"],
        MessageBody=json.dumps(event),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
    )


def test_a_bad_event_on_the_bus_is_parked_and_history_state_and_rollback_still_work(
    deployed,
) -> None:
    _emit(deployed, "promoted", version="2", previous_version="1", strategy="alias")
    # What an older emitter (or anyone with events:PutEvents) may put on the bus.
    deployed.client("events").put_events(
        Entries=[
            {
                "EventBusName": deployed.outputs["event_bus"],
                "Source": deployed.outputs["event_source"],
                "DetailType": "promoted",
                "Detail": json.dumps({"model": deployed.names.model_function, "kind": "promoted"}),
            }
        ]
    )
    results = deployed.deliver_events()
    assert [r.get("dead_lettered", False) for r in results] == [False, True]

    history = events.history(deployed.client("s3"), deployed.stack_outputs())
    assert [e["detail"]["kind"] for e in history] == ["promoted"]
    assert events.fold(history)["previous_version"] == "1"
    parked = events.dead_letters(
        deployed.client("sqs"), deployed.client("events"), deployed.stack_outputs(), redrive=False
    )
    (entry,) = parked
    assert "a 'promoted' event needs detail.version" in entry["reason"]
    assert entry["action"] == "kept: still malformed"


def test_dlq_lists_and_redrives_events_once_they_fit(deployed, capsys) -> None:
    event_id = _emit(deployed, "deployed", version="3")
    (message,) = deployed.client("sqs").receive_message(
        QueueUrl=deployed.test_queue_url, MaxNumberOfMessages=10
    )["Messages"]
    deployed.client("sqs").delete_message(
        QueueUrl=deployed.test_queue_url, ReceiptHandle=message["ReceiptHandle"]
    )
    # Delivery failed (say the store was briefly unreachable): the event was parked.
    _park(deployed, json.loads(message["Body"]), "S3 said SlowDown (test)")
    source = ["--outputs", str(deployed.outputs_file)]

    assert events.main(["dlq", *source]) == 0
    assert "| deployed | 3 | S3 said SlowDown (test) | listed |" in capsys.readouterr().out
    assert events.main(["dlq", "--redrive", *source]) == 0
    assert "| redriven |" in capsys.readouterr().out

    (stored,) = deployed.history()
    assert stored["event_id"] == event_id
    assert events.main(["dlq", *source]) == 0
    assert "0 event(s)" in capsys.readouterr().out


class _FlakyBus:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def put_events(self, Entries):
        self.calls += 1
        if self.calls <= self.failures:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e-{self.calls}"}]}


def test_the_emitter_retries_a_refused_put_then_gives_up_loudly(deployed) -> None:
    naps: list[float] = []
    stack = deployed.stack_outputs()
    bus = _FlakyBus(failures=events.EMIT_ATTEMPTS - 1)
    emit = events.emitter(bus, stack, "m", sleep=naps.append)
    assert emit("deployed", version="1")
    assert bus.calls == events.EMIT_ATTEMPTS and len(naps) == events.EMIT_ATTEMPTS - 1

    down = _FlakyBus(failures=99)
    with pytest.raises(events.aws.ScriptError, match="InternalFailure"):
        events.emitter(down, stack, "m", sleep=naps.append)("deployed", version="1")
    assert down.calls == events.EMIT_ATTEMPTS


# --- the conversation with AWS, against in-process stand-ins (no moto: the unit tier) ------

STACK = outputs.StackOutputs(
    {
        "event_bus": "bus-x",
        "event_source": "source.x",
        "event_archive": "archive-" + "a" * 60,
        "event_store_bucket": "store-x",
        "event_dlq_url": "https://sqs/dlq-x",
        "model_function": "model-x",
    },
    "outputs.json",
)


def _accepting_bus() -> FakeClient:
    return FakeClient({"put_events": {"FailedEntryCount": 0, "Entries": [{"EventId": "eb-1"}]}})


def test_a_detail_carries_the_emitter_s_fields_and_the_caller_s(monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    before = dt.datetime.now(dt.UTC)
    detail = events.build_detail("deployed", {"model": "m", "version": 3, "note": None, "x": 1})
    assert set(detail) == {"event_id", "kind", "at", "actor", "run", "model", "version", "x"}
    assert detail["kind"] == "deployed"
    assert detail["actor"] == "octocat"
    assert detail["run"] == "77"
    # Versions are text in every reader of the history.
    assert detail["version"] == "3"
    assert detail["x"] == 1
    at = dt.datetime.fromisoformat(detail["at"])
    assert before <= at <= dt.datetime.now(dt.UTC)
    assert "." in detail["at"]  # microseconds: two events of one run stay ordered
    assert str(uuid.UUID(detail["event_id"])) == detail["event_id"]
    assert (
        events.build_detail("deployed", {"model": "m", "version": "3"})["event_id"]
        != (detail["event_id"])
    )


def test_outside_ci_the_actor_is_the_user_and_the_run_is_empty(monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    monkeypatch.delenv("GITHUB_RUN_ID", raising=False)
    monkeypatch.setenv("USER", "alice")
    detail = events.build_detail("deployed", {"model": "m", "version": "1"})
    assert (detail["actor"], detail["run"]) == ("alice", "")
    monkeypatch.delenv("USER")
    assert events.build_detail("deployed", {"model": "m", "version": "1"})["actor"] == "unknown"


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("launched", {"model": "m", "version": "1"}, "'launched' is not one of trained, "),
        ("deployed", {"model": "m", "version": "1", "at": "x"}, "may not set at: the emitter"),
        ("deployed", {"model": "m", "version": "1", "run": "1", "actor": "a"}, "set actor, run:"),
        ("deployed", {"model": "", "version": "1"}, "needs model, version; missing: model"),
        (
            "trained",
            {"model": "m", "version": "1"},
            "needs model, version, run_id; missing: run_id",
        ),
        ("deployed", {"model": "m", "version": "1", "x": {1, 2}}, "detail must be JSON"),
        (
            "promoted",
            {"model": "m", "version": "2", "previous_version": 1, "strategy": "alias"},
            "detail.previous_version must be a string, not int",
        ),
    ],
)
def test_a_detail_that_breaks_the_schema_is_refused_naming_why(kind, fields, message) -> None:
    with pytest.raises(events.EventError) as raised:
        events.build_detail(kind, fields)
    assert message in str(raised.value)
    assert raised.value.exit_code == 2


def test_emit_puts_one_entry_on_the_stack_s_bus_and_returns_the_detail_s_id() -> None:
    bus = _accepting_bus()
    event_id = events.emit(bus, STACK, "deployed", model="model-x", version="4")
    ((operation, request),) = bus.calls
    assert operation == "put_events"
    (entry,) = request["Entries"]
    assert entry["EventBusName"] == "bus-x"
    assert entry["Source"] == "source.x"
    assert entry["DetailType"] == "deployed"
    detail = json.loads(entry["Detail"])
    assert detail["event_id"] == event_id
    assert (detail["model"], detail["version"]) == ("model-x", "4")
    # Canonical JSON: the same event is the same text.
    assert entry["Detail"] == json.dumps(detail, sort_keys=True)


@pytest.mark.parametrize(
    "response",
    [
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "Throttled", "ErrorMessage": "slow"}]},
        {"FailedEntryCount": 0, "Entries": [{}]},
    ],
)
def test_an_entry_the_bus_refuses_is_an_error(response) -> None:
    bus = FakeClient({"put_events": response})
    with pytest.raises(aws.ScriptError) as raised:
        events.emit(bus, STACK, "deployed", model="model-x", version="4")
    assert type(raised.value) is aws.ScriptError
    assert "bus bus-x refused the 'deployed' event" in str(raised.value)
    code = response["Entries"][0].get("ErrorCode")
    assert (f"{code}: slow" if code else "?: ") in str(raised.value)


def test_an_aws_error_on_put_says_what_was_being_emitted() -> None:
    bus = FakeClient({"put_events": client_error("AccessDeniedException", "PutEvents")})
    with pytest.raises(aws.AccessError, match="emitting 'deployed' to bus bus-x"):
        events.emit(bus, STACK, "deployed", model="model-x", version="4")


def test_the_emitter_refuses_a_stack_without_a_bus_before_anything_is_sent() -> None:
    for missing in ("event_bus", "event_source"):
        values = {k: v for k, v in STACK.values.items() if k != missing}
        bus = _accepting_bus()
        with pytest.raises(aws.UsageError, match=repr(missing)):
            events.emitter(bus, outputs.StackOutputs(values, "o.json"), "model-x")
        assert bus.calls == []


def test_the_emitter_binds_the_model_and_backs_off_between_tries() -> None:
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "E"}]}
    accepted = {"FailedEntryCount": 0, "Entries": [{"EventId": "eb-1"}]}
    bus = FakeClient({"put_events": [refused, refused, accepted]})
    slept: list[float] = []
    emit = events.emitter(bus, STACK, "model-x", sleep=slept.append)
    event_id = emit("deployed", version="5")
    assert slept == [events.EMIT_BACKOFF_SECONDS, 2 * events.EMIT_BACKOFF_SECONDS]
    assert len(bus.calls) == 3
    detail = json.loads(bus.arguments("put_events")[-1]["Entries"][0]["Detail"])
    assert (detail["model"], detail["event_id"]) == ("model-x", event_id)


def test_the_emitter_gives_up_after_its_attempts_and_never_retries_bad_input() -> None:
    refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "E"}]}
    bus = FakeClient({"put_events": refused})
    slept: list[float] = []
    emit = events.emitter(bus, STACK, "model-x", attempts=2, sleep=slept.append)
    with pytest.raises(aws.ScriptError, match="refused"):
        emit("deployed", version="5")
    assert len(bus.calls) == 2
    assert slept == [events.EMIT_BACKOFF_SECONDS]
    with pytest.raises(events.EventError):
        emit("trained", version="5")
    assert len(bus.calls) == 2
    assert events.EMIT_ATTEMPTS == 3
    default = events.emitter(bus, STACK, "model-x", sleep=slept.append)
    with pytest.raises(aws.ScriptError):
        default("deployed", version="5")
    assert len(bus.calls) == 2 + events.EMIT_ATTEMPTS


def _stored(event_id: str, kind: str, at: str | None, *, detail_id: str | None = None):
    detail = {"kind": kind, "version": "1"}
    if at is not None:
        detail["at"] = at
    if detail_id is not None:
        detail["event_id"] = detail_id
    # EventBridge's own time, a little after the emitter's `at`.
    return {"id": event_id, "time": "2026-01-02T12:00:00Z", "detail": detail}


def _store(objects: dict[str, dict]) -> FakeClient:
    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self) -> bytes:
            return self.data

    return FakeClient(
        {"get_object": lambda Bucket, Key: {"Body": Body(json.dumps(objects[Key]).encode())}},
        {"list_objects_v2": lambda **_: [{"Contents": [{"Key": k} for k in objects]}, {}]},
    )


def test_history_reads_the_model_s_prefix_orders_by_time_and_keeps_each_event_once() -> None:
    objects = {
        "events/model-x/b.json": _stored("eb-2", "promoted", "2026-01-02T00:00:00", detail_id="b"),
        # No `at`: ordered by EventBridge's time.
        "events/model-x/a.json": _stored("eb-1", "deployed", "2026-01-01T00:00:00", detail_id="a"),
        # A replay re-ids the event; the detail's id says it is the one above.
        "events/model-x/a2.json": _stored("eb-9", "deployed", "2026-01-01T00:00:00", detail_id="a"),
        "events/model-x/c.json": _stored("eb-3", "released", None),
    }
    s3 = _store(objects)
    listed = events.history(s3, STACK)
    assert [e["id"] for e in listed] == ["eb-1", "eb-2", "eb-3"]
    assert s3.calls[0] == ("list_objects_v2", {"Bucket": "store-x", "Prefix": "events/model-x/"})
    assert s3.arguments("get_object")[0] == {"Bucket": "store-x", "Key": "events/model-x/b.json"}
    events.history(s3, STACK, "other")
    assert s3.arguments("list_objects_v2")[-1]["Prefix"] == "events/other/"


def test_history_orders_events_of_the_same_moment_by_their_id() -> None:
    objects = {
        "k1": _stored("eb-2", "deployed", "2026-01-01T00:00:00"),
        "k2": _stored("eb-1", "deployed", "2026-01-01T00:00:00"),
    }
    assert [e["id"] for e in events.history(_store(objects), STACK)] == ["eb-1", "eb-2"]


def test_a_store_that_cannot_be_read_says_which_object() -> None:
    s3 = FakeClient(
        {"get_object": client_error("AccessDenied", "GetObject")},
        {"list_objects_v2": [{"Contents": [{"Key": "events/model-x/a.json"}]}]},
    )
    with pytest.raises(aws.AccessError, match=r"reading events/model-x/a\.json from store-x"):
        events.history(s3, STACK)


def _event(kind: str, version: str, id_: str = "x", **detail) -> dict:
    return {"id": id_, "time": "T0", "detail": {"kind": kind, "version": version, **detail}}


def test_fold_rebuilds_live_previous_candidate_releases_and_runs() -> None:
    state = events.fold(
        [
            _event("trained", "1", run_id="r1"),
            _event("deployed", "1", at="A1"),
            _event("trained", "2", run_id="r2"),
            _event("deployed", "2"),
            _event("canary-started", "2", previous_version="1"),
            _event("promoted", "2", previous_version="1"),
            _event("released", "2", api_version="v1", stage="v1", deployment_id="d1", at="A9"),
        ]
    )
    assert state == {
        "live_version": "2",
        "previous_version": "1",
        "candidate_version": "2",
        "releases": {"v1": {"stage": "v1", "deployment_id": "d1", "model_version": "2"}},
        "runs": {"1": "r1", "2": "r2"},
        "last_event": "released at A9",
        "live_run": "r2",
    }


def test_fold_of_a_rollback_serves_its_target_and_forgets_the_previous_version() -> None:
    state = events.fold(
        [
            _event("deployed", "1"),
            _event("promoted", "2", previous_version="1"),
            _event("rolled-back", "2", to_version="1", from_version="2"),
        ]
    )
    assert (state["live_version"], state["previous_version"]) == ("1", None)
    assert state["last_event"] == "rolled-back at T0"
    assert state["live_run"] is None


def test_fold_of_nothing_knows_nothing() -> None:
    assert events.fold([]) == {
        "live_version": None,
        "previous_version": None,
        "candidate_version": None,
        "releases": {},
        "runs": {},
        "last_event": None,
        "live_run": None,
    }


def test_a_canary_alone_does_not_make_a_version_live() -> None:
    state = events.fold([_event("canary-started", "3", previous_version="2")])
    assert (state["live_version"], state["candidate_version"]) == (None, "3")
    later = events.fold([_event("deployed", "1"), _event("deployed", "2")])
    assert (later["live_version"], later["candidate_version"]) == ("1", "2")


START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def _replaying(*states: str) -> FakeClient:
    return FakeClient(
        {
            "describe_archive": {"ArchiveArn": "arn:archive"},
            "describe_event_bus": {"Arn": "arn:bus"},
            "start_replay": {},
            "describe_replay": [{"State": s, "StateReason": "why"} for s in states],
        }
    )


def test_replay_starts_from_the_archive_onto_the_bus_and_polls_until_it_ends(monkeypatch) -> None:
    monkeypatch.setattr(events.time, "time", lambda: 1700000000.9)
    client = _replaying("STARTING", "RUNNING", "COMPLETED")
    slept: list[float] = []
    result = events.replay(client, STACK, START, END, poll_seconds=7, sleep=slept.append)
    name = "archive-" + "a" * 32 + "-1700000000"
    assert result == {"replay": name, "state": "COMPLETED", "start": START, "end": END}
    assert client.operations() == [
        "describe_archive",
        "describe_event_bus",
        "start_replay",
        "describe_replay",
        "describe_replay",
        "describe_replay",
    ]
    assert client.arguments("describe_archive") == [{"ArchiveName": STACK.values["event_archive"]}]
    assert client.arguments("describe_event_bus") == [{"Name": "bus-x"}]
    assert client.arguments("start_replay") == [
        {
            "ReplayName": name,
            "EventSourceArn": "arn:archive",
            "EventStartTime": START,
            "EventEndTime": END,
            "Destination": {"Arn": "arn:bus"},
        }
    ]
    assert client.arguments("describe_replay")[0] == {"ReplayName": name}
    assert slept == [7, 7]


def test_a_replay_that_fails_or_never_ends_is_an_error() -> None:
    with pytest.raises(aws.ScriptError, match="ended FAILED: why"):
        events.replay(_replaying("FAILED"), STACK, START, END, sleep=lambda _: None)
    client = _replaying("RUNNING")
    slept: list[float] = []
    with pytest.raises(aws.ScriptError, match=r"still RUNNING after 30s"):
        events.replay(
            client, STACK, START, END, poll_seconds=10, timeout_seconds=30, sleep=slept.append
        )
    assert slept == [10, 10, 10]
    cancelled = _replaying("CANCELLED")
    with pytest.raises(aws.ScriptError, match="ended CANCELLED"):
        events.replay(cancelled, STACK, START, END, sleep=lambda _: None)
    assert cancelled.operations().count("describe_replay") == 1


def test_an_empty_window_is_refused_before_any_call() -> None:
    client = _replaying("COMPLETED")
    for end in (START, START - dt.timedelta(seconds=1)):
        with pytest.raises(aws.UsageError, match="replay window is empty"):
            events.replay(client, STACK, START, end)
    assert client.calls == []


def _letter(message_id: str, body: object, **attributes: str) -> dict:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "MessageAttributes": {k: {"StringValue": v} for k, v in attributes.items()},
    }


def _valid(kind: str = "deployed", version: str = "3", source: str | None = "src.y") -> dict:
    detail = {"kind": kind, "version": version, "model": "model-x", "event_id": "e-1"}
    detail.update(dict.fromkeys(events.KINDS[kind], "1"))
    event = {"id": "eb-1", "time": "2026-01-01T00:00:00Z", "detail": detail}
    if source:
        event["source"] = source
    return event


def test_the_dead_letter_queue_is_listed_with_each_reason_and_left_as_it_is() -> None:
    sqs = FakeClient(
        {
            "receive_message": [
                {
                    "Messages": [
                        _letter("m1", _valid(), reason="too big"),
                        _letter("m2", "{not json", ErrorMessage="lambda failed"),
                        _letter("m3", {"id": "?"}, ERROR_MESSAGE="bus failed"),
                        _letter("m4", _valid("promoted", "4")),
                    ]
                },
                {"Messages": [_letter("m1", _valid())]},
            ]
        }
    )
    bus = _accepting_bus()
    report = events.dead_letters(sqs, bus, STACK, redrive=False)
    assert [(r["message_id"], r["reason"], r["action"]) for r in report] == [
        ("m1", "too big", "listed"),
        ("m2", "lambda failed", "kept: still malformed"),
        ("m3", "bus failed", "kept: still malformed"),
        ("m4", "no reason recorded", "listed"),
    ]
    assert (report[0]["kind"], report[0]["version"]) == ("deployed", "3")
    assert (report[1]["kind"], report[1]["version"]) == ("?", "?")
    assert "problem" in report[2] and "problem" not in report[0]
    assert bus.calls == []
    assert sqs.operations() == ["receive_message", "receive_message"]
    assert sqs.arguments("receive_message")[0] == {
        "QueueUrl": "https://sqs/dlq-x",
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 0,
        # Inspecting hides nothing from the next reader.
        "VisibilityTimeout": 0,
        "MessageAttributeNames": ["All"],
    }


def test_redrive_puts_each_valid_event_back_and_deletes_only_what_the_bus_took() -> None:
    sqs = FakeClient(
        {
            "receive_message": [
                {
                    "Messages": [
                        _letter("m1", _valid()),
                        _letter("m2", _valid("promoted", "4", source=None)),
                        _letter("m3", "{not json"),
                    ]
                },
                {},
            ],
            "delete_message": {},
        }
    )
    bus = FakeClient(
        {
            "put_events": [
                {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]},
                {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "E"}]},
            ]
        }
    )
    report = events.dead_letters(sqs, bus, STACK, redrive=True)
    assert [r["action"] for r in report] == [
        "redriven",
        "kept: the bus refused it",
        "kept: still malformed",
    ]
    assert sqs.arguments("receive_message")[0]["VisibilityTimeout"] == 60
    first, second = (call["Entries"] for call in bus.arguments("put_events"))
    assert first == [
        {
            "EventBusName": "bus-x",
            "Source": "src.y",
            "DetailType": "deployed",
            "Detail": json.dumps(_valid()["detail"], sort_keys=True),
        }
    ]
    # An event that lost its source gets the stack's.
    assert second[0]["Source"] == "source.x"
    assert sqs.arguments("delete_message") == [
        {"QueueUrl": "https://sqs/dlq-x", "ReceiptHandle": "rh-m1"}
    ]


def test_the_dead_letter_queue_is_read_until_nothing_new_and_at_most_the_limit() -> None:
    batches = [{"Messages": [_letter(f"m{i}", _valid()) for i in range(n, n + 3)]} for n in (0, 3)]
    sqs = FakeClient({"receive_message": [*batches, {"Messages": []}]})
    assert len(events.dead_letters(sqs, _accepting_bus(), STACK, redrive=False)) == 6
    assert len(sqs.calls) == 3
    sqs = FakeClient(
        {"receive_message": [{"Messages": [_letter(f"m{i}", _valid()) for i in range(10)]}]}
    )
    assert len(events.dead_letters(sqs, _accepting_bus(), STACK, redrive=False, limit=4)) == 4
    assert len(sqs.calls) == 1


def test_timestamps_are_iso_and_read_as_utc_when_naive() -> None:
    assert events._timestamp("2026-01-01T10:00:00") == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    aware = events._timestamp("2026-01-01T10:00:00+02:00")
    assert aware.utcoffset() == dt.timedelta(hours=2)
    with pytest.raises(argparse.ArgumentTypeError, match="'yesterday' is not an ISO 8601 time"):
        events._timestamp("yesterday")


def test_detail_must_be_a_json_object() -> None:
    assert events._detail('{"a": 1}') == {"a": 1}
    with pytest.raises(argparse.ArgumentTypeError, match="--detail is not JSON"):
        events._detail("{")
    with pytest.raises(argparse.ArgumentTypeError, match="--detail must be a JSON object"):
        events._detail("[1]")


def test_the_history_table_shows_each_event_s_own_fields_and_author() -> None:
    table = events._history_table(
        [
            {
                "time": "T",
                "detail": {
                    "kind": "promoted",
                    "version": "2",
                    "model": "m",
                    "event_id": "e",
                    "run": "9",
                    "actor": "octocat",
                    "strategy": "alias",
                    "previous_version": "1",
                },
            }
        ]
    )
    header, _, row = table.splitlines()
    assert header == "| at | event | version | details | actor |"
    assert row == "| T | promoted | 2 | previous_version=1, strategy=alias | octocat |"


@pytest.fixture
def cli_clients(monkeypatch, tmp_path):
    """`main` with the stack's outputs in a file and stand-ins for every client it makes."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**STACK.values, "region": "eu-west-3"}))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    clients = {
        "events": _replaying("COMPLETED"),
        "s3": _store(
            {
                "k1": _event("deployed", "1", "e1", at="A1"),
                "k2": _event("promoted", "2", "e2", at="A2", previous_version="1"),
            }
        ),
        "sqs": FakeClient(
            {
                "receive_message": {"Messages": [_letter("m1", _valid())]},
                "delete_message": client_error("AccessDenied", "DeleteMessage"),
            }
        ),
    }
    clients["events"].answers["put_events"] = _accepting_bus().answers["put_events"]
    made: list[tuple[str, str | None]] = []

    def client(service: str, region: str | None = None) -> FakeClient:
        made.append((service, region))
        return clients[service]

    monkeypatch.setattr(aws, "client", client)
    return {"outputs": str(path), "summary": summary, "made": made, **clients}


def test_cli_emit_prints_the_event_id_and_notes_it_in_the_step_summary(cli_clients, capsys) -> None:
    code = events.main(
        [
            *("emit", "deployed", "--version", "7", "--detail", '{"api_url": "u"}'),
            *("--outputs", cli_clients["outputs"]),
        ]
    )
    assert code == 0
    event_id = capsys.readouterr().out.strip()
    (request,) = cli_clients["events"].arguments("put_events")
    detail = json.loads(request["Entries"][0]["Detail"])
    assert detail["event_id"] == event_id
    assert (detail["model"], detail["version"], detail["api_url"]) == ("model-x", "7", "u")
    assert cli_clients["made"] == [("events", "eu-west-3")]
    assert cli_clients["summary"].read_text() == f"Event `deployed` emitted: `{event_id}`\n"


def test_cli_history_and_state_as_tables_and_json(cli_clients, capsys) -> None:
    source = ["--outputs", cli_clients["outputs"]]
    assert events.main(["history", *source]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| at | event | version | details | actor |"
    assert [line.split(" | ")[1] for line in table[2:]] == ["deployed", "promoted"]
    assert events.main(["history", "--format", "json", *source]) == 0
    assert [e["detail"]["kind"] for e in json.loads(capsys.readouterr().out)] == [
        "deployed",
        "promoted",
    ]
    assert events.main(["state", *source]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "| field | value |"
    assert "| live_version | 2 |" in rows
    assert "| previous_version | 1 |" in rows
    assert events.main(["state", "--format", "json", "--model", "other", *source]) == 0
    assert json.loads(capsys.readouterr().out)["live_version"] == "2"
    assert cli_clients["s3"].arguments("list_objects_v2")[-1]["Prefix"] == "events/other/"
    assert {service for service, _ in cli_clients["made"]} == {"s3"}


def test_cli_dlq_reports_the_parked_events(cli_clients, capsys) -> None:
    assert events.main(["dlq", "--outputs", cli_clients["outputs"]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Dead-letter queue: 1 event(s)\n\n| message | event | version |")
    assert "| m1 | deployed | 3 | no reason recorded | listed |" in out
    assert cli_clients["summary"].read_text() + "\n" == out
    assert cli_clients["events"].arguments("put_events") == []
    assert events.main(["dlq", "--redrive", "--outputs", cli_clients["outputs"]]) == 1
    # Put back on the bus, but the queue refuses the delete: the verb says which message.
    assert len(cli_clients["events"].arguments("put_events")) == 1
    assert "events: deleting m1 from https://sqs/dlq-x: access denied" in capsys.readouterr().err


def test_cli_replay_waits_for_the_replay_and_notes_it(cli_clients) -> None:
    code = events.main(
        [
            *("replay", "--start", "2026-01-01T00:00:00", "--end", "2026-01-02T00:00:00"),
            *("--poll-seconds", "0", "--outputs", cli_clients["outputs"]),
        ]
    )
    assert code == 0
    (request,) = cli_clients["events"].arguments("start_replay")
    assert request["EventStartTime"] == START
    assert request["EventEndTime"] == END
    note = cli_clients["summary"].read_text()
    assert note.startswith(f"Replay `{request['ReplayName']}` of {START} to {END}: COMPLETED")


@pytest.mark.parametrize("field", ["model", "version"])
def test_cli_detail_may_not_name_the_model_or_version(cli_clients, capsys, field) -> None:
    code = events.main(
        [
            *("emit", "deployed", "--version", "7", "--detail", json.dumps({field: "x"})),
            *("--outputs", cli_clients["outputs"]),
        ]
    )
    assert code == 2
    assert f"--detail may not set {field}" in capsys.readouterr().err
    assert cli_clients["events"].calls == []


def test_replay_polls_every_ten_seconds_for_at_most_an_hour_by_default() -> None:
    slept: list[float] = []
    with pytest.raises(aws.ScriptError, match="still RUNNING after 3600s"):
        events.replay(_replaying("RUNNING"), STACK, START, END, sleep=slept.append)
    assert set(slept) == {10.0}
    assert len(slept) == 360


@pytest.mark.parametrize(
    ("operation", "doing"),
    [
        ("describe_archive", "describing archive archive-"),
        ("describe_event_bus", "describing bus bus-x"),
        ("start_replay", "starting replay archive-"),
        ("describe_replay", "describing replay archive-"),
    ],
)
def test_a_replay_that_aws_refuses_says_what_it_was_doing(operation, doing) -> None:
    client = _replaying("COMPLETED")
    client.answers[operation] = client_error("AccessDeniedException")
    with pytest.raises(aws.AccessError, match=doing):
        events.replay(client, STACK, START, END, sleep=lambda _: None)


def test_the_queue_is_read_in_batches_until_the_limit_is_reached() -> None:
    batches = [
        {"Messages": [_letter(f"m{i}", _valid()) for i in range(n, n + 2)]} for n in (0, 2, 4)
    ]
    sqs = FakeClient({"receive_message": batches})
    assert len(events.dead_letters(sqs, _accepting_bus(), STACK, redrive=False, limit=4)) == 4
    assert len(sqs.calls) == 2
    many = {"Messages": [_letter(f"m{i}", _valid()) for i in range(150)]}
    listed = events.dead_letters(FakeClient({"receive_message": many}), None, STACK, redrive=False)
    assert len(listed) == 100


def test_a_parked_event_s_reason_may_be_empty_and_its_problem_is_named() -> None:
    letter = _letter("m1", {"id": "bad id!", "time": "t", "detail": {}})
    letter["MessageAttributes"] = {"reason": {"DataType": "String"}}
    sqs = FakeClient({"receive_message": [{"Messages": [letter]}, {}]})
    (entry,) = events.dead_letters(sqs, None, STACK, redrive=False)
    assert entry["reason"] == ""
    assert entry["problem"] == "event field 'id' is missing or invalid: 'bad id!'"


def test_a_redrive_the_bus_refuses_says_which_message() -> None:
    sqs = FakeClient({"receive_message": [{"Messages": [_letter("m1", _valid())]}, {}]})
    bus = FakeClient({"put_events": client_error("AccessDeniedException", "PutEvents")})
    with pytest.raises(aws.AccessError, match="redriving m1 to bus bus-x"):
        events.dead_letters(sqs, bus, STACK, redrive=True)


def test_a_queue_that_cannot_be_read_says_which() -> None:
    sqs = FakeClient({"receive_message": client_error("AccessDenied", "ReceiveMessage")})
    with pytest.raises(aws.AccessError, match="reading dead-letter queue https://sqs/dlq-x"):
        events.dead_letters(sqs, None, STACK, redrive=False)


def test_a_refused_entry_without_a_message_says_only_its_code() -> None:
    bus = FakeClient({"put_events": {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "E"}]}})
    with pytest.raises(aws.ScriptError) as raised:
        events.emit(bus, STACK, "deployed", model="model-x", version="4")
    assert str(raised.value).endswith("refused the 'deployed' event: E: ")


def test_the_history_table_falls_back_on_eventbridge_s_time_and_no_author() -> None:
    table = events._history_table(
        [{"time": "T9", "detail": {"kind": "deployed", "version": "1", "at": "A", "x": "1"}}]
    )
    assert table.splitlines()[2] == "| A | deployed | 1 | x=1 |  |"
    table = events._history_table([{"time": "T9", "detail": {"kind": "deployed", "version": "1"}}])
    assert table.splitlines()[2] == "| T9 | deployed | 1 |  |  |"


def test_cli_reads_its_arguments_and_asks_aws_in_the_stack_s_region(
    cli_clients, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["events", "state", "--outputs", cli_clients["outputs"]])
    assert events.main() == 0
    assert "| live_version | 2 |" in capsys.readouterr().out
    assert cli_clients["made"] == [("s3", "eu-west-3")]
    assert events.main(["dlq", "--outputs", cli_clients["outputs"]]) == 0
    assert cli_clients["made"][1:] == [("sqs", "eu-west-3"), ("events", "eu-west-3")]


REPLAY_WINDOW = ["replay", "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ([], ["emit", "history", "state", "replay", "dlq"]),
        (["emit", "--version", "3"], ["kind"]),
        (["emit", "bogus", "--version", "3"], ["bogus", *events.KINDS]),
        (["emit", next(iter(events.KINDS))], ["--version"]),
        (["emit", next(iter(events.KINDS)), "--version", "3", "--detail", "[1]"], ["--detail"]),
        (["history", "--format", "xml"], ["xml", "table", "json"]),
        (["state", "--format", "xml"], ["xml", "table", "json"]),
        (["replay", "--end", "2026-01-01T00:00:00Z"], ["--start"]),
        (["replay", "--start", "2026-01-01T00:00:00Z"], ["--end"]),
        (
            [*REPLAY_WINDOW, "--poll-seconds", "soon"],
            ["--poll-seconds", "soon"],
        ),
    ],
)
def test_bad_command_lines_exit_2_naming_the_input_and_what_is_valid(
    argv: list[str], names: list[str], capsys
) -> None:
    assert events.main([*argv, "--outputs", "missing.json"]) == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err, name


def test_history_and_state_default_to_a_table_and_replay_polls_every_ten_seconds() -> None:
    source = ["--outputs", "outputs.json"]
    for verb in ("history", "state"):
        assert events.parse_args([verb, *source]).format == "table"
    replay = events.parse_args([*REPLAY_WINDOW, *source])
    assert replay.poll_seconds == 10.0
    emit = events.parse_args(["emit", next(iter(events.KINDS)), "--version", "3", *source])
    assert emit.detail == {}
