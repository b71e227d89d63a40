import base64
import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "infra/handlers/model"
WEIGHTS = json.loads((MODEL_DIR / "weights.json").read_text())
FEATURES = WEIGHTS["features"]
ARN = "arn:aws:lambda:us-east-1:123456789012:function:churn-model"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model = _load("model_handler", MODEL_DIR / "handler.py")


def expected_score(instance: dict) -> float:
    # Independent of the handler: plain sigmoid over the JSON weights.
    z = (
        sum(w * instance[f] for f, w in zip(FEATURES, WEIGHTS["weights"], strict=True))
        + WEIGHTS["bias"]
    )
    return 1 / (1 + math.exp(-z))


def instance(**overrides) -> dict:
    return {f: 1.0 for f in FEATURES} | overrides


def proxy(method: str, body=None, b64: bool = False) -> dict:
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    if b64 and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {"httpMethod": method, "path": "/predict", "body": body, "isBase64Encoded": b64}


def test_weights_file_has_the_documented_shape():
    assert isinstance(WEIGHTS["model_version"], str)
    assert 4 <= len(FEATURES) <= 6
    assert len(WEIGHTS["weights"]) == len(FEATURES)
    assert 0 <= WEIGHTS["threshold"] <= 1


INSTANCES = [
    {f: 0 for f in FEATURES},
    dict(zip(FEATURES, [24, 70.5, 0, 0, 12], strict=True)),
    dict(zip(FEATURES, [2, 110.0, 6, 3, 0], strict=True)),
    dict(zip(FEATURES, [60, 20.0, 1, 0, 24], strict=True)),
    dict(zip(FEATURES, [-3.5, 1e6, 2, 1, 1], strict=True)),
]


@pytest.mark.parametrize("inst", INSTANCES)
def test_score_matches_hand_computed_logistic(inst):
    result = model.score(inst)
    assert result["score"] == pytest.approx(expected_score(inst), rel=1e-12, abs=1e-15)
    assert result["label"] is (expected_score(inst) >= WEIGHTS["threshold"])


def test_examples_cover_both_labels():
    labels = {model.score(i)["label"] for i in INSTANCES}
    assert labels == {True, False}


def test_direct_invoke_batch():
    ctx = SimpleNamespace(invoked_function_arn=ARN + ":live")
    result = model.handler({"instances": INSTANCES}, ctx)
    assert result["model_version"] == WEIGHTS["model_version"]
    assert result["served_by"] == "live"
    assert [p["score"] for p in result["predictions"]] == pytest.approx(
        [expected_score(i) for i in INSTANCES]
    )


def test_served_by_unqualified_arn_is_latest():
    result = model.handler({"instances": [instance()]}, SimpleNamespace(invoked_function_arn=ARN))
    assert result["served_by"] == "$LATEST"


def test_served_by_falls_back_to_model_alias_env(monkeypatch):
    monkeypatch.setenv("MODEL_ALIAS", "canary")
    assert model.handler({"instances": [instance()]}, None)["served_by"] == "canary"
    monkeypatch.delenv("MODEL_ALIAS")
    assert "served_by" not in model.handler({"instances": [instance()]}, None)


POSITIVE = next(f for f, w in zip(FEATURES, WEIGHTS["weights"], strict=True) if w > 0)
values = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@given(base=st.fixed_dictionaries({f: values for f in FEATURES}), a=values, b=values)
def test_score_is_monotonic_in_positive_weight_feature(base, a, b):
    low, high = sorted((a, b))
    s_low = model.score(base | {POSITIVE: low})["score"]
    s_high = model.score(base | {POSITIVE: high})["score"]
    assert 0 <= s_low <= s_high <= 1


BAD_INSTANCES = [
    ({f: 1 for f in FEATURES[1:]}, FEATURES[0], "missing"),
    (instance(colour=3), "colour", "unknown"),
    (instance(**{FEATURES[1]: "12"}), FEATURES[1], "not a number"),
    (instance(**{FEATURES[1]: None}), FEATURES[1], "not a number"),
    (instance(**{FEATURES[1]: True}), FEATURES[1], "not a number"),
    (instance(**{FEATURES[2]: [1]}), FEATURES[2], "not a number"),
    (instance(**{FEATURES[2]: float("nan")}), FEATURES[2], "finite"),
    (instance(**{FEATURES[2]: float("-inf")}), FEATURES[2], "finite"),
    (instance(**{FEATURES[2]: 1e300}), FEATURES[2], "finite"),
    (instance(**{FEATURES[2]: 10**400}), FEATURES[2], "finite"),
]


@pytest.mark.parametrize(("inst", "field", "reason"), BAD_INSTANCES)
def test_bad_instance_is_400_naming_the_field(inst, field, reason):
    result = model.handler({"instances": [instance(), inst]}, None)
    assert result["statusCode"] == 400
    assert f"instances[1]: feature '{field}'" in result["error"]
    assert reason in result["error"]
    assert ", ".join(FEATURES) in result["error"]
    with pytest.raises(model.BadRequest, match=field):
        model.score(inst)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": {"a": 1}}, "instances"),
        ({"instances": [instance()] * 101}, "instances"),
        ({"instances": ["x"]}, "instances[0]"),
        ({"instances": [instance()], "extra": 1}, "extra"),
        ([instance()], "instances"),
        ("hello", "instances"),
        (None, "instances"),
    ],
)
def test_bad_payload_is_400_naming_the_field(payload, field):
    result = model.handler(payload, None)
    assert result["statusCode"] == 400
    assert f"{field}" in result["error"]


def test_exactly_100_instances_accepted():
    assert len(model.handler({"instances": [instance()] * 100}, None)["predictions"]) == 100


def test_proxy_get_returns_model_card():
    response = model.handler(proxy("GET"), None)
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert json.loads(response["body"]) == {
        "model_version": WEIGHTS["model_version"],
        "features": FEATURES,
        "threshold": WEIGHTS["threshold"],
    }


@pytest.mark.parametrize("b64", [False, True])
def test_proxy_post_predicts(b64):
    ctx = SimpleNamespace(invoked_function_arn=ARN + ":7")
    response = model.handler(proxy("POST", {"instances": INSTANCES[:2]}, b64=b64), ctx)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["served_by"] == "7"
    assert body["predictions"][1]["score"] == pytest.approx(expected_score(INSTANCES[1]))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (proxy("POST"), "body"),
        (proxy("POST", "{not json"), "JSON"),
        (proxy("POST", "[" * 100_000), "JSON"),
        ({**proxy("POST"), "body": {"instances": []}}, "body"),
        (proxy("POST", '{"instances": [{"tenure_months": NaN}]}'), "tenure_months"),
        (proxy("POST", {"instances": [instance()] * 101}), "instances"),
        (proxy("POST", {"instances": [instance(x=1)]}), "'x'"),
        ({**proxy("POST"), "body": "***", "isBase64Encoded": True}, "base64"),
        (proxy("POST", base64.b64encode(b"\xff\xfe").decode(), b64=False), "JSON"),
        (
            {**proxy("POST"), "body": base64.b64encode(b"\xff").decode(), "isBase64Encoded": True},
            "UTF-8",
        ),
    ],
)
def test_proxy_bad_input_is_400(event, field):
    response = model.handler(event, None)
    assert response["statusCode"] == 400
    assert response["headers"]["content-type"] == "application/json"
    assert field in json.loads(response["body"])["error"]


def test_proxy_other_method_is_405():
    response = model.handler(proxy("DELETE"), None)
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "GET, POST"


leaves = st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5)
leaves |= st.sampled_from([10**400, -(10**400), 1e300])
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from([*FEATURES, "instances", "x"]), children, max_size=6)
    ),
    max_leaves=20,
)
# Mostly well-formed batches, so the fuzzing reaches per-feature validation and scoring.
batches = st.fixed_dictionaries(
    {
        "instances": st.lists(
            st.fixed_dictionaries({f: leaves for f in FEATURES}) | json_values,
            min_size=1,
            max_size=3,
        )
    }
)


@given(payload=json_values | batches)
def test_direct_invoke_never_raises(payload):
    result = model.handler(payload, None)
    if "predictions" in result:
        assert all(0 <= p["score"] <= 1 for p in result["predictions"])
    else:
        assert result["statusCode"] == 400
