"""Release: one version's stage moves to a new deployment, the others keep theirs."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import sys
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from scripts import events, release
from scripts.lib import aws, outputs
from scripts.lib.progress import Progress
from tests.fake_aws import FakeClient, client_error
from tests.progress_lines import assert_climbs_one_step_at_a_time_to_its_total

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


# --- the conversation with AWS, against in-process stand-ins (no moto: the unit tier) ------


class ApiStandIn:
    """API Gateway's side of a release: resources and methods, stages, deployments, docs."""

    def __init__(self, paths=("/", "/v1", "/v1/{proxy+}", "/v2", "/health")) -> None:
        self.resources = [
            {"id": f"r{i}", "path": p, "resourceMethods": {"ANY": {}} if p != "/" else {}}
            for i, p in enumerate(paths)
        ]
        self.methods = {
            (r["id"], "ANY"): {
                "authorizationType": "AWS_IAM",
                "apiKeyRequired": False,
                "methodIntegration": {"type": "AWS_PROXY", "httpMethod": "POST", "uri": "fn"},
            }
            for r in self.resources
        }
        self.stages = {"v1": {"deploymentId": "d1"}, "v2": {"deploymentId": "d0"}}
        self.deployments = {"d0": "release v2 [definition old]", "d1": ""}
        self.documentation: list[str] = []
        self.client = FakeClient(
            {
                "get_stage": self.get_stage,
                "get_method": lambda restApiId, resourceId, httpMethod: self.methods[
                    (resourceId, httpMethod)
                ],
                "get_deployment": lambda restApiId, deploymentId: {
                    "description": self.deployments[deploymentId]
                },
                "create_deployment": self.create_deployment,
                "create_documentation_version": self.create_documentation_version,
                "update_stage": self.update_stage,
                "delete_deployment": self.delete_deployment,
            },
            {
                "get_resources": lambda restApiId: [
                    {"items": self.resources[:2]},
                    {"items": self.resources[2:]},
                ]
            },
        )
        # A call naming another API is answered as API Gateway answers it.
        for table in (self.client.answers, self.client.page_answers):
            for operation, answer in table.items():
                table[operation] = self._of_this_api(answer)

    @staticmethod
    def _of_this_api(answer):
        def checked(restApiId: str, **kwargs):
            if restApiId != "api1":
                raise client_error("NotFoundException", "ApiGateway", f"no API {restApiId}")
            return answer(restApiId=restApiId, **kwargs)

        return checked

    def get_stage(self, restApiId: str, stageName: str) -> dict:
        if stageName not in self.stages:
            raise client_error("NotFoundException", "GetStage")
        return {"stageName": stageName, **self.stages[stageName]}

    def create_deployment(self, restApiId: str, description: str) -> dict:
        deployment_id = f"d{len(self.deployments)}"
        self.deployments[deployment_id] = description
        return {"id": deployment_id}

    def create_documentation_version(self, restApiId, documentationVersion, description) -> dict:
        if documentationVersion in self.documentation:
            raise client_error("ConflictException", "CreateDocumentationVersion")
        self.documentation.append(documentationVersion)
        return {}

    def update_stage(self, restApiId: str, stageName: str, patchOperations: list) -> dict:
        for patch in patchOperations:
            self.stages[stageName][patch["path"]] = patch["value"]
        self.stages[stageName]["deploymentId"] = self.stages[stageName].pop("/deploymentId")
        return {}

    def delete_deployment(self, restApiId: str, deploymentId: str) -> dict:
        if any(s["deploymentId"] == deploymentId for s in self.stages.values()):
            raise client_error("BadRequestException", "DeleteDeployment", "in use by a stage")
        del self.deployments[deploymentId]
        return {}


def _alias(version: str = "7", weights: dict | None = None, error: Exception | None = None):
    routing = {"AdditionalVersionWeights": weights} if weights else {}
    answer = error or {"FunctionVersion": version, "RoutingConfig": routing}
    return FakeClient({"get_alias": answer})


STAGES = {"v1": "v1", "v2": "v2"}


def _release(api: ApiStandIn, lam=None, **kwargs) -> tuple[release.ReleaseResult, list]:
    emitted: list[tuple[str, dict]] = []
    arguments: dict[str, Any] = {
        "api_id": "api1",
        "version": "v2",
        "stages": STAGES,
        "function": "model-x",
        "alias": "live",
        "emit": lambda kind, **fields: emitted.append((kind, fields)),
        "progress": Progress("release", total=5, stream=io.StringIO()),
        **kwargs,
    }
    return release.release(api.client, lam or _alias(), **arguments), emitted


def test_a_release_creates_a_deployment_records_its_docs_then_moves_one_stage() -> None:
    api = ApiStandIn()
    lam = _alias("7", {"8": 0.1})
    result, emitted = _release(api, lam, git_sha=SHA)
    assert [op for op in api.client.operations() if op not in ("get_resources", "get_method")] == [
        "get_stage",
        "create_deployment",
        "create_documentation_version",
        "update_stage",
    ]
    assert lam.calls == [("get_alias", {"FunctionName": "model-x", "Name": "live"})]
    deployment = result.deployment_id
    description = f"release v2 with alias live (model version 7) at {SHA[:12]}"
    fingerprint = release.definition_fingerprint(api.client, "api1")
    assert api.deployments[deployment] == f"{description} [definition {fingerprint}]"
    assert api.client.arguments("create_documentation_version") == [
        {
            "restApiId": "api1",
            "documentationVersion": f"v2-{SHA[:12]}-{deployment}",
            "description": description,
        }
    ]
    assert api.stages["v2"] == {
        "deploymentId": deployment,
        "/variables/alias": "live",
        "/documentationVersion": f"v2-{SHA[:12]}-{deployment}",
    }
    assert api.stages["v1"] == {"deploymentId": "d1"}
    assert result == release.ReleaseResult(
        api_id="api1",
        version="v2",
        stage="v2",
        previous_deployment="d0",
        deployment_id=deployment,
        alias="live",
        model_version="7",
        documentation_version=f"v2-{SHA[:12]}-{deployment}",
        description=description,
    )
    assert emitted == [
        (
            "released",
            {
                "version": "7",
                "api_version": "v2",
                "stage": "v2",
                "deployment_id": deployment,
                "previous_deployment": "d0",
                "alias": "live",
                "documentation_version": f"v2-{SHA[:12]}-{deployment}",
                # A shift in progress is part of what the release serves.
                "alias_weights": {"8": 0.1},
            },
        )
    ]
    assert result.message == (
        f"released v2: stage v2 of API api1 serves deployment {deployment} (was d0) through "
        f"alias live (model version 7), documentation v2-{SHA[:12]}-{deployment}"
    )


def test_a_release_without_a_commit_or_event_names_its_docs_after_the_deployment() -> None:
    api = ApiStandIn()
    result, _ = _release(api, emit=None, description="mine", doc_version=None)
    assert result.documentation_version == f"v2-{result.deployment_id}"
    assert result.description == "mine"
    assert api.deployments[result.deployment_id].startswith("mine [definition ")
    plain, _ = _release(ApiStandIn(), emit=None)
    assert plain.description == "release v2 with alias live (model version 7)"


def test_a_given_doc_version_is_used_and_one_the_api_has_changes_nothing() -> None:
    api = ApiStandIn()
    result, _ = _release(api, doc_version="v2-first")
    assert result.documentation_version == "v2-first"
    deployments = dict(api.deployments)
    stage = dict(api.stages["v2"])
    with pytest.raises(aws.UsageError) as raised:
        _release(api, doc_version="v2-first")
    assert str(raised.value).startswith(
        "--doc-version v2-first: API api1 already has this documentation version; pass a new "
        "one (the new deployment d"
    )
    assert "was deleted again; the stage is unchanged" in str(raised.value)
    assert (api.deployments, api.stages["v2"]) == (deployments, stage)


def test_a_failed_doc_version_deletes_the_deployment_and_says_so() -> None:
    api = ApiStandIn()
    api.client.answers["create_documentation_version"] = client_error("TooManyRequestsException")
    with pytest.raises(aws.ScriptError) as raised:
        _release(api)
    assert type(raised.value) is aws.ScriptError
    message = str(raised.value)
    assert message.startswith("recording documentation version v2-d2: AWS said TooManyRequests")
    assert message.endswith("the new deployment d2 was deleted again; the stage is unchanged")
    assert "d2" not in api.deployments
    assert api.client.arguments("delete_deployment") == [
        {"restApiId": "api1", "deploymentId": "d2"}
    ]


def test_a_conflict_whose_cleanup_fails_is_not_bad_input() -> None:
    api = ApiStandIn()
    api.client.answers["create_documentation_version"] = client_error("ConflictException")
    api.client.answers["delete_deployment"] = client_error("BadRequestException", message="busy")
    with pytest.raises(aws.ScriptError) as raised:
        _release(api)
    assert not isinstance(raised.value, aws.UsageError)
    assert "the new deployment d2 could NOT be deleted (busy); check which deployment" in str(
        raised.value
    )


def test_a_failed_stage_update_deletes_the_deployment_and_keeps_the_docs() -> None:
    api = ApiStandIn()
    api.client.answers["update_stage"] = client_error("AccessDeniedException", message="no")
    with pytest.raises(aws.ScriptError) as raised:
        _release(api)
    message = str(raised.value)
    assert message.startswith("pointing stage v2 at deployment d2: access denied (no)")
    assert message.endswith(
        "; the new deployment d2 was deleted again; the stage is unchanged; documentation "
        "version v2-d2 stays (it serves nothing)"
    )
    assert api.stages["v2"] == {"deploymentId": "d0"}
    assert "d2" not in api.deployments


def test_a_release_whose_event_is_refused_says_the_stage_moved() -> None:
    api = ApiStandIn()

    def refuse(kind: str, **fields: object) -> None:
        raise aws.ScriptError("bus down")

    with pytest.raises(aws.ScriptError) as raised:
        _release(api, emit=refuse)
    assert str(raised.value).startswith("released v2: stage v2 of API api1 serves deployment d2")
    assert str(raised.value).endswith("; but the 'released' event was not recorded: bus down")
    assert api.stages["v2"]["deploymentId"] == "d2"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alias": "7"}, "--alias '7' is not a Lambda alias name"),
        ({"alias": "a" * 129}, "is not a Lambda alias name: 1-128 letters"),
        ({"alias": "blue", "invokable_alias": "live"}, "the API may invoke only alias 'live' of"),
        ({"doc_version": "v2 first"}, "--doc-version 'v2 first' must be 1-64 letters"),
        ({"doc_version": "v" * 65}, "must be 1-64 letters"),
        ({"git_sha": "xyz"}, "GITHUB_SHA: "),
        ({"version": "v3"}, "--version v3: API api1 has no version 'v3' (it has: v1, v2)"),
        (
            {"stages": {"v1": "v1", "v2": "v2", "v4": "v4"}, "version": "v4"},
            "the stack outputs name stage 'v4' for it but API api1 has no /v4 resource",
        ),
        (
            {"stages": {"v1": "v1"}, "version": "v2"},
            "API api1 has /v2 but the stack outputs name no stage for it; re-read the outputs "
            "after the stack's last deploy (it has: v1); pass one of those",
        ),
        ({"stages": {"v1": "v1", "v2": "gone"}}, "API api1 has no stage 'gone' for it"),
    ],
)
def test_bad_input_is_refused_before_anything_changes(kwargs, message) -> None:
    api = ApiStandIn()
    with pytest.raises(aws.UsageError) as raised:
        _release(api, **kwargs)
    assert message in str(raised.value)
    changes = {"create_deployment", "create_documentation_version", "update_stage"}
    assert not changes & set(api.client.operations())


def test_the_invokable_alias_itself_and_any_alias_without_one_pass() -> None:
    release.check_alias_name("live", "live", "fn")
    release.check_alias_name("blue_2-x")
    release.check_alias_name("a" * 128)
    release.check_doc_version("v" * 64)
    release.check_doc_version("v2.0_rc-1")


def test_an_alias_the_function_lacks_is_bad_input_other_errors_are_not() -> None:
    api = ApiStandIn()
    missing = _alias(error=client_error("ResourceNotFoundException", "GetAlias"))
    with pytest.raises(aws.UsageError, match="function model-x has no alias 'live'"):
        _release(api, missing)
    denied = _alias(error=client_error("AccessDeniedException", "GetAlias"))
    with pytest.raises(aws.AccessError, match="reading alias live of model-x"):
        _release(api, denied)
    assert "create_deployment" not in api.client.operations()


def test_a_stage_that_cannot_be_read_is_an_aws_error_not_bad_input() -> None:
    api = ApiStandIn()
    api.client.answers["get_stage"] = client_error("AccessDeniedException", "GetStage")
    with pytest.raises(aws.AccessError, match="reading stage v2 of API api1"):
        _release(api)


def test_api_versions_are_the_top_level_major_versions_in_numeric_order() -> None:
    api = ApiStandIn(paths=("/", "/v10", "/v2", "/v2/x", "/health", "/V3", "/v0", "/v1"))
    assert release.api_versions(api.client, "api1") == ["v1", "v2", "v10"]
    assert api.client.arguments("get_resources") == [{"restApiId": "api1"}]


def test_the_fingerprint_follows_paths_methods_auth_keys_and_integrations() -> None:
    api = ApiStandIn()
    seen = {release.definition_fingerprint(api.client, "api1")}
    assert len(next(iter(seen))) == 16
    method = api.methods[("r3", "ANY")]
    for change in (
        lambda: method.update(authorizationType="NONE"),
        lambda: method.update(apiKeyRequired=True),
        lambda: method["methodIntegration"].update(uri="other"),
        lambda: method["methodIntegration"].update(type="HTTP"),
        lambda: method["methodIntegration"].update(httpMethod="GET"),
        lambda: api.resources[3].update(path="/v3"),
        lambda: api.resources[3]["resourceMethods"].update(GET={}),
    ):
        api.methods[("r3", "GET")] = dict(method)
        change()
        fingerprint = release.definition_fingerprint(api.client, "api1")
        assert fingerprint not in seen
        seen.add(fingerprint)
    # What the integration does not name (its timeout, say) does not count.
    method["methodIntegration"]["timeoutInMillis"] = 1
    assert release.definition_fingerprint(api.client, "api1") in seen
    assert {"restApiId": "api1", "resourceId": "r3", "httpMethod": "GET"} in api.client.arguments(
        "get_method"
    )


def test_the_fingerprint_does_not_depend_on_listing_order() -> None:
    api = ApiStandIn()
    first = release.definition_fingerprint(api.client, "api1")
    api.resources.reverse()
    assert release.definition_fingerprint(api.client, "api1") == first


def test_check_asks_for_a_release_unless_the_stage_serves_the_definition_as_it_is() -> None:
    api = ApiStandIn()
    values, line = release.release_check(api.client, "api1", "v2", STAGES)
    assert values == {"api-version": "v2", "release": "true"}
    assert line == "Release of API v2 awaits approval in `api-release` (its definition changed)."
    assert api.client.arguments("get_deployment") == [{"restApiId": "api1", "deploymentId": "d0"}]
    fingerprint = release.definition_fingerprint(api.client, "api1")
    api.deployments["d0"] = f"release v2 [definition {fingerprint}]"
    values, line = release.release_check(api.client, "api1", "v2", STAGES)
    assert values == {"api-version": "v2", "release": "false"}
    assert line == (
        f"Release skipped: stage v2 already serves API v2's definition as it is now "
        f"(fingerprint {fingerprint})."
    )
    api.stages["v2"] = {}
    assert release.release_check(api.client, "api1", "v2", STAGES)[0]["release"] == "true"
    assert len(api.client.arguments("get_deployment")) == 2


def test_the_summary_names_the_move_and_the_url() -> None:
    result = release.ReleaseResult("api1", "v2", "v2", "", "d2", "live", "7", "doc", "desc")
    text = release.markdown(result, "")
    assert text.startswith("### Release of API `v2`\n\n| version | stage | deployment | alias |")
    assert text.endswith("| v2 | v2 | none -> d2 | live (model version 7) | doc | n/a |")
    moved = release.ReleaseResult("api1", "v2", "v2", "d0", "d2", "live", "7", "doc", "desc")
    assert release.markdown(moved, "https://x/v2").endswith(
        "| d0 -> d2 | live (model version 7) | doc | https://x/v2 |"
    )


@pytest.fixture
def cli_release(monkeypatch, tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "api_id": "api1",
                "api_stages": STAGES,
                "api_urls": {"v2": "https://x/v2"},
                "model_function": "model-x",
                "model_alias": "live",
                "event_bus": "bus",
                "event_source": "src",
                "region": "eu-west-3",
            }
        )
    )
    api = ApiStandIn()
    clients = {
        "apigateway": api.client,
        "lambda": _alias(),
        "events": FakeClient(
            {"put_events": {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}}
        ),
    }
    made = []

    def client(service, region=None):
        made.append((service, region))
        return clients[service]

    monkeypatch.setattr(aws, "client", client)
    return {"outputs": str(path), "api": api, "made": made, "tmp": tmp_path, **clients}


def test_cli_releases_the_newest_version_and_reports_it(cli_release, capsys) -> None:
    assert release.main(["--outputs", cli_release["outputs"]]) == 0
    api = cli_release["api"]
    assert api.stages["v2"]["deploymentId"] == "d2"
    assert api.stages["v2"]["/variables/alias"] == "live"
    out, err = capsys.readouterr()
    assert out.startswith("### Release of API `v2`")
    assert "| v2 | v2 | d0 -> d2 | live (model version 7) | v2-d2 | https://x/v2 |" in out
    assert (cli_release["tmp"] / "step-summary.md").read_text() == out
    assert err.startswith("release: [1/5] v2 releasable") or "release: released v2:" in err
    assert {region for _, region in cli_release["made"]} == {"eu-west-3"}
    (put,) = cli_release["events"].arguments("put_events")
    assert json.loads(put["Entries"][0]["Detail"])["api_version"] == "v2"


def test_cli_check_changes_nothing_and_prints_the_verdict(cli_release, capsys) -> None:
    assert release.main(["--check", "--version", "v1", "--outputs", cli_release["outputs"]]) == 0
    assert capsys.readouterr().out == "api-version=v1\nrelease=true\n"
    assert "create_deployment" not in cli_release["api"].client.operations()
    assert {service for service, _ in cli_release["made"]} == {"apigateway"}


def test_cli_refuses_an_alias_the_api_may_not_invoke(cli_release, capsys) -> None:
    assert release.main(["--alias", "blue", "--outputs", cli_release["outputs"]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("release: --alias blue: the API may invoke only alias 'live'")


@pytest.mark.parametrize("stages", [["v1"], {"v1": 1}, {"v1": ["v1"]}])
def test_cli_refuses_malformed_api_stages(cli_release, capsys, stages) -> None:
    path = cli_release["tmp"] / "outputs.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "api_stages": stages}))
    assert release.main(["--outputs", str(path)]) == 2
    assert "'api_stages' must map versions to stage names" in capsys.readouterr().err


def test_a_cleanup_refused_without_a_message_still_says_what_aws_said() -> None:
    api = ApiStandIn()
    api.client.answers["create_documentation_version"] = client_error("TooManyRequestsException")
    bare = ClientError({"Error": {"Code": "BadRequestException"}}, "DeleteDeployment")
    api.client.answers["delete_deployment"] = bare
    with pytest.raises(aws.ScriptError) as raised:
        _release(api)
    assert f"could NOT be deleted ({bare}); check which deployment" in str(raised.value)


def test_a_stage_serving_a_deployment_without_a_description_needs_a_release() -> None:
    api = ApiStandIn()
    api.client.answers["get_deployment"] = {}
    assert release.release_check(api.client, "api1", "v2", STAGES)[0]["release"] == "true"


@pytest.mark.parametrize(
    ("operation", "doing"),
    [
        ("get_method", "reading ANY /health of API api1"),
        ("create_deployment", "creating a deployment of API api1"),
    ],
)
def test_an_aws_error_says_what_the_release_was_doing(operation, doing) -> None:
    api = ApiStandIn()
    api.client.answers[operation] = client_error("AccessDeniedException")
    with pytest.raises(aws.AccessError, match=doing):
        _release(api)


def test_reading_the_served_deployment_names_it_when_it_fails() -> None:
    api = ApiStandIn()
    api.client.answers["get_deployment"] = client_error("AccessDeniedException")
    with pytest.raises(aws.AccessError, match="reading deployment d0 of API api1"):
        release.release_check(api.client, "api1", "v2", STAGES)


def test_cli_passes_the_doc_version_description_and_commit_on(
    cli_release, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_SHA", SHA)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            *("release", "--outputs", cli_release["outputs"], "--doc-version", "docs-1"),
            *("--description", "by hand", "--version", "v1"),
        ],
    )
    assert release.main() == 0
    api = cli_release["api"]
    assert api.client.arguments("create_documentation_version") == [
        {"restApiId": "api1", "documentationVersion": "docs-1", "description": "by hand"}
    ]
    assert api.deployments["d2"].startswith("by hand [definition ")
    out, err = capsys.readouterr()
    # No URL for v1 in the outputs.
    assert "| v1 | v1 | d1 -> d2 | live (model version 7) | docs-1 | n/a |" in out
    assert err.splitlines()[-1].startswith("release: released v1: stage v1 of API api1")


def test_cli_names_the_commit_in_the_default_description(cli_release, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", SHA)
    assert release.main(["--outputs", cli_release["outputs"]]) == 0
    assert (
        cli_release["api"]
        .deployments["d2"]
        .startswith(f"release v2 with alias live (model version 7) at {SHA[:12]} [definition ")
    )


def test_cli_check_reads_the_api_in_the_stack_s_region(cli_release, capsys) -> None:
    assert release.main(["--check", "--outputs", cli_release["outputs"]]) == 0
    assert cli_release["made"] == [("apigateway", "eu-west-3")]
    out, err = capsys.readouterr()
    assert out == "api-version=v2\nrelease=true\n"
    assert err.startswith("release: Release of API v2 awaits approval")


def test_cli_without_urls_reports_none(cli_release, capsys) -> None:
    path = cli_release["tmp"] / "outputs.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "api_urls": "x"}))
    assert release.main(["--outputs", str(path)]) == 0
    assert "| v2-d2 | n/a |" in capsys.readouterr().out


@pytest.mark.parametrize("records_an_event", [True, False])
def test_a_release_counts_each_of_its_steps_once_and_ends_at_its_total(
    capsys, records_an_event: bool
) -> None:
    # Without a progress of the caller's, the release makes its own, with or without the
    # step that records the event.
    arguments: dict[str, Any] = {"progress": None}
    if not records_an_event:
        arguments["emit"] = None
    _release(ApiStandIn(), **arguments)
    assert_climbs_one_step_at_a_time_to_its_total(capsys.readouterr().err, "release")
