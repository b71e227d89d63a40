"""Release: one version's stage moves to a new deployment, the others keep theirs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from scripts import events, release
from scripts.lib import aws, outputs

SHA = "0123456789abcdef0123456789abcdef01234567"


class DocumentationVersionStandIn:
    """The moto-backed API Gateway client, except for create_documentation_version.

    moto 5.2.5 answers every documentation-version call with a bare 404, so this
    stands in for that ONE call (recording the request, answering as AWS does, or
    failing when told to); every other call goes to moto unchanged and is recorded,
    so tests can check the order of the calls.
    """

    def __init__(self, real: Any, fail: dict[str, ClientError] | None = None) -> None:
        self._real = real
        self._fail = fail or {}
        self.calls: list[tuple[str, dict]] = []

    def create_documentation_version(self, **kwargs: Any) -> dict:
        self.calls.append(("create_documentation_version", kwargs))
        if "create_documentation_version" in self._fail:
            raise self._fail["create_documentation_version"]
        return {
            "version": kwargs["documentationVersion"],
            "createdDate": dt.datetime.now(dt.UTC),
            "description": kwargs.get("description", ""),
        }

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._real, name)
        if not callable(target) or name == "get_paginator":
            return target

        def recorded(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name in self._fail:
                raise self._fail[name]
            return target(**kwargs)

        return recorded

    def made(self, name: str) -> list[dict]:
        return [kwargs for call, kwargs in self.calls if call == name]


def _error(code: str, operation: str, message: str = "refused") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))


@pytest.fixture
def apigw(deployed, monkeypatch: pytest.MonkeyPatch):
    """Route main()'s API Gateway client through the stand-in; returns a setter for failures."""
    holder: dict[str, DocumentationVersionStandIn] = {}
    real_client = aws.client

    def install(fail: dict[str, ClientError] | None = None) -> DocumentationVersionStandIn:
        holder["stand_in"] = DocumentationVersionStandIn(deployed.client("apigateway"), fail)
        return holder["stand_in"]

    def client(service: str, region: str | None = None) -> Any:
        return holder["stand_in"] if service == "apigateway" else real_client(service, region)

    monkeypatch.setattr(aws, "client", client)
    install()
    return install


def _args(deployed, *extra: str) -> list[str]:
    return ["--outputs", str(deployed.outputs_file), *extra]


def _stages(deployed) -> dict[str, dict]:
    api = deployed.client("apigateway")
    result = {}
    for stage in api.get_stages(restApiId=deployed.outputs["api_id"])["item"]:
        result[stage["stageName"]] = {
            "deploymentId": stage["deploymentId"],
            "variables": stage.get("variables", {}),
        }
    return result


def _deployments(deployed) -> set[str]:
    listing = aws.pages(
        deployed.client("apigateway"),
        "get_deployments",
        "items",
        restApiId=deployed.outputs["api_id"],
    )
    return {d["id"] for d in listing}


def test_release_of_v2_moves_only_v2s_stage(deployed, apigw, capsys, tmp_path) -> None:
    before = _stages(deployed)
    initial = before["v2"]["deploymentId"]
    assert before["v1"]["deploymentId"] == initial
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2")) == 0

    (new,) = _deployments(deployed) - {initial}
    after = _stages(deployed)
    assert after["v2"] == {"deploymentId": new, "variables": {"alias": "live"}}
    assert after["v1"] == before["v1"]

    # The order that never leaves a stage on something missing, and the one stage call.
    assert [c for c, _ in stand_in.calls if c.startswith(("create", "update", "delete"))] == [
        "create_deployment",
        "create_documentation_version",
        "update_stage",
    ]
    (created,) = stand_in.made("create_deployment")
    assert "stageName" not in created
    assert created["description"].startswith("release v2 with alias live (model version 1) ")
    # The deployment carries the fingerprint of the definition it snapshots.
    fingerprint = release.definition_fingerprint(
        deployed.client("apigateway"), deployed.outputs["api_id"]
    )
    assert created["description"].endswith(f" [definition {fingerprint}]")
    (documented,) = stand_in.made("create_documentation_version")
    assert documented == {
        "restApiId": deployed.outputs["api_id"],
        "documentationVersion": f"v2-{new}",
        "description": "release v2 with alias live (model version 1)",
    }
    # moto accepts /documentationVersion in update_stage but does not store it, so
    # the request itself is the evidence here (get_stage above proves the rest).
    (updated,) = stand_in.made("update_stage")
    assert updated["stageName"] == "v2"
    assert updated["patchOperations"] == [
        {"op": "replace", "path": "/deploymentId", "value": new},
        {"op": "replace", "path": "/variables/alias", "value": "live"},
        {"op": "replace", "path": "/documentationVersion", "value": f"v2-{new}"},
    ]

    (event,) = deployed.history()
    assert event["kind"] == "released"
    assert (event["api_version"], event["stage"], event["deployment_id"]) == ("v2", "v2", new)
    assert (event["version"], event["alias"], event["previous_deployment"]) == (
        "1",
        "live",
        initial,
    )
    assert event["documentation_version"] == f"v2-{new}"
    state = events.fold(
        events.history(deployed.client("s3"), outputs.from_file(deployed.outputs_file))
    )
    assert state["releases"] == {"v2": {"stage": "v2", "deployment_id": new, "model_version": "1"}}

    out = capsys.readouterr()
    url = deployed.outputs["api_urls"]["v2"]
    row = f"| v2 | v2 | {initial} -> {new} | live (model version 1) | v2-{new} | {url} |"
    assert row in out.out
    assert row in (tmp_path / "step-summary.md").read_text()
    assert f"stage v2 of API {deployed.outputs['api_id']} serves deployment {new}" in out.err


def test_release_at_a_commit_names_its_documentation_after_it(
    deployed, apigw, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SHA", SHA)
    before = _stages(deployed)
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2", "--alias", "live")) == 0

    (new,) = _deployments(deployed) - {before["v2"]["deploymentId"]}
    after = _stages(deployed)
    assert after["v2"] == {"deploymentId": new, "variables": {"alias": "live"}}
    assert after["v1"] == before["v1"]
    (documented,) = stand_in.made("create_documentation_version")
    assert documented["documentationVersion"] == f"v2-{SHA[:12]}-{new}"
    assert documented["description"].endswith(f"at {SHA[:12]}")


def test_an_alias_the_api_may_not_invoke_is_refused(deployed, apigw, capsys) -> None:
    # The alias exists, but the API's Lambda permission covers `live` only: a stage serving
    # it would answer HTTP 500 to every call.
    candidate = deployed.publish_candidate()
    deployed.client("lambda").create_alias(
        FunctionName=deployed.names.model_function, Name="canary-test", FunctionVersion=candidate
    )
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2", "--alias", "canary-test")) == 2

    assert "the API may invoke only alias 'live'" in capsys.readouterr().err
    _unchanged(deployed, stand_in, before)


def test_a_version_the_api_has_but_the_outputs_give_no_stage_is_refused(
    deployed, apigw, capsys
) -> None:
    values = json.loads(deployed.outputs_file.read_text())
    del values["api_stages"]["v2"]
    deployed.outputs_file.write_text(json.dumps(values))
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2")) == 2

    err = capsys.readouterr().err
    assert "has /v2 but the stack outputs name no stage for it" in err
    assert "Traceback" not in err
    _unchanged(deployed, stand_in, before)


def test_releasing_again_makes_another_deployment(deployed, apigw) -> None:
    initial = _stages(deployed)["v1"]["deploymentId"]

    assert release.main(_args(deployed, "--version", "v1", "--doc-version", "v1-first")) == 0
    first = _stages(deployed)["v1"]["deploymentId"]
    assert release.main(_args(deployed, "--version", "v1", "--doc-version", "v1-second")) == 0
    second = _stages(deployed)["v1"]["deploymentId"]

    # No content hash to compare: each release is its own deployment, and recorded.
    assert len({initial, first, second}) == 3
    assert _stages(deployed)["v2"]["deploymentId"] == initial
    history = deployed.history()
    assert [(e["deployment_id"], e["previous_deployment"]) for e in history] == [
        (first, initial),
        (second, first),
    ]


def _unchanged(deployed, stand_in: DocumentationVersionStandIn, before: tuple) -> None:
    assert (_stages(deployed), _deployments(deployed)) == before
    assert not [c for c, _ in stand_in.calls if c.startswith(("create", "update", "delete"))]
    assert deployed.deliver_events() == []


def test_an_unknown_version_is_refused_with_the_versions_the_api_has(
    deployed, apigw, capsys
) -> None:
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v3")) == 2

    err = capsys.readouterr().err
    assert f"--version v3: API {deployed.outputs['api_id']} has no version 'v3'" in err
    assert "(it has: v1, v2); pass one of those" in err
    _unchanged(deployed, stand_in, before)


def test_a_version_the_outputs_name_but_the_api_lacks_is_refused(deployed, apigw, capsys) -> None:
    deployed.outputs["api_stages"]["v3"] = "v3"
    deployed.outputs_file.write_text(json.dumps(deployed.outputs))
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v3")) == 2

    err = capsys.readouterr().err
    assert "has no /v3 resource; deploy the stack with v3 in config apiVersions" in err
    assert "(it has: v1, v2)" in err
    _unchanged(deployed, stand_in, before)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alias", "12"], "--alias '12' is not a Lambda alias name"),
        (["--alias", "bad/alias"], "--alias 'bad/alias' is not a Lambda alias name"),
        (["--alias", "nobody"], "may invoke only alias 'live'"),
        (["--doc-version", "v2 final"], "--doc-version 'v2 final' must be 1-64 letters"),
    ],
)
def test_bad_alias_or_doc_version_changes_nothing(
    deployed, apigw, capsys, extra: list[str], message: str
) -> None:
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2", *extra)) == 2

    assert message in capsys.readouterr().err
    _unchanged(deployed, stand_in, before)


def test_a_malformed_github_sha_changes_nothing(
    deployed, apigw, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SHA", "not-a-sha")
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2")) == 2

    assert (
        "GITHUB_SHA: git sha 'not-a-sha' must be 7-40 lowercase hex digits"
        in capsys.readouterr().err
    )
    _unchanged(deployed, stand_in, before)


def test_an_unknown_outputs_file_is_refused(deployed, apigw, capsys, tmp_path) -> None:
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(["--outputs", str(tmp_path / "nope.json"), "--version", "v2"]) == 2

    assert "nope.json does not exist" in capsys.readouterr().err
    _unchanged(deployed, stand_in, before)


@pytest.mark.parametrize("key", ["api_id", "api_stages", "model_function", "event_bus"])
def test_a_missing_output_is_refused(deployed, apigw, capsys, key: str) -> None:
    values = {k: v for k, v in deployed.outputs.items() if k != key}
    deployed.outputs_file.write_text(json.dumps(values))
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw()

    assert release.main(_args(deployed, "--version", "v2")) == 2

    assert f"have no {key!r}" in capsys.readouterr().err
    _unchanged(deployed, stand_in, before)


def test_malformed_api_stages_output_is_refused(deployed, apigw, capsys) -> None:
    deployed.outputs["api_stages"] = ["v1", "v2"]
    deployed.outputs_file.write_text(json.dumps(deployed.outputs))

    assert release.main(_args(deployed, "--version", "v2")) == 2

    assert "'api_stages' must map versions to stage names" in capsys.readouterr().err


def test_a_failed_documentation_version_deletes_the_fresh_deployment(
    deployed, apigw, capsys
) -> None:
    before = (_stages(deployed), _deployments(deployed))
    failure = _error("TooManyRequestsException", "CreateDocumentationVersion", "slow down")
    stand_in = apigw({"create_documentation_version": failure})

    assert release.main(_args(deployed, "--version", "v2")) == 1

    (created,) = stand_in.made("create_deployment")
    (deleted,) = stand_in.made("delete_deployment")
    new = deleted["deploymentId"]
    assert created["restApiId"] == deleted["restApiId"] == deployed.outputs["api_id"]
    assert new not in before[1]
    err = capsys.readouterr().err
    assert "recording documentation version v2-" in err
    assert "AWS said TooManyRequestsException: slow down" in err
    assert f"the new deployment {new} was deleted again; the stage is unchanged" in err
    assert (_stages(deployed), _deployments(deployed)) == before
    assert not stand_in.made("update_stage")
    assert deployed.deliver_events() == []


def test_an_existing_doc_version_is_bad_input_and_changes_nothing(deployed, apigw, capsys) -> None:
    before = (_stages(deployed), _deployments(deployed))
    failure = _error(
        "ConflictException", "CreateDocumentationVersion", "Documentation version exists"
    )
    stand_in = apigw({"create_documentation_version": failure})

    assert release.main(_args(deployed, "--version", "v2", "--doc-version", "v2-taken")) == 2

    err = capsys.readouterr().err
    assert "--doc-version v2-taken: API" in err and "already has this documentation version" in err
    assert (_stages(deployed), _deployments(deployed)) == before
    assert len(stand_in.made("delete_deployment")) == 1
    assert deployed.deliver_events() == []


def test_a_failed_stage_update_deletes_the_fresh_deployment(deployed, apigw, capsys) -> None:
    before = (_stages(deployed), _deployments(deployed))
    stand_in = apigw({"update_stage": _error("BadRequestException", "UpdateStage", "no")})

    assert release.main(_args(deployed, "--version", "v2")) == 1

    (deleted,) = stand_in.made("delete_deployment")
    err = capsys.readouterr().err
    assert f"pointing stage v2 at deployment {deleted['deploymentId']}" in err
    assert "was deleted again; the stage is unchanged" in err
    assert (_stages(deployed), _deployments(deployed)) == before
    assert deployed.deliver_events() == []


def test_request_shapes_with_stubber() -> None:
    """Every request release() makes, exactly, including the calls moto cannot serve."""
    session = dict(region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    apigw = boto3.client("apigateway", endpoint_url="https://apigateway.invalid", **session)
    lam = boto3.client("lambda", endpoint_url="https://lambda.invalid", **session)
    api = {"restApiId": "a1b2c3"}
    description = f"release v2 with alias live (model version 7) at {SHA[:12]}"
    doc = f"v2-{SHA[:12]}-dep2"
    with Stubber(apigw) as gw, Stubber(lam) as fn:
        gw.add_response(
            "get_resources",
            {
                "items": [
                    {"id": "r0", "path": "/"},
                    {"id": "r1", "path": "/v1"},
                    {"id": "r2", "path": "/v2"},
                    {"id": "r3", "path": "/v2/{proxy+}"},
                ]
            },
            api,
        )
        gw.add_response(
            "get_stage",
            {"stageName": "v2", "deploymentId": "dep1", "variables": {"alias": "live"}},
            {**api, "stageName": "v2"},
        )
        fn.add_response(
            "get_alias",
            {"Name": "live", "FunctionVersion": "7"},
            {"FunctionName": "m-model", "Name": "live"},
        )
        gw.add_response("get_resources", {"items": [{"id": "r0", "path": "/"}]}, api)
        tagged = f"{description} [definition {hashlib.sha256(b'[]').hexdigest()[:16]}]"
        gw.add_response("create_deployment", {"id": "dep2"}, {**api, "description": tagged})
        gw.add_response(
            "create_documentation_version",
            {"version": doc, "description": description},
            {**api, "documentationVersion": doc, "description": description},
        )
        gw.add_response(
            "update_stage",
            {"stageName": "v2", "deploymentId": "dep2", "documentationVersion": doc},
            {
                **api,
                "stageName": "v2",
                "patchOperations": [
                    {"op": "replace", "path": "/deploymentId", "value": "dep2"},
                    {"op": "replace", "path": "/variables/alias", "value": "live"},
                    {"op": "replace", "path": "/documentationVersion", "value": doc},
                ],
            },
        )
        emitted: list[tuple[str, dict]] = []

        result = release.release(
            apigw,
            lam,
            api_id="a1b2c3",
            version="v2",
            stages={"v1": "v1", "v2": "v2"},
            function="m-model",
            alias="live",
            git_sha=SHA,
            emit=lambda kind, **fields: emitted.append((kind, fields)),
        )

        gw.assert_no_pending_responses()
        fn.assert_no_pending_responses()
    assert (result.previous_deployment, result.deployment_id) == ("dep1", "dep2")
    assert emitted == [
        (
            "released",
            {
                "version": "7",
                "api_version": "v2",
                "stage": "v2",
                "deployment_id": "dep2",
                "previous_deployment": "dep1",
                "alias": "live",
                "documentation_version": doc,
            },
        )
    ]


def test_an_event_that_cannot_be_recorded_says_the_release_happened(deployed) -> None:
    api = deployed.client("apigateway")
    stand_in = DocumentationVersionStandIn(api)

    def emit(kind: str, **fields: object) -> None:
        raise aws.ScriptError("bus refused the 'released' event")

    with pytest.raises(aws.ScriptError) as raised:
        release.release(
            stand_in,
            deployed.client("lambda"),
            api_id=deployed.outputs["api_id"],
            version="v1",
            stages=deployed.outputs["api_stages"],
            function=deployed.names.model_function,
            alias="live",
            emit=emit,
        )

    assert raised.value.exit_code == 1
    (update,) = stand_in.made("update_stage")
    new = update["patchOperations"][0]["value"]
    assert _stages(deployed)["v1"]["deploymentId"] == new
    assert (
        f"released v1: stage v1 of API {deployed.outputs['api_id']} serves deployment {new}"
        in str(raised.value)
    )
    assert "but the 'released' event was not recorded: bus refused" in str(raised.value)


def test_a_conflict_whose_cleanup_fails_is_not_reported_as_nothing_changed(
    deployed, apigw, capsys
) -> None:
    stand_in = apigw(
        {
            "create_documentation_version": _error(
                "ConflictException", "CreateDocumentationVersion"
            ),
            "delete_deployment": _error("TooManyRequestsException", "DeleteDeployment", "busy"),
        }
    )

    assert release.main(_args(deployed, "--version", "v2", "--doc-version", "v2-taken")) == 1

    (created,) = stand_in.made("delete_deployment")
    err = capsys.readouterr().err
    assert f"the new deployment {created['deploymentId']} could NOT be deleted (busy)" in err
    assert not stand_in.made("update_stage")


def _check(deployed, capsys) -> dict[str, str]:
    assert release.main(["--outputs", str(deployed.outputs_file), "--check"]) == 0
    out = capsys.readouterr().out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_check_asks_for_a_release_only_when_the_api_changed(deployed, apigw, capsys) -> None:
    apigw()
    # Never released through the pipeline: the stage's deployment carries no fingerprint.
    assert _check(deployed, capsys) == {"api-version": "v2", "release": "true"}
    assert release.main(["--outputs", str(deployed.outputs_file)]) == 0
    capsys.readouterr()
    # Released, nothing changed since (a docs-only push): no approval to ask for.
    assert _check(deployed, capsys) == {"api-version": "v2", "release": "false"}

    # The next deploy adds a method to v2: the definition differs from what v2 serves.
    client = deployed.client("apigateway")
    api_id = deployed.outputs["api_id"]
    v2 = next(r for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == "/v2")
    extra = client.create_resource(restApiId=api_id, parentId=v2["id"], pathPart="explain")
    client.put_method(
        restApiId=api_id, resourceId=extra["id"], httpMethod="POST", authorizationType="NONE"
    )
    assert _check(deployed, capsys) == {"api-version": "v2", "release": "true"}


def test_the_default_version_is_the_newest_by_number() -> None:
    assert release.newest_version({"v1": "v1", "v10": "v10", "v9": "v9"}) == "v10"
    with pytest.raises(release.aws.UsageError, match="name no version vN"):
        release.newest_version({})
