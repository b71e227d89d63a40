"""Promote: the alias ends fully on the candidate or fully back; re-running is safe."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from scripts import events, promote
from scripts.lib import aws, outputs, promotion
from scripts.lib.codedeploy import IN_FLIGHT, appspec, promote_codedeploy, traffic_steps
from tests.lambda_revisions import _alias_revisions  # noqa: F401 - the fixture alias_revisions
from tests.project import PROJECT


class FakeTime:
    """Instant sleep and a clock it advances; `on_sleep` runs after each sleep."""

    def __init__(self, on_sleep: Callable[[FakeTime], None] | None = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)

    def monotonic(self) -> float:
        return self.now


def _promote(deployed, candidate: str, fake: FakeTime, *, steps=(10, 50, 100), client=None):
    stack = deployed.stack_outputs()

    def emit(kind: str, **fields) -> None:
        events.emit(
            deployed.client("events"), stack, kind, model=deployed.names.model_function, **fields
        )

    return promotion.promote_alias(
        client or deployed.client("lambda"),
        deployed.client("cloudwatch"),
        function=deployed.names.model_function,
        alias=deployed.names.model_alias,
        candidate=candidate,
        steps=steps,
        bake_seconds=60,
        poll_seconds=20,
        alarms=deployed.outputs["alarms"],
        sleep=fake.sleep,
        clock=fake.monotonic,
        emit=emit,
    )


def _raise_alarm(deployed, name: str) -> None:
    deployed.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason="test: errors on the candidate"
    )


def _args(deployed, *extra: str) -> list[str]:
    return ["--outputs", str(deployed.outputs_file), "--strategy", "alias", *extra]


# --- alias strategy --------------------------------------------------------------------------


def test_alias_promotion_reaches_100_percent_in_steps(deployed) -> None:
    candidate = deployed.publish_candidate()
    seen: list[tuple[str, dict]] = []
    fake = FakeTime(on_sleep=lambda _: seen.append(deployed.alias_state()))

    result = _promote(deployed, candidate, fake)

    assert result.outcome == promotion.PROMOTED and result.exit_code == 0
    # Each step baked 60 s in polls 20 s apart, at the weight of that step.
    assert fake.sleeps == [20.0] * 6
    assert seen == [("1", {"2": 0.1})] * 3 + [("1", {"2": 0.5})] * 3
    assert deployed.alias_state() == ("2", {})
    assert [s.weight for s in result.steps] == ["10%", "50%", "100%"]
    assert [s.time for s in result.steps] == ["+60s", "+120s", "+120s"]
    assert result.steps[0].alarms == "2 OK"
    assert [d["kind"] for d in deployed.history()] == ["canary-started", "promoted"]
    state = events.fold(events.history(deployed.client("s3"), deployed.stack_outputs()))
    assert (state["live_version"], state["previous_version"]) == ("2", "1")


def test_cli_promotes_with_the_config_steps_and_a_rerun_is_a_no_op(
    deployed, monkeypatch, tmp_path, capsys
) -> None:
    deployed.publish_candidate()
    fake = FakeTime()
    monkeypatch.setattr(
        promote, "time", SimpleNamespace(sleep=fake.sleep, monotonic=fake.monotonic)
    )
    step_summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))

    assert promote.main(_args(deployed)) == 0
    out = capsys.readouterr().out
    # Pulumi.yaml: promotionSteps [10, 50, 100], bakeSeconds 60; poll every 15 s.
    assert "| 10% | +60s | 2 OK |" in out
    assert "| 50% | +120s | 2 OK |" in out
    assert "| 100% | +120s |" in out
    assert sum(fake.sleeps) == 120
    assert "| weight | time | alarms |" in step_summary.read_text()
    assert deployed.alias_state() == ("2", {})
    assert [d["kind"] for d in deployed.history()] == ["canary-started", "promoted"]

    assert promote.main(_args(deployed)) == 0
    assert "already promoted" in capsys.readouterr().err
    assert deployed.alias_state() == ("2", {})
    assert deployed.deliver_events() == []


def test_alarm_mid_shift_rolls_back_to_the_previous_version(deployed) -> None:
    candidate = deployed.publish_candidate()
    version_alarm = deployed.outputs["alarms"][1]

    def alarm_at_half(_: FakeTime) -> None:
        if deployed.alias_state()[1] == {"2": 0.5}:
            _raise_alarm(deployed, version_alarm)

    result = _promote(deployed, candidate, FakeTime(on_sleep=alarm_at_half))

    assert result.outcome == promotion.ROLLED_BACK and result.exit_code == 1
    assert deployed.alias_state() == ("1", {})
    assert result.steps[-1].weight == "50%"
    assert result.steps[-1].alarms == f"ALARM: {version_alarm}"
    assert [d["kind"] for d in deployed.history()] == ["canary-started", "rolled-back"]
    stored = events.history(deployed.client("s3"), deployed.stack_outputs())[-1]["detail"]
    assert (stored["from_version"], stored["to_version"]) == ("2", "1")
    assert stored["reason"] == f"alarm {version_alarm} in ALARM at 50%"
    assert (
        events.fold(events.history(deployed.client("s3"), deployed.stack_outputs()))["live_version"]
        == "1"
    )


def test_cli_alarm_mid_shift_exits_1_and_records_the_rollback(
    deployed, monkeypatch, capsys
) -> None:
    deployed.publish_candidate()
    fake = FakeTime(on_sleep=lambda _: _raise_alarm(deployed, deployed.outputs["alarms"][0]))
    monkeypatch.setattr(
        promote, "time", SimpleNamespace(sleep=fake.sleep, monotonic=fake.monotonic)
    )

    assert promote.main(_args(deployed, "--steps", "25,100", "--bake-seconds", "30")) == 1
    captured = capsys.readouterr()
    assert f"rolled back: alarm {deployed.outputs['alarms'][0]} in ALARM at 25%" in captured.err
    assert "| 25% |" in captured.out
    assert deployed.alias_state() == ("1", {})
    assert [d["kind"] for d in deployed.history()] == ["canary-started", "rolled-back"]


def test_an_alarm_already_firing_stops_before_anything_changes(deployed, capsys) -> None:
    deployed.publish_candidate()
    _raise_alarm(deployed, deployed.outputs["alarms"][0])

    assert promote.main(_args(deployed, "--bake-seconds", "0")) == 1
    assert "in ALARM before the canary starts; nothing changed" in capsys.readouterr().err
    assert deployed.alias_state() == ("1", {})
    assert deployed.deliver_events() == []


@pytest.mark.parametrize("how", ["keyboard-interrupt", "sigterm"])
def test_interrupted_run_rolls_back_and_a_rerun_finishes(deployed, how: str) -> None:
    candidate = deployed.publish_candidate()
    handler_before = signal.getsignal(signal.SIGTERM)

    def interrupt_at_half(_: FakeTime) -> None:
        if deployed.alias_state()[1] == {"2": 0.5}:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt

    result = _promote(deployed, candidate, FakeTime(on_sleep=interrupt_at_half))

    assert result.outcome == promotion.INTERRUPTED and result.exit_code == 130
    assert deployed.alias_state() == ("1", {})
    assert signal.getsignal(signal.SIGTERM) is handler_before
    cause = "SIGTERM" if how == "sigterm" else "interrupt"
    assert result.message.startswith(f"rolled back: {cause} at 50%")

    rerun = _promote(deployed, candidate, FakeTime())
    assert rerun.outcome == promotion.PROMOTED
    assert deployed.alias_state() == ("2", {})
    assert [d["kind"] for d in deployed.history()] == [
        "canary-started",
        "rolled-back",
        "canary-started",
        "promoted",
    ]


def test_cli_interrupt_exits_130(deployed, monkeypatch) -> None:
    deployed.publish_candidate()

    def interrupt(_: FakeTime) -> None:
        raise KeyboardInterrupt

    fake = FakeTime(on_sleep=interrupt)
    monkeypatch.setattr(
        promote, "time", SimpleNamespace(sleep=fake.sleep, monotonic=fake.monotonic)
    )
    assert promote.main(_args(deployed)) == 130
    assert deployed.alias_state() == ("1", {})


def test_hard_kill_left_weights_and_a_rerun_resumes_from_them(deployed) -> None:
    candidate = deployed.publish_candidate()
    # The process died at 50% with no chance to clean up.
    deployed.set_alias("1", {candidate: 0.5})
    seen: list[tuple[str, dict]] = []

    result = _promote(
        deployed, candidate, FakeTime(on_sleep=lambda _: seen.append(deployed.alias_state()))
    )

    assert result.outcome == promotion.PROMOTED
    assert [s.weight for s in result.steps] == ["50% (resumed)", "100%"]
    # The 50% share was baked anew and 10% never came back.
    assert seen == [("1", {"2": 0.5})] * 3
    assert deployed.alias_state() == ("2", {})
    assert result.previous_version == "1"
    assert [d["kind"] for d in deployed.history()] == ["promoted"]


def test_hard_kill_then_alarm_on_rerun_rolls_back(deployed) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias("1", {candidate: 0.1})
    _raise_alarm(deployed, deployed.outputs["alarms"][1])

    result = _promote(deployed, candidate, FakeTime())

    assert result.outcome == promotion.ROLLED_BACK
    assert deployed.alias_state() == ("1", {})
    assert [d["kind"] for d in deployed.history()] == ["rolled-back"]


def test_weights_to_another_version_are_removed_before_the_shift(deployed, capsys) -> None:
    stray = deployed.publish_candidate()
    candidate = deployed.publish_candidate()
    deployed.set_alias("1", {stray: 0.3})
    seen: list[tuple[str, dict]] = []

    result = _promote(
        deployed, candidate, FakeTime(on_sleep=lambda _: seen.append(deployed.alias_state()))
    )

    assert "restoring version 1 at 100% first" in capsys.readouterr().err
    assert result.outcome == promotion.PROMOTED
    assert seen[0] == ("1", {candidate: 0.1})
    assert deployed.alias_state() == (candidate, {})


class _ErrorBody:
    def __init__(self, message: str) -> None:
        self.body = json.dumps({"Type": "User", "message": message}).encode()

    def stream(self, **_: object):
        yield self.body


def _failing_first(
    client, operations: dict[str, int], status: int, code: str, attempts: Counter
) -> None:
    """Answer the first N sends of each operation with an AWS error; then let moto answer."""

    def fail(request, event_name: str, **_: object):
        operation = event_name.rsplit(".", 1)[-1]
        attempts[operation] += 1
        if attempts[operation] <= operations.get(operation, 0):
            return AWSResponse(
                request.url, status, {"x-amzn-errortype": code}, _ErrorBody(f"{code} (test)")
            )
        return None

    client.meta.events.register("before-send.lambda", fail)


def test_throttled_alias_calls_are_retried_by_the_client_factory(deployed, monkeypatch) -> None:
    candidate = deployed.publish_candidate()
    lambda_client = aws.client("lambda")
    throttle_first = 2
    attempts: Counter[str] = Counter()
    _failing_first(
        lambda_client,
        {"GetAlias": throttle_first, "UpdateAlias": throttle_first},
        429,
        "TooManyRequestsException",
        attempts,
    )
    backoffs: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=backoffs.append))

    result = _promote(deployed, candidate, FakeTime(), steps=(100,), client=lambda_client)

    assert result.outcome == promotion.PROMOTED
    assert deployed.alias_state() == ("2", {})
    assert attempts["GetAlias"] == throttle_first + 1
    assert attempts["UpdateAlias"] == throttle_first + 1
    assert len(backoffs) == 2 * throttle_first


def test_an_aws_error_mid_shift_puts_the_alias_back(deployed) -> None:
    candidate = deployed.publish_candidate()
    lambda_client = aws.client("lambda")
    # The 10% shift goes through; the 50% one is refused (not retryable); the rollback works.
    calls = {"n": 0}

    def refuse_second_update(request, event_name: str, **_: object):
        if event_name.endswith(".UpdateAlias"):
            calls["n"] += 1
            if calls["n"] == 2:
                return AWSResponse(
                    request.url,
                    400,
                    {"x-amzn-errortype": "InvalidParameterValueException"},
                    _ErrorBody("weights refused (test)"),
                )
        return None

    lambda_client.meta.events.register("before-send.lambda", refuse_second_update)
    with pytest.raises(aws.ScriptError) as raised:
        _promote(deployed, candidate, FakeTime(), client=lambda_client)

    message = str(raised.value)
    assert "AWS said InvalidParameterValueException: weights refused (test)" in message
    assert "alias live was put back on version 1 at 100%" in message
    assert calls["n"] == 3
    assert deployed.alias_state() == ("1", {})
    assert [d["kind"] for d in deployed.history()] == ["canary-started", "rolled-back"]


def _drop_output(deployed, key: str) -> None:
    values = json.loads(deployed.outputs_file.read_text())
    del values[key]
    deployed.outputs_file.write_text(json.dumps(values))


def _missing_alarm(deployed) -> None:
    values = json.loads(deployed.outputs_file.read_text())
    values["alarms"] = [*values["alarms"], "no-such-alarm"]
    deployed.outputs_file.write_text(json.dumps(values))


@pytest.mark.parametrize(
    ("prepare", "extra", "message"),
    [
        (lambda d: d.outputs_file.unlink(), [], "outputs.json does not exist"),
        (lambda d: _drop_output(d, "alarms"), [], "have no 'alarms'"),
        (lambda d: _drop_output(d, "model_alias"), [], "have no 'model_alias'"),
        (None, ["--steps", "50,10,100"], "--steps [50, 10, 100] is not valid: percentages"),
        (None, ["--steps", "10,50"], "--steps [10, 50] is not valid"),
        (None, ["--steps", "0,100"], "--steps [0, 100] is not valid"),
        (None, ["--steps", "ten"], "--steps 'ten' is not valid"),
        (None, ["--version", "9"], f"--version 9: function {PROJECT}-feature-x-"),
        (None, ["--version", "$LATEST"], "'$LATEST' must be a published version number"),
        (None, ["--bake-seconds", "-5"], "--bake-seconds: '-5' is not a number of at least 0"),
        (_missing_alarm, [], "alarm(s) no-such-alarm do not exist in CloudWatch"),
    ],
)
def test_bad_input_exits_2_naming_it_and_changes_nothing(
    deployed, capsys, prepare, extra: list[str], message: str
) -> None:
    deployed.publish_candidate()
    if prepare:
        prepare(deployed)

    assert promote.main(_args(deployed, "--bake-seconds", "0", *extra)) == 2
    assert message in capsys.readouterr().err
    assert deployed.alias_state() == ("1", {})
    assert deployed.deliver_events() == []


def test_codedeploy_without_a_group_output_exits_2(deployed, capsys) -> None:
    deployed.publish_candidate()
    _drop_output(deployed, "codedeploy_group")
    args = ["--outputs", str(deployed.outputs_file), "--strategy", "codedeploy"]
    assert promote.main(args) == 2
    assert "have no 'codedeploy_group'" in capsys.readouterr().err
    assert deployed.alias_state() == ("1", {})


def test_auto_strategy_prefers_codedeploy_when_the_stack_has_a_group() -> None:
    full = outputs.StackOutputs({"codedeploy_application": "a", "codedeploy_group": "g"}, "t")
    assert promote.choose_strategy("auto", full) == "codedeploy"
    assert promote.choose_strategy("auto", outputs.StackOutputs({}, "t")) == "alias"
    assert promote.choose_strategy("alias", full) == "alias"


# --- codedeploy strategy -----------------------------------------------------------------------


def _deployments(deployed) -> list[str]:
    return deployed.client("codedeploy").list_deployments(
        applicationName=deployed.outputs["codedeploy_application"],
        deploymentGroupName=deployed.outputs["codedeploy_group"],
    )["deployments"]


def test_codedeploy_creates_one_deployment_and_a_rerun_attaches_to_it(deployed, capsys) -> None:
    deployed.publish_candidate()
    function = deployed.names.model_function
    args = [
        "--outputs",
        str(deployed.outputs_file),
        "--waiter-delay",
        "0",
        "--waiter-max-attempts",
        "1",
    ]  # auto: the stack has a deployment group

    assert promote.main(args) == 1
    err = capsys.readouterr().err
    (deployment_id,) = _deployments(deployed)
    assert f"deployment {deployment_id} still Created after 1 check(s) 0s apart" in err
    assert "re-run promote to attach to it again" in err
    revision = deployed.client("codedeploy").get_deployment(deploymentId=deployment_id)[
        "deploymentInfo"
    ]["revision"]
    assert revision["revisionType"] == "AppSpecContent"
    content = revision["appSpecContent"]["content"]
    assert revision["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    hooks = deployed.outputs["deploy_hooks_function"]
    assert json.loads(content) == {
        # CodeDeploy runs the stack's smoke-check hooks before and after shifting traffic.
        "Hooks": [{"BeforeAllowTraffic": hooks}, {"AfterAllowTraffic": hooks}],
        "version": 0.0,
        "Resources": [
            {
                function: {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": function,
                        "Alias": "live",
                        "CurrentVersion": "1",
                        "TargetVersion": "2",
                    },
                }
            }
        ],
    }

    assert promote.main(args) == 1
    assert f"attached to deployment {deployment_id} already in flight" in (capsys.readouterr().err)
    assert _deployments(deployed) == [deployment_id]
    # CodeDeploy owns the shift: the script moved no traffic itself.
    assert deployed.alias_state() == ("1", {})
    assert [d["kind"] for d in deployed.history()] == ["canary-started"]


def _group(deployed) -> dict:
    return {
        "applicationName": deployed.outputs["codedeploy_application"],
        "deploymentGroupName": deployed.outputs["codedeploy_group"],
    }


def _info(deployed, deployment_id: str, status: str, **more) -> dict:
    return {
        "deploymentInfo": {
            **_group(deployed),
            "deploymentId": deployment_id,
            "deploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "status": status,
            **more,
        }
    }


def _codedeploy(deployed, emitted: list, codedeploy_client):
    return promote_codedeploy(
        codedeploy_client,
        deployed.client("lambda"),
        application=deployed.outputs["codedeploy_application"],
        group=deployed.outputs["codedeploy_group"],
        function=deployed.names.model_function,
        alias="live",
        candidate="2",
        waiter_delay=0,
        waiter_max_attempts=3,
        emit=lambda kind, **fields: emitted.append((kind, fields)),
    )


def test_codedeploy_success_is_reported_with_its_traffic_steps(deployed) -> None:
    deployed.publish_candidate()
    function = deployed.names.model_function
    codedeploy = aws.client("codedeploy")
    content = appspec(function, "live", "1", "2")
    overview = {"Pending": 0, "InProgress": 0, "Succeeded": 1, "Failed": 0, "Skipped": 0}
    with Stubber(codedeploy) as stub:
        stub.add_response(
            "list_deployments",
            {"deployments": []},
            {**_group(deployed), "includeOnlyStatuses": list(IN_FLIGHT)},
        )
        stub.add_response(
            "create_deployment",
            {"deploymentId": "d-OK"},
            {
                **_group(deployed),
                "revision": {
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {
                        "content": content,
                        "sha256": hashlib.sha256(content.encode()).hexdigest(),
                    },
                },
                "description": f"promote {function}:live from version 1 to 2",
            },
        )
        stub.add_response(
            "get_deployment", _info(deployed, "d-OK", "InProgress"), {"deploymentId": "d-OK"}
        )
        for _ in range(2):
            stub.add_response(
                "get_deployment",
                _info(deployed, "d-OK", "Succeeded", deploymentOverview=overview),
                {"deploymentId": "d-OK"},
            )
        emitted: list = []
        result = _codedeploy(deployed, emitted, codedeploy)
        stub.assert_no_pending_responses()

    assert result.outcome == promotion.PROMOTED and result.exit_code == 0
    assert result.deployment_id == "d-OK"
    assert [(s.weight, s.time) for s in result.steps] == [("10%", "+0 min"), ("100%", "+5 min")]
    assert result.overview["Succeeded"] == 1
    assert [kind for kind, _ in emitted] == ["canary-started", "promoted"]
    assert emitted[1][1] == {
        "version": "2",
        "previous_version": "1",
        "strategy": "codedeploy",
        "deployment_id": "d-OK",
    }
    assert "Deployment `d-OK`; targets: Pending 0, InProgress 0, Succeeded 1" in (
        promote.markdown(result)
    )


def test_codedeploy_failure_reports_why_and_leaves_the_alias_on_the_previous_version(
    deployed,
) -> None:
    candidate = deployed.publish_candidate()
    # Attached to a deployment in flight that had shifted 10% when it failed.
    deployed.set_alias("1", {candidate: 0.1})
    codedeploy = aws.client("codedeploy")
    revision = {
        "revisionType": "AppSpecContent",
        "appSpecContent": {"content": appspec("f", "live", "1", "2"), "sha256": "x"},
    }
    failed = _info(
        deployed,
        "d-BAD",
        "Stopped",
        errorInformation={"code": "ALARM_ACTIVE", "message": "alarm version-errors fired"},
        rollbackInfo={"rollbackDeploymentId": "d-RB", "rollbackMessage": "rolled back"},
        revision=revision,
    )
    with Stubber(codedeploy) as stub:
        stub.add_response("list_deployments", {"deployments": ["d-BAD"]})
        stub.add_response(
            "get_deployment", _info(deployed, "d-BAD", "InProgress", revision=revision)
        )
        stub.add_response("get_deployment", failed, {"deploymentId": "d-BAD"})
        stub.add_response("get_deployment", failed, {"deploymentId": "d-BAD"})
        emitted: list = []
        result = _codedeploy(deployed, emitted, codedeploy)
        stub.assert_no_pending_responses()

    assert result.outcome == promotion.ROLLED_BACK and result.exit_code == 1
    assert "deployment d-BAD Stopped: ALARM_ACTIVE: alarm version-errors fired" in result.message
    assert "rollback d-RB: rolled back" in result.message
    assert deployed.alias_state() == ("1", {})
    ((kind, fields),) = emitted  # attached: this run did not start the canary
    assert kind == "rolled-back"
    assert (fields["from_version"], fields["to_version"]) == ("2", "1")


def test_codedeploy_refuses_to_attach_to_a_deployment_of_another_version(deployed) -> None:
    deployed.publish_candidate()
    codedeploy = aws.client("codedeploy")
    revision = {
        "revisionType": "AppSpecContent",
        "appSpecContent": {"content": appspec("f", "live", "1", "7"), "sha256": "x"},
    }
    with Stubber(codedeploy) as stub:
        stub.add_response("list_deployments", {"deployments": ["d-7"]})
        stub.add_response("get_deployment", _info(deployed, "d-7", "InProgress", revision=revision))
        with pytest.raises(aws.ScriptError, match="in flight to version 7, not 2"):
            _codedeploy(deployed, [], codedeploy)
    assert deployed.alias_state() == ("1", {})


def test_codedeploy_already_promoted_is_a_no_op(deployed) -> None:
    candidate = deployed.publish_candidate()
    deployed.set_alias(candidate, {})
    codedeploy = aws.client("codedeploy")
    with Stubber(codedeploy) as stub:
        stub.add_response("list_deployments", {"deployments": []})
        emitted: list = []
        result = _codedeploy(deployed, emitted, codedeploy)
    assert result.outcome == promotion.ALREADY and "nothing to do" in result.message
    assert emitted == []


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("CodeDeployDefault.LambdaCanary10Percent30Minutes", [(10, 0), (100, 30)]),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            [(10 * k, k - 1) for k in range(1, 11)],
        ),
        ("CodeDeployDefault.LambdaAllAtOnce", [(100, 0)]),
        ("custom-config", []),
    ],
)
def test_traffic_steps_of_deployment_configs(name: str, steps: list) -> None:
    assert traffic_steps(name) == steps


# --- what a mutation run found untested, and the alias revision lock -------------------------


def test_an_alarm_that_fires_and_clears_within_one_bake_still_rolls_back(deployed) -> None:
    candidate = deployed.publish_candidate()
    version_alarm = deployed.outputs["alarms"][1]
    cloudwatch = deployed.client("cloudwatch")

    def blip(fake: FakeTime) -> None:
        # Firing at the first poll of the 10% bake, clear again by the next one.
        if len(fake.sleeps) == 1:
            _raise_alarm(deployed, version_alarm)
        elif len(fake.sleeps) == 2:
            cloudwatch.set_alarm_state(
                AlarmName=version_alarm, StateValue="OK", StateReason="test: cleared"
            )

    result = _promote(deployed, candidate, FakeTime(on_sleep=blip))

    assert result.outcome == promotion.ROLLED_BACK
    assert deployed.alias_state() == ("1", {})
    assert result.steps[-1].alarms == f"ALARM: {version_alarm}"


@pytest.mark.parametrize("strategy", ["alias", "codedeploy"])
def test_an_empty_alarm_list_is_refused_before_anything_moves(
    deployed, capsys, strategy: str
) -> None:
    deployed.publish_candidate()
    values = json.loads(deployed.outputs_file.read_text())
    values["alarms"] = []
    deployed.outputs_file.write_text(json.dumps(values))
    args = ["--outputs", str(deployed.outputs_file), "--strategy", strategy]

    # --bake-seconds belongs to the alias strategy only (CodeDeploy refuses it).
    timing = ["--bake-seconds", "0"] if strategy == "alias" else ["--waiter-delay", "0"]
    assert promote.main([*args, *timing]) == 2
    assert "'alarms' list is empty" in capsys.readouterr().err
    assert deployed.alias_state() == ("1", {})
    assert _deployments(deployed) == []


def test_an_interrupt_with_a_failing_bus_still_puts_the_alias_back(deployed) -> None:
    candidate = deployed.publish_candidate()
    stack = deployed.stack_outputs()

    def emit(kind: str, **fields) -> None:
        if kind == "rolled-back":
            raise aws.ScriptError("bus refused the event (test)")
        events.emit(
            deployed.client("events"), stack, kind, model=deployed.names.model_function, **fields
        )

    def interrupt(_: FakeTime) -> None:
        raise KeyboardInterrupt

    result = promotion.promote_alias(
        deployed.client("lambda"),
        deployed.client("cloudwatch"),
        function=deployed.names.model_function,
        alias=deployed.names.model_alias,
        candidate=candidate,
        steps=(10, 100),
        bake_seconds=60,
        poll_seconds=20,
        alarms=deployed.outputs["alarms"],
        sleep=FakeTime(on_sleep=interrupt).sleep,
        clock=FakeTime().monotonic,
        emit=emit,
    )

    assert result.outcome == promotion.INTERRUPTED
    assert deployed.alias_state() == ("1", {})
    (note,) = result.unrecorded
    assert "`rolled-back` event was not recorded (bus refused the event (test))" in note
    assert "nox -s events -- emit rolled-back --version 2" in note
    assert "Not recorded in the event history" in promote.markdown(result)


def test_a_promotion_whose_event_cannot_be_recorded_says_so_and_how_to_repair(
    deployed, monkeypatch, capsys
) -> None:
    deployed.publish_candidate()
    fake = FakeTime()
    monkeypatch.setattr(
        promote, "time", SimpleNamespace(sleep=fake.sleep, monotonic=fake.monotonic)
    )
    real_emit = events.emit
    tries: Counter[str] = Counter()

    def flaky(client, stack, kind, **fields):
        tries[kind] += 1
        if kind == "promoted":
            raise aws.ScriptError("bus unavailable (test)")
        return real_emit(client, stack, kind, **fields)

    monkeypatch.setattr(events, "emit", flaky)
    monkeypatch.setattr(events, "EMIT_BACKOFF_SECONDS", 0.0)

    assert promote.main(_args(deployed, "--steps", "100")) == 0
    captured = capsys.readouterr()
    # The traffic moved, so the verb says so; the missing record is named with its repair.
    assert deployed.alias_state() == ("2", {})
    assert tries["promoted"] == events.EMIT_ATTEMPTS
    assert "promoted: alias live" in captured.err
    assert "::warning::promote: the `promoted` event was not recorded" in captured.err
    assert 'emit promoted --version 2 --detail \'{"previous_version": "1"' in captured.out


def test_a_move_by_someone_else_mid_shift_is_never_overwritten(deployed, alias_revisions) -> None:
    candidate = deployed.publish_candidate()

    def rollback_meanwhile(fake: FakeTime) -> None:
        # A person rolls back by hand while this run bakes at 10%.
        if len(fake.sleeps) == 1:
            deployed.set_alias("1", {})

    with pytest.raises(aws.ScriptError, match="changed since this run read it"):
        _promote(deployed, candidate, FakeTime(on_sleep=rollback_meanwhile))

    # Without the lock the run would have moved on to 50% over the rollback.
    assert deployed.alias_state() == ("1", {})


def test_two_promotions_at_once_cannot_undo_each_other(deployed, alias_revisions) -> None:
    first = deployed.publish_candidate()
    second = deployed.publish_candidate()

    def the_other_promotion_finishes(fake: FakeTime) -> None:
        if len(fake.sleeps) == 1:
            _promote(deployed, second, FakeTime(), steps=(100,))

    with pytest.raises(aws.ScriptError, match="changed since this run read it"):
        _promote(deployed, first, FakeTime(on_sleep=the_other_promotion_finishes))

    assert deployed.alias_state() == (second, {})


def test_a_wrong_branch_name_exits_2_without_a_traceback(capsys) -> None:
    assert promote.main(["--branch", "bad..name"]) == 2
    err = capsys.readouterr().err
    assert "--branch: branch 'bad..name' cannot be named" in err and "Traceback" not in err


def _check(deployed, capsys) -> dict[str, str]:
    assert promote.main(["--outputs", str(deployed.outputs_file), "--check"]) == 0
    out = capsys.readouterr().out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_check_asks_for_a_promotion_only_when_a_new_version_was_published(deployed, capsys) -> None:
    function = deployed.names.model_function
    # Deployed without a new version (a docs-only push): alias live already serves it.
    skipped = _check(deployed, capsys)
    assert (skipped["candidate-version"], skipped["promote"]) == ("1", "false")

    candidate = deployed.publish_candidate()
    wanted = _check(deployed, capsys)
    sha = deployed.client("lambda").get_function(FunctionName=function, Qualifier=candidate)
    assert wanted == {
        "candidate-version": candidate,
        "candidate-sha256": sha["Configuration"]["CodeSha256"],
        "promote": "true",
    }
    assert deployed.alias_state() == ("1", {})  # a check changes nothing


def test_a_version_whose_code_is_not_what_the_run_deployed_is_refused(deployed, capsys) -> None:
    candidate = deployed.publish_candidate()
    args = [*_args(deployed, "--bake-seconds", "0"), "--version", candidate]

    assert promote.main([*args, "--expect-sha256", "not-the-deployed-code"]) == 2

    assert f"--version {candidate}: its code (CodeSha256 " in capsys.readouterr().err
    assert deployed.alias_state() == ("1", {})
    assert deployed.deliver_events() == []


def _watched_version(deployed) -> str:
    (alarm,) = deployed.client("cloudwatch").describe_alarms(
        AlarmNames=[deployed.names.version_errors_alarm]
    )["MetricAlarms"]
    return next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == "ExecutedVersion")


@pytest.mark.parametrize("strategy", ["alias", "codedeploy"])
def test_the_candidate_alarm_watches_the_version_this_promotion_shifts(
    deployed, strategy: str
) -> None:
    candidate = deployed.publish_candidate()
    newer = deployed.publish_candidate()  # a push during the canary published another
    deployed.client("cloudwatch").put_metric_alarm(
        AlarmName=deployed.names.version_errors_alarm,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[
            {"Name": "FunctionName", "Value": deployed.names.model_function},
            {"Name": "ExecutedVersion", "Value": newer},
        ],
    )
    args = [
        "--outputs",
        str(deployed.outputs_file),
        "--strategy",
        strategy,
        "--version",
        candidate,
        # Each strategy's own timing flags; CodeDeploy refuses the alias strategy's.
        *(
            ["--bake-seconds", "0"]
            if strategy == "alias"
            else ["--waiter-delay", "0", "--waiter-max-attempts", "1"]
        ),
    ]

    promote.main(args)

    assert _watched_version(deployed) == candidate
