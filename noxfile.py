"""Every pipeline step as a session; CI calls these, and so can you."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

RUNTIME = ["-r", "requirements.txt"]
DEV = ["-r", "requirements-dev.txt"]
WORKFLOWS = ".github/workflows"


def _install(session: nox.Session, *requirements: str) -> None:
    # Bytecode is compiled up front: pulumi_aws is large, and re-parsing it on
    # every process start costs more than the compile (PYTHONDONTWRITEBYTECODE).
    if session.venv_backend == "uv":
        session.install("--compile-bytecode", *requirements)
    else:
        session.install(*requirements)


def _usage(session: nox.Session, usage: str) -> None:
    session.error(f"usage: nox -s {session.name} -- {usage}")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format), zizmor and the workflow schema, all offline."""
    _install(session, *DEV)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    if os.path.isdir(WORKFLOWS):
        session.run("zizmor", "--offline", "--config", ".github/zizmor.yml", ".github")
        workflows = sorted(
            os.path.join(WORKFLOWS, f) for f in os.listdir(WORKFLOWS) if f.endswith(".yml")
        )
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (mocks, moto server, property tests); pytest args after --."""
    _install(session, *DEV)
    session.run("pytest", *session.posargs)


@nox.session
def synth(session: nox.Session) -> None:
    """Evaluate the program offline for a branch: -- --branch NAME [--format json] [--output P]."""
    if not session.posargs:
        _usage(session, "--branch NAME | --stack shared [--format markdown|json] [--output PATH]")
    _install(session, *RUNTIME)
    session.run("python", "-m", "scripts.synth", *session.posargs)


@nox.session
def names(session: nox.Session) -> None:
    """Print a branch's stack, kind, tags and every physical name: -- BRANCH..."""
    if not session.posargs:
        _usage(session, "BRANCH... [--account-id ID]")
    _install(session, *RUNTIME)
    session.run("python", "-m", "scripts.names", *session.posargs)


def _stack_session(session: nox.Session, verb: str) -> None:
    if not session.posargs:
        _usage(
            session,
            "--branch NAME | --stack shared" + (" [--plan PATH]" if verb != "destroy" else ""),
        )
    _install(session, *RUNTIME)
    session.run("python", "-m", "scripts.stack", verb, *session.posargs)


@nox.session
def preview(session: nox.Session) -> None:
    """Pulumi preview of a branch's stack, saving a plan: -- --branch NAME [--plan PATH]."""
    _stack_session(session, "preview")


@nox.session
def deploy(session: nox.Session) -> None:
    """Pulumi up on a branch's stack, applying the saved plan: -- --branch NAME [--plan PATH]."""
    _stack_session(session, "deploy")


@nox.session
def destroy(session: nox.Session) -> None:
    """Destroy an ephemeral branch's stack (refuses protected ones): -- --branch NAME."""
    _stack_session(session, "destroy")
