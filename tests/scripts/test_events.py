"""Lifecycle events: emitted to the bus, stored once each, listed in order, replayed."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from infra import naming
from scripts import events
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

    def put_events(self, Entries):  # noqa: N803 - boto3's argument name
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
