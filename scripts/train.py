"""Train and evaluate the branch's model on its runner, publish what it trained, gate it.

    python -m scripts.train (--outputs FILE | --branch NAME) [--commit SHA]
        [--timeout-minutes N] [--poll-seconds S] [--results DIR]
        [--outputs-out FILE] [--comparison FILE] [--dependencies DIR]

1. zips the repository at the commit (`git archive`) and uploads it to the stack's
   artifact bucket; the run is pinned to that upload's S3 version;
2. starts the CodeBuild runner (its buildspec runs `python -m model.train`), shows
   its phases and log tail on stderr, and waits at most --timeout-minutes (then
   stops it); a failed or timed-out run exits 1 with its log excerpt, and nothing
   is deployed from it;
3. fetches the run's model.json and metrics.json into --results;
4. publishes a model Lambda version serving exactly that artifact (handler, the
   run's model.json, the packaged dependencies), described with commit and run,
   and smoke-checks it; --outputs-out gets the stack outputs with that version as
   the candidate, for promote;
5. records `trained` and `evaluated` events carrying commit, run and metrics;
6. compares the metrics with the default branch's (its published metrics; on the
   default branch itself, the live version's run) and applies config
   `qualityGate`; the table goes to stdout, the step summary and --comparison;
7. on the default branch, once the gate passes, publishes the metrics for other
   branches to compare against (published/metrics.json in its artifact bucket).

Exit 0 trained and gate passed, 1 the run or the gate failed (reason in the summary),
2 bad input.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import config, naming, packaging
from infra.training import (
    BUILD_TIMEOUT_MINUTES,
    LATEST_EVALUATION_KEY,
    PUBLISHED_METRICS_KEY,
    PUBLISHED_TAG,
    RUNS_PREFIX,
)
from scripts import events, smoke
from scripts.lib import aws, gate, outputs, runner, summary
from scripts.lib.progress import Progress

ROOT = config.REPO_ROOT
HANDLER_DIR = ROOT / "infra/handlers/model"
DESCRIPTION_MAX = 256  # Lambda's limit on a version description
_RUN_IN_DESCRIPTION = re.compile(r"\brun (?P<run>\S+)")


def describe(model_version: str, commit: str, run_id: str, content: str = "") -> str:
    """A version's description: names the commit and the run, so the live version says
    which training run it serves, and the content digest of what it serves. The run and the
    digest come before the model version, so Lambda's 256-character limit can only ever
    cut the latter."""
    served = f" content {content}" if content else ""
    text = f"commit {commit[:12]} run {run_id}{served} model {model_version}"
    return text[:DESCRIPTION_MAX]


def live_version_serving(lambda_client: Any, function: str, alias: str, content: str) -> str | None:
    """The version alias `alias` fully serves, when it serves exactly `content`; else None."""
    live = aws.call(
        f"reading alias {alias} of {function}",
        lambda_client.get_alias,
        FunctionName=function,
        Name=alias,
    )
    if (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights"):
        return None  # mid-canary: what serves is not one version
    version = str(live["FunctionVersion"])
    described = aws.call(
        f"reading version {version} of {function}",
        lambda_client.get_function_configuration,
        FunctionName=function,
        Qualifier=version,
    ).get("Description", "")
    return version if f" content {content} " in f"{described} " else None


def run_of(description: str) -> str | None:
    match = _RUN_IN_DESCRIPTION.search(description or "")
    return match["run"] if match else None


def publish_version(
    lambda_client: Any,
    s3: Any,
    *,
    function: str,
    bucket: str,
    run_id: str,
    code: bytes,
    description: str,
) -> str:
    """A new version of the model function with exactly `code`; returns its number."""
    key = f"{RUNS_PREFIX}{run_id}/lambda.zip"
    aws.call(
        f"uploading the model package to s3://{bucket}/{key}",
        s3.put_object,
        Bucket=bucket,
        Key=key,
        Body=code,
    )
    sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
    aws.call(
        f"updating the code of {function}",
        lambda_client.update_function_code,
        FunctionName=function,
        S3Bucket=bucket,
        S3Key=key,
        Publish=False,
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
    # CodeSha256: Lambda refuses to publish if another update slipped in meanwhile.
    response = aws.call(
        f"publishing a version of {function}",
        lambda_client.publish_version,
        FunctionName=function,
        CodeSha256=sha,
        Description=description,
    )
    return str(response["Version"])


def _read_json(s3: Any, bucket: str, key: str, *, denied_is_missing: bool = False) -> dict | None:
    """An object as JSON, or None when there is none yet."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
        return None
    except s3.exceptions.ClientError as error:
        if denied_is_missing and error.response.get("Error", {}).get("Code") == "AccessDenied":
            return None
        raise aws.translate(error, f"reading s3://{bucket}/{key}") from error
    return json.loads(body)


def default_branch_bucket(settings: config.Settings, account_id: str) -> str:
    stack = settings.branch_stack(settings.default_branch)
    return naming.branch_names(
        settings.project, stack, account_id, settings.api_versions
    ).artifact_bucket


def live_baseline(
    lambda_client: Any, s3: Any, stack: outputs.StackOutputs
) -> tuple[dict | None, str]:
    """Metrics of the run the live alias serves (the default branch compares with these)."""
    function, alias = stack.require("model_function"), stack.require("model_alias")
    live = aws.call(
        f"reading alias {alias}", lambda_client.get_alias, FunctionName=function, Name=alias
    )["FunctionVersion"]
    configuration = aws.call(
        f"reading version {live} of {function}",
        lambda_client.get_function_configuration,
        FunctionName=function,
        Qualifier=live,
    )
    run_id = run_of(configuration.get("Description", ""))
    if run_id is None:
        return None, f"live version {live} (no training run recorded)"
    metrics = _read_json(
        s3, stack.require("artifact_bucket"), f"{RUNS_PREFIX}{run_id}/metrics.json"
    )
    return metrics, f"live version {live} (run {run_id})"


def branch_baseline(s3: Any, bucket: str, default_branch: str) -> tuple[dict | None, str]:
    # An ephemeral branch's role may read that one object (docs/access.md), not list the
    # bucket: S3 then answers a missing object with AccessDenied, not NoSuchKey.
    metrics = _read_json(s3, bucket, PUBLISHED_METRICS_KEY, denied_is_missing=True)
    if metrics is None:
        return None, f"{default_branch} has published no evaluated model yet (or none readable)"
    return (
        metrics,
        f"{default_branch} @ {str(metrics.get('commit'))[:12]} (run {metrics.get('run_id')})",
    )


def current_commit() -> str:
    sha = os.environ.get("GITHUB_SHA")
    if sha:
        return sha
    result = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, as CI has it
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise aws.UsageError("no --commit given and `git rev-parse HEAD` failed here")
    return result.stdout.strip()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train", description=__doc__.splitlines()[0])
    outputs.add_arguments(parser)
    parser.add_argument("--commit", help="commit to train (default: GITHUB_SHA or HEAD)")
    parser.add_argument(
        "--timeout-minutes",
        type=float,
        default=BUILD_TIMEOUT_MINUTES + 5,
        help="give up (and stop the run) after this long (default: %(default)s)",
    )
    parser.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("build/run"),
        help="where the run's model.json and metrics.json go",
    )
    parser.add_argument(
        "--outputs-out", type=Path, help="write the stack outputs with the new candidate here"
    )
    parser.add_argument("--comparison", type=Path, help="write the comparison as JSON here")
    parser.add_argument(
        "--dependencies",
        type=Path,
        help="packaged model dependencies (default: what `nox -s package` built, if needed)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.timeout_minutes <= 8 * 60:
        parser.error(f"--timeout-minutes {args.timeout_minutes:g} must be in (0, 480]")
    if args.dependencies is not None and not args.dependencies.is_dir():
        parser.error(f"--dependencies {args.dependencies} is not a folder; run `nox -s package`")
    return args


@dataclasses.dataclass
class Context:
    """What one invocation works on: the stack, its settings, the clients."""

    stack: outputs.StackOutputs
    settings: config.Settings
    clients: dict[str, Any]
    progress: Progress

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = aws.client(service)
        return self.clients[service]


def train_on_runner(ctx: Context, commit: str, args: argparse.Namespace) -> runner.Run:
    bucket = ctx.stack.require("artifact_bucket")
    archive = runner.source_archive(commit, ROOT)
    source_version = runner.upload_source(ctx.client("s3"), bucket, archive, commit)
    ctx.progress.step(f"uploaded the source of {commit[:12]} ({len(archive) / 1e6:.1f} MB)")
    run = runner.start(
        ctx.client("codebuild"), ctx.stack.require("training_project"), source_version, commit
    )
    ctx.progress.step(f"started run {run.build_id}")
    return runner.wait(
        ctx.client("codebuild"),
        ctx.client("logs"),
        run,
        timeout_seconds=args.timeout_minutes * 60,
        poll_seconds=args.poll_seconds,
        progress=ctx.progress,
    )


def deploy_run(
    ctx: Context, run: runner.Run, artifact: dict, commit: str, args: argparse.Namespace
) -> str:
    """Publish and smoke-check the version serving the run's artifact; returns it."""
    function = ctx.stack.require("model_function")
    try:
        dependencies = args.dependencies or packaging.dependencies_dir(ROOT)
    except packaging.PackagingError as error:
        raise aws.UsageError(str(error)) from None
    trained = (args.results / "model.json").read_bytes()
    content = runner.content_digest(HANDLER_DIR, trained, dependencies)
    version = live_version_serving(
        ctx.client("lambda"), function, ctx.stack.require("model_alias"), content
    )
    if version is not None:
        ctx.progress.step(
            f"run {run.build_id} reproduced what version {version} (live) serves: "
            "nothing new to publish"
        )
    else:
        version = publish_version(
            ctx.client("lambda"),
            ctx.client("s3"),
            function=function,
            bucket=ctx.stack.require("artifact_bucket"),
            run_id=run.build_id,
            code=runner.lambda_zip(HANDLER_DIR, trained, dependencies),
            description=describe(str(artifact.get("model_version")), commit, run.build_id, content),
        )
    check = smoke.smoke(
        ctx.client("lambda"),
        function=function,
        version=version,
        samples=smoke.sample_instances(artifact["features"]),
    )
    if not check.ok:
        raise aws.ScriptError(
            f"version {version} failed its smoke check: {'; '.join(check.failures())}"
        )
    ctx.progress.step(f"published version {version} serving run {run.build_id}")
    if args.outputs_out:
        args.outputs_out.parent.mkdir(parents=True, exist_ok=True)
        values = {
            **ctx.stack.values,
            "model_candidate_version": version,
            "training_run": run.build_id,
            "trained_commit": commit,
        }
        args.outputs_out.write_text(json.dumps(values, indent=2))
    return version


def evaluate(ctx: Context, metrics: dict) -> gate.Comparison:
    settings = ctx.settings
    if ctx.stack.require("branch") == settings.default_branch:
        baseline, label = live_baseline(ctx.client("lambda"), ctx.client("s3"), ctx.stack)
    else:
        account_id = ctx.client("sts").get_caller_identity()["Account"]
        baseline, label = branch_baseline(
            ctx.client("s3"), default_branch_bucket(settings, account_id), settings.default_branch
        )
    notes = () if baseline else (f"No baseline: {label}; only min/max bounds apply.",)
    return gate.compare(metrics, baseline, settings.quality_gate, label, notes)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        stack = outputs.load(args)
        branch = stack.require("branch")
        ctx = Context(
            stack, config.settings_for_stack(naming.slugify(branch)), {}, Progress("train", 6)
        )
        commit = args.commit or current_commit()
        emit = events.emitter(ctx.client("events"), stack, stack.require("model_function"))

        run = train_on_runner(ctx, commit, args)
        results = runner.fetch_results(
            ctx.client("s3"), stack.require("artifact_bucket"), run, args.results
        )
        artifact, metrics = results["model.json"], results["metrics.json"]
        ctx.progress.step(f"run {run.build_id} {run.status}: {metrics.get('metrics')}")
        version = deploy_run(ctx, run, artifact, commit, args)
        fields = {
            "version": version,
            "run_id": run.build_id,
            "commit": commit,
            "model_version": artifact.get("model_version"),
        }
        emit("trained", **fields)

        comparison = evaluate(ctx, metrics)
        verdict = "passed" if comparison.passed else "failed"
        emit(
            "evaluated",
            **fields,
            metrics=metrics.get("metrics"),
            gate=verdict,
            failures=comparison.failures(),
        )
        ctx.progress.step(f"evaluated: quality gate {verdict}")
        if branch == ctx.settings.default_branch and comparison.passed:
            bucket = stack.require("artifact_bucket")
            aws.call(
                f"publishing the metrics to s3://{bucket}/{PUBLISHED_METRICS_KEY}",
                ctx.client("s3").put_object,
                Bucket=bucket,
                Key=PUBLISHED_METRICS_KEY,
                Body=json.dumps({**metrics, "version": version}).encode(),
                # The mark that lets other branches' (ephemeral) roles read this one object.
                Tagging=urllib.parse.urlencode([PUBLISHED_TAG]),
            )
        ctx.progress.step(f"recorded; quality gate {verdict}")
        evaluation = report(comparison, fields, args.comparison)
        # For the pull request's comment, whichever way the gate went.
        aws.call(
            f"saving the evaluation to s3://{stack.require('artifact_bucket')}",
            ctx.client("s3").put_object,
            Bucket=stack.require("artifact_bucket"),
            Key=LATEST_EVALUATION_KEY,
            Body=json.dumps(evaluation).encode(),
        )
        if not comparison.passed:
            raise aws.ScriptError(f"quality gate failed: {'; '.join(comparison.failures())}")
        return 0

    return aws.run("train", body)


def report(comparison: gate.Comparison, fields: dict, path: Path | None) -> dict:
    """Print and summarise the comparison; returns it as the JSON the PR comment reads."""
    markdown = gate.markdown(comparison, gate.title(fields))
    print(markdown)
    summary.write_step_summary(markdown)
    evaluation = {**comparison.as_dict(), **fields}
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(evaluation, indent=2))
    return evaluation


if __name__ == "__main__":
    raise SystemExit(main())
