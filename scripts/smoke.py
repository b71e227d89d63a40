"""Smoke-check the candidate model version before any traffic moves to it.

    python -m scripts.smoke (--outputs FILE | --branch NAME) [--version N]

Invokes the published version directly (qualified, not through the alias, so clients
never see it) with a few typical rows built from the model's features, and checks the
response shape; then sends one deliberately bad request and expects the model's 400-style
error, which proves input validation is live. Exit 0 when every check passes, 1 with the
failed checks named, 2 on bad input. Emits no event: deploy records `deployed`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.lib import aws, cli, outputs, summary
from scripts.lib.lambda_alias import require_version
from scripts.lib.progress import Progress

MODEL_FILE = Path(__file__).resolve().parent.parent / "infra/handlers/model/model.json"
# Values a customer of the churn model typically has; a feature a retrained model adds
# gets a neutral 1.0, so the rows stay valid whatever the features are.
TYPICAL_ROWS: tuple[Mapping[str, float], ...] = (
    {
        "tenure_months": 36,
        "monthly_charges": 49.9,
        "support_tickets_90d": 0,
        "late_payments_12m": 0,
        "contract_months_remaining": 12,
    },
    {
        "tenure_months": 2,
        "monthly_charges": 99.5,
        "support_tickets_90d": 6,
        "late_payments_12m": 4,
        "contract_months_remaining": 0,
    },
    {},
)
BAD_PAYLOAD = {"instances": [{"no_such_feature": 1.0}]}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeReport:
    function: str
    version: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


def model_features(path: Path = MODEL_FILE) -> list[str]:
    try:
        features = json.loads(path.read_text())["features"]
    except (OSError, ValueError, KeyError) as error:
        raise aws.UsageError(f"cannot read the model's features from {path}: {error}") from None
    return list(features)


def sample_instances(features: Sequence[str]) -> list[dict[str, float]]:
    return [{name: row.get(name, 1.0) for name in features} for row in TYPICAL_ROWS]


def _invoke(lambda_client: Any, function: str, version: str, payload: object) -> tuple[dict, Any]:
    response = aws.call(
        f"invoking version {version} of {function}",
        lambda_client.invoke,
        FunctionName=function,
        Qualifier=version,
        Payload=json.dumps(payload).encode(),
    )
    raw = response["Payload"].read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    return response, body


def _transport_problem(response: Mapping[str, Any], body: Any, version: str) -> str | None:
    if response.get("StatusCode") != 200:
        return f"status {response.get('StatusCode')}, expected 200"
    if response.get("FunctionError"):
        message = body.get("errorMessage") if isinstance(body, dict) else body
        return f"the function raised ({response['FunctionError']}): {message}"
    executed = response.get("ExecutedVersion")
    if executed is not None and executed != version:
        return f"version {executed} answered, not {version}"
    if not isinstance(body, dict):
        return f"the response is not a JSON object: {str(body)[:200]!r}"
    return None


def _prediction_problem(body: Mapping[str, Any], count: int) -> str | None:
    if not isinstance(body.get("model_version"), str):
        return f"'model_version' is not a string: {body.get('model_version')!r}"
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != count:
        return f"expected 'predictions' as a list of {count}, got {str(predictions)[:200]!r}"
    for i, prediction in enumerate(predictions):
        score = prediction.get("score") if isinstance(prediction, dict) else None
        if (
            not isinstance(score, int | float)
            or isinstance(score, bool)
            or not math.isfinite(score)
            or not 0 <= score <= 1
        ):
            return f"predictions[{i}].score is not a number in [0, 1]: {score!r}"
        if not isinstance(prediction.get("label"), bool):
            return f"predictions[{i}].label is not a boolean: {prediction.get('label')!r}"
    return None


def smoke(
    lambda_client: Any,
    *,
    function: str,
    version: str,
    samples: Sequence[Mapping[str, float]],
    progress: Progress | None = None,
) -> SmokeReport:
    """Invoke `function:version` with the samples and one bad request; report each check."""
    version = str(version)
    progress = progress or Progress("smoke", total=2)
    require_version(lambda_client, function, version, "--version")
    report = SmokeReport(function, version)

    request = {"instances": [dict(s) for s in samples]}
    response, body = _invoke(lambda_client, function, version, request)
    problem = _transport_problem(response, body, version) or _prediction_problem(body, len(samples))
    report.checks.append(
        Check(
            f"{len(samples)} typical rows",
            problem is None,
            problem or f"model {body['model_version']}: {len(samples)} predictions in shape",
        )
    )
    progress.step(f"typical rows: {'ok' if problem is None else problem}")

    response, body = _invoke(lambda_client, function, version, BAD_PAYLOAD)
    problem = _transport_problem(response, body, version)
    if problem is None and not (
        isinstance(body.get("error"), str) and body.get("statusCode") == 400
    ):
        problem = f"expected a 400 {{'error': ...}}, got {str(body)[:200]!r}"
    report.checks.append(
        Check(
            "bad request is refused",
            problem is None,
            problem or f"400: {body['error'][:120]}",
        )
    )
    progress.step(f"bad request: {'refused' if problem is None else problem}")
    return report


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("smoke", __doc__.splitlines()[0])
    outputs.add_arguments(parser)
    parser.add_argument(
        "--version",
        type=cli.lambda_version_arg,
        help="version to check (default: the stack output model_candidate_version)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args

    def body() -> int:
        stack = outputs.load(args)
        function = stack.require("model_function")
        version = str(args.version or stack.require("model_candidate_version"))
        report = smoke(
            aws.client("lambda", stack.region),
            function=function,
            version=version,
            samples=sample_instances(model_features()),
        )
        markdown = "\n".join(
            [
                f"### Smoke check of `{function}:{version}`: {'passed' if report.ok else 'FAILED'}",
                "",
                summary.table(
                    ["check", "result", "detail"],
                    [[c.name, "ok" if c.ok else "FAILED", c.detail] for c in report.checks],
                ),
            ]
        )
        print(markdown)
        summary.write_step_summary(markdown)
        if not report.ok:
            raise aws.ScriptError(
                f"version {version} of {function} failed: {'; '.join(report.failures())}"
            )
        print(f"smoke: version {version} of {function} passed", file=sys.stderr)
        return 0

    return aws.run("smoke", body)


if __name__ == "__main__":
    raise SystemExit(main())
