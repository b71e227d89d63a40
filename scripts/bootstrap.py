"""Bootstrap a fork: the shared stack, the approval environments, the repository variables.

    python -m scripts.bootstrap --repo OWNER/NAME --reviewers LOGIN[,LOGIN...]
        [--region REGION] [--backend-url s3://BUCKET] [--dry-run]
        [--skip-stack [--outputs-file FILE]]

(`nox -s bootstrap -- ...`). Run it once, with AWS credentials that may create
IAM roles, and `$GITHUB_TOKEN` holding a token that may administer the
repository (Administration: write, Variables: write, Actions: read; or a
classic token with `repo`, e.g. `GITHUB_TOKEN=$(gh auth token)`). The token is
sent to GitHub only: it is never printed, and the pulumi CLI never sees it.
Run it again whenever you like: it changes only what differs, and says
"nothing to change" when nothing does.

Order, so that a failure changes as little as possible:

1. Inputs (repository, reviewers, region, token, pulumi CLI): a bad one stops
   with exit 2 before anything is asked of anyone.
2. GitHub reads: the repository, its OIDC subject template (a customized one
   stops with exit 2: the roles trust the default), each reviewer's numeric id
   (an unknown login stops with exit 2), the environments, the variables. A
   401, 403 or 404 here stops with nothing changed: not GitHub, not AWS.
3. The shared stack (below), which yields the values of the variables; its
   `githubRepository` is the repository's name as GitHub spells it (the roles'
   `sub` match is case-sensitive), not as typed.
4. GitHub writes, only where the current value differs: PUT each environment
   (required reviewers on the approval ones; every branch may use the shared
   approval environments, a protected stack's own admit its branch alone) and
   its deployment-branch policy, POST a missing variable, PATCH a different one.
   Until this step has run, the protected stacks' environments the new roles
   trust may not exist yet (GitHub creates a missing one, unguarded, for any
   job naming it): a run that failed here must be re-run before anyone pushes.
5. A table of what changed and what was already right, on stdout and in the
   GitHub step summary.

The shared approval environments allow every branch (deployment_branch_policy
null) on purpose: every branch has its own pipeline and stack, and promotes its
own model. The gate is the required reviewers, who see the branch and commit
they approve; the ephemeral promote role trusts only these environments, and
`scripts.preflight` refuses to move traffic when one has no required reviewer.
Each protected stack has its own: `branch/<stack>` (deploy) and
`<approval>/<stack>`, each limited to that branch, which the protected roles
trust (docs/access.md). Reviewers are users (login -> numeric id).

The shared stack: where its state lives
---------------------------------------

The state bucket is itself a resource of the shared stack, so the first
deployment cannot keep its state there. Every run decides where the state is:

    known backend = --backend-url, else .pulumi-bootstrap/backend.json (written by a
                    migration), else the repository variable PULUMI_BACKEND_URL

    REMOTE   the known backend has stack `shared` with outputs:
               [remote] config set (repository, region); preview --expect-no-changes,
               and only if that finds changes: up --yes; stack output --json
    LOCAL    otherwise (the first run, or one interrupted before its migration finished):
               [local]  stack select shared --create --secrets-provider passphrase;
                        config set; up --yes; stack output --json
    MIGRATE  straight after LOCAL, into the bucket the outputs name:
               [local]  stack change-secrets-provider SECRETS_PROVIDER   (KMS from now on)
               [local]  stack export --file .pulumi-bootstrap/shared-export.json
               [remote] stack init shared --secrets-provider SECRETS_PROVIDER (unless listed)
               [remote] stack import --file ...; stack output --json       (verified)
               write .pulumi-bootstrap/backend.json: later runs go REMOTE
               [local]  stack rm shared --force --preserve-config        (one state, not two)

[local] is `PULUMI_BACKEND_URL=file://.pulumi-bootstrap/state` with a generated
passphrase that protects nothing once the state moved to the KMS key; [remote]
is `PULUMI_BACKEND_URL=s3://BUCKET`. Each pulumi process gets its backend in its
own environment, so what a person is logged in to never matters. The export
stays in .pulumi-bootstrap/ as a backup (its secrets are KMS ciphertext).
Commit Pulumi.shared.yaml: it holds the stack's config and secrets provider.

Exit codes: 0 done (or nothing to change), 1 a failure (the message says what
was already changed; re-running resumes), 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from infra import config, naming
from scripts import pin_pulumi, rename
from scripts.lib import aws, cli, github, summary
from scripts.lib.bootstrap_github import (
    CREATED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    VARIABLES,
    WOULD_CREATE,
    WOULD_UPDATE,
    Change,
    GitHubState,
    Inputs,
    plan_environments,
    plan_variables,
    read_github,
    write_github,
)
from scripts.lib.progress import Progress
from scripts.stack import INSTALL_HINT

PROJECT_ROOT = config.REPO_ROOT
STATE_DIR_NAME = ".pulumi-bootstrap"
PIN_FILE = pin_pulumi.PIN_FILE.relative_to(pin_pulumi.ROOT)
# `pulumi preview --expect-no-changes` exits 7 when it finds changes (exit_codes.go).
EXIT_CHANGES_PROPOSED = 7
SHARED = naming.SHARED_STACK

# GitHub allows up to six required reviewers per environment.
MAX_REVIEWERS = 6
_LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_BACKEND_RE = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\?.*)?")


# ---------------------------------------------------------------- inputs


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("bootstrap", __doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="OWNER/NAME of the GitHub repository")
    parser.add_argument(
        "--reviewers",
        required=True,
        help="comma-separated GitHub logins who approve promotion and release (1 to 6)",
    )
    parser.add_argument(
        "--region",
        help="AWS region of every stack; a new one is written to Pulumi.yaml "
        "(default: Pulumi.yaml's aws:region)",
    )
    parser.add_argument(
        "--backend-url",
        help="s3://BUCKET already holding the shared stack's state (default: found by itself)",
    )
    parser.add_argument(
        "--skip-stack",
        action="store_true",
        help="do not run pulumi; configure GitHub only",
    )
    parser.add_argument(
        "--outputs-file",
        type=Path,
        help="with --skip-stack: saved `pulumi stack output --json --stack shared` for variables",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="read everything, change nothing, print the plan"
    )
    return parser.parse_args(argv)


def parse_reviewers(text: str) -> tuple[str, ...]:
    logins: list[str] = []
    for raw in text.split(","):
        login = raw.strip().removeprefix("@")
        if not login:
            continue
        if not _LOGIN_RE.fullmatch(login) or "--" in login or login.endswith("-"):
            raise aws.UsageError(
                f"--reviewers: {login!r} is not a GitHub login (letters, digits and single "
                "hyphens, up to 39 characters); nothing was changed"
            )
        if login.lower() not in {known.lower() for known in logins}:
            logins.append(login)
    if not logins:
        raise aws.UsageError(
            "--reviewers names nobody: give at least one GitHub login (e.g. --reviewers "
            "alice,bob); without a reviewer nothing gates promotion; nothing was changed"
        )
    if len(logins) > MAX_REVIEWERS:
        raise aws.UsageError(
            f"--reviewers names {len(logins)} people; GitHub allows at most {MAX_REVIEWERS} "
            "required reviewers per environment; nothing was changed"
        )
    return tuple(logins)


def default_region(root: Path) -> str:
    try:
        return config.settings_for_stack(SHARED, root).region
    except config.ConfigError as error:
        raise aws.UsageError(f"the shared stack's config: {error}; nothing was changed") from None


def set_project_region(root: Path, region: str, dry_run: bool) -> list[Change]:
    """Point every stack at `region`: branch stacks read it from Pulumi.yaml, not the shared one.

    One line of Pulumi.yaml (`aws:region: value:`) sets the region of every stack; the
    shared stack's own config alone would leave branch stacks in the old region.
    """
    path = root / "Pulumi.yaml"
    try:
        text, current = rename.set_region(path.read_text(), region)
    except aws.UsageError as error:
        raise aws.UsageError(f"{error}; nothing was changed") from None
    if current == region:
        return []
    detail = f"aws:region {current} -> {region} for every stack: commit it"
    if dry_run:
        return [Change("file", "Pulumi.yaml", WOULD_UPDATE, detail)]
    path.write_text(text)
    return [Change("file", "Pulumi.yaml", UPDATED, detail)]


def pin_pulumi_cli(root: Path, dry_run: bool) -> list[Change]:
    """Pin the digest of the Pulumi CLI the workflows install, if the repository lacks it.

    The setup action refuses a CLI archive whose SHA-256 the repository does not pin
    (it fails closed), and the digest can only come from the release's checksums file on
    the network: bootstrap, which needs the network anyway, fetches it once per CLI version.
    """
    pin_file = root / PIN_FILE
    if not pin_file.is_file():
        return []  # no setup action in this tree: nothing installs the CLI from a pin
    try:
        version = pin_pulumi.sdk_version(root / "requirements.txt")
    except (OSError, ValueError) as error:
        raise aws.UsageError(f"{error}; nothing was changed") from None
    archive = pin_pulumi.archive_name(version)
    if pin_pulumi.pinned(pin_file, archive):
        return []
    name = str(PIN_FILE)
    if dry_run:
        return [Change("file", name, WOULD_UPDATE, f"would pin the SHA-256 of {archive}")]
    try:
        digest = pin_pulumi.fetch_digest(version)
    except LookupError as error:
        raise aws.UsageError(
            f"cannot pin the Pulumi CLI {version} ({error}); run `python -m scripts.pin_pulumi` "
            "where GitHub's releases are reachable, commit the pin, then bootstrap again; "
            "nothing was changed"
        ) from None
    pin_pulumi.write_pin(pin_file, archive, digest)
    return [Change("file", name, UPDATED, f"SHA-256 of {archive} pinned: commit it")]


def load_outputs_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise aws.UsageError(
            f"--outputs-file {path}: cannot read JSON ({error}); save it with "
            "`pulumi stack output --json --stack shared > FILE`; nothing was changed"
        ) from None
    if not isinstance(document, dict):
        raise aws.UsageError(f"--outputs-file {path}: not a JSON object; nothing was changed")
    return document


def check_inputs(args: argparse.Namespace, root: Path) -> Inputs:
    owner, name = github.parse_repo(args.repo)
    reviewers = parse_reviewers(args.reviewers)
    region = args.region or default_region(root)
    if not _REGION_RE.fullmatch(region):
        raise aws.UsageError(
            f"--region {region!r} is not an AWS region such as us-east-1; nothing was changed"
        )
    if args.backend_url and not _BACKEND_RE.fullmatch(args.backend_url):
        raise aws.UsageError(
            f"--backend-url {args.backend_url!r} is not s3://BUCKET; nothing was changed"
        )
    if args.outputs_file and not args.skip_stack:
        raise aws.UsageError(
            "--outputs-file goes with --skip-stack (otherwise the stack's own outputs are used)"
        )
    outputs = load_outputs_file(args.outputs_file) if args.outputs_file else None
    try:
        settings = config.settings_for_stack(SHARED, root)
    except (config.ConfigError, naming.NamingError) as error:
        raise aws.UsageError(f"{error}; nothing was changed") from None
    return Inputs(
        owner=owner,
        name=name,
        reviewers=reviewers,
        region=region,
        backend_url=args.backend_url,
        skip_stack=args.skip_stack,
        outputs=outputs,
        dry_run=args.dry_run,
        settings=settings,
    )


# ---------------------------------------------------------------- pulumi


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where a pulumi process keeps state: its PULUMI_BACKEND_URL and what else it needs."""

    label: str  # "local" | "remote"
    url: str
    env: Mapping[str, str]
    unset: tuple[str, ...] = ()


class PulumiRunner:
    """Runs the pulumi CLI with an explicit environment per call; tests put a fake on PATH."""

    # The GitHub token is for this script alone; the pulumi program never needs it.
    _NEVER_PASSED = ("GITHUB_TOKEN",)

    def __init__(self, executable: str, cwd: Path, stream: TextIO) -> None:
        self.executable = executable
        self.cwd = cwd
        self.stream = stream

    def environment(self, backend: Backend) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in self._NEVER_PASSED and key not in backend.unset
        }
        env.update(backend.env)
        env["PULUMI_BACKEND_URL"] = backend.url
        return env

    def run(
        self, backend: Backend, *arguments: str, capture: bool = False, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [self.executable, *arguments, "--non-interactive"]
        shown = " ".join(["pulumi", *arguments])
        print(f"bootstrap: [{backend.label}] $ {shown}", file=self.stream, flush=True)
        result = subprocess.run(
            command,
            cwd=self.cwd,
            env=self.environment(backend),
            capture_output=capture,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            detail = f": {result.stderr.strip()}" if capture and result.stderr else ""
            raise aws.ScriptError(
                f"`{shown}` ({backend.label} backend {backend.url}) failed with exit code "
                f"{result.returncode}{detail}"
            )
        return result

    def json(self, backend: Backend, *arguments: str) -> Any:
        text = self.run(backend, *arguments, capture=True).stdout
        try:
            return json.loads(text or "null")
        except json.JSONDecodeError:
            raise aws.ScriptError(f"`pulumi {' '.join(arguments)}` printed no JSON") from None


class StateDir:
    """`.pulumi-bootstrap/`: the first run's local backend, its passphrase, the migration marker."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def backend_dir(self) -> Path:
        return self.path / "state"

    @property
    def export_file(self) -> Path:
        return self.path / "shared-export.json"

    @property
    def marker(self) -> Path:
        return self.path / "backend.json"

    def ensure(self) -> None:
        self.backend_dir.mkdir(parents=True, exist_ok=True)
        ignore = self.path / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Local bootstrap state: never commit it.\n*\n")

    def passphrase_file(self) -> Path:
        """A random passphrase for the local backend, readable by its owner only."""
        path = self.path / "passphrase"
        if not path.exists():
            self.ensure()
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path

    def local_backend(self) -> Backend:
        return Backend(
            label="local",
            url=self.backend_dir.resolve().as_uri(),
            env={"PULUMI_CONFIG_PASSPHRASE_FILE": str(self.passphrase_file().resolve())},
            # A passphrase in the caller's environment would win over the file.
            unset=("PULUMI_CONFIG_PASSPHRASE",),
        )

    def recorded_backend(self) -> str | None:
        try:
            document = json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        url = document.get("backend_url") if isinstance(document, dict) else None
        return url if isinstance(url, str) and url else None

    def record(self, outputs: Mapping[str, Any]) -> None:
        self.ensure()
        self.marker.write_text(
            json.dumps(
                {
                    "backend_url": outputs["backend_url"],
                    "secrets_provider": outputs["secrets_provider"],
                    "note": (
                        "The shared stack's state lives in backend_url. Use it with "
                        "`PULUMI_BACKEND_URL=<backend_url> pulumi ... --stack shared`; "
                        "shared-export.json is the migration's backup."
                    ),
                },
                indent=2,
            )
            + "\n"
        )


def remote_backend(url: str, region: str) -> Backend:
    env = {}
    # The s3 backend needs a region; the bucket lives in the stack's.
    if not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        env["AWS_REGION"] = region
    return Backend(label="remote", url=url, env=env)


def _listed(pulumi: PulumiRunner, backend: Backend) -> bool:
    """Does the backend list stack `shared` (pulumi may print it as org/project/shared)?"""
    entries = pulumi.json(backend, "stack", "ls", "--json")
    if not isinstance(entries, list):
        raise aws.ScriptError("`pulumi stack ls --json` printed no list of stacks")
    return any(
        isinstance(entry, dict) and str(entry.get("name", "")).rsplit("/", 1)[-1] == SHARED
        for entry in entries
    )


def _outputs(pulumi: PulumiRunner, backend: Backend) -> dict[str, Any]:
    values = pulumi.json(backend, "stack", "output", "--json", "--stack", SHARED)
    if not isinstance(values, dict):
        raise aws.ScriptError("`pulumi stack output --json` printed no object")
    return values


def find_remote(
    pulumi: PulumiRunner, candidates: Sequence[tuple[str, str]], region: str, stream: TextIO
) -> tuple[Backend, dict[str, Any]] | None:
    """The first known backend holding a deployed `shared`, with its outputs; None if none does.

    A backend that cannot be listed stops the run: guessing "not there" would
    deploy a second copy of the shared stack next to the real one.
    """
    for source, url in candidates:
        backend = remote_backend(url, region)
        try:
            listed = _listed(pulumi, backend)
        except aws.ScriptError as error:
            raise aws.ScriptError(
                f"cannot read the state backend {url} (from {source}): {error}; check the AWS "
                "credentials, or pass --backend-url with the right bucket; nothing was changed"
            ) from None
        if listed:
            outputs = _outputs(pulumi, backend)
            if outputs.get("backend_url"):
                return backend, outputs
            print(
                f"bootstrap: {url} (from {source}) lists stack {SHARED} without outputs: "
                "an interrupted migration; deploying locally and migrating again",
                file=stream,
            )
    return None


def check_outputs(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Variable -> value from the stack outputs; a missing output stops before any write."""
    values: dict[str, str] = {}
    missing = []
    for variable, output in VARIABLES.items():
        value = outputs.get(output)
        if not isinstance(value, str) or not value:
            missing.append(output)
        else:
            values[variable] = value
    if missing:
        raise aws.ScriptError(
            f"the shared stack has no output {', '.join(missing)}: is infra/ up to date "
            "(`nox -s synth -- --stack shared` lists its outputs)? GitHub was not changed"
        )
    if not _BACKEND_RE.fullmatch(values["PULUMI_BACKEND_URL"]):
        raise aws.ScriptError(f"output backend_url {values['PULUMI_BACKEND_URL']!r} is not s3://")
    return values


@dataclasses.dataclass
class StackResult:
    change: Change
    outputs: dict[str, Any] | None


class SharedStack:
    """The state machine of the module docstring."""

    def __init__(
        self,
        pulumi: PulumiRunner,
        state: StateDir,
        inputs: Inputs,
        project: str,
        progress: Progress,
        *,
        repository: str,
    ) -> None:
        self.pulumi = pulumi
        self.state = state
        self.inputs = inputs
        self.project = project
        self.progress = progress
        # As GitHub spells it: the roles' `sub` match is case-sensitive.
        self.repository = repository

    def candidates(self, variable: str | None) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for source, url in (
            ("--backend-url", self.inputs.backend_url),
            (str(self.state.marker), self.state.recorded_backend()),
            ("repository variable PULUMI_BACKEND_URL", variable),
        ):
            if url and _BACKEND_RE.fullmatch(url) and url not in {u for _, u in found}:
                found.append((source, url))
        return found

    def configure(self, backend: Backend) -> None:
        for key, value in (
            (f"{self.project}:githubRepository", self.repository),
            ("aws:region", self.inputs.region),
        ):
            self.pulumi.run(backend, "config", "set", key, value, "--stack", SHARED)

    def deploy(self, variable: str | None) -> StackResult:
        remote = find_remote(
            self.pulumi, self.candidates(variable), self.inputs.region, self.pulumi.stream
        )
        if remote is not None:
            return self.update_remote(*remote)
        if self.inputs.dry_run:
            detail = (
                f"would deploy on a local backend ({self.state.backend_dir}), then move its "
                "state into the bucket it creates"
            )
            return StackResult(Change("stack", SHARED, WOULD_CREATE, detail), None)
        local = self.state.local_backend()
        self.progress.note("shared stack: first deployment, on a local backend")
        self.pulumi.run(
            local, "stack", "select", SHARED, "--create", "--secrets-provider", "passphrase"
        )
        self.configure(local)
        self.pulumi.run(local, "up", "--yes", "--stack", SHARED)
        outputs = _outputs(self.pulumi, local)
        check_outputs(outputs)
        self.migrate(local, outputs)
        detail = f"deployed, state moved to {outputs['backend_url']}"
        return StackResult(Change("stack", SHARED, CREATED, detail), outputs)

    def update_remote(self, backend: Backend, outputs: dict[str, Any]) -> StackResult:
        where = f"in {backend.url}"
        if self.inputs.dry_run:
            # A preview reads the cloud and the state and writes neither.
            if not self.changes_pending(backend):
                return StackResult(Change("stack", SHARED, UNCHANGED, where), outputs)
            detail = f"{where}: the preview above found changes"
            return StackResult(Change("stack", SHARED, WOULD_UPDATE, detail), outputs)
        self.progress.note(f"shared stack: already {where}; checking for changes")
        self.configure(backend)
        if not self.changes_pending(backend):
            return StackResult(Change("stack", SHARED, UNCHANGED, where), outputs)
        self.pulumi.run(backend, "up", "--yes", "--stack", SHARED)
        outputs = _outputs(self.pulumi, backend)
        return StackResult(Change("stack", SHARED, UPDATED, where), outputs)

    def changes_pending(self, backend: Backend) -> bool:
        """`preview --expect-no-changes`: 0 none, 7 some (exit_codes.go ExitNoChanges)."""
        preview = self.pulumi.run(
            backend, "preview", "--stack", SHARED, "--expect-no-changes", check=False
        )
        if preview.returncode in {0, EXIT_CHANGES_PROPOSED}:
            return preview.returncode == EXIT_CHANGES_PROPOSED
        # Any other code is a failure (3 authentication, 6 no stack, 1 the rest), not changes.
        raise aws.ScriptError(
            f"`pulumi preview --stack {SHARED}` ({backend.label} backend {backend.url}) failed "
            f"with exit code {preview.returncode}; see its output above"
        )

    def migrate(self, local: Backend, outputs: Mapping[str, Any]) -> None:
        """Local state -> the bucket the stack made, re-keyed to its KMS key; then one copy."""
        provider = str(outputs["secrets_provider"])
        remote = remote_backend(str(outputs["backend_url"]), self.inputs.region)
        self.progress.note(f"shared stack: moving its state to {remote.url}")
        self.pulumi.run(local, "stack", "change-secrets-provider", provider, "--stack", SHARED)
        export = str(self.state.export_file.resolve())
        self.pulumi.run(local, "stack", "export", "--stack", SHARED, "--file", export)
        if not _listed(self.pulumi, remote):
            self.pulumi.run(remote, "stack", "init", SHARED, "--secrets-provider", provider)
        self.pulumi.run(remote, "stack", "import", "--stack", SHARED, "--file", export)
        moved = _outputs(self.pulumi, remote)
        if moved.get("backend_url") != outputs["backend_url"]:
            raise aws.ScriptError(
                f"after `pulumi stack import`, {remote.url} does not show the shared stack's "
                f"outputs; its local state is kept in {self.state.backend_dir}: run bootstrap "
                "again to retry the migration"
            )
        self.state.record(outputs)
        self.pulumi.run(local, "stack", "rm", SHARED, "--yes", "--force", "--preserve-config")


# ---------------------------------------------------------------- report


def report(
    inputs: Inputs, changes: Sequence[Change], state: GitHubState, marker: Path | None = None
) -> str:
    title = f"### Bootstrap `{inputs.repo}`" + (
        " (dry run: nothing changed)" if inputs.dry_run else ""
    )
    table = summary.table(
        ["what", "name", "result", "detail"],
        [[c.kind, c.name, c.result, c.detail] for c in changes],
    )
    changed = [c for c in changes if c.changed]
    pending = [c for c in changes if c.pending]
    right = [c for c in changes if c.result == UNCHANGED]
    if inputs.dry_run:
        verdict = (
            f"{len(pending)} would change, {len(right)} already right."
            if pending
            else "Nothing to change: everything is already as wanted."
        )
    elif changed:
        verdict = f"{len(changed)} changed, {len(right)} already right."
    else:
        verdict = "Nothing to change: everything was already as wanted."
    notes = []
    if state.private:
        notes.append(
            f"- {inputs.repo} is private: {github.PLAN_NOTE}. `nox -s preflight` refuses to "
            "promote while an approval environment has no required reviewer."
        )
    if any(c.kind == "stack" and c.result == CREATED for c in changes):
        notes.append(
            "- Commit `Pulumi.shared.yaml`: it holds the shared stack's config and secrets "
            f"provider. Its state now lives in the bucket (recorded in `{marker}`)."
        )
    tail = ("\n\n" + "\n".join(notes)) if notes else ""
    return f"{title}\n\n{table}\n\n{verdict}{tail}\n"


# ---------------------------------------------------------------- main


def run(
    args: argparse.Namespace,
    root: Path,
    state_dir: Path,
    stream: TextIO,
) -> int:
    progress = Progress("bootstrap", total=5, stream=stream)
    inputs = check_inputs(args, root)
    client = github.Client.from_env()
    pulumi_path = None if inputs.skip_stack else shutil.which("pulumi")
    if not inputs.skip_stack and pulumi_path is None:
        raise aws.UsageError(f"{INSTALL_HINT}; nothing was changed")
    progress.step(f"inputs: {inputs.repo}, reviewers {', '.join(inputs.reviewers)}")

    want_variables = not inputs.skip_stack or inputs.outputs is not None
    state = read_github(client, inputs, want_variables)
    progress.step(
        f"read GitHub: {len(inputs.reviewers)} reviewers, {len(state.environments)} "
        f"environments, {len(state.variables)} variables"
    )

    # Before the shared stack: it and every branch stack then read the same region.
    changes: list[Change] = set_project_region(root, inputs.region, inputs.dry_run)
    # Before anything in AWS or GitHub: without the pin, no workflow can install the CLI.
    changes += pin_pulumi_cli(root, inputs.dry_run)
    values: dict[str, str] | None = None
    if inputs.skip_stack:
        changes.append(Change("stack", SHARED, SKIPPED, "--skip-stack"))
        if inputs.outputs is not None:
            values = check_outputs(inputs.outputs)
    else:
        assert pulumi_path is not None
        project, _ = config.read_project(root)
        stack = SharedStack(
            PulumiRunner(pulumi_path, root, stream),
            StateDir(state_dir),
            inputs,
            project,
            progress,
            repository=str(state.repository.get("full_name") or inputs.repo),
        )
        result = stack.deploy(state.variables.get("PULUMI_BACKEND_URL"))
        changes.append(result.change)
        if result.outputs is not None:
            values = check_outputs(result.outputs)
    (stack_change,) = [c for c in changes if c.kind == "stack"]
    progress.step(
        f"shared stack: {stack_change.result}"
        + (f" ({stack_change.detail})" if stack_change.detail else "")
    )

    changes += plan_environments(state, inputs.dry_run)
    changes += plan_variables(state, values, inputs)
    if not inputs.dry_run:
        write_github(client, inputs, state, values, progress)
    writes = len(client.writes)
    progress.step(f"GitHub: {writes} change{'s' if writes != 1 else ''}")

    markdown = report(inputs, changes, state, StateDir(state_dir).marker)
    print(markdown)
    summary.write_step_summary(markdown)
    progress.step("done")
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    root: Path | None = None,
    state_dir: Path | None = None,
    stream: TextIO | None = None,
) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = root or PROJECT_ROOT
    return aws.run(
        "bootstrap",
        lambda: run(args, root, state_dir or root / STATE_DIR_NAME, stream or sys.stderr),
    )


if __name__ == "__main__":
    raise SystemExit(main())
