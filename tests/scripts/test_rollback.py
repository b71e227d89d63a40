"""Rollback: the alias serves the previous version at 100%, in-flight deployments stop."""

from __future__ import annotations

import io
import json
import sys

import pytest
from botocore.stub import Stubber

from scripts import events, promote, rollback
from scripts.lib import aws, outputs
from scripts.lib.progress import Progress
from scripts.lib.promotion import ConcurrentChange
from tests.fake_aws import FakeClient, LambdaAlias, client_error
from tests.lambda_revisions import _alias_revisions  # noqa: F401 - the fixture alias_revisions
from tests.progress_lines import assert_climbs_one_step_at_a_time_to_its_total


def _source(deployed) -> list[str]:
    return ["--outputs", str(deployed.outputs_file)]


def test_rollback_after_a_promotion_returns_to_the_recorded_previous_version(
    deployed, capsys
) -> None:
    deployed.publish_candidate()
    promote_args = [*_source(deployed), "--strategy", "alias", "--steps", "100"]
    assert promote.main([*promote_args, "--bake-seconds", "0"]) == 0
    assert deployed.alias_state() == ("2", {})
    deployed.deliver_events()

    assert rollback.main([*_source(deployed), "--reason", "bad scores in review"]) == 0

    captured = capsys.readouterr()
    assert "| target chosen by | the last promotion in the event store |" in captured.out
    assert "serves version 1 at 100% (was version 2 at 100%)" in captured.err
    assert deployed.alias_state() == ("1", {})
    history = deployed.history()
    assert [e["kind"] for e in history] == ["canary-started", "promoted", "rolled-back"]
    # The event is about the version that was taken out of service.
    assert (history[-1]["version"], history[-1]["from_version"]) == ("2", "2")
    assert history[-1]["to_version"] == "1"
    assert history[-1]["reason"] == "bad scores in review"
    assert history[-1]["stopped_deployments"] == []
    state = events.fold(events.history(deployed.client("s3"), deployed.stack_outputs()))
    assert (state["live_version"], state["previous_version"]) == ("1", None)

    # Nothing left to roll back to without --to: the rollback consumed the promotion.
    assert rollback.main(_source(deployed)) == 2
    assert "pass --to VERSION (published: 1, 2)" in capsys.readouterr().err


def test_a_half_way_alias_goes_back_to_its_primary_version(deployed, capsys) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias("1", {candidate: 0.5})

    assert rollback.main(_source(deployed)) == 0

    assert "alias live's primary version (a shift is half-way)" in capsys.readouterr().out
    assert deployed.alias_state() == ("1", {})
    (event,) = deployed.history()
    assert (event["kind"], event["from_version"], event["to_version"]) == ("rolled-back", "2", "1")
    assert event["version"] == "2"


def test_explicit_to_version_moves_the_alias(deployed) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias(candidate, {})

    assert rollback.main([*_source(deployed), "--to", "1"]) == 0
    assert deployed.alias_state() == ("1", {})
    assert [e["kind"] for e in deployed.history()] == ["rolled-back"]


def test_already_on_the_version_is_a_no_op(deployed, capsys) -> None:
    assert rollback.main([*_source(deployed), "--to", "1"]) == 0
    assert "already serves version 1 at 100%; nothing to do" in capsys.readouterr().err
    assert deployed.alias_state() == ("1", {})
    assert deployed.deliver_events() == []


def test_no_target_known_exits_2_asking_for_to(deployed, capsys) -> None:
    deployed.publish_candidate()
    assert rollback.main(_source(deployed)) == 2
    err = capsys.readouterr().err
    assert "records no promotion since the last rollback; pass --to VERSION" in err
    assert deployed.alias_state() == ("1", {})
    assert deployed.deliver_events() == []


def test_unknown_to_version_exits_2_and_changes_nothing(deployed, capsys) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias("1", {candidate: 0.1})
    assert rollback.main([*_source(deployed), "--to", "9"]) == 2
    err = capsys.readouterr().err
    assert "--to 9: function" in err
    assert "has no published version '9' (published: 1, 2)" in err
    assert deployed.alias_state() == ("1", {"2": 0.1})
    assert deployed.deliver_events() == []


def test_missing_outputs_file_exits_2(tmp_path, capsys) -> None:
    assert rollback.main(["--outputs", str(tmp_path / "nope.json")]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err


def test_in_flight_codedeploy_deployments_are_stopped_with_auto_rollback(deployed) -> None:
    candidate = deployed.publish_candidate()
    # CodeDeploy was 10% into its shift when someone asked for the rollback.
    deployed.set_alias("1", {candidate: 0.1})
    codedeploy = aws.client("codedeploy")
    group = {
        "applicationName": deployed.outputs["codedeploy_application"],
        "deploymentGroupName": deployed.outputs["codedeploy_group"],
    }
    emitted: list = []
    with Stubber(codedeploy) as stub:
        stub.add_response(
            "list_deployments",
            {"deployments": ["d-1"]},
            {**group, "includeOnlyStatuses": ["Created", "Queued", "InProgress", "Ready"]},
        )
        stub.add_response(
            "stop_deployment",
            {"status": "Pending", "statusMessage": "stopping"},
            {"deploymentId": "d-1", "autoRollbackEnabled": True},
        )
        result = rollback.rollback(
            deployed.client("lambda"),
            codedeploy,
            function=deployed.names.model_function,
            alias="live",
            to_version="1",
            application=group["applicationName"],
            group=group["deploymentGroupName"],
            emit=lambda kind, **fields: emitted.append((kind, fields)),
        )
        stub.assert_no_pending_responses()

    assert result.stopped == ["d-1"] and result.changed
    assert deployed.alias_state() == ("1", {})
    ((kind, fields),) = emitted
    assert kind == "rolled-back"
    assert fields["stopped_deployments"] == ["d-1"]
    assert (fields["from_version"], fields["to_version"]) == ("2", "1")


def test_without_a_codedeploy_client_only_the_alias_moves(deployed) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias(candidate, {})
    result = rollback.rollback(
        deployed.client("lambda"),
        None,
        function=deployed.names.model_function,
        alias="live",
        to_version="1",
    )
    assert result.stopped == [] and result.from_version == "2"
    assert deployed.alias_state() == ("1", {})


def test_a_rollback_racing_another_move_re_reads_and_still_wins(deployed, alias_revisions) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias("1", {candidate: 0.5})
    lambda_client = deployed.client("lambda")
    moved = {"done": False}

    def move_in_between(**_: object) -> None:
        # Between the rollback's read and its write, a promotion step moves the alias.
        if not moved["done"]:
            moved["done"] = True
            deployed.set_alias("1", {candidate: 0.9})

    lambda_client.meta.events.register("before-call.lambda.UpdateAlias", move_in_between)
    result = rollback.rollback(
        lambda_client,
        None,
        function=deployed.names.model_function,
        alias=deployed.names.model_alias,
        to_version="1",
    )

    assert result.changed and deployed.alias_state() == ("1", {})
    assert moved["done"]


# --- the conversation with AWS, against in-process stand-ins (no moto: the unit tier) ------


def _codedeploy(*in_flight: str) -> FakeClient:
    return FakeClient(
        {"stop_deployment": {"status": "Pending"}},
        {"list_deployments": [{"deployments": list(in_flight)}]},
    )


def _rollback(alias: LambdaAlias, to: str, codedeploy=None, **kwargs) -> rollback.RollbackResult:
    emitted: list[tuple[str, dict]] = []
    kwargs.setdefault("progress", Progress("rollback", total=2, stream=io.StringIO()))
    result = rollback.rollback(
        alias.client,
        codedeploy,
        function="model-x",
        alias="live",
        to_version=to,
        emit=lambda kind, **fields: emitted.append((kind, fields)),
        **kwargs,
    )
    result.emitted = emitted  # type: ignore[attr-defined]
    return result


def test_rollback_stops_in_flight_deployments_then_moves_the_alias_once() -> None:
    alias = LambdaAlias("2", {"3": 0.25})
    codedeploy = _codedeploy("d-1", "d-2")
    result = _rollback(alias, "2", codedeploy, application="app", group="grp", reason="bad canary")
    assert codedeploy.calls == [
        (
            "list_deployments",
            {
                "applicationName": "app",
                "deploymentGroupName": "grp",
                "includeOnlyStatuses": ["Created", "Queued", "InProgress", "Ready"],
            },
        ),
        ("stop_deployment", {"deploymentId": "d-1", "autoRollbackEnabled": True}),
        ("stop_deployment", {"deploymentId": "d-2", "autoRollbackEnabled": True}),
    ]
    # Read again after the stops (CodeDeploy moves the alias), then one locked move.
    assert alias.client.operations() == [
        "get_function",
        "get_alias",
        "get_alias",
        "update_alias",
    ]
    assert alias.moves == [("2", {}, "r0")]
    assert (alias.primary, alias.weights) == ("2", {})
    assert result.changed is True
    assert (result.function, result.alias) == ("model-x", "live")
    assert result.stopped == ["d-1", "d-2"]
    # The version taken out of service is the one that had the weight.
    assert (result.from_version, result.to_version) == ("3", "2")
    assert result.emitted == [
        (
            "rolled-back",
            {
                "version": "3",
                "from_version": "3",
                "to_version": "2",
                "reason": "bad canary",
                "stopped_deployments": ["d-1", "d-2"],
            },
        )
    ]
    assert result.message == (
        "rolled back: alias live of model-x serves version 2 at 100% "
        "(was version 2 at 75%, version 3 at 25%)"
    )


def test_rollback_away_from_the_primary_names_it_as_the_version_left() -> None:
    alias = LambdaAlias("3")
    result = _rollback(alias, "1")
    assert (alias.primary, alias.weights) == ("1", {})
    assert (result.from_version, result.to_version, result.changed) == ("3", "1", True)
    assert result.emitted[0][1]["reason"] == "manual rollback"
    assert result.stopped == []
    # Without a CodeDeploy group nothing is stopped and the alias is read once.
    assert alias.client.operations().count("get_alias") == 1


def test_a_rollback_without_a_group_never_asks_codedeploy() -> None:
    codedeploy = _codedeploy("d-1")
    _rollback(LambdaAlias("3"), "1", codedeploy, application="app")
    _rollback(LambdaAlias("3"), "1", codedeploy, group="grp")
    assert codedeploy.calls == []


def test_already_on_the_version_changes_nothing_and_records_nothing() -> None:
    alias = LambdaAlias("2")
    result = _rollback(alias, "2", _codedeploy(), application="app", group="grp")
    assert alias.moves == []
    assert result.changed is False
    assert (result.function, result.alias) == ("model-x", "live")
    assert (result.from_version, result.to_version) == ("2", "2")
    assert result.emitted == []
    assert result.message == (
        "alias live of model-x already serves version 2 at 100%; nothing to do"
    )


def test_a_stopped_deployment_always_ends_in_an_explicit_move() -> None:
    alias = LambdaAlias("2")
    result = _rollback(alias, "2", _codedeploy("d-1"), application="app", group="grp")
    assert alias.moves == [("2", {}, "r0")]
    assert result.changed is True
    assert result.from_version == "2"


def test_an_unpublished_version_is_refused_before_anything_moves() -> None:
    alias = LambdaAlias("2")
    codedeploy = _codedeploy("d-1")
    with pytest.raises(aws.UsageError) as raised:
        _rollback(alias, "9", codedeploy, application="app", group="grp")
    assert str(raised.value) == (
        "--to 9: function model-x has no published version '9' (published: 1, 2, 3); "
        "pass one of those"
    )
    assert alias.moves == [] and codedeploy.calls == []
    with pytest.raises(aws.UsageError, match="no published version '\\$LATEST'"):
        _rollback(alias, "$LATEST")


def test_a_move_by_someone_else_is_read_again_and_the_rollback_still_wins() -> None:
    alias = LambdaAlias("3")
    original = alias.get_alias
    reads = []

    def moved_meanwhile(**kwargs):
        reads.append(kwargs)
        answer = original(**kwargs)
        if len(reads) == 1:
            # Someone moves the alias between this run's read and its write.
            alias.primary, alias.revision = "2", "elsewhere"
        return answer

    alias.client.answers["get_alias"] = moved_meanwhile
    stream = io.StringIO()
    result = rollback.rollback(
        alias.client,
        None,
        function="model-x",
        alias="live",
        to_version=1,
        progress=Progress("rollback", total=2, stream=stream),
    )
    assert alias.moves == [("1", {}, "r0"), ("1", {}, "elsewhere")]
    assert alias.primary == "1"
    assert result.changed and result.to_version == "1"
    assert "alias live moved meanwhile (now version 2 at 100%); again" in stream.getvalue()


def test_a_rollback_that_keeps_losing_the_race_gives_up_leaving_the_alias_alone() -> None:
    alias = LambdaAlias("3")
    alias.client.answers["update_alias"] = client_error("PreconditionFailedException")
    with pytest.raises(ConcurrentChange):
        _rollback(alias, "1")
    assert alias.client.operations().count("update_alias") == rollback.OVERRIDE_ATTEMPTS == 3
    assert alias.primary == "3"


def test_an_event_that_cannot_be_recorded_leaves_the_rollback_standing() -> None:
    alias = LambdaAlias("3")

    def refuse(kind: str, **fields: object) -> None:
        raise aws.ScriptError("bus refused")

    result = rollback.rollback(
        alias.client,
        None,
        function="model-x",
        alias="live",
        to_version="1",
        emit=refuse,
        progress=Progress("rollback", total=2, stream=io.StringIO()),
    )
    assert alias.primary == "1" and result.changed
    (note,) = result.unrecorded
    assert note.startswith("the `rolled-back` event was not recorded (bus refused)")


def _stack(**values) -> outputs.StackOutputs:
    return outputs.StackOutputs(
        {"model_function": "model-x", "model_alias": "live", "event_store_bucket": "s", **values},
        "outputs.json",
    )


def _history(*details: dict) -> FakeClient:
    objects = {f"k{i}": {"id": f"e{i}", "time": "T", "detail": d} for i, d in enumerate(details)}

    class Body:
        def __init__(self, key: str) -> None:
            self.key = key

        def read(self) -> bytes:
            return json.dumps(objects[self.key]).encode()

    return FakeClient(
        {"get_object": lambda Bucket, Key: {"Body": Body(Key)}},
        {"list_objects_v2": [{"Contents": [{"Key": k} for k in objects]}]},
    )


def test_the_target_is_the_explicit_one_then_the_half_way_primary_then_the_history() -> None:
    promoted = {"kind": "promoted", "version": "3", "previous_version": "2", "at": "A"}
    store = _history(promoted)
    assert rollback.resolve_target(None, store, _stack(), "5") == ("5", "--to")
    assert store.calls == []
    half_way = LambdaAlias("2", {"3": 0.5})
    assert rollback.resolve_target(half_way.client, store, _stack(), None) == (
        "2",
        "alias live's primary version (a shift is half-way)",
    )
    assert store.calls == []
    settled = LambdaAlias("3")
    assert rollback.resolve_target(settled.client, store, _stack(), None) == (
        "2",
        "the last promotion in the event store",
    )
    assert store.arguments("list_objects_v2") == [{"Bucket": "s", "Prefix": "events/model-x/"}]


def test_without_a_target_it_asks_for_to_naming_the_published_versions() -> None:
    rolled_back = {"kind": "rolled-back", "version": "3", "to_version": "2", "at": "B"}
    settled = LambdaAlias("2", published=("1", "2"))
    with pytest.raises(aws.UsageError) as raised:
        rollback.resolve_target(settled.client, _history(rolled_back), _stack(), None)
    assert str(raised.value) == (
        "no version to roll back to: alias live of model-x serves version 2 at 100% and the "
        "event store records no promotion since the last rollback; pass --to VERSION "
        "(published: 1, 2)"
    )
    with pytest.raises(aws.UsageError, match=r"\(published: none\)"):
        rollback.resolve_target(LambdaAlias("1", published=()).client, _history(), _stack(), None)


def test_cli_rolls_back_with_the_stack_s_clients_and_reports(monkeypatch, tmp_path, capsys):
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                **_stack().values,
                "region": "eu-west-3",
                "event_bus": "bus",
                "event_source": "src",
                "codedeploy_application": "app",
                "codedeploy_group": "grp",
            }
        )
    )
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    alias = LambdaAlias("3")
    bus = FakeClient({"put_events": {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "E"}]}})
    codedeploy = _codedeploy("d-7", "d-8")
    clients = {"lambda": alias.client, "s3": _history(), "events": bus, "codedeploy": codedeploy}
    made = []

    def client(service, region=None):
        made.append((service, region))
        return clients[service]

    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(events, "EMIT_BACKOFF_SECONDS", 0)
    # As the CLI gets them: from the command line.
    monkeypatch.setattr(
        sys, "argv", ["rollback", "--outputs", str(path), "--to", "1", "--reason", "why"]
    )
    code = rollback.main()
    assert code == 0
    assert alias.primary == "1"
    assert {region for _, region in made} == {"eu-west-3"}
    assert {service for service, _ in made} == {"lambda", "s3", "events", "codedeploy"}
    assert clients["codedeploy"].arguments("list_deployments")[0]["applicationName"] == "app"
    out, err = capsys.readouterr()
    assert out.startswith("### Rollback of `model-x:live` to version 1\n\n| field | value |")
    for row in (
        "| target chosen by | --to |",
        "| from | 3 |",
        "| to | 1 |",
        "| stopped deployments | d-7, d-8 |",
        "| changed | yes |",
    ):
        assert row in out
    detail = json.loads(bus.arguments("put_events")[0]["Entries"][0]["Detail"])
    assert (detail["reason"], detail["stopped_deployments"]) == ("why", ["d-7", "d-8"])
    assert (
        "**Not recorded in the event history** (the rollback stands):\n- the `rolled-back`" in out
    )
    assert summary.read_text() == out
    assert "rollback: rolled back: alias live of model-x serves version 1 at 100%" in err
    assert "::warning::rollback: the `rolled-back` event was not recorded" in err
    assert len(bus.calls) == events.EMIT_ATTEMPTS


@pytest.mark.parametrize(
    "codedeploy",
    [{}, {"codedeploy_application": "app"}, {"codedeploy_group": "grp"}],
)
def test_cli_without_codedeploy_outputs_makes_no_codedeploy_client(
    monkeypatch, tmp_path, capsys, codedeploy
):
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps({**_stack().values, "event_bus": "bus", "event_source": "src", **codedeploy})
    )
    alias = LambdaAlias("1")
    clients = {"lambda": alias.client, "s3": _history(), "events": FakeClient()}
    monkeypatch.setattr(aws, "client", lambda service, region=None: clients[service])
    assert rollback.main(["--outputs", str(path), "--to", "1"]) == 0
    out = capsys.readouterr().out
    assert "| changed | no (already there) |" in out
    assert "Not recorded" not in out


def test_a_rollback_counts_each_of_its_steps_once_and_ends_at_its_total(capsys) -> None:
    # Its own progress, when the caller gives none.
    alias = LambdaAlias("2", {"3": 0.25})
    _rollback(alias, "2", _codedeploy("d-1"), application="a", group="g", progress=None)
    assert_climbs_one_step_at_a_time_to_its_total(capsys.readouterr().err, "rollback")


def test_a_deployment_that_cannot_be_stopped_is_named_and_the_alias_stays() -> None:
    alias = LambdaAlias("2", {"3": 0.25})
    refused = client_error("AccessDeniedException", "StopDeployment", "not authorized")
    codedeploy = FakeClient(
        {"stop_deployment": refused}, {"list_deployments": [{"deployments": ["d-7"]}]}
    )
    with pytest.raises(aws.ScriptError, match="stopping deployment d-7"):
        _rollback(alias, "2", codedeploy, application="a", group="g")
    assert alias.moves == []
