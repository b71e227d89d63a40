"""The promotion strategies' AWS conversation, against in-process stand-ins.

The alias strategy moves the alias in steps and watches alarms between them; the
CodeDeploy strategy has CodeDeploy move it. The moto-backed tests in
tests/scripts/test_promote.py drive both end to end; these check, call by call, what each
asks of AWS, in which order, and what it makes of each answer.
"""

from __future__ import annotations

import io
import json

import pytest
from botocore.exceptions import WaiterError

from infra import config
from scripts.lib import alarms as alarm_watch
from scripts.lib import aws, candidate, lambda_alias, promotion, traffic_events
from scripts.lib import codedeploy as codedeploy_strategy
from scripts.lib.lambda_alias import AliasState
from scripts.lib.progress import Progress
from scripts.lib.promotion import Step
from tests.fake_aws import FakeClient, LambdaAlias, client_error
from tests.progress_lines import assert_climbs_one_step_at_a_time_to_its_total

ALARMS = ("errors", "latency")


class Alarms:
    """CloudWatch's alarms: each one's state per poll (the last state repeats)."""

    def __init__(self, **states: str | list[str]) -> None:
        self.states = {name: s if isinstance(s, list) else [s] for name, s in states.items()}
        self.polls = 0
        self.dimensions: dict[str, list[dict]] = {}
        self.client = FakeClient({"put_metric_alarm": self.put}, {"describe_alarms": self.describe})

    def describe(self, AlarmNames: list[str]) -> list[dict]:
        self.polls += 1
        alarms = []
        for name in AlarmNames:
            if name in self.states:
                states = self.states[name]
                alarms.append(
                    {
                        "AlarmName": name,
                        "StateValue": states[min(self.polls, len(states)) - 1],
                        "Dimensions": self.dimensions.get(name, []),
                        "MetricName": "Errors",
                        "Namespace": "AWS/Lambda",
                        "Threshold": 1.0,
                        "AlarmDescription": "",
                    }
                )
        return [{"MetricAlarms": alarms}]

    def put(self, **settings: object) -> dict:
        return {}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _promote(alias: LambdaAlias, cloudwatch: Alarms, clock: Clock | None = None, **kwargs):
    clock = clock or Clock()
    emitted: list[tuple[str, dict]] = []
    arguments = {
        "function": "model-x",
        "alias": "live",
        "candidate": "2",
        "steps": (10, 50, 100),
        "bake_seconds": 60,
        "poll_seconds": 30,
        "alarms": ALARMS,
        "sleep": clock.sleep,
        "clock": clock,
        "progress": Progress("promote", total=3, stream=io.StringIO(), clock=clock),
        "emit": lambda kind, **fields: emitted.append((kind, fields)),
        **kwargs,
    }
    result = promotion.promote_alias(alias.client, cloudwatch.client, **arguments)
    return result, emitted


class FailingAlarms(Alarms):
    """CloudWatch refusing to describe the alarms from the `fail_at`th poll on."""

    def __init__(self, fail_at: int, **states: str | list[str]) -> None:
        super().__init__(**states)
        self.fail_at = fail_at

    def describe(self, AlarmNames: list[str]) -> list[dict]:
        if self.polls + 1 >= self.fail_at:
            self.polls += 1
            raise client_error("Throttling", "DescribeAlarms", "Rate exceeded")
        return super().describe(AlarmNames)


def test_alarms_that_cannot_be_read_mid_bake_put_the_alias_back() -> None:
    # The first poll at 10% reads the alarms; the second is refused after botocore's
    # retries: the promotion cannot judge the candidate, so traffic goes back.
    alias, alarms = LambdaAlias("1"), FailingAlarms(3, errors="OK", latency="OK")
    with pytest.raises(aws.ScriptError) as raised:
        _promote(alias, alarms)
    assert (alias.primary, alias.weights) == ("1", {})
    assert "calling DescribeAlarms: AWS said Throttling" in str(raised.value)
    assert "put back on version 1" in str(raised.value)


def test_the_alias_moves_in_steps_baking_between_them_then_the_promotion_is_recorded() -> None:
    alias, alarms, clock = LambdaAlias("1"), Alarms(errors="OK", latency="OK"), Clock()
    result, emitted = _promote(alias, alarms, clock)
    assert alias.moves == [
        ("1", {"2": 0.1}, "r0"),
        ("1", {"2": 0.5}, "r1"),
        ("2", {}, "r2"),
    ]
    assert (alias.primary, alias.weights) == ("2", {})
    # Each weight bakes 60s in polls 30s apart: three looks, two sleeps.
    assert clock.slept == [30, 30, 30, 30]
    assert result.outcome == promotion.PROMOTED
    assert result.exit_code == 0
    assert (result.previous_version, result.candidate, result.strategy) == ("1", "2", "alias")
    assert result.steps == [
        Step("10%", "+60s", "2 OK"),
        Step("50%", "+120s", "2 OK"),
        Step("100%", "+120s", "(final step: not baked)"),
    ]
    assert emitted == [
        (
            "canary-started",
            {"version": "2", "previous_version": "1", "strategy": "alias", "steps": [10, 50, 100]},
        ),
        (
            "promoted",
            {"version": "2", "previous_version": "1", "strategy": "alias", "steps": [10, 50, 100]},
        ),
    ]
    assert result.message == "promoted: alias live of model-x serves version 2 at 100% (was 1)"
    assert alarms.client.arguments("describe_alarms")[0] == {"AlarmNames": list(ALARMS)}


def test_an_alarm_during_a_bake_puts_the_alias_back_and_records_why() -> None:
    alias = LambdaAlias("1")
    # Looks: before the canary, for re-pointing, three at 10%, then 50%'s second.
    alarms = Alarms(errors=["OK"] * 6 + ["ALARM"], latency="OK")
    result, emitted = _promote(alias, alarms)
    assert alias.moves[-1] == ("1", {}, "r2")
    assert (alias.primary, alias.weights) == ("1", {})
    assert result.outcome == promotion.ROLLED_BACK
    assert result.exit_code == 1
    assert result.steps[-1] == Step("50%", "+90s", "ALARM: errors")
    assert emitted[-1] == (
        "rolled-back",
        {
            "version": "2",
            "from_version": "2",
            "to_version": "1",
            "reason": "alarm errors in ALARM at 50%",
            "strategy": "alias",
        },
    )
    assert result.message == (
        "rolled back: alarm errors in ALARM at 50%; alias live of model-x serves version 1 at 100%"
    )


def test_the_first_firing_poll_ends_the_bake_at_once() -> None:
    alias = LambdaAlias("1")
    clock = Clock()
    alarms = Alarms(errors=["OK", "OK", "INSUFFICIENT_DATA", "ALARM"], latency="OK")
    result, _ = _promote(alias, alarms, clock, bake_seconds=300, poll_seconds=100)
    assert result.outcome == promotion.ROLLED_BACK
    assert clock.slept == [100]
    assert [s.alarms for s in result.steps] == ["ALARM: errors"]


def _watch(alarms: Alarms, sleep, clock, *, bake_seconds, poll_seconds, stream=None):
    """One bake at 10%, its progress on `stream` (discarded by default)."""
    return alarm_watch.watch_alarms(
        alarms.client,
        ALARMS,
        weight=10,
        bake_seconds=bake_seconds,
        poll_seconds=poll_seconds,
        sleep=sleep,
        clock=clock,
        progress=Progress("promote", total=1, stream=stream or io.StringIO(), clock=clock),
    )


def test_a_bake_looks_again_at_its_end_and_never_sleeps_past_it() -> None:
    clock = Clock()
    alarms = Alarms(errors="OK", latency="INSUFFICIENT_DATA")
    stream = io.StringIO()
    states = _watch(alarms, clock.sleep, clock, bake_seconds=50, poll_seconds=20, stream=stream)
    assert clock.slept == [20, 20, 10]
    assert alarms.polls == 4
    assert states == {"errors": "OK", "latency": "INSUFFICIENT_DATA"}
    assert "baking at 10%: 20s of 50s, 1 INSUFFICIENT_DATA, 1 OK" in stream.getvalue()


def test_a_bake_with_a_clock_that_never_moves_still_ends() -> None:
    alarms = Alarms(errors="OK", latency="OK")
    slept: list[float] = []
    _watch(alarms, slept.append, lambda: 0.0, bake_seconds=60, poll_seconds=30)
    assert alarms.polls == 3
    assert slept == [30, 30]


def test_a_zero_bake_looks_once() -> None:
    alarms = Alarms(errors="OK", latency="OK")
    clock = Clock()
    _watch(alarms, clock.sleep, clock, bake_seconds=0, poll_seconds=30)
    assert (alarms.polls, clock.slept) == (1, [])


def test_an_alarm_already_firing_stops_before_anything_moves() -> None:
    alias = LambdaAlias("1")
    with pytest.raises(aws.ScriptError) as raised:
        _promote(alias, Alarms(errors="ALARM", latency="ALARM"))
    assert not isinstance(raised.value, aws.UsageError)
    assert str(raised.value) == (
        "alarm errors, latency is in ALARM before the canary starts; nothing changed (alias "
        "live stays on version 1). Find out why, then re-run"
    )
    assert alias.moves == []


def test_stray_weights_of_another_version_are_removed_before_anything_else() -> None:
    alias = LambdaAlias("1", {"3": 0.2})
    result, _ = _promote(alias, Alarms(errors="OK", latency="OK"))
    assert alias.moves[0] == ("1", {}, "r0")
    assert alias.moves[1] == ("1", {"2": 0.1}, "r1")
    assert result.outcome == promotion.PROMOTED
    with pytest.raises(aws.ScriptError, match="only the stray weights were removed"):
        _promote(LambdaAlias("1", {"3": 0.2}), Alarms(errors="ALARM", latency="OK"))


def test_a_promotion_already_done_is_a_no_op() -> None:
    alias = LambdaAlias("2")
    result, emitted = _promote(alias, Alarms(errors="ALARM", latency="OK"))
    assert (result.outcome, result.exit_code) == (promotion.ALREADY, 0)
    assert result.message == (
        "already promoted: alias live of model-x serves version 2 at 100%; nothing to do"
    )
    assert alias.moves == [] and emitted == []
    stray = LambdaAlias("2", {"3": 0.5})
    result, _ = _promote(stray, Alarms(errors="OK", latency="OK"))
    assert result.message.endswith("; stray weights removed")
    assert stray.moves == [("2", {}, "r0")]


def test_an_interrupted_promotion_resumes_at_its_weight_and_bakes_it_anew() -> None:
    alias = LambdaAlias("1", {"2": 0.5})
    clock = Clock()
    result, emitted = _promote(alias, Alarms(errors="OK", latency="OK"), clock)
    assert alias.moves == [("2", {}, "r0")]
    assert result.steps[0] == Step("50% (resumed)", "+60s", "2 OK")
    assert clock.slept == [30, 30]
    assert [kind for kind, _ in emitted] == ["promoted"]


def test_a_resumed_promotion_whose_alarm_fires_rolls_back_without_baking() -> None:
    alias = LambdaAlias("1", {"2": 0.5})
    clock = Clock()
    result, emitted = _promote(alias, Alarms(errors="ALARM", latency="OK"), clock)
    assert result.outcome == promotion.ROLLED_BACK
    assert clock.slept == []
    assert result.steps == [Step("50% (resumed)", "+0s", "ALARM: errors")]
    assert alias.moves == [("1", {}, "r0")]
    assert emitted[-1][1]["reason"] == "alarm errors in ALARM at 50%"


def test_a_resumed_promotion_that_bakes_into_an_alarm_rolls_back() -> None:
    alias = LambdaAlias("1", {"2": 0.1})
    result, _ = _promote(alias, Alarms(errors=["OK", "OK", "ALARM"], latency="OK"))
    assert result.outcome == promotion.ROLLED_BACK
    assert result.message.startswith("rolled back: alarm errors in ALARM at 10%")


def test_alarms_that_watch_another_version_are_pointed_at_the_candidate() -> None:
    alias = LambdaAlias("1")
    alarms = Alarms(errors="OK", latency="OK")
    alarms.dimensions["errors"] = [
        {"Name": "FunctionName", "Value": "model-x"},
        {"Name": "ExecutedVersion", "Value": "1"},
    ]
    alarms.dimensions["latency"] = [{"Name": "ExecutedVersion", "Value": "2"}]
    _promote(alias, alarms)
    (put,) = alarms.client.arguments("put_metric_alarm")
    assert put == {
        "AlarmName": "errors",
        "MetricName": "Errors",
        "Namespace": "AWS/Lambda",
        "Threshold": 1.0,
        "Dimensions": [
            {"Name": "FunctionName", "Value": "model-x"},
            {"Name": "ExecutedVersion", "Value": "2"},
        ],
    }
    # Re-pointed alarms are read again before the first move.
    operations = alarms.client.operations()
    assert operations[:4] == [
        "describe_alarms",
        "describe_alarms",
        "put_metric_alarm",
        "describe_alarms",
    ]


def test_watch_candidate_names_the_alarms_it_moved() -> None:
    alarms = Alarms(errors="OK", latency="OK", other="OK")
    alarms.dimensions["errors"] = [{"Name": "ExecutedVersion", "Value": "1"}]
    alarms.dimensions["latency"] = [{"Name": "ExecutedVersion", "Value": "5"}]
    assert alarm_watch.watch_candidate(alarms.client, ["errors", "latency", "other"], "5") == [
        "errors"
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bake_seconds": -1}, "--bake-seconds -1 is negative; give 0 or more"),
        ({"poll_seconds": 0}, "--poll-seconds 0 must be more than 0"),
        ({"alarms": ()}, "no alarms to watch: the stack outputs' 'alarms' list is empty"),
        ({"steps": (10, 50)}, "promotion steps [10, 50] is not valid"),
        ({"candidate": "9"}, "--version 9: function model-x has no published version '9'"),
        ({"alarms": ("errors", "gone", "lost")}, "alarm(s) gone, lost do not exist"),
    ],
)
def test_bad_input_is_refused_before_anything_moves(kwargs, message) -> None:
    alias = LambdaAlias("1")
    with pytest.raises(aws.UsageError) as raised:
        _promote(alias, Alarms(errors="OK", latency="OK"), **kwargs)
    assert message in str(raised.value)
    assert alias.moves == []


def test_an_interrupt_mid_shift_puts_the_alias_back() -> None:
    alias = LambdaAlias("1")
    clock = Clock()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    result, emitted = _promote(alias, Alarms(errors="OK", latency="OK"), clock, sleep=interrupted)
    assert (alias.primary, alias.weights) == ("1", {})
    assert result.outcome == promotion.INTERRUPTED
    assert result.exit_code == 130
    assert result.steps[-1] == Step("10%", "+0s", "(interrupt: rolled back)")
    assert emitted[-1][1]["reason"] == "interrupt at 10%"
    assert result.message.startswith("rolled back: interrupt at 10%;")


def test_sigterm_mid_shift_is_an_interrupt_named_as_such() -> None:
    alias = LambdaAlias("1")

    def terminated(seconds: float) -> None:
        raise promotion.Terminated("signal SIGTERM")

    result, emitted = _promote(alias, Alarms(errors="OK", latency="OK"), sleep=terminated)
    assert result.outcome == promotion.INTERRUPTED
    assert emitted[-1][1]["reason"] == "SIGTERM at 10%"


def test_an_aws_error_mid_shift_puts_the_alias_back_and_says_so() -> None:
    alias = LambdaAlias("1")
    alias.client.answers["update_alias"] = [
        alias.update_alias,
        client_error("ServiceException", "UpdateAlias", "boom"),
        alias.update_alias,
    ]
    result_notes: list = []
    with pytest.raises(aws.ScriptError) as raised:
        _promote(
            alias, Alarms(errors="OK", latency="OK"), emit=lambda k, **f: result_notes.append(k)
        )
    assert (alias.primary, alias.weights) == ("1", {})
    assert str(raised.value) == (
        "pointing alias live of model-x at version 1: AWS said ServiceException: boom; alias "
        "live was put back on version 1 at 100%"
    )
    assert result_notes == ["canary-started", "rolled-back"]


def test_an_unrecorded_put_back_is_named_in_the_error() -> None:
    alias = LambdaAlias("1")
    alias.client.answers["update_alias"] = [
        alias.update_alias,
        client_error("ServiceException", "UpdateAlias", "boom"),
        alias.update_alias,
    ]

    def refuse(kind: str, **fields: object) -> None:
        if kind == "rolled-back":
            raise aws.ScriptError("bus down")

    with pytest.raises(aws.ScriptError) as raised:
        _promote(alias, Alarms(errors="OK", latency="OK"), emit=refuse)
    assert str(raised.value).endswith(
        "put back on version 1 at 100% (the `rolled-back` event was not recorded (bus down); "
        "record it with `"
        + traffic_events.repair_command(
            "rolled-back",
            {
                "version": "2",
                "from_version": "2",
                "to_version": "1",
                "reason": "error at 50%: pointing alias live of model-x at version 1: AWS said "
                "ServiceException: boom",
                "strategy": "alias",
            },
        )
        + "`)"
    )


def test_a_move_by_someone_else_mid_shift_is_never_undone() -> None:
    alias = LambdaAlias("1")
    alarms = Alarms(errors="OK", latency="OK")
    clock = Clock()

    def someone_moves(seconds: float) -> None:
        clock.sleep(seconds)
        alias.primary, alias.weights, alias.revision = "3", {}, "theirs"

    with pytest.raises(aws.ScriptError) as raised:
        _promote(alias, alarms, clock, sleep=someone_moves)
    assert str(raised.value).startswith("at 50%: alias live of model-x changed since this run")
    assert alias.primary == "3"
    assert alias.moves[-1] == ("1", {"2": 0.5}, "r1")


def test_a_put_back_that_fails_too_says_the_alias_may_still_split() -> None:
    alias = LambdaAlias("1")
    alarms = Alarms(errors="OK", latency="OK")
    alias.client.answers["update_alias"] = [
        alias.update_alias,
        client_error("ServiceException", "UpdateAlias"),
    ]
    with pytest.raises(aws.ScriptError) as raised:
        _promote(alias, alarms)
    message = str(raised.value)
    assert "rolling back failed too (" in message
    assert message.endswith(
        "alias live may still split traffic; run `nox -s rollback` (or re-run promote)"
    )


def test_alias_state_describes_its_split_and_weights() -> None:
    state = AliasState("1", {"3": 0.25, "2": 0.1}, "rev")
    assert state.describe() == "version 1 at 65%, version 2 at 10%, version 3 at 25%"
    assert AliasState("4", {}).describe() == "version 4 at 100%"
    assert (state.weight_of("3"), state.weight_of("9")) == (25, 0)
    # The revision is how a move is locked, not part of where traffic goes.
    assert state == AliasState("1", {"3": 0.25, "2": 0.1}, "other")


def test_read_alias_keeps_only_versions_with_a_share() -> None:
    client = FakeClient(
        {
            "get_alias": {
                "FunctionVersion": 4,
                "RoutingConfig": {"AdditionalVersionWeights": {5: 0.3, "6": 0.0}},
                "RevisionId": "r9",
            }
        }
    )
    state = lambda_alias.read_alias(client, "fn", "live")
    assert (state.primary, dict(state.weights), state.revision) == ("4", {"5": 0.3}, "r9")
    assert client.calls == [("get_alias", {"FunctionName": "fn", "Name": "live"})]
    bare = FakeClient({"get_alias": {"FunctionVersion": "4"}})
    assert lambda_alias.read_alias(bare, "fn", "live") == AliasState("4", {})
    assert lambda_alias.read_alias(bare, "fn", "live").revision == ""


def test_set_alias_states_the_whole_routing_and_locks_only_on_a_revision() -> None:
    client = FakeClient({"update_alias": {"RevisionId": "r2"}})
    assert lambda_alias.set_alias(client, "fn", "live", "3", {"4": 0.1}, revision="r1") == "r2"
    assert lambda_alias.set_alias(client, "fn", "live", "3", revision="") == "r2"
    assert client.arguments("update_alias") == [
        {
            "FunctionName": "fn",
            "Name": "live",
            "FunctionVersion": "3",
            "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}},
            "RevisionId": "r1",
        },
        {
            "FunctionName": "fn",
            "Name": "live",
            "FunctionVersion": "3",
            "RoutingConfig": {"AdditionalVersionWeights": {}},
        },
    ]
    assert (
        lambda_alias.set_alias(FakeClient({"update_alias": {}}), "fn", "a", "3", revision="") == ""
    )


def test_set_alias_errors_other_than_the_lock_say_what_was_being_done() -> None:
    client = FakeClient({"update_alias": client_error("AccessDeniedException")})
    with pytest.raises(aws.AccessError, match="pointing alias live of fn at version 3"):
        lambda_alias.set_alias(client, "fn", "live", "3", revision="r")


def test_require_version_checks_a_number_and_lists_the_published_ones() -> None:
    alias = LambdaAlias("1", published=("1", "2"))
    lambda_alias.require_version(alias.client, "model-x", "2", "--to")
    assert alias.client.operations() == ["get_function"]
    assert alias.client.arguments("get_function") == [{"FunctionName": "model-x", "Qualifier": "2"}]
    with pytest.raises(aws.UsageError, match=r"\(published: 1, 2\); pass one of those"):
        lambda_alias.require_version(alias.client, "model-x", "live", "--to")
    # A name that is not a number is never looked up as a qualifier.
    assert alias.client.operations().count("get_function") == 1
    denied = FakeClient({"get_function": client_error("AccessDeniedException")})
    with pytest.raises(aws.AccessError, match="checking version 2 of model-x"):
        lambda_alias.require_version(denied, "model-x", "2", "--to")


def test_the_version_listing_leaves_out_latest() -> None:
    alias = LambdaAlias("1", published=("1", "7"))
    assert lambda_alias.published_versions(alias.client, "model-x") == ["1", "7"]
    assert alias.client.calls == [("list_versions_by_function", {"FunctionName": "model-x"})]


@pytest.mark.parametrize(
    ("text", "steps"),
    [("10,50,100", (10, 50, 100)), (" 1, 100 ", (1, 100)), ("100", (100,))],
)
def test_steps_rise_strictly_from_1_to_exactly_100(text, steps) -> None:
    assert promotion.parse_steps(text) == steps


@pytest.mark.parametrize("text", ["", "ten,100", "0,100", "50,50,100", "50,10,100", "10,99"])
def test_bad_steps_are_refused_saying_what_is_valid(text) -> None:
    with pytest.raises(aws.UsageError) as raised:
        promotion.parse_steps(text)
    assert str(raised.value).startswith("--steps ")
    assert str(raised.value).endswith(promotion.STEPS_VALID)


def test_check_steps_refuses_non_integers_and_booleans() -> None:
    for steps in ([], [True, 100], [10.0, 100]):
        with pytest.raises(aws.UsageError, match="config steps"):
            promotion.check_steps(steps, "config steps")
    assert promotion.check_steps([1, 2, 100], "x") == (1, 2, 100)


def test_a_failed_record_is_noted_with_the_command_that_repairs_it() -> None:
    notes: list[str] = []

    def refuse(kind: str, **fields: object) -> None:
        raise aws.ScriptError("bus down")

    fields = {"version": "2", "model": "m", "reason": "it's bad"}
    assert traffic_events.record(refuse, "rolled-back", notes, **fields) is False
    assert notes == [
        "the `rolled-back` event was not recorded (bus down); record it with "
        f"`{traffic_events.repair_command('rolled-back', fields)}`"
    ]
    assert traffic_events.repair_command("rolled-back", fields) == (
        "nox -s events -- emit rolled-back --version 2 "
        """--detail '{"reason": "it'\\''s bad"}' --outputs OUTPUTS.json"""
    )
    assert traffic_events.record(lambda kind, **f: None, "promoted", notes, version="2") is True
    assert len(notes) == 1


# --- CodeDeploy strategy -------------------------------------------------------------------


def _deployment(status: str, current="1", target="2", **more) -> dict:
    content = codedeploy_strategy.appspec("model-x", "live", current, target)
    return {
        "deploymentInfo": {
            "deploymentId": "d-1",
            "status": status,
            "deploymentGroupName": "grp",
            "deploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "deploymentOverview": {"Succeeded": 1},
            "revision": {"appSpecContent": {"content": content}},
            **more,
        }
    }


class Waiter:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.waits = error, []

    def wait(self, **kwargs: object) -> None:
        self.waits.append(kwargs)
        if self.error:
            raise self.error


def _codedeploy(info: dict, in_flight=(), waiter: Waiter | None = None) -> FakeClient:
    def deployments(applicationName: str, deploymentGroupName: str, includeOnlyStatuses):
        if (applicationName, deploymentGroupName) != ("app", "grp"):
            raise client_error("DeploymentGroupDoesNotExistException", "ListDeployments")
        return [{"deployments": list(in_flight)}]

    client = FakeClient(
        {"create_deployment": {"deploymentId": "d-1"}, "get_deployment": info},
        {"list_deployments": deployments},
    )
    waiter = waiter or Waiter()

    def get_waiter(name: str) -> Waiter:
        assert name == "deployment_successful", name
        return waiter

    client.waiter = waiter  # type: ignore[attr-defined]
    client.get_waiter = get_waiter  # type: ignore[method-assign]
    return client


def _promote_codedeploy(codedeploy, alias: LambdaAlias, **kwargs):
    emitted: list[tuple[str, dict]] = []
    arguments = {
        "application": "app",
        "group": "grp",
        "function": "model-x",
        "alias": "live",
        "candidate": "2",
        "waiter_delay": 15,
        "waiter_max_attempts": 4,
        "progress": Progress("promote", total=2, stream=io.StringIO()),
        "emit": lambda kind, **fields: emitted.append((kind, fields)),
        **kwargs,
    }
    return codedeploy_strategy.promote_codedeploy(codedeploy, alias.client, **arguments), emitted


def test_codedeploy_is_asked_for_one_deployment_and_its_success_reported() -> None:
    codedeploy = _codedeploy(_deployment("Succeeded"))
    alias = LambdaAlias("1")
    result, emitted = _promote_codedeploy(codedeploy, alias, hooks="hooks-fn")
    assert codedeploy.operations() == ["list_deployments", "create_deployment", "get_deployment"]
    (create,) = codedeploy.arguments("create_deployment")
    content = codedeploy_strategy.appspec("model-x", "live", "1", "2", "hooks-fn")
    assert create == {
        "applicationName": "app",
        "deploymentGroupName": "grp",
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": {
                "content": content,
                "sha256": __import__("hashlib").sha256(content.encode()).hexdigest(),
            },
        },
        "description": "promote model-x:live from version 1 to 2",
    }
    assert codedeploy.waiter.waits == [
        {"deploymentId": "d-1", "WaiterConfig": {"Delay": 15, "MaxAttempts": 4}}
    ]
    assert (result.outcome, result.previous_version, result.deployment_id) == (
        promotion.PROMOTED,
        "1",
        "d-1",
    )
    assert result.strategy == "codedeploy"
    assert result.overview == {"Succeeded": 1}
    assert result.steps == [
        Step("10%", "+0 min", "watched by CodeDeploy"),
        Step("100%", "+5 min", "watched by CodeDeploy"),
    ]
    fields = {
        "version": "2",
        "previous_version": "1",
        "strategy": "codedeploy",
        "deployment_id": "d-1",
    }
    assert emitted == [("canary-started", fields), ("promoted", fields)]
    assert result.message == (
        "promoted: deployment d-1 (CodeDeployDefault.LambdaCanary10Percent5Minutes) moved "
        "alias live of model-x to version 2 (was 1)"
    )
    assert alias.moves == []


def test_the_appspec_names_the_move_and_the_hooks() -> None:
    spec = json.loads(codedeploy_strategy.appspec("fn", "live", "1", "2", "hook"))
    assert spec == {
        "Hooks": [{"BeforeAllowTraffic": "hook"}, {"AfterAllowTraffic": "hook"}],
        "version": 0.0,
        "Resources": [
            {
                "fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": "fn",
                        "Alias": "live",
                        "CurrentVersion": "1",
                        "TargetVersion": "2",
                    },
                }
            }
        ],
    }
    assert "Hooks" not in json.loads(codedeploy_strategy.appspec("fn", "live", "1", "2"))


def test_a_failed_deployment_leaves_the_alias_on_the_previous_version_and_says_why() -> None:
    info = _deployment(
        "Failed",
        errorInformation={"code": "ALARM_ACTIVE", "message": "errors fired"},
        rollbackInfo={"rollbackDeploymentId": "d-2", "rollbackMessage": "rolled back"},
    )
    alias = LambdaAlias("1", {"2": 0.1})
    waiter = Waiter(WaiterError("deployment_successful", "failed", info))
    result, emitted = _promote_codedeploy(_codedeploy(info, waiter=waiter), alias)
    reason = "deployment d-1 Failed: ALARM_ACTIVE: errors fired; rollback d-2: rolled back"
    assert result.outcome == promotion.ROLLED_BACK
    assert result.message == f"rolled back: {reason}; alias live serves version 1 at 100%"
    assert (alias.primary, alias.weights) == ("1", {})
    assert emitted[-1] == (
        "rolled-back",
        {
            "version": "2",
            "from_version": "2",
            "to_version": "1",
            "reason": reason,
            "strategy": "codedeploy",
            "deployment_id": "d-1",
        },
    )


def test_a_stopped_deployment_without_details_still_reports_a_reason() -> None:
    info = _deployment("Stopped")
    alias = LambdaAlias("1")
    waiter = Waiter(WaiterError("deployment_successful", "stopped", info))
    result, _ = _promote_codedeploy(_codedeploy(info, waiter=waiter), alias)
    assert result.message.startswith(
        "rolled back: deployment d-1 Stopped: ?: no error information; alias live"
    )
    # The alias was already where it belongs: nothing to move.
    assert alias.moves == []


def test_a_deployment_that_outlasts_the_wait_goes_on_and_says_how_to_stop_it() -> None:
    info = _deployment("InProgress")
    waiter = Waiter(WaiterError("deployment_successful", "max attempts", info))
    with pytest.raises(aws.ScriptError) as raised:
        _promote_codedeploy(_codedeploy(info, waiter=waiter), LambdaAlias("1"))
    assert str(raised.value) == (
        "deployment d-1 still InProgress after 4 check(s) 15s apart; it goes on in AWS: "
        "re-run promote to attach to it again, or `nox -s rollback` to stop it"
    )
    error = {"Error": {"Code": "AccessDenied", "Message": "no"}}
    waiter = Waiter(WaiterError("deployment_successful", "error", error))
    with pytest.raises(
        aws.ScriptError, match="waiting for deployment d-1: AWS said AccessDenied: no"
    ):
        _promote_codedeploy(_codedeploy(info, waiter=waiter), LambdaAlias("1"))


def test_a_deployment_in_flight_to_the_candidate_is_attached_to_not_repeated() -> None:
    codedeploy = _codedeploy(_deployment("Succeeded", current="1", target="2"), in_flight=["d-1"])
    result, emitted = _promote_codedeploy(codedeploy, LambdaAlias("1", {"2": 0.1}))
    assert "create_deployment" not in codedeploy.operations()
    assert codedeploy.arguments("get_deployment")[0] == {"deploymentId": "d-1"}
    assert result.previous_version == "1"
    assert [kind for kind, _ in emitted] == ["promoted"]


def test_a_deployment_in_flight_to_another_version_is_refused() -> None:
    codedeploy = _codedeploy(_deployment("InProgress", target="3"), in_flight=["d-1"])
    with pytest.raises(aws.ScriptError) as raised:
        _promote_codedeploy(codedeploy, LambdaAlias("1"))
    assert str(raised.value).startswith(
        "deployment d-1 of group grp is in flight to version 3, not 2; wait for it to end"
    )


def test_a_deployment_in_flight_without_an_appspec_falls_back_on_the_alias() -> None:
    info = _deployment("Succeeded")
    info["deploymentInfo"]["revision"] = {}
    result, _ = _promote_codedeploy(_codedeploy(info, in_flight=["d-1"]), LambdaAlias("4"))
    assert result.previous_version == "4"


def test_codedeploy_on_the_candidate_already_is_a_no_op() -> None:
    codedeploy = _codedeploy(_deployment("Succeeded"))
    result, emitted = _promote_codedeploy(codedeploy, LambdaAlias("2"))
    assert result.outcome == promotion.ALREADY
    assert result.previous_version == "2"
    assert "create_deployment" not in codedeploy.operations()
    assert emitted == []
    assert result.message.endswith("serves version 2 at 100%; nothing to do")


def test_a_half_way_alias_goes_back_to_its_primary_before_codedeploy_shifts_it() -> None:
    alias = LambdaAlias("1", {"2": 0.5})
    _promote_codedeploy(_codedeploy(_deployment("Succeeded")), alias)
    assert alias.moves == [("1", {}, "r0")]


def test_codedeploy_alarms_are_pointed_at_the_candidate_before_the_deployment() -> None:
    alarms = Alarms(errors="OK")
    alarms.dimensions["errors"] = [{"Name": "ExecutedVersion", "Value": "1"}]
    _promote_codedeploy(
        _codedeploy(_deployment("Succeeded")),
        LambdaAlias("1"),
        cloudwatch_client=alarms.client,
        alarms=["errors"],
    )
    assert alarms.client.arguments("put_metric_alarm")[0]["Dimensions"] == [
        {"Name": "ExecutedVersion", "Value": "2"}
    ]


@pytest.mark.parametrize(("delay", "attempts"), [(-1, 4), (15, 0)])
def test_a_wait_that_cannot_see_anything_is_refused(delay, attempts) -> None:
    codedeploy = _codedeploy(_deployment("Succeeded"))
    with pytest.raises(aws.UsageError, match="give a delay of 0 or more seconds and at least 1"):
        _promote_codedeploy(
            codedeploy, LambdaAlias("1"), waiter_delay=delay, waiter_max_attempts=attempts
        )
    assert codedeploy.calls == []


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("CodeDeployDefault.LambdaCanary10Percent5Minutes", [(10, 0), (100, 5)]),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            [(p, p // 10 - 1) for p in range(10, 101, 10)],
        ),
        (
            "CodeDeployDefault.LambdaLinear30PercentEvery2Minutes",
            [(30, 0), (60, 2), (90, 4), (100, 6)],
        ),
        ("CodeDeployDefault.LambdaAllAtOnce", [(100, 0)]),
        ("Custom", []),
    ],
)
def test_traffic_steps_follow_the_config_name(name, steps) -> None:
    assert codedeploy_strategy.traffic_steps(name) == steps


def test_a_custom_config_is_reported_by_name() -> None:
    info = _deployment("Succeeded", deploymentConfigName="mine")
    result, _ = _promote_codedeploy(_codedeploy(info), LambdaAlias("1"))
    assert result.steps == [Step("see config", "mine", "watched by CodeDeploy")]


def test_the_wait_covers_the_longest_accepted_config_and_a_margin() -> None:
    minutes = config.MAX_CANARY_MINUTES + codedeploy_strategy.WAIT_MARGIN_MINUTES
    assert codedeploy_strategy.waiter_attempts(15) == minutes * 4
    assert codedeploy_strategy.waiter_attempts(7) == -(-minutes * 60 // 7)
    assert codedeploy_strategy.waiter_attempts(0) == minutes * 60


def test_the_check_asks_for_a_promotion_unless_the_alias_serves_the_candidate() -> None:
    values, line = candidate.promotion_check(LambdaAlias("1").client, "model-x", "live", "2")
    assert values == {"candidate-version": "2", "candidate-sha256": "sha-of-2", "promote": "true"}
    assert line == (
        "Promotion of version 2 awaits approval in `canary-promotion` (alias live serves "
        "version 1 at 100%)."
    )
    values, line = candidate.promotion_check(LambdaAlias("2").client, "model-x", "live", "2")
    assert values["promote"] == "false"
    assert line.startswith("Promotion skipped: alias live already serves version 2 at 100%")
    half_way = LambdaAlias("2", {"3": 0.1})
    assert (
        candidate.promotion_check(half_way.client, "model-x", "live", "2")[0]["promote"] == "true"
    )


def test_a_version_whose_code_is_not_what_the_run_deployed_is_refused() -> None:
    alias = LambdaAlias("1")
    candidate.require_deployed_code(alias.client, "model-x", "2", "sha-of-2")
    with pytest.raises(aws.UsageError) as raised:
        candidate.require_deployed_code(alias.client, "model-x", "2", "sha-else")
    assert str(raised.value).startswith(
        "--version 2: its code (CodeSha256 sha-of-2) is not what this run deployed (sha-else)"
    )


@pytest.mark.parametrize(
    ("rollback", "said"),
    [
        ({"rollbackDeploymentId": "d-2"}, "; rollback d-2"),
        ({"rollbackMessage": "by alarm"}, "; rollback ?: by alarm"),
        ({}, ""),
    ],
)
def test_a_failure_reason_names_the_rollback_with_what_codedeploy_gave(rollback, said) -> None:
    info = _deployment("Failed", rollbackInfo=rollback)["deploymentInfo"]
    assert codedeploy_strategy._failure_reason(info) == (
        f"deployment d-1 Failed: ?: no error information{said}"
    )


def test_steps_may_be_written_with_spaces_anywhere() -> None:
    assert promotion.parse_steps("1 0, 5 0,10 0") == (10, 50, 100)


def test_a_deployment_that_cannot_be_read_says_which() -> None:
    codedeploy = _codedeploy(client_error("DeploymentDoesNotExistException"), in_flight=["d-1"])
    with pytest.raises(aws.NotFoundError, match="reading deployment d-1: not found"):
        _promote_codedeploy(codedeploy, LambdaAlias("1"))


def test_the_code_of_an_unpublished_version_is_refused_as_bad_input() -> None:
    with pytest.raises(aws.UsageError, match="--version 9: function model-x has no published"):
        candidate.code_sha256(LambdaAlias("1").client, "model-x", "9")
    denied = LambdaAlias("1")
    denied.client.answers["get_function"] = [
        denied.get_function,
        client_error("AccessDeniedException", "GetFunction"),
    ]
    with pytest.raises(aws.AccessError, match="reading version 2 of model-x"):
        candidate.code_sha256(denied.client, "model-x", "2")


def test_a_wait_of_no_delay_and_one_check_is_accepted() -> None:
    codedeploy = _codedeploy(_deployment("Succeeded"))
    result, _ = _promote_codedeploy(
        codedeploy, LambdaAlias("1"), waiter_delay=0, waiter_max_attempts=1
    )
    assert result.outcome == promotion.PROMOTED
    assert codedeploy.waiter.waits[0]["WaiterConfig"] == {"Delay": 0, "MaxAttempts": 1}


def test_alarms_without_a_cloudwatch_client_are_left_alone() -> None:
    result, _ = _promote_codedeploy(
        _codedeploy(_deployment("Succeeded")), LambdaAlias("1"), alarms=["errors"]
    )
    assert result.outcome == promotion.PROMOTED


def test_a_codedeploy_start_that_cannot_be_recorded_is_noted_and_the_promotion_goes_on() -> None:
    emitted: list[str] = []

    def refuse_start(kind: str, **fields: object) -> None:
        if kind == "canary-started":
            raise aws.ScriptError("bus down")
        emitted.append(kind)

    result, _ = _promote_codedeploy(
        _codedeploy(_deployment("Succeeded")), LambdaAlias("1"), emit=refuse_start
    )
    assert result.outcome == promotion.PROMOTED
    assert emitted == ["promoted"]
    (note,) = result.unrecorded
    assert note.startswith("the `canary-started` event was not recorded (bus down)")


def test_an_interrupt_while_resuming_names_the_resumed_weight() -> None:
    alias = LambdaAlias("1", {"2": 0.5})

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    result, emitted = _promote(alias, Alarms(errors="OK", latency="OK"), sleep=interrupted)
    assert result.outcome == promotion.INTERRUPTED
    assert emitted[-1][1]["reason"] == "interrupt at 50%"
    assert (alias.primary, alias.weights) == ("1", {})


def test_an_aws_error_is_a_step_of_the_report() -> None:
    alias = LambdaAlias("1")
    alias.client.answers["update_alias"] = [
        alias.update_alias,
        client_error("ServiceException", "UpdateAlias", "boom"),
        alias.update_alias,
    ]
    clock = Clock()
    shift_results: list = []
    original = promotion._AliasShift.abandon

    def keep_result(self, error, weight):
        shift_results.append(self.result)
        original(self, error, weight)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(promotion._AliasShift, "abandon", keep_result)
        with pytest.raises(aws.ScriptError):
            _promote(alias, Alarms(errors="OK", latency="OK"), clock)
    (result,) = shift_results
    assert result.steps[-1] == Step("50%", "+60s", "(AWS error: rolled back)")


def test_a_promotion_whose_record_fails_is_promoted_and_says_how_to_record_it() -> None:
    def refuse_promoted(kind: str, **fields: object) -> None:
        if kind == "promoted":
            raise aws.ScriptError("bus down")

    result, _ = _promote(LambdaAlias("1"), Alarms(errors="OK", latency="OK"), emit=refuse_promoted)
    assert result.outcome == promotion.PROMOTED
    (note,) = result.unrecorded
    assert note.startswith("the `promoted` event was not recorded (bus down)")


def test_a_promotion_counts_each_of_its_steps_once_and_ends_at_its_total(capsys) -> None:
    # Its own progress, when the caller gives none: one step a traffic weight.
    _promote(LambdaAlias("1"), Alarms(errors="OK", latency="OK"), progress=None)
    assert_climbs_one_step_at_a_time_to_its_total(capsys.readouterr().err, "promote")
    _promote_codedeploy(_codedeploy(_deployment("Succeeded")), LambdaAlias("1"), progress=None)
    assert_climbs_one_step_at_a_time_to_its_total(capsys.readouterr().err, "promote")


def test_a_failed_deployment_that_left_the_alias_split_is_put_back_by_name() -> None:
    info = _deployment("Failed", errorInformation={"code": "ALARM_ACTIVE", "message": "x"})
    alias = LambdaAlias("1")

    class SplitThenFail(Waiter):
        # CodeDeploy shifted 10% to the candidate, then failed without shifting it back.
        def wait(self, **kwargs: object) -> None:
            alias.primary, alias.weights = "1", {"2": 0.1}
            alias.revision = "r-codedeploy"
            super().wait(**kwargs)

    waiter = SplitThenFail(WaiterError("deployment_successful", "failed", info))
    result, _ = _promote_codedeploy(_codedeploy(info, waiter=waiter), alias)
    assert result.outcome == promotion.ROLLED_BACK
    assert (alias.primary, alias.weights) == ("1", {})
    # The put-back names the function and alias, locked on what CodeDeploy left.
    assert alias.moves[-1] == ("1", {}, "r-codedeploy")
