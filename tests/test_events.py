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
