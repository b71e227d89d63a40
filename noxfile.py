"""Every pipeline step as a session; CI calls these, and so can you."""

from __future__ import annotations

import os

import nox

from bench import tiers

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

# Bytecode is written as modules are first imported, not compiled up front:
# pulumi_aws has thousands of modules and the program imports a dozen, so
# compiling all of them would make setup several times slower, while never
# writing bytecode (PYTHONDONTWRITEBYTECODE, set on some machines) would make
# every process re-parse the ones it uses.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

RUNTIME = ["-r", "requirements.txt"]
DEV = ["-r", "requirements-dev.txt"]
WORKFLOWS = ".github/workflows"


def _install(session: nox.Session, *requirements: str) -> None:
    session.install(*requirements)


def _usage(session: nox.Session, usage: str) -> None:
    session.error(f"usage: nox -s {session.name} -- {usage}")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format), zizmor and the workflow schema, all offline."""
    _install(session, *DEV)
    # On GitHub, RUFF_OUTPUT_FORMAT=github (set by the test workflow) turns each finding
    # into an annotation on its line.
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    if os.path.isdir(WORKFLOWS):
        session.run("zizmor", "--offline", "--config", ".github/zizmor.yml", ".github")
        workflows = sorted(
            os.path.join(WORKFLOWS, f) for f in os.listdir(WORKFLOWS) if f.endswith(".yml")
        )
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)


def _pytest(session: nox.Session, *args: str) -> None:
    # $JUNIT_DIR (set by the test workflow) collects one JUnit XML per session, from which
    # scripts.junit_summary writes the failures into the job summary and annotations.
    junit = os.environ.get("JUNIT_DIR")
    report = [f"--junitxml={os.path.join(junit, session.name + '.xml')}"] if junit else []
    session.run("pytest", *args, *report, *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (mocks, moto server, property tests); pytest args after --."""
    _install(session, *DEV)
    _pytest(session, *tiers.PARALLEL)


@nox.session
def unit(session: nox.Session) -> None:
    """The unit tier (no moto, no act) in parallel workers: the gate before preview."""
    _install(session, *DEV)
    _pytest(session, *tiers.UNIT_TIER, *tiers.PARALLEL)


@nox.session
def integration(session: nox.Session) -> None:
    """The moto and act tiers in parallel workers: they run beside preview, before deploy."""
    _install(session, *DEV)
    _pytest(session, *tiers.INTEGRATION_TIER, *tiers.PARALLEL)


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing (mutmut) of the scope in pyproject's [tool.mutmut]; not on every push."""
    # Only here, not in requirements-dev: no other session or workflow needs it.
    _install(session, *DEV, "mutmut==3.8.1")
    # mutmut keeps its results in mutants/ and reruns only mutants whose code changed.
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 1))
    # mutants/mutmut-cicd-stats.json: the counts `nox -s bench` reports as mutants.killed.
    session.run("mutmut", "export-cicd-stats")
    session.run("mutmut", "results")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks beside their floors; exit 1 names each missed target: -- [--only N] [--quick]."""
    _install(session, *DEV, "uv==0.13.9")
    session.run("python", "-m", "bench", *session.posargs)


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


# Thin sessions over `python -m scripts.<module>`: name -> (module, fixed args, usage, docstring).
_SCRIPT_SESSIONS = {
    "preview": (
        "scripts.stack",
        ["preview"],
        "--branch NAME [--plan PATH]",
        "Pulumi preview of a branch's stack, saving a plan: -- --branch NAME [--plan PATH].",
    ),
    "deploy": (
        "scripts.stack",
        ["deploy"],
        "--branch NAME [--plan PATH] [--outputs-file PATH]",
        "Pulumi up on a branch's stack, applying the saved plan: -- --branch NAME [--plan P].",
    ),
    "destroy": (
        "scripts.stack",
        ["destroy"],
        "--branch NAME",
        "Destroy an ephemeral branch's stack (refuses protected ones): -- --branch NAME.",
    ),
    "drift": (
        "scripts.stack",
        ["drift"],
        "--branch NAME | --stack shared",
        "Refresh a stack in preview and fail if the cloud drifted from it: -- --branch NAME.",
    ),
    "smoke": (
        "scripts.smoke",
        [],
        "--outputs FILE | --branch NAME",
        "Invoke the candidate model version with sample inputs before traffic moves.",
    ),
    "promote": (
        "scripts.promote",
        [],
        "--outputs FILE | --branch NAME [--strategy auto|alias|codedeploy] [--steps 10,50,100]",
        "Shift alias live to the candidate version, watching the alarms; rolls back on alarm.",
    ),
    "rollback": (
        "scripts.rollback",
        [],
        "--outputs FILE | --branch NAME [--to VERSION] [--reason TEXT]",
        "Put alias live back on the previous version; stops an in-flight deployment.",
    ),
    "release": (
        "scripts.release",
        [],
        "--version vN (--outputs FILE | --branch NAME)",
        "Release an API major version: new deployment on its stage, documentation version.",
    ),
    "events": (
        "scripts.events",
        [],
        "emit|history|state|replay ... (--outputs FILE | --branch NAME)",
        "Emit, list, fold or replay the model's lifecycle events.",
    ),
    "deps": (
        "scripts.deps",
        [],
        "login|publish (--outputs FILE | --shared) ...",
        "Log pip into the CodeArtifact team repository, or publish the model package.",
    ),
    "bootstrap": (
        "scripts.bootstrap",
        [],
        "--repo OWNER/NAME --reviewers LOGIN[,LOGIN...] [--region R] [--dry-run]",
        "Deploy the shared stack and set up GitHub environments and variables, once per fork.",
    ),
    "preflight": (
        "scripts.preflight",
        [],
        "--environment canary-promotion|api-release [--repo OWNER/NAME]",
        "Refuse to go on unless the approval environment has required reviewers.",
    ),
    "cost": (
        "scripts.cost",
        [],
        "--branch NAME [--format markdown|json|comment] | --refresh-prices",
        "Estimate a branch stack's idle monthly cost and cost per million model requests.",
    ),
    "cleanup": (
        "scripts.cleanup",
        [],
        "[--yes] [--remote R | --branches-file F] [--now ISO]",
        "Destroy ephemeral stacks whose branch is gone or past the TTL (dry run by default).",
    ),
}


def _script_session(name: str, module: str, fixed: list[str], usage: str, doc: str) -> None:
    def run(session: nox.Session) -> None:
        if not session.posargs and name != "cleanup":
            _usage(session, usage)
        _install(session, *RUNTIME)
        session.run("python", "-m", module, *fixed, *session.posargs)

    run.__doc__ = doc
    run.__name__ = name
    nox.session(name=name)(run)


for _name, (_module, _fixed, _usage_text, _doc) in _SCRIPT_SESSIONS.items():
    _script_session(_name, _module, _fixed, _usage_text, _doc)
