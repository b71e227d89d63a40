"""Churn-probability model served by Lambda: logistic regression over the trained artifact.

model.json beside this file is the artifact `python -m model.train` writes (docs/model.md):
`nox -s train` writes the local one, and each push's training run publishes a version with
its own. Stdlib only here; the model's own dependencies (model/requirements.txt) are
packaged beside it by `nox -s package`.

Direct invoke payload and proxy POST body: {"instances": [{feature: number, ...}, ...]}
Success: {"model_version": str, "predictions": [{"score": float, "label": bool}], "served_by": str}
Bad input: {"error": str, "statusCode": 400} (direct) or a 400 proxy response. Bad input never
raises, because a raise counts as a Lambda error and the canary alarms watch that metric.
"""

import base64
import binascii
import json
import math
import os
from pathlib import Path

MAX_INSTANCES = 100
# Bounding inputs keeps every weight * value product finite, so the dot product can never
# become inf - inf = NaN for values that each passed the finiteness check.
MAX_ABS_VALUE = 1e12
_JSON_HEADERS = {"content-type": "application/json"}


class BadRequest(ValueError):
    """The caller sent input the model cannot score; maps to HTTP 400."""


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _load_model(path: Path) -> dict:
    model = json.loads(path.read_text(encoding="utf-8"))
    features, weights = model.get("features"), model.get("weights")
    checks = {
        "model_version must be a string": isinstance(model.get("model_version"), str),
        "features must be a non-empty list of unique strings": isinstance(features, list)
        and bool(features)
        and all(isinstance(f, str) for f in features)
        and len(set(features)) == len(features),
        "weights must be finite numbers, one per feature": isinstance(weights, list)
        and isinstance(features, list)
        and len(weights) == len(features)
        and all(_finite(w) for w in weights),
        "bias must be a finite number": _finite(model.get("bias")),
        "threshold must be a number in [0, 1]": _finite(model.get("threshold"))
        and 0 <= model["threshold"] <= 1,
    }
    failed = [message for message, ok in checks.items() if not ok]
    if failed:
        # Failing the import stops a broken model from ever serving: the deploy's canary fails.
        raise RuntimeError(f"{path.name} is invalid: {'; '.join(failed)}")
    return model


MODEL = _load_model(Path(__file__).with_name("model.json"))
FEATURES: list[str] = MODEL["features"]
_EXPECTED = f"expected numeric values for: {', '.join(FEATURES)}"


def _sigmoid(z: float) -> float:
    # Two branches so math.exp only ever sees a non-positive argument and cannot overflow.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def score(features: dict) -> dict:
    if not isinstance(features, dict):
        raise BadRequest(f"instance must be a JSON object; {_EXPECTED}")
    unknown = sorted(str(k) for k in features if k not in FEATURES)
    if unknown:
        raise BadRequest(f"feature '{unknown[0]}' is unknown; {_EXPECTED}")
    values = []
    for name in FEATURES:
        if name not in features:
            raise BadRequest(f"feature '{name}' is missing; {_EXPECTED}")
        value = features[name]
        # bool is an int subclass, but true/false is never a meaningful feature value here.
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadRequest(f"feature '{name}' is not a number; {_EXPECTED}")
        # Written so NaN fails too, and huge ints never reach float conversion (OverflowError).
        if not abs(value) <= MAX_ABS_VALUE:
            raise BadRequest(
                f"feature '{name}' must be finite with magnitude <= {MAX_ABS_VALUE:g}; {_EXPECTED}"
            )
        values.append(float(value))
    z = math.fsum(w * x for w, x in zip(MODEL["weights"], values, strict=True)) + MODEL["bias"]
    probability = _sigmoid(z)
    return {"score": probability, "label": probability >= MODEL["threshold"]}


def _served_by(context) -> str | None:
    arn = getattr(context, "invoked_function_arn", None)
    if isinstance(arn, str) and arn:
        # arn:aws:lambda:region:account:function:name[:qualifier]; unqualified means $LATEST.
        parts = arn.split(":")
        return parts[7] if len(parts) == 8 else "$LATEST"
    return os.environ.get("MODEL_ALIAS") or None


def predict(payload, context=None) -> dict:
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object with field 'instances'")
    unknown = sorted(str(k) for k in payload if k != "instances")
    if unknown:
        raise BadRequest(f"field '{unknown[0]}' is unknown; expected only 'instances'")
    instances = payload.get("instances")
    if not isinstance(instances, list) or not 1 <= len(instances) <= MAX_INSTANCES:
        raise BadRequest(
            f"field 'instances' must be a list of 1 to {MAX_INSTANCES} objects; {_EXPECTED}"
        )
    predictions = []
    for i, instance in enumerate(instances):
        try:
            predictions.append(score(instance))
        except BadRequest as exc:
            raise BadRequest(f"instances[{i}]: {exc}") from None
    response = {"model_version": MODEL["model_version"], "predictions": predictions}
    served_by = _served_by(context)
    if served_by:
        response["served_by"] = served_by
    return response


def model_card() -> dict:
    return {
        "model_version": MODEL["model_version"],
        "features": FEATURES,
        "threshold": MODEL["threshold"],
    }


def _http(status: int, body: dict, extra_headers: dict | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {**_JSON_HEADERS, **(extra_headers or {})},
        "body": json.dumps(body),
    }


def _parse_body(event: dict):
    body = event.get("body")
    if not body or not isinstance(body, str):
        raise BadRequest('request body is missing; expected JSON {"instances": [...]}')
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest("request body is not valid base64-encoded UTF-8") from None
    try:
        return json.loads(body)
    # RecursionError: a body of deeply nested brackets must be a 400, not a Lambda error.
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _proxy(event: dict, context) -> dict:
    method = str(event.get("httpMethod", "")).upper()
    if method == "GET":
        return _http(200, model_card())
    if method != "POST":
        return _http(405, {"error": f"method {method} not allowed"}, {"allow": "GET, POST"})
    try:
        return _http(200, predict(_parse_body(event), context))
    except BadRequest as exc:
        return _http(400, {"error": str(exc)})


def handler(event, context):
    if isinstance(event, dict) and "httpMethod" in event:
        return _proxy(event, context)
    try:
        return predict(event, context)
    except BadRequest as exc:
        return {"error": str(exc), "statusCode": 400}
