"""Smoke: the candidate answers typical rows in shape and refuses a bad request.

moto's Lambda invoke only echoes the payload, so the invokes are stubbed, and each stubbed
response carries what the REAL model handler (loaded from infra/handlers/model) returns for
that same request: the checks are tested against the real handler's output.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from scripts import smoke
from scripts.lib import aws
from tests.project import ROOT

FUNCTION = "mlship-feature-x-217d2bf5-model"
VERSION = "2"


def _load_handler():
    spec = importlib.util.spec_from_file_location(
        "smoke_model_handler", ROOT / "infra/handlers/model/handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model = _load_handler()
CONTEXT = SimpleNamespace(
    invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}:{VERSION}"
)


@pytest.fixture
def lambda_client(monkeypatch):
    # A Stubber answers before anything is signed or sent; these only satisfy the client.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return aws.client("lambda", "us-east-1")


def _payload(body: object) -> StreamingBody:
    raw = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def _stub(
    stub: Stubber,
    tamper: Callable[[str, dict, dict], None] | None = None,
) -> None:
    """get_function, then the two invokes answered by the real handler (after `tamper`)."""
    stub.add_response(
        "get_function",
        {"Configuration": {"FunctionName": FUNCTION, "Version": VERSION}},
        {"FunctionName": FUNCTION, "Qualifier": VERSION},
    )
    typical = {"instances": smoke.sample_instances(smoke.model_features())}
    for case, request in (("typical", typical), ("bad", smoke.BAD_PAYLOAD)):
        body = model.handler(copy.deepcopy(request), CONTEXT)
        meta = {"StatusCode": 200, "ExecutedVersion": VERSION}
        if tamper:
            tamper(case, body, meta)
        stub.add_response(
            "invoke",
            {**meta, "Payload": _payload(body)},
            {
                "FunctionName": FUNCTION,
                "Qualifier": VERSION,
                "Payload": json.dumps(request).encode(),
            },
        )


@pytest.fixture
def cli_client(lambda_client, monkeypatch):
    """The stubbed client, also handed to main() in place of the factory's."""
    monkeypatch.setattr(smoke.aws, "client", lambda service, region=None: lambda_client)
    return lambda_client


def _outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"model_function": FUNCTION, "model_candidate_version": VERSION}))
    return path


def test_samples_are_typical_rows_of_exactly_the_model_features() -> None:
    features = json.loads(smoke.MODEL_FILE.read_text())["features"]
    samples = smoke.sample_instances(smoke.model_features())
    assert len(samples) == 3
    assert all(sorted(row) == sorted(features) for row in samples)
    scores = [p["score"] for p in model.predict({"instances": samples})["predictions"]]
    # A loyal customer and an unhappy one: the rows span the model's range.
    assert scores[0] < 0.5 < scores[1]


def test_a_healthy_candidate_passes(lambda_client) -> None:
    with Stubber(lambda_client) as stub:
        _stub(stub)
        report = smoke.smoke(
            lambda_client,
            function=FUNCTION,
            version=VERSION,
            samples=smoke.sample_instances(smoke.model_features()),
        )
        stub.assert_no_pending_responses()
    assert report.ok, report.failures()
    assert [c.name for c in report.checks] == ["3 typical rows", "bad request is refused"]
    version = json.loads(smoke.MODEL_FILE.read_text())["model_version"]
    assert report.checks[0].detail == f"model {version}: 3 predictions in shape"
    assert report.checks[1].detail.startswith("400: instances[0]: feature 'no_such_feature'")


def test_cli_passes_and_writes_the_summary(cli_client, monkeypatch, tmp_path, capsys) -> None:
    step_summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    with Stubber(cli_client) as stub:
        _stub(stub)
        assert smoke.main(["--outputs", str(_outputs(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert f"### Smoke check of `{FUNCTION}:{VERSION}`: passed" in out
    assert "| bad request is refused | ok |" in out
    assert "| 3 typical rows | ok |" in step_summary.read_text()


def _drop_prediction(case: str, body: dict, meta: dict) -> None:
    if case == "typical":
        body["predictions"].pop()


def _raise(case: str, body: dict, meta: dict) -> None:
    if case == "typical":
        meta["FunctionError"] = "Unhandled"
        body.clear()
        body.update({"errorMessage": "model.json is invalid", "errorType": "RuntimeError"})


def _score_out_of_range(case: str, body: dict, meta: dict) -> None:
    if case == "typical":
        body["predictions"][0]["score"] = 1.5


def _label_not_bool(case: str, body: dict, meta: dict) -> None:
    if case == "typical":
        body["predictions"][2]["label"] = "yes"


def _no_model_version(case: str, body: dict, meta: dict) -> None:
    if case == "typical":
        del body["model_version"]


def _wrong_version(case: str, body: dict, meta: dict) -> None:
    meta["ExecutedVersion"] = "1"


def _bad_request_accepted(case: str, body: dict, meta: dict) -> None:
    if case == "bad":
        body.clear()
        body.update({"model_version": "1.0.0", "predictions": [{"score": 0.5, "label": True}]})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_drop_prediction, "3 typical rows: expected 'predictions' as a list of 3"),
        (_raise, "the function raised (Unhandled): model.json is invalid"),
        (_score_out_of_range, "predictions[0].score is not a number in [0, 1]: 1.5"),
        (_label_not_bool, "predictions[2].label is not a boolean: 'yes'"),
        (_no_model_version, "'model_version' is not a string: None"),
        (_wrong_version, "version 1 answered, not 2"),
        (_bad_request_accepted, "bad request is refused: expected a 400 {'error': ...}"),
    ],
)
def test_a_broken_candidate_fails_with_the_reason(
    cli_client, tmp_path, capsys, tamper, reason: str
) -> None:
    with Stubber(cli_client) as stub:
        _stub(stub, tamper)
        assert smoke.main(["--outputs", str(_outputs(tmp_path))]) == 1
        stub.assert_no_pending_responses()
    captured = capsys.readouterr()
    assert f"smoke: version {VERSION} of {FUNCTION} failed: " in captured.err
    assert reason in captured.err
    assert "FAILED" in captured.out


def test_an_unpublished_version_exits_2_in_moto(deployed, capsys) -> None:
    assert smoke.main(["--outputs", str(deployed.outputs_file), "--version", "9"]) == 2
    assert "--version 9: function" in capsys.readouterr().err


def test_missing_output_key_exits_2(tmp_path, capsys) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"model_candidate_version": "2"}))
    assert smoke.main(["--outputs", str(path)]) == 2
    assert "have no 'model_function'" in capsys.readouterr().err
