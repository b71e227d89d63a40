"""What CodeBuild does with a build that moto only records: run it.

moto's CodeBuild accepts start_build and reports every build SUCCEEDED on the first
poll, without running anything; its builds have no logs. This stand-in runs each
started build as the runner would, on this machine:

- DOWNLOAD_SOURCE: the exact S3 object version the build was started on, unzipped;
- INSTALL: skipped (CodeArtifact has no backend in moto, and there is no index here);
  the example model trains with the standard library alone;
- BUILD: the buildspec's build commands in bash, in the source folder, with the
  project's environment variables, the start_build overrides and CODEBUILD_BUILD_ID;
- POST_BUILD: what its `aws s3 cp results/ s3://$ARTIFACT_BUCKET/runs/$ID/` does,
  through boto3 (no AWS CLI here);

and writes the build's output to the project's CloudWatch log group, one stream per
build, so log tails and excerpts are real. Builds then report SUCCEEDED or FAILED by
their commands' exit status, or stay IN_PROGRESS while `hang` is set (a runner that
never finishes). Used through a client wrapper in unit tests and through the act
tests' AWS front.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from infra.training import RESULTS_DIR, RUNS_PREFIX


@dataclass
class Outcome:
    status: str
    group: str
    stream: str
    lines: list[str]


@dataclass
class CodeBuildRunner:
    endpoint: str
    region: str = "us-east-1"
    hang: bool = False
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    started: list[dict] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint)

    def execute(self, params: dict, build: dict) -> None:
        """Run the build moto just recorded (`params`: the start_build request)."""
        with self.lock:
            self.started.append(params)
        s3, codebuild = self._client("s3"), self._client("codebuild")
        (project,) = codebuild.batch_get_projects(names=[params["projectName"]])["projects"]
        bucket, _, key = project["source"]["location"].partition("/")
        spec = yaml.safe_load(project["source"]["buildspec"])
        env = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
        env |= {v["name"]: v["value"] for v in params.get("environmentVariablesOverride", [])}
        build_id = build["id"]
        group = project["logsConfig"]["cloudWatchLogs"]["groupName"]
        stream = build_id.split(":", 1)[1]
        lines = [f"[stand-in] build {build_id} of {params['projectName']}"]
        source = s3.get_object(Bucket=bucket, Key=key, VersionId=params["sourceVersion"])
        status = "SUCCEEDED"
        with tempfile.TemporaryDirectory() as work:
            zipfile.ZipFile(io.BytesIO(source["Body"].read())).extractall(work)
            lines.append("[stand-in] INSTALL skipped: no package index or CodeArtifact here")
            shell_env = {
                "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                "HOME": work,
                "CODEBUILD_BUILD_ID": build_id,
                "CODEBUILD_SRC_DIR": work,
                **env,
            }
            for command in spec["phases"]["build"]["commands"]:
                lines.append(f"[Container] Running command {command}")
                result = subprocess.run(  # the project's own buildspec
                    ["bash", "-c", command],
                    cwd=work,
                    env=shell_env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                lines += (result.stdout + result.stderr).splitlines()
                if result.returncode != 0:
                    lines.append(f"[Container] Command failed: exit status {result.returncode}")
                    status = "FAILED"
                    break
            results = Path(work) / RESULTS_DIR
            for path in sorted(results.rglob("*")) if results.is_dir() else []:
                if path.is_file():
                    s3.put_object(
                        Bucket=env["ARTIFACT_BUCKET"],
                        Key=f"{RUNS_PREFIX}{build_id}/{path.relative_to(results).as_posix()}",
                        Body=path.read_bytes(),
                    )
                    lines.append(f"upload: {RESULTS_DIR}/{path.name} to runs/{build_id}/")
        self._write_logs(group, stream, lines)
        with self.lock:
            self.outcomes[build_id] = Outcome(status, group, stream, lines)

    def _write_logs(self, group: str, stream: str, lines: list[str]) -> None:
        logs = self._client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in lines],
        )

    def amend(self, build: dict) -> dict:
        """moto's view of a build, corrected to what the run really did."""
        with self.lock:
            outcome = self.outcomes.get(build["id"])
        if outcome is None or build.get("buildStatus") == "STOPPED":
            return build
        build["logs"] = {**build.get("logs", {}), "groupName": outcome.group,
                         "streamName": outcome.stream}  # fmt: skip
        if self.hang:
            build["buildStatus"], build["currentPhase"] = "IN_PROGRESS", "BUILD"
        else:
            build["buildStatus"], build["currentPhase"] = outcome.status, "COMPLETED"
        return build


class StandInCodeBuild:
    """A boto3 CodeBuild client whose builds run (see CodeBuildRunner)."""

    def __init__(self, client: Any, runner: CodeBuildRunner) -> None:
        self._client = client
        self._runner = runner
        self.exceptions = client.exceptions

    def start_build(self, **params: Any) -> dict:
        response = self._client.start_build(**params)
        self._runner.execute(params, response["build"])
        return response

    def batch_get_builds(self, **params: Any) -> dict:
        response = self._client.batch_get_builds(**params)
        response["builds"] = [self._runner.amend(b) for b in response["builds"]]
        return response

    def stop_build(self, **params: Any) -> dict:
        with self._runner.lock:
            self._runner.stopped.append(params["id"])
        return self._client.stop_build(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
