"""Rollback: the alias serves the previous version at 100%, in-flight deployments stop."""

from __future__ import annotations

from botocore.stub import Stubber

from scripts import events, promote, rollback
from scripts.lib import aws
from tests.lambda_revisions import _alias_revisions  # noqa: F401 - the fixture alias_revisions


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
