"""Fixtures shared across the suite."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import settings

from tests.moto_stack import build_deployed_stack

# Property tests assert behaviour, never speed: no per-example deadline (a
# loaded machine must not fail them), and in CI a fixed seed so a red run is
# reproducible and a green one is not luck.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")

FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python}
    # Stands in for the Pulumi CLI: records its argv, answers from a script.
    import json, os, sys
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    failing = os.environ.get("FAKE_PULUMI_FAIL_ON", "")
    if failing and failing in sys.argv[1:]:
        sys.exit(3)
    answers = os.environ.get("FAKE_PULUMI_ANSWERS")
    if answers:
        # {"stack output": "<text>", "stack ls": "<text>"}: printed for matching calls.
        for prefix, text in json.load(open(answers)).items():
            if sys.argv[1:len(prefix.split()) + 1] == prefix.split():
                sys.stdout.write(text)
                break
    """
)


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[list[str]]]:
    """A `pulumi` on PATH that records each call; returns a reader of the calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "pulumi"
    executable.write_text(FAKE_PULUMI.replace("{python}", sys.executable))
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "pulumi-calls.jsonl"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tiers are chosen by what a test uses, not by where it lives.
    for item in items:
        if "moto_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.moto)


@pytest.fixture(scope="session")
def moto_server():
    """moto in server mode on a free loopback port: real HTTP for real boto3 clients."""
    # Imported here: moto's server (Flask and every backend) takes about a second to
    # import, which each pytest-xdist worker of the unit tier would pay for nothing.
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    # Lambda without Docker: create, publish and alias work; invoke echoes.
    requests.post(f"{endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
    yield endpoint
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto account, reached through the environment as every boto3 client is."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    requests.post(
        f"{moto_server}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10
    )
    for key, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.fixture
def deployed(aws: str, tmp_path: Path):
    """The resources a deploy of `feature/x` creates, in moto, and its outputs file."""
    stack = build_deployed_stack("feature/x")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(stack.outputs))
    stack.outputs_file = path
    return stack


class Programs:
    """Whole-program evaluations under mocks, each configuration evaluated once per process.

    A synth takes about half a second; tests that only read the result share it. Every
    pytest-xdist worker is its own process with its own cache, so no test depends on
    another having run. Treat a result as read-only: change a copy, never the shared one.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Any] = {}

    def stack(self, stack: str, **overrides: object) -> Any:
        from scripts.synth import synthesize  # noqa: PLC0415 - only tests that evaluate pay

        key = (stack, json.dumps(overrides, sort_keys=True, default=str))
        if key not in self._cache:
            self._cache[key] = synthesize(stack, overrides=dict(overrides))
        return self._cache[key]

    def branch(self, branch: str, **overrides: object) -> Any:
        """A branch's stack, named by infra.naming, with `branch` set as the pipeline sets it."""
        from infra import naming  # noqa: PLC0415

        return self.stack(naming.slugify(branch), branch=branch, **overrides)


@pytest.fixture(scope="session")
def programs() -> Programs:
    """Shared, read-only evaluations of the real program: `programs.branch("feature/x")`."""
    return Programs()
