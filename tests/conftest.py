"""Fixtures shared across the suite."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from _pytest.runner import runtestprotocol
from hypothesis import settings

from tests.iam.model import REPOSITORY, AccessModel, access_model
from tests.moto_stack import build_deployed_stack
from tests.project import PROJECT, ROOT

# Property tests assert behaviour, never speed: no per-example deadline (a
# loaded machine must not fail them), and in CI a fixed seed so a red run is
# reproducible and a green one is not luck.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")


def starts_processes(fixture: Callable[..., Any]) -> Callable[..., Any]:
    """Declare that a fixture's tests start processes (a CLI stand-in on PATH): tier `process`."""
    fixture.starts_processes = True  # type: ignore[attr-defined]
    return fixture


def _fresh_event_loop_executor() -> None:
    # `nox -s mutants` runs each mutant's tests in a process forked from one that has
    # evaluated programs. The engine's calls run in the event loop's default executor,
    # whose threads a fork does not copy: a program that failed would wait on them forever.
    with warnings.catch_warnings(), contextlib.suppress(RuntimeError):
        warnings.simplefilter("ignore", DeprecationWarning)
        # The loop makes a new executor on its next call that needs one.
        asyncio.get_event_loop()._default_executor = None


os.register_at_fork(after_in_child=_fresh_event_loop_executor)

FAKE_PULUMI_MODULE = Path(__file__).resolve().parent / "fake_pulumi.py"
# The `pulumi` executable: runs tests/fake_pulumi.py (read it for what it models) with
# the test virtualenv's python.
FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python}
    import sys
    sys.argv[0] = "pulumi"
    # Imported, not run from its path: the compiled module is cached between calls.
    sys.path.insert(0, {folder!r})
    import fake_pulumi
    sys.exit(fake_pulumi.main(sys.argv[1:]))
    """
).replace("{folder!r}", repr(str(FAKE_PULUMI_MODULE.parent)))


def policy_pack_with_venv(directory: Path, *, python: str = sys.executable) -> Path:
    """A copy of the policy pack whose virtualenv runs `python` (the tests': it has the deps)."""
    pack = directory / "policy"
    pack.mkdir(parents=True)
    for name in ("PulumiPolicy.yaml", "requirements.txt", "__main__.py", "rules.py"):
        (pack / name).write_text((ROOT / "policy" / name).read_text())
    bin_dir = pack / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (pack / "venv" / "pyvenv.cfg").write_text(f"home = {Path(python).parent}\n")
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {python} "$@"\n')
    (bin_dir / "python").chmod(0o755)
    return pack


@pytest.fixture
@starts_processes
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[list[str]]]:
    """A `pulumi` on PATH (tests/fake_pulumi.py) on a fresh workspace and a file:// backend.

    The workspace is a project directory holding only Pulumi.yaml, as a CI runner's
    checkout holds no stack settings file; scripts.stack runs pulumi there, with a copy of
    the policy pack whose virtualenv exists. Returns a reader of the calls, whose
    attributes name the workspace, the backend directory and the pack.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "pulumi"
    executable.write_text(FAKE_PULUMI.replace("{python}", sys.executable))
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "pulumi-calls.jsonl"
    log.touch()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    state = tmp_path / "backend"
    state.mkdir()
    pack = policy_pack_with_venv(tmp_path / "pack")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{state}")
    for name in (
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER",
        "PULUMI_SECRETS_PROVIDER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(workspace)
    monkeypatch.setattr("scripts.stack.PROJECT_ROOT", workspace)
    monkeypatch.setattr("scripts.stack.POLICY_PACK", pack)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    calls.workspace = workspace
    calls.backend = state
    calls.pack = pack
    return calls


def seed_stack(fake, name: str, *, locked_by: str | None = None) -> None:
    """A stack as a deploy leaves it in the fake's backend (KMS provider in its state)."""
    bookkeeping = fake.backend / ".pulumi"
    state = {
        "secrets_providers": {"type": "cloud", "state": {"url": "awskms://alias/x", "key": "k"}},
        "resources": [],
    }
    path = bookkeeping / "stacks" / PROJECT / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 3, "checkpoint": {"stack": name, "latest": state}}))
    if locked_by:
        lock = bookkeeping / "locks" / "organization" / PROJECT / name / "held.json"
        lock.parent.mkdir(parents=True, exist_ok=True)
        host = {"pid": 4242, "username": "runner", "hostname": locked_by, "timestamp": "t"}
        lock.write_text(json.dumps(host))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    # `nox -s mutants` first runs the tests once to learn which functions each one reaches,
    # then runs, per mutant, only those. A module or session fixture is set up by the first
    # test that asks for it: the functions it reaches would be credited to that test alone,
    # and the mutants there would never meet the others. During that pass every test sets
    # up its fixtures anew (pytest's own protocol, tearing down everything after each test).
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    runtestprotocol(item, nextitem=None)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tiers are chosen by what a test uses, not by where it lives.
    for item in items:
        if "moto_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.moto)
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info else ()
        if any(getattr(d.func, "starts_processes", False) for ds in definitions for d in ds):
            item.add_marker(pytest.mark.process)


# The test running now, for the guard below (each xdist worker is its own process).
_RUNNING: list[pytest.Item] = []
_SPAWNING_MARKERS = {"process", "moto", "act"}


class _RunningTest:
    """Keeps `_RUNNING` (a plugin object: this module's own pytest_runtest_protocol is
    the mutation run's)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        _RUNNING.append(item)
        try:
            return (yield)
        finally:
            _RUNNING.remove(item)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_RunningTest(), "running-test")


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection imported lives as long as the test process. Frozen, the full
    # collections that the tests' program evaluations set off no longer rescan it: about
    # 5% off the unit tier's wall time on 2 cores, measured side by side.
    gc.freeze()


_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self, args, *rest, **kwargs):
    # A test that starts a process pays an interpreter's start-up or more per call, which
    # is what keeps it out of the unit tier (the gate before preview): it must say so.
    item = _RUNNING[-1] if _RUNNING else None
    if item is not None and not _SPAWNING_MARKERS & {m.name for m in item.iter_markers()}:
        raise RuntimeError(
            f"{item.nodeid} starts a process ({args!r}) but is not marked "
            "@pytest.mark.process: mark it so it runs in the integration tier"
        )
    _popen_init(self, args, *rest, **kwargs)


subprocess.Popen.__init__ = _guarded_popen_init  # type: ignore[method-assign]


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


# `nox -s mutants`: each evaluation its mapping pass made, with the functions under mutation
# it reached. Kept for the process's life (mutmut forks each mutant's run from it), so a
# mutant's run re-evaluates only the configurations whose evaluation reached its function:
# a mutant of the CI roles re-evaluates the shared stack, not a dozen branch stacks.
_MAPPED: dict[str, tuple[Any, frozenset[str]]] = {}


def _unless_mapped(key: str, evaluate: Callable[[], Any]) -> Any:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not mutant:
        return evaluate()
    from mutmut.state import state  # noqa: PLC0415 - only a mutation run has it

    reached = state()._stats  # the functions the running test reached, during mapping
    if mutant == "stats":
        if key in _MAPPED:
            result, functions = _MAPPED[key]
            reached.update(functions)  # credited to this test as if it had evaluated
            return result
        before = set(reached)
        reached.clear()
        try:
            result = evaluate()
            _MAPPED[key] = (result, frozenset(reached))
        finally:
            reached.update(before)
        return result
    mapped = _MAPPED.get(key)
    # A mutant's name is its function's, then `__mutmut_N`.
    if mapped is not None and mutant.partition("__mutmut_")[0] not in mapped[1]:
        return mapped[0]
    return evaluate()


class Programs:
    """Whole-program evaluations under mocks, each configuration evaluated once per process.

    A synth takes about half a second; tests that only read the result share it. Every
    pytest-xdist worker is its own process with its own cache, so no test depends on
    another having run. Treat a result as read-only: change a copy, never the shared one.
    """

    def __init__(self) -> None:
        from scripts import synth  # noqa: PLC0415 - only tests that evaluate pay

        # The real one, kept: `shared_evaluations` puts `evaluate` in its place.
        self._synthesize = synth.synthesize
        self._cache: dict[str, Any] = {}

    def evaluate(
        self,
        stack: str,
        *,
        overrides: Mapping[str, object] | None = None,
        environment: Mapping[str, str] | None = None,
        **rest: Any,
    ) -> Any:
        """`scripts.synth.synthesize`, once per distinct configuration in this process."""
        key = json.dumps(
            [stack, overrides or {}, environment or {}, rest], sort_keys=True, default=str
        )
        if key not in self._cache:
            self._cache[key] = _unless_mapped(
                key,
                lambda: self._synthesize(
                    stack,
                    overrides=dict(overrides or {}),
                    environment=dict(environment or {}),
                    **rest,
                ),
            )
        return self._cache[key]

    def stack(self, stack: str, **overrides: object) -> Any:
        return self.evaluate(stack, overrides=overrides)

    def branch(self, branch: str, **overrides: object) -> Any:
        """A branch's stack, named by infra.naming, with `branch` set as the pipeline sets it."""
        from infra import naming  # noqa: PLC0415

        return self.stack(naming.slugify(branch), branch=branch, **overrides)


@pytest.fixture(scope="session")
def programs() -> Programs:
    """Shared, read-only evaluations of the real program: `programs.branch("feature/x")`."""
    return Programs()


@pytest.fixture
def shared_evaluations(programs: Programs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every evaluation the code under test makes comes from `programs`: for tests of a CLI
    that only renders what the program registered."""
    monkeypatch.setattr("scripts.synth.synthesize", programs.evaluate)


@pytest.fixture(scope="session")
def access(programs: Programs) -> AccessModel:
    """The shared stack's roles, trust, policies and keys, as synthesized (tests/iam/model.py).

    Built inside the tests that read it, not when a module is imported: a mutation run then
    sees which tests read it, and builds it anew for each mutant.
    """
    from infra import naming  # noqa: PLC0415

    return access_model(programs.stack(naming.SHARED_STACK, githubRepository=REPOSITORY))
