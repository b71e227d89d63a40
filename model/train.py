"""Train the model on a dataset, evaluate it on a held-out split, write artifact and metrics.

    python -m model.train [--spec model/spec.json] [--data PATH|s3://B/K] [--out DIR]
                          [--commit SHA] [--run-id ID] [--serve PATH]

The one training entry point: `nox -s train` runs it locally on the shipped
dataset, and the branch's runner (CodeBuild) runs it on every push. Training is
deterministic (fixed split seed, full-batch gradient descent, stdlib floats), so
the same commit and data give the same artifact and metrics wherever it runs.

Writes DIR/model.json (the artifact the model Lambda serves; format in
docs/model.md) and DIR/metrics.json. Exit 0 on success, 2 on bad input (spec,
dataset), naming the input and what would be valid.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import json
import math
import operator
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(__file__).resolve().parent / "spec.json"
ARTIFACT = "model.json"
METRICS = "metrics.json"
ARTIFACT_FORMAT = "mlship.logistic/1"
# Metrics whose larger value is better; the gate and the comparison table use this.
HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "log_loss": False}


class BadInput(ValueError):
    """The spec or the dataset cannot be trained on; the message names what and why."""


def load_spec(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BadInput(f"cannot read model spec {path}: {error}") from None
    features = spec.get("features")
    params = spec.get("hyperparameters")
    checks = {
        "model_version must be a non-empty string": isinstance(spec.get("model_version"), str)
        and bool(spec["model_version"].strip()),
        "features must be a non-empty list of unique strings": isinstance(features, list)
        and bool(features)
        and all(isinstance(f, str) and f for f in features)
        and len(set(features)) == len(features),
        "label must be a string that is not a feature": isinstance(spec.get("label"), str)
        and spec["label"] not in (features or []),
        "dataset must be a path or s3:// URI": isinstance(spec.get("dataset"), str),
        "test_fraction must be a number in (0, 0.5]": isinstance(spec.get("test_fraction"), float)
        and 0 < spec["test_fraction"] <= 0.5,
        "seed must be an integer": isinstance(spec.get("seed"), int),
        "threshold must be a number in [0, 1]": isinstance(spec.get("threshold"), int | float)
        and 0 <= spec["threshold"] <= 1,
        "hyperparameters must hold learning_rate > 0, epochs >= 1, l2 >= 0": isinstance(
            params, dict
        )
        and isinstance(params.get("learning_rate"), int | float)
        and params["learning_rate"] > 0
        and isinstance(params.get("epochs"), int)
        and params["epochs"] >= 1
        and isinstance(params.get("l2"), int | float)
        and params["l2"] >= 0,
    }
    failed = [message for message, ok in checks.items() if not ok]
    if failed:
        raise BadInput(f"model spec {path} is invalid: {'; '.join(failed)}")
    return spec


def read_dataset(location: str, root: Path = ROOT) -> bytes:
    """The dataset's bytes: a path (relative to the repository) or an s3:// URI."""
    if location.startswith("s3://"):
        import boto3  # noqa: PLC0415 - only the runner reads S3; local runs need no boto3

        bucket, _, key = location.removeprefix("s3://").partition("/")
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    path = Path(location) if Path(location).is_absolute() else root / location
    try:
        return path.read_bytes()
    except OSError as error:
        raise BadInput(f"cannot read dataset {location}: {error}") from None


def parse_rows(raw: bytes, features: Sequence[str], label: str) -> list[tuple[list[float], int]]:
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
    missing = [c for c in (*features, label) if c not in (reader.fieldnames or [])]
    if missing:
        raise BadInput(
            f"dataset lacks column(s) {', '.join(missing)}; it has: "
            f"{', '.join(reader.fieldnames or [])}"
        )
    rows = []
    for line, record in enumerate(reader, start=2):
        try:
            x = [float(record[f]) for f in features]
            y = int(record[label])
        except (TypeError, ValueError):
            raise BadInput(f"dataset line {line}: features must be numbers, label 0 or 1") from None
        if y not in (0, 1) or not all(math.isfinite(v) for v in x):
            raise BadInput(f"dataset line {line}: features must be finite, label 0 or 1")
        rows.append((x, y))
    if len(rows) < 10 or len({y for _, y in rows}) < 2:
        raise BadInput("dataset needs at least 10 rows and both labels")
    return rows


def split(rows: list, test_fraction: float, seed: int) -> tuple[list, list]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
    n_test = max(1, round(len(rows) * test_fraction))
    test = sorted(order[:n_test])
    train = sorted(order[n_test:])
    return [rows[i] for i in train], [rows[i] for i in test]


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def fit(rows: list[tuple[list[float], int]], params: dict) -> tuple[list[float], float]:
    """L2-regularised logistic regression by full-batch gradient descent on standardised
    features; the scaling is folded back so the artifact scores raw feature values."""
    n, k = len(rows), len(rows[0][0])
    mean = [math.fsum(x[j] for x, _ in rows) / n for j in range(k)]
    scale = [
        math.sqrt(math.fsum((x[j] - mean[j]) ** 2 for x, _ in rows) / n) or 1.0 for j in range(k)
    ]
    data = [([(x[j] - mean[j]) / scale[j] for j in range(k)], y) for x, y in rows]
    columns = list(zip(*(x for x, _ in data), strict=True))
    w, b = [0.0] * k, 0.0
    rate, l2 = params["learning_rate"], params["l2"]
    for _ in range(params["epochs"]):
        # Full batch: every row's error uses this epoch's w and b, so the errors come first
        # and each gradient is then one pass in C (training was most of the unit tests' model
        # time). reduce(add) from 0.0 adds the terms one at a time in row order: sum()
        # compensates on Python 3.12+, which would change the artifact's last bits.
        errors = [sigmoid(math.fsum(map(operator.mul, w, x)) + b) - y for x, y in data]
        grad_b = functools.reduce(operator.add, errors, 0.0)
        grad_w = [
            functools.reduce(operator.add, map(operator.mul, errors, c), 0.0) for c in columns
        ]
        w = [w[j] - rate * (grad_w[j] / n + l2 * w[j]) for j in range(k)]
        b -= rate * grad_b / n
    weights = [w[j] / scale[j] for j in range(k)]
    bias = b - math.fsum(w[j] * mean[j] / scale[j] for j in range(k))
    return weights, bias


def predict_proba(weights: Sequence[float], bias: float, x: Sequence[float]) -> float:
    return sigmoid(math.fsum(w * v for w, v in zip(weights, x, strict=True)) + bias)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Probability a random positive outranks a random negative (ties count half)."""
    ranked = sorted(zip(scores, labels, strict=True))
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2  # 1-based ranks i+1..j
        rank_sum += average_rank * sum(1 for _, y in ranked[i:j] if y == 1)
        i = j
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        raise BadInput("the held-out split needs both labels; use more data or another seed")
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def evaluate(weights, bias, threshold: float, rows) -> dict[str, float]:
    scores = [predict_proba(weights, bias, x) for x, _ in rows]
    labels = [y for _, y in rows]
    eps = 1e-15
    log_loss = -math.fsum(
        y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps))
        for p, y in zip(scores, labels, strict=True)
    ) / len(rows)
    accuracy = sum((p >= threshold) == bool(y) for p, y in zip(scores, labels, strict=True))
    return {
        "auc": round(auc(scores, labels), 6),
        "log_loss": round(log_loss, 6),
        "accuracy": round(accuracy / len(rows), 6),
    }


def train(
    spec: dict,
    data: bytes,
    *,
    commit: str | None = None,
    run_id: str | None = None,
) -> tuple[dict, dict]:
    """(artifact, metrics) for a spec and the dataset's bytes."""
    rows = parse_rows(data, spec["features"], spec["label"])
    train_rows, test_rows = split(rows, spec["test_fraction"], spec["seed"])
    weights, bias = fit(train_rows, spec["hyperparameters"])
    metrics = evaluate(weights, bias, spec["threshold"], test_rows)
    provenance = {
        "commit": commit,
        "run_id": run_id,
        "dataset_sha256": hashlib.sha256(data).hexdigest(),
        "rows_train": len(train_rows),
        "rows_test": len(test_rows),
    }
    artifact = {
        "format": ARTIFACT_FORMAT,
        "model_version": spec["model_version"],
        "features": list(spec["features"]),
        # Rounded so the artifact's bytes do not hinge on the last ulp of a platform's libm.
        "weights": [round(w, 10) for w in weights],
        "bias": round(bias, 10),
        "threshold": spec["threshold"],
        "training": provenance,
    }
    return artifact, {
        "model_version": spec["model_version"],
        **provenance,
        "metrics": metrics,
        "higher_is_better": {name: HIGHER_IS_BETTER[name] for name in metrics},
    }


def write(out: Path, artifact: dict, metrics: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, document in ((ARTIFACT, artifact), (METRICS, metrics)):
        (out / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=SPEC, help="model spec (default: %(default)s)")
    parser.add_argument("--data", help="dataset path or s3:// URI (default: the spec's dataset)")
    parser.add_argument("--out", type=Path, default=Path("build/train"), help="output folder")
    parser.add_argument("--commit", default=os.environ.get("GIT_SHA") or None)
    parser.add_argument("--run-id", default=os.environ.get("CODEBUILD_BUILD_ID") or None)
    parser.add_argument(
        "--serve",
        type=Path,
        help="also write the artifact here without commit and run (the local served copy)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        spec = load_spec(args.spec)
        data = read_dataset(args.data or spec["dataset"])
        artifact, metrics = train(spec, data, commit=args.commit, run_id=args.run_id)
    except BadInput as error:
        print(f"model.train: {error}", file=sys.stderr)
        return 2
    write(args.out, artifact, metrics)
    if args.serve:
        served = {**artifact, "training": {**artifact["training"], "commit": None, "run_id": None}}
        args.serve.write_text(json.dumps(served, indent=2) + "\n", encoding="utf-8")
    summary = ", ".join(f"{k} {v}" for k, v in metrics["metrics"].items())
    print(f"model.train: {spec['name']} {spec['model_version']}: {summary}", file=sys.stderr)
    written = [args.out / ARTIFACT, args.out / METRICS, *([args.serve] if args.serve else [])]
    print(f"model.train: wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
