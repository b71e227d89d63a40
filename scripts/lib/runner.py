"""The branch's training runner (CodeBuild): upload the source, run it, wait, fetch results.

A library for `scripts.train`. The runner's side of the contract lives in
infra/components/model_testing.py: the source at SOURCE_KEY, results under
runs/<build id>/ (uploaded by the buildspec's post_build, which runs after a
failed build too).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.training import RUNS_PREFIX, SOURCE_KEY
from scripts.lib import aws
from scripts.lib.progress import Progress

FINAL = {"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"}
LOG_EXCERPT_LINES = 40
RESULT_FILES = ("model.json", "metrics.json")


class RunFailed(aws.ScriptError):
    """The run ended without results to deploy; the message carries its log excerpt."""


@dataclass
class Run:
    build_id: str
    status: str = "IN_PROGRESS"
    phase: str = "SUBMITTED"
    log_lines: list[str] = field(default_factory=list)

    def excerpt(self, lines: int = LOG_EXCERPT_LINES) -> str:
        tail = self.log_lines[-lines:]
        return "\n".join(tail) if tail else "(the run wrote no log lines)"


def source_archive(commit: str, repo: Path) -> bytes:
    """The repository's files at `commit`, as git has them: nothing untracked, nothing local."""
    result = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=zip", commit],  # noqa: S607 - git on PATH
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise aws.UsageError(
            f"cannot archive commit {commit!r} of {repo}: {result.stderr.decode().strip()}; "
            "pass --commit with a commit of this repository"
        )
    return result.stdout


def upload_source(s3: Any, bucket: str, archive: bytes, commit: str) -> str:
    """Put the source where the runner reads it; returns the S3 version the run must use."""
    response = aws.call(
        f"uploading the source of {commit} to s3://{bucket}/{SOURCE_KEY}",
        s3.put_object,
        Bucket=bucket,
        Key=SOURCE_KEY,
        Body=archive,
        Metadata={"commit": commit},
    )
    version = response.get("VersionId")
    if not version or version == "null":
        raise aws.ScriptError(
            f"bucket {bucket} is not versioned: a run could read another push's source"
        )
    return version


def start(codebuild: Any, project: str, source_version: str, commit: str) -> Run:
    response = aws.call(
        f"starting a run of {project}",
        codebuild.start_build,
        projectName=project,
        # Pinned to this upload: a later push overwriting the key cannot change the run.
        sourceVersion=source_version,
        environmentVariablesOverride=[{"name": "GIT_SHA", "value": commit, "type": "PLAINTEXT"}],
    )
    return Run(response["build"]["id"])


def _log_location(build: dict) -> tuple[str, str] | None:
    logs = build.get("logs") or {}
    group, stream = logs.get("groupName"), logs.get("streamName")
    return (group, stream) if group and stream else None


def _read_logs(logs: Any, location: tuple[str, str], token: str | None) -> tuple[list[str], str]:
    kwargs: dict[str, Any] = {
        "logGroupName": location[0],
        "logStreamName": location[1],
        "startFromHead": True,
    }
    if token:
        kwargs["nextToken"] = token
    lines: list[str] = []
    while True:
        try:
            page = logs.get_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return lines, token or ""  # the stream appears once the build container starts
        lines += [event["message"].rstrip("\n") for event in page.get("events", [])]
        next_token = page.get("nextForwardToken")
        if not page.get("events") or next_token == kwargs.get("nextToken"):
            return lines, next_token or ""
        kwargs["nextToken"] = next_token


def wait(
    codebuild: Any,
    logs: Any,
    run: Run,
    *,
    timeout_seconds: float,
    poll_seconds: float = 15.0,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Run:
    """Poll until the run ends or the timeout passes (then stop it); stream its log tail.

    A loop, not a waiter: boto3 has no CodeBuild waiter, and the log tail is read
    between polls anyway."""
    progress = progress or Progress("train", total=1)
    deadline = clock() + timeout_seconds
    token: str | None = None
    while True:
        (build,) = aws.call(
            f"reading run {run.build_id}", codebuild.batch_get_builds, ids=[run.build_id]
        )["builds"]
        location = _log_location(build)
        if location:
            lines, token = _read_logs(logs, location, token)
            run.log_lines += lines
            for line in lines[-5:]:
                progress.note(f"| {line}")
        phase, status = build.get("currentPhase", "?"), build.get("buildStatus", "?")
        if phase != run.phase:
            progress.note(f"run {run.build_id}: {phase}")
        run.phase, run.status = phase, status
        if status in FINAL:
            return run
        if clock() >= deadline:
            aws.call(f"stopping run {run.build_id}", codebuild.stop_build, id=run.build_id)
            run.status = "TIMED_OUT"
            raise RunFailed(
                f"run {run.build_id} did not finish within {timeout_seconds:.0f}s and was "
                f"stopped; last log lines:\n{run.excerpt()}"
            )
        sleep(poll_seconds)


def fetch_results(s3: Any, bucket: str, run: Run, into: Path) -> dict[str, dict]:
    """The run's model.json and metrics.json, saved into `into` and returned parsed."""
    if run.status != "SUCCEEDED":
        raise RunFailed(
            f"run {run.build_id} ended {run.status}; nothing is deployed from it. "
            f"Last log lines:\n{run.excerpt()}"
        )
    into.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in RESULT_FILES:
        key = f"{RUNS_PREFIX}{run.build_id}/{name}"
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise RunFailed(
                f"run {run.build_id} succeeded but wrote no {name} (s3://{bucket}/{key}); "
                "the training command must write results/model.json and results/metrics.json. "
                f"Last log lines:\n{run.excerpt()}"
            ) from None
        (into / name).write_bytes(body)
        try:
            results[name] = json.loads(body)
        except ValueError as error:
            raise RunFailed(
                f"run {run.build_id} wrote a {name} that is not JSON: {error}"
            ) from None
    return results


def _package_files(handler_dir: Path, dependencies: Path | None) -> list[tuple[str, Path]]:
    """The files beside the artifact in the function's code, by their name in the zip."""
    files: list[tuple[str, Path]] = []
    if dependencies is not None:
        for path in sorted(dependencies.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files.append((path.relative_to(dependencies).as_posix(), path))
    for path in sorted(handler_dir.iterdir()):
        if path.is_file() and path.name != "model.json" and path.suffix != ".pyc":
            files.append((path.name, path))
    return files


def lambda_zip(handler_dir: Path, artifact: bytes, dependencies: Path | None) -> bytes:
    """The model function's code: its handler, the run's artifact, the packaged libraries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in _package_files(handler_dir, dependencies):
            archive.write(path, name)
        archive.writestr("model.json", artifact)
    return buffer.getvalue()


def content_digest(handler_dir: Path, artifact: bytes, dependencies: Path | None) -> str:
    """What a version serves, without the run's provenance: the same handler, libraries and
    model (weights, features, version) give the same digest whichever run trained it, so a
    push that changes none of them (docs only) has nothing new to publish or promote. The
    zip itself cannot tell: its timestamps and the artifact's `training` block differ."""
    model = json.loads(artifact)
    model.pop("training", None)
    entries = [
        (name, path.read_bytes()) for name, path in _package_files(handler_dir, dependencies)
    ]
    entries.append(("model.json", json.dumps(model, sort_keys=True).encode()))
    digest = hashlib.sha256()
    for name, data in sorted(entries):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]
