import base64
import functools
import json
import math
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model import train

ARN = "arn:aws:lambda:us-east-1:123456789012:function:churn-model"


@pytest.fixture(scope="module")
def model(package):
    return package.load_handler()


@pytest.fixture(scope="module")
def weights(package) -> dict:
    return package.artifact


@pytest.fixture(scope="module")
def features(package) -> list[str]:
    return package.spec["features"]


def expected_score(weights: dict, inst: dict) -> float:
    # Independent of the handler: plain sigmoid over the artifact's weights.
    z = (
        sum(w * inst[f] for f, w in zip(weights["features"], weights["weights"], strict=True))
        + weights["bias"]
    )
    return 1 / (1 + math.exp(-z))


def make_instance(features, **overrides) -> dict:
    return {f: 1.0 for f in features} | overrides


def proxy(method: str, body=None, b64: bool = False) -> dict:
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    if b64 and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {"httpMethod": method, "path": "/predict", "body": body, "isBase64Encoded": b64}


def test_artifact_serves_what_training_wrote(package, weights):
    assert weights["model_version"] == package.spec["model_version"]
    assert weights["features"] == package.spec["features"]
    assert len(weights["weights"]) == len(weights["features"])
    assert 0 <= weights["threshold"] <= 1


@pytest.fixture(scope="module")
def instances(package, weights) -> list[dict]:
    """All-zero, the dataset's lowest- and highest-scoring rows, a few others, one extreme."""
    rows = package.rows()
    by_score = sorted(rows, key=lambda r: expected_score(weights, r))
    extreme = dict(by_score[len(by_score) // 2])
    extreme[package.spec["features"][1]] = 1e6
    return [
        {f: 0 for f in package.spec["features"]},
        by_score[0],
        by_score[-1],
        rows[0],
        rows[len(rows) // 2],
        extreme,
    ]


def test_score_matches_hand_computed_logistic(model, weights, instances):
    for inst in instances:
        result = model.score(inst)
        expected = expected_score(weights, inst)
        assert result["score"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert result["label"] is (expected >= weights["threshold"])


def test_examples_cover_both_labels(model, instances):
    labels = {model.score(i)["label"] for i in instances}
    assert labels == {True, False}


def test_serving_matches_training_on_the_held_out_rows(package, model):
    """No training/serving skew: the handler scores rows as the training code does."""
    artifact = package.artifact
    for row in package.rows()[:50]:
        x = [row[f] for f in artifact["features"]]
        trained = train.predict_proba(artifact["weights"], artifact["bias"], x)
        assert model.score(row)["score"] == pytest.approx(trained, rel=1e-12, abs=1e-15)


def test_direct_invoke_batch(model, weights, instances):
    ctx = SimpleNamespace(invoked_function_arn=ARN + ":live")
    result = model.handler({"instances": instances}, ctx)
    assert result["model_version"] == weights["model_version"]
    assert result["served_by"] == "live"
    assert [p["score"] for p in result["predictions"]] == pytest.approx(
        [expected_score(weights, i) for i in instances]
    )


def test_served_by_unqualified_arn_is_latest(model, features):
    result = model.handler(
        {"instances": [make_instance(features)]}, SimpleNamespace(invoked_function_arn=ARN)
    )
    assert result["served_by"] == "$LATEST"


def test_served_by_falls_back_to_model_alias_env(model, features, monkeypatch):
    monkeypatch.setenv("MODEL_ALIAS", "canary")
    assert model.handler({"instances": [make_instance(features)]}, None)["served_by"] == "canary"
    monkeypatch.delenv("MODEL_ALIAS")
    assert "served_by" not in model.handler({"instances": [make_instance(features)]}, None)


values = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@given(data=st.data(), a=values, b=values)
def test_score_is_monotonic_in_positive_weight_feature(model, weights, data, a, b):
    positive = next(
        f for f, w in zip(weights["features"], weights["weights"], strict=True) if w > 0
    )
    base = data.draw(st.fixed_dictionaries({f: values for f in weights["features"]}))
    low, high = sorted((a, b))
    s_low = model.score(base | {positive: low})["score"]
    s_high = model.score(base | {positive: high})["score"]
    assert 0 <= s_low <= s_high <= 1


def bad_instances(features: list[str]) -> list[tuple[dict, str, str]]:
    def inst(**overrides):
        return make_instance(features, **overrides)

    return [
        ({f: 1 for f in features[1:]}, features[0], "missing"),
        (inst(colour=3), "colour", "unknown"),
        (inst(**{features[1]: "12"}), features[1], "not a number"),
        (inst(**{features[1]: None}), features[1], "not a number"),
        (inst(**{features[1]: True}), features[1], "not a number"),
        (inst(**{features[2]: [1]}), features[2], "not a number"),
        (inst(**{features[2]: float("nan")}), features[2], "finite"),
        (inst(**{features[2]: float("-inf")}), features[2], "finite"),
        (inst(**{features[2]: 1e300}), features[2], "finite"),
        (inst(**{features[2]: 10**400}), features[2], "finite"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_instance_is_400_naming_the_field(model, features, case):
    inst, field, reason = bad_instances(features)[case]
    result = model.handler({"instances": [make_instance(features), inst]}, None)
    assert result["statusCode"] == 400
    assert f"instances[1]: feature '{field}'" in result["error"]
    assert reason in result["error"]
    assert ", ".join(features) in result["error"]
    with pytest.raises(model.BadRequest, match=field):
        model.score(inst)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": {"a": 1}}, "instances"),
        ({"instances": ["GOOD"] * 101}, "instances"),
        ({"instances": ["x"]}, "instances[0]"),
        ({"instances": ["GOOD"], "extra": 1}, "extra"),
        (["GOOD"], "instances"),
        ("hello", "instances"),
        (None, "instances"),
    ],
)
def test_bad_payload_is_400_naming_the_field(model, features, payload, field):
    good = make_instance(features)
    payload = json.loads(json.dumps(payload).replace('"GOOD"', json.dumps(good)))
    result = model.handler(payload, None)
    assert result["statusCode"] == 400
    assert f"{field}" in result["error"]


def test_exactly_100_instances_accepted(model, features):
    batch = [make_instance(features)] * 100
    assert len(model.handler({"instances": batch}, None)["predictions"]) == 100


def test_proxy_get_returns_model_card(model, weights):
    response = model.handler(proxy("GET"), None)
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert json.loads(response["body"]) == {
        "model_version": weights["model_version"],
        "features": weights["features"],
        "threshold": weights["threshold"],
    }


@pytest.mark.parametrize("b64", [False, True])
def test_proxy_post_predicts(model, weights, instances, b64):
    ctx = SimpleNamespace(invoked_function_arn=ARN + ":7")
    response = model.handler(proxy("POST", {"instances": instances[:2]}, b64=b64), ctx)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["served_by"] == "7"
    assert body["predictions"][1]["score"] == pytest.approx(expected_score(weights, instances[1]))


def proxy_bad_events(features: list[str]) -> list[tuple[dict, str]]:
    good = make_instance(features)
    return [
        (proxy("POST"), "body"),
        (proxy("POST", "{not json"), "JSON"),
        (proxy("POST", "[" * 100_000), "JSON"),
        ({**proxy("POST"), "body": {"instances": []}}, "body"),
        (proxy("POST", '{"instances": [{' + json.dumps(features[0]) + ": NaN}]}"), features[0]),
        (proxy("POST", {"instances": [good] * 101}), "instances"),
        (proxy("POST", {"instances": [good | {"x": 1}]}), "'x'"),
        ({**proxy("POST"), "body": "***", "isBase64Encoded": True}, "base64"),
        (proxy("POST", base64.b64encode(b"\xff\xfe").decode(), b64=False), "JSON"),
        (
            {**proxy("POST"), "body": base64.b64encode(b"\xff").decode(), "isBase64Encoded": True},
            "UTF-8",
        ),
    ]


@pytest.mark.parametrize("case", range(10))
def test_proxy_bad_input_is_400(model, features, case):
    event, field = proxy_bad_events(features)[case]
    response = model.handler(event, None)
    assert response["statusCode"] == 400
    assert response["headers"]["content-type"] == "application/json"
    assert field in json.loads(response["body"])["error"]


def test_proxy_other_method_is_405(model):
    response = model.handler(proxy("DELETE"), None)
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "GET, POST"


leaves = st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5)
leaves |= st.sampled_from([10**400, -(10**400), 1e300])


# One strategy per feature list, not per example: hypothesis validates a recursive strategy
# on its first draw, and rebuilding it each example cost most of the fuzzing's time.
@functools.cache
def payloads(features: tuple[str, ...]):
    json_values = st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from([*features, "instances", "x"]), children, max_size=6)
        ),
        max_leaves=20,
    )
    # Mostly well-formed batches, so the fuzzing reaches per-feature validation and scoring.
    batches = st.fixed_dictionaries(
        {
            "instances": st.lists(
                st.fixed_dictionaries({f: leaves for f in features}) | json_values,
                min_size=1,
                max_size=3,
            )
        }
    )
    return json_values | batches


@given(data=st.data())
def test_direct_invoke_never_raises(model, features, data):
    result = model.handler(data.draw(payloads(tuple(features))), None)
    if "predictions" in result:
        assert all(0 <= p["score"] <= 1 for p in result["predictions"])
    else:
        assert result["statusCode"] == 400
