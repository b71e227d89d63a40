"""Fixtures that run the real workflow files under act, in host mode, against stand-ins.

What stands in for what:
- the repository: a snapshot of the working tree in a fresh git repository whose origin
  is github.com/acme/mlship (act names `github.repository` after it);
- remote actions: composite stand-ins (tests/workflows/standins.py) via --local-repository;
- the Pulumi CLI: tests/fake_pulumi.py (stacks, settings files, secrets providers, locks
  and exit codes as the real CLI has them), its diy backend in moto's S3; `stack output`
  answers with the outputs of a stack built in moto, `version` with the pinned version;
- the runner's uv cache: the policy pack's virtualenv is made offline from this machine's;
- AWS: the session's moto server behind `AwsFront` (Lambda invoke by the real handler,
  documentation versions kept in memory); the credentials come only from the
  configure-aws-credentials stand-in, which records the role each job asked for;
- GitHub's REST API: `GitHubApi`, a local server (act cannot reach GitHub), where both
  approval environments require a reviewer unless a test says otherwise;
- nox: NOX_DEFAULT_VENV_BACKEND=none, so sessions run in this virtualenv, which holds
  every pinned requirement (the workflows pass --no-install; see the setup action).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.conftest import FAKE_PULUMI
from tests.workflows.standins import AwsFront, GitHubApi, action_repos

ROOT = Path(__file__).resolve().parents[2]
# The diy backend's bucket, in moto: the stand-in pulumi keeps its objects there.
STATE_BUCKET = "mlship-state-act-test"
REPOSITORY = "acme/mlship"
ACT_TIMEOUT_SECONDS = 240
ROLES = {
    "AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::123456789012:role/mlship-ci-preview",
    "AWS_DEPLOY_ROLE_ARN": "arn:aws:iam::123456789012:role/mlship-ci-deploy",
    "AWS_PROMOTE_ROLE_ARN": "arn:aws:iam::123456789012:role/mlship-ci-promote",
    "AWS_DEPLOY_PROTECTED_ROLE_ARN": "arn:aws:iam::123456789012:role/mlship-ci-deploy-protected",
    "AWS_PROMOTE_PROTECTED_ROLE_ARN": "arn:aws:iam::123456789012:role/mlship-ci-promote-protected",
}
VARS = {
    **ROLES,
    "AWS_REGION": "us-east-1",
    "PULUMI_BACKEND_URL": f"s3://{STATE_BUCKET}",
    "PULUMI_SECRETS_PROVIDER": "awskms://alias/mlship-act-test-secrets?region=us-east-1",
    "PULUMI_EPHEMERAL_SECRETS_PROVIDER": (
        "awskms://alias/mlship-act-test-ephemeral-secrets?region=us-east-1"
    ),
    # The unit job runs the `unit` session only: lint judges the whole working tree,
    # which work in progress elsewhere may leave unformatted; test_static.py runs
    # zizmor and the workflow schema itself.
    "CI_UNIT_SESSIONS": "unit",
    "CI_INTEGRATION_SESSIONS": "integration",
    # CodeDeploy never shifts traffic in moto; the alias strategy does it for real.
    "PROMOTE_STRATEGY": "alias",
    "PROMOTE_STEPS": "50,100",
    "PROMOTE_BAKE_SECONDS": "0",
}
# Distinctive, so a leak into a log is found by a plain search.
SECRETS = {
    "GITHUB_TOKEN": "ghs_act-test-token-2f9c4e1b7d",
    "PULUMI_ACCESS_TOKEN": "pul-act-test-token-8e3a5c0f61",
}
PASSING_SUITE = "tests/workflows/act_cases/passing_suite.py"
FAILING_SUITE = "tests/workflows/act_cases/failing_suite.py"


def project_name() -> str:
    return str(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"])


def state_objects(aws: str) -> list[str]:
    """The keys of the diy backend's objects in moto."""
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=STATE_BUCKET)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def seed_deployed_stack(aws: str, stack: str) -> None:
    """A stack as an earlier deploy left it: its state names the KMS secrets provider."""
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    provider = {"type": "cloud", "state": {"url": VARS["PULUMI_SECRETS_PROVIDER"], "key": "k"}}
    latest = {"secrets_providers": provider, "resources": []}
    body = {"version": 3, "checkpoint": {"stack": stack, "latest": latest}}
    key = f".pulumi/stacks/{project_name()}/{stack}.json"
    s3.put_object(Bucket=STATE_BUCKET, Key=key, Body=json.dumps(body).encode())


def pulumi_cli_version() -> str:
    match = re.search(r"^pulumi==([0-9.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, "requirements.txt pins no pulumi"
    return match[1]


def _setup_call(argv: list[str]) -> bool:
    return argv == ["version"] or argv[:1] == ["plugin"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=act-test", "-c", "user.email=act-test@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="session")
def act_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as it is now (tracked and new files, minus ignored ones), committed
    in a fresh repository whose origin is github.com/acme/mlship."""
    return snapshot_repo(tmp_path_factory.mktemp("act-repo"))


def snapshot_repo(repo: Path) -> Path:
    """`act_repo`'s work, into an empty directory (the bench runs act outside pytest)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot for the act tests")
    return repo


@pytest.fixture(scope="session")
def standin_actions(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return list(action_repos(tmp_path_factory.mktemp("standin-actions")))


@pytest.fixture(scope="session")
def aws_front(moto_server: str) -> Iterator[AwsFront]:
    front = AwsFront(moto_server)
    yield front
    front.close()


@pytest.fixture
def github_api() -> Iterator[GitHubApi]:
    """GitHub's API for one test; both approval environments require a reviewer."""
    api = GitHubApi()
    for environment in ("canary-promotion", "api-release"):
        api.environment(environment, reviewers=["octo-reviewer"])
    yield api
    api.close()


@dataclass
class ActRun:
    returncode: int
    seconds: float
    entries: list[dict[str, Any]]
    stderr: str
    pulumi_calls: list[list[str]]
    pulumi_env: list[dict[str, Any]]
    all_pulumi_calls: list[list[str]]  # with the setup action's own
    aws_roles: list[dict[str, str]]
    artifacts: Path

    @staticmethod
    def job_of(entry: Mapping[str, Any]) -> str:
        # act names a job `WORKFLOW/JOB`, or `CALLER/WORKFLOW/JOB` inside a called workflow.
        # act pads the names it prints to a common width: the padding is not the name.
        parts = [part.strip() for part in str(entry.get("job", "")).split("/")]
        return parts[0] if len(parts) >= 3 else parts[-1]

    @property
    def results(self) -> dict[str, str]:
        return {self.job_of(e): e["jobResult"] for e in self.entries if "jobResult" in e}

    @property
    def finished_order(self) -> list[str]:
        return [self.job_of(e) for e in self.entries if "jobResult" in e]

    def summaries(self, job: str) -> list[str]:
        return [
            e["content"]
            for e in self.entries
            if e.get("command") == "summary" and self.job_of(e) == job
        ]

    def outputs(self, job: str) -> dict[str, str]:
        return {
            e["name"]: e.get("arg", "")
            for e in self.entries
            if e.get("command") == "set-output" and self.job_of(e) == job
        }

    @property
    def text(self) -> str:
        return "".join(str(e.get("msg", "")) + "\n" for e in self.entries) + self.stderr

    def skipped_by_condition(self, job: str) -> bool:
        """Whether act planned the job and skipped it for its `if` (needs verbose=True)."""
        return any(f"Skipping job '{job}'" in str(e.get("msg", "")) for e in self.entries)

    def explain(self) -> str:
        """The tail of the log, for assertion messages."""
        return f"act exit {self.returncode}, results {self.results}\n{self.text[-6000:]}"


@dataclass
class Act:
    """Runs one workflow file under act for one event, with the stand-ins wired in."""

    repo: Path
    workdir: Path
    standins: list[str]
    aws: AwsFront
    github: GitHubApi
    pulumi_answers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    def _fake_pulumi(self) -> Path:
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        executable = bin_dir / "pulumi"
        executable.write_text(FAKE_PULUMI.replace("{python}", sys.executable))
        executable.chmod(0o755)
        return bin_dir

    def __call__(
        self,
        event: str,
        payload: Mapping[str, Any],
        workflow: str,
        *,
        pytest_addopts: str = PASSING_SUITE,
        variables: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        runner_env: Mapping[str, str] | None = None,
        verbose: bool = False,
        job: str | None = None,
        while_running: Callable[[subprocess.Popen], None] | None = None,
    ) -> ActRun:
        """act EVENT for one workflow file. `env` is the host environment act passes on;
        `runner_env` overrides what act itself sets for every step (e.g. GITHUB_API_URL);
        `verbose` logs act's decisions too, such as a job skipped by its `if`;
        `while_running` gets the act process while it runs (to cancel it, say)."""
        self.runs += 1
        run_dir = self.workdir / f"run-{self.runs}"
        home, cache, artifacts = run_dir / "home", run_dir / "act-cache", run_dir / "artifacts"
        for directory in (home, cache, artifacts):
            directory.mkdir(parents=True)
        event_file = run_dir / "event.json"
        event_file.write_text(json.dumps(payload))
        answers = run_dir / "pulumi-answers.json"
        answers.write_text(
            json.dumps({"version": f"v{pulumi_cli_version()}", **self.pulumi_answers})
        )
        logs = {name: run_dir / f"{name}.jsonl" for name in ("pulumi", "pulumi-env", "aws")}
        for log in logs.values():
            log.touch()

        uv_cache = subprocess.run(
            [sys.executable, "-m", "uv", "cache", "dir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        process_env = {
            # What the policy session installs comes from the cache, as a warm runner's does.
            "UV_CACHE_DIR": uv_cache,
            "UV_OFFLINE": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            # The fake pulumi first, then this virtualenv's python, nox and pytest.
            "PATH": f"{self._fake_pulumi()}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NOX_DEFAULT_VENV_BACKEND": "none",
            "PYTEST_ADDOPTS": pytest_addopts,
            # The suites handed to the workflows are a few tests: no worker pool for them.
            "PYTEST_XDIST_AUTO_NUM_WORKERS": "0",
            "FAKE_PULUMI_LOG": str(logs["pulumi"]),
            "FAKE_PULUMI_ENV_LOG": str(logs["pulumi-env"]),
            "FAKE_PULUMI_ANSWERS": str(answers),
            "STANDIN_AWS_LOG": str(logs["aws"]),
            "STANDIN_AWS_ENDPOINT": self.aws.url,
            "STANDIN_ARTIFACTS": str(artifacts),
            # What a checkout of another ref copies (act copies it only for the event's).
            "STANDIN_WORKTREE": str(self.repo),
            **self.env,
            **(env or {}),
        }
        command = [
            str(Path(sys.executable).parent / "act"),
            event,
            "-W",
            f".github/workflows/{workflow}",
            "-e",
            str(event_file),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--json",
            *(["--verbose"] if verbose else []),
            *(["--job", job] if job else []),
            "--no-cache-server",
            "--action-cache-path",
            str(cache),
            *(arg for spec in self.standins for arg in ("--local-repository", spec)),
            *(
                arg
                for k, v in {**VARS, **(variables or {})}.items()
                for arg in ("--var", f"{k}={v}")
            ),
            *(arg for k, v in SECRETS.items() for arg in ("-s", f"{k}={v}")),
            *(
                arg
                for k, v in {"GITHUB_API_URL": self.github.url, **(runner_env or {})}.items()
                for arg in ("--env", f"{k}={v}")
            ),
        ]
        started = time.monotonic()
        # Files, not pipes: nobody reads a pipe while `while_running` waits.
        out_file, err_file = run_dir / "act.stdout", run_dir / "act.stderr"
        with (
            out_file.open("w") as out,
            err_file.open("w") as err,
            subprocess.Popen(
                command, cwd=self.repo, env=process_env, stdout=out, stderr=err
            ) as process,
        ):
            try:
                if while_running:
                    while_running(process)
                process.wait(timeout=ACT_TIMEOUT_SECONDS)
            except BaseException:
                process.kill()
                raise
        result = subprocess.CompletedProcess(
            command, process.returncode, out_file.read_text(), err_file.read_text()
        )
        entries = []
        for line in result.stdout.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"msg": line})

        def read(log: Path) -> list[Any]:
            return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

        return ActRun(
            returncode=result.returncode,
            seconds=time.monotonic() - started,
            entries=entries,
            stderr=result.stderr,
            # The setup action's own calls (version check, plugin cache pruning) aside.
            pulumi_calls=[c for c in read(logs["pulumi"]) if not _setup_call(c)],
            pulumi_env=[e for e in read(logs["pulumi-env"]) if not _setup_call(e["argv"])],
            all_pulumi_calls=read(logs["pulumi"]),
            aws_roles=read(logs["aws"]),
            artifacts=artifacts,
        )


@pytest.fixture
def act(  # noqa: PLR0917 - pytest hands fixtures over as parameters
    tmp_path: Path,
    act_repo: Path,
    standin_actions: list[str],
    aws_front: AwsFront,
    aws: str,
    github_api: GitHubApi,
) -> Act:
    """An act runner on a clean moto account (the `aws` fixture resets it), its GitHub API
    the test's `github_api`."""
    aws_front.reset()
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    s3.create_bucket(Bucket=STATE_BUCKET)
    return Act(
        repo=act_repo, workdir=tmp_path, standins=standin_actions, aws=aws_front, github=github_api
    )
