"""Every pipeline step as a session; CI calls these, and so can you."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import nox

from bench import tiers

nox.options.default_venv_backend = "uv|virtualenv"
# `renamed` runs the unit and moto tiers once more in a renamed copy (2-3 minutes).
nox.options.sessions = ["lint", "tests", "renamed"]
nox.options.reuse_venv = "yes"

# Bytecode is written as modules are first imported, not compiled up front:
# pulumi_aws has thousands of modules and the program imports a dozen, so
# compiling all of them would make setup several times slower, while never
# writing bytecode (PYTHONDONTWRITEBYTECODE, set on some machines) would make
# every process re-parse the ones it uses.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

RUNTIME = ["-r", "requirements.txt"]
# Passed as session.run(stderr=...): nox would otherwise merge a command's stderr
# (progress) into its stdout (the result), and `nox -s synth -- --format json > f`
# would not be JSON. None lets the command write to nox's own stderr.
SEPARATE_STDERR = None
DEV = ["-r", "requirements-dev.txt"]
# The model's own libraries: the tests import the real handler and train in-process.
MODEL = ["-r", "model/requirements.txt"]
WORKFLOWS = ".github/workflows"
DEPENDABOT = ".github/dependabot.yml"


def _install(session: nox.Session, *requirements: str) -> None:
    # `nox --no-venv` runs a session in the caller's environment, which already has
    # the requirements (the tests run sessions this way); nox forbids installing there.
    if session.venv_backend == "none":
        return
    session.install(*requirements)


def _usage(session: nox.Session, usage: str) -> None:
    session.error(f"usage: nox -s {session.name} -- {usage}")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format), mypy, zizmor and the workflow and Dependabot schemas, offline."""
    _install(session, *DEV)
    # On GitHub, RUFF_OUTPUT_FORMAT=github (set by the test workflow) turns each finding
    # into an annotation on its line.
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")  # what to check is in pyproject.toml
    if os.path.isdir(WORKFLOWS):
        session.run("zizmor", "--offline", "--config", ".github/zizmor.yml", ".github")
        workflows = sorted(
            os.path.join(WORKFLOWS, f) for f in os.listdir(WORKFLOWS) if f.endswith(".yml")
        )
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    if os.path.isfile(DEPENDABOT):
        session.run("check-jsonschema", "--builtin-schema", "vendor.dependabot", DEPENDABOT)


def _pytest(session: nox.Session, *args: str) -> None:
    # $JUNIT_DIR (set by the test workflow) collects one JUnit XML per session, from which
    # scripts.junit_summary writes the failures into the job summary and annotations.
    junit = os.environ.get("JUNIT_DIR")
    report = [f"--junitxml={os.path.join(junit, session.name + '.xml')}"] if junit else []
    session.run("pytest", *args, *report, *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (mocks, moto server, property tests); pytest args after --."""
    # The model's own libraries too: the tests import the real handler in-process.
    _install(session, *DEV, *MODEL)
    _pytest(session, *tiers.PARALLEL)


@nox.session
def unit(session: nox.Session) -> None:
    """The unit tier (in-process tests: no moto, act or processes) in parallel workers: the gate."""
    _install(session, *DEV, *MODEL)
    _pytest(session, *tiers.UNIT_TIER, *tiers.PARALLEL)


@nox.session
def integration(session: nox.Session) -> None:
    """The moto, act and process tiers in parallel workers: beside preview, before deploy."""
    _install(session, *DEV, *MODEL)
    _pytest(session, *tiers.INTEGRATION_TIER, *tiers.PARALLEL)


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing (mutmut) of the scope in pyproject's [tool.mutmut]; not on every push."""
    # Only here, not in requirements-dev: no other session or workflow needs it.
    _install(session, *DEV, *MODEL, "mutmut==3.8.1")
    # mutmut keeps its results in mutants/ and reruns only mutants whose code changed; a
    # new test is mapped on the next run, but mutants already judged keep their verdict
    # until named (`mutmut run NAME...`). A changed test selection starts over.
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 1))
    # mutants/mutmut-cicd-stats.json: the counts `nox -s bench` reports as mutants.killed.
    session.run("mutmut", "export-cicd-stats")
    # mutants/equivalent.json: survivors no test could kill, by the rules stated there.
    session.run("python", "-m", "bench.mutant_equivalents")
    session.run("mutmut", "results")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks beside their floors; exit 1 names each missed target: -- [--only N] [--quick]."""
    _install(session, *DEV, "uv==0.13.9")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def train(session: nox.Session) -> None:
    """Train and evaluate the model offline on the shipped dataset; refresh the served artifact."""
    # Stdlib-only training needs no install; a model with requirements gets them here.
    _install(session, "-r", "model/requirements.txt")
    session.run(
        "python", "-m", "model.train", "--serve", "infra/handlers/model/model.json",
        *session.posargs,
    )  # fmt: skip


@nox.session
def package(session: nox.Session) -> None:
    """Package model/requirements.txt as Lambda-platform wheels; check the 250 MB limit."""
    _install(session, *RUNTIME, "uv==0.13.9")
    session.run("python", "-m", "scripts.package", *session.posargs)


@nox.session
def synth(session: nox.Session) -> None:
    """Evaluate the program offline for a branch: -- --branch NAME [--format tree|markdown|json]."""
    if not session.posargs:
        _usage(
            session,
            "--branch NAME | --stack shared --config githubRepository=OWNER/NAME "
            "[--format tree|markdown|json] [--output PATH] [--cost] [--config KEY=VALUE]",
        )
    _install(session, *RUNTIME)
    session.run("python", "-m", "scripts.synth", *session.posargs, stderr=SEPARATE_STDERR)


@nox.session(venv_backend="none")
def policy(session: nox.Session) -> None:
    """Create the policy pack's virtualenv (policy/venv) that preview and up run it with."""
    # pulumi installs a missing analyzer plugin, never a Python pack's dependencies.
    venv = os.path.join("policy", "venv")
    uv = [sys.executable, "-m", "uv"]
    session.run(*uv, "venv", "--allow-existing", "--python", sys.executable, venv)
    python = os.path.join(venv, "bin", "python")
    session.run(*uv, "pip", "install", "--python", python, "-r", "policy/requirements.txt")


@nox.session
def names(session: nox.Session) -> None:
    """Print a branch's stack, kind, tags and every physical name: -- BRANCH..."""
    if not session.posargs:
        _usage(session, "BRANCH... [--account-id ID]")
    _install(session, *RUNTIME)
    session.run("python", "-m", "scripts.names", *session.posargs, stderr=SEPARATE_STDERR)


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate the README's pipeline and docs/configuration.md: -- [--check]."""
    _install(session, *RUNTIME)
    for module in ("scripts.pipeline_diagram", "scripts.config_reference"):
        session.run("python", "-m", module, *session.posargs, stderr=SEPARATE_STDERR)


# The tier below proves a fork can rename the project and move region with one
# edit: names and regions no test may spell.
RENAMED_PROJECT = "forkedml"
RENAMED_REGION = "eu-west-1"


@nox.session
def renamed(session: nox.Session) -> None:
    """The unit and moto tiers again in a copy renamed and moved region: -- [pytest args]."""
    _install(session, *DEV, *MODEL)
    with tempfile.TemporaryDirectory(prefix="renamed-") as tmp:
        copy = os.path.join(tmp, "project")
        session.run(
            "python",
            "-m",
            "scripts.rename",
            "--copy-to",
            copy,
            "--name",
            RENAMED_PROJECT,
            "--region",
            RENAMED_REGION,
        )
        session.chdir(copy)
        # Everything but act, which needs a git checkout of the workflows it runs.
        session.run("pytest", "-m", "not act", *tiers.PARALLEL, *session.posargs)


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
    "unlock": (
        "scripts.stack",
        ["unlock"],
        "--branch NAME | --stack shared",
        "Release the stack locks a killed pulumi left on this machine; name pending operations.",
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
    "train-remote": (
        "scripts.train",
        [],
        "(--outputs FILE | --branch NAME) [--commit SHA] [--timeout-minutes N] [--outputs-out F]",
        "Train on the branch's runner, publish the run's model version, apply the quality gate.",
    ),
    "evaluation": (
        "scripts.evaluation",
        [],
        "--branch NAME --output FILE",
        "Fetch a branch's latest model evaluation (its metrics against the default branch's).",
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
    "environments": (
        "scripts.environments",
        [],
        "delete --branch NAME [--repo OWNER/NAME]",
        "Delete a deleted branch's GitHub environment branch/<slug> (needs an admin token).",
    ),
    "protected": (
        "scripts.protected",
        [],
        "[--github-output]",
        "List the protected stacks (shared, default and long-lived branches) from config.",
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
        "--branch NAME | --stack shared --config githubRepository=OWNER/NAME "
        "[--format markdown|json|comment] [--config KEY=VALUE] | --refresh-prices [--region R]",
        "Estimate a branch stack's idle monthly cost and cost per million model requests.",
    ),
    "rename": (
        "scripts.rename",
        [],
        "[--name NAME] [--region REGION]",
        "Rename the project or move every stack to another region (one edit of Pulumi.yaml).",
    ),
    "cleanup": (
        "scripts.cleanup",
        [],
        "[--yes] [--remote R | --branches-file F] [--now ISO]",
        "Destroy ephemeral stacks whose branch is gone or past the TTL (dry run by default).",
    ),
}


# A cancelled CI job interrupts nox, not the script under it: nox passes that on at
# once as a terminate, which scripts.stack hands to pulumi as a graceful cancel, and
# then waits for pulumi to finish cancelling instead of killing it 0.2 s later.
_DRIVES_PULUMI: dict[str, Any] = {"interrupt_timeout": 0, "terminate_timeout": None}


def _script_session(name: str, module: str, fixed: list[str], usage: str, doc: str) -> None:
    def run(session: nox.Session) -> None:
        if not session.posargs and name != "cleanup":
            _usage(session, usage)
        _install(session, *RUNTIME)
        timeouts = _DRIVES_PULUMI if module in {"scripts.stack", "scripts.cleanup"} else {}
        session.run(
            "python", "-m", module, *fixed, *session.posargs, stderr=SEPARATE_STDERR, **timeouts
        )

    run.__doc__ = doc
    run.__name__ = name
    nox.session(name=name)(run)


for _name, (_module, _fixed, _usage_text, _doc) in _SCRIPT_SESSIONS.items():
    _script_session(_name, _module, _fixed, _usage_text, _doc)
