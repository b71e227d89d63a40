"""Drive the Pulumi CLI on a branch's stack: preview, deploy, destroy, drift, unlock.

    python -m scripts.stack preview --branch NAME [--plan PATH]
    python -m scripts.stack deploy  --branch NAME [--plan PATH] [--outputs-file PATH]
    python -m scripts.stack destroy --branch NAME
    python -m scripts.stack drift   --branch NAME
    python -m scripts.stack unlock  --branch NAME
    (--stack shared instead of --branch for the account-wide stack; never destroyed)

Only preview creates a stack; the other verbs select it, and a missing stack is
nothing to destroy, but an error for deploy and drift. Every run starts from a
fresh workspace as CI's do: the branch is written into the stack's settings file
each time. Preview saves a plan, the settings file it ran with and the checkpoint
it read; deploy applies that plan with that settings file (so the plan's secrets
decrypt) and refuses it if the stack's state changed since. Destroy refuses
protected stacks. Drift refreshes without changing anything; exit 7 means the
cloud drifted. Unlock releases the locks this machine's pulumi left behind when
it was killed, and names any operation it left pending.

Exit codes: 0 done, 2 bad input, else pulumi's own (3 authentication, 6 no such
stack, 7 drift/changes where none were expected, 8 cancelled), 1 for the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from infra import config, naming
from scripts.lib import backend, cli, summary

POLICY_PACK = Path(__file__).resolve().parent.parent / "policy"
# Where Pulumi.yaml is: pulumi runs here and keeps the stack settings files here.
PROJECT_ROOT = config.REPO_ROOT

# pkg/cmd/pulumi/cmd/exit_codes.go: a stable contract, so they are passed through.
EXIT_ERROR, EXIT_USAGE = 1, 2
EXIT_AUTH, EXIT_STACK_NOT_FOUND, EXIT_NO_CHANGES, EXIT_CANCELLED = 3, 6, 7, 8
# nox sends a terminate right after passing on an interrupt: one request, not two.
SIGNAL_REPEAT_SECONDS = 2.0


def pinned_pulumi_version() -> str:
    """The CLI version CI installs: the Pulumi SDK's pin in requirements.txt (one pin)."""
    requirements = POLICY_PACK.parent / "requirements.txt"
    for line in requirements.read_text().splitlines():
        if line.startswith("pulumi=="):
            return line.removeprefix("pulumi==").split()[0]
    return "VERSION"


INSTALL_HINT = (
    "the pulumi CLI is not on PATH. Install the version CI uses, "
    f"`curl -fsSL https://get.pulumi.com | sh -s -- --version {pinned_pulumi_version()}` "
    "(https://www.pulumi.com/docs/install/), log in to a backend "
    "(`pulumi login s3://BUCKET` or `pulumi login --local`), then run this again. "
    "`nox -s synth` evaluates the program offline without it"
)


class StackCommandError(RuntimeError):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class PulumiFailed(StackCommandError):
    """pulumi exited non-zero; its exit code is the verb's."""

    def __init__(self, command: Sequence[str], code: int, stderr: str = "") -> None:
        meaning = {
            EXIT_AUTH: " (authentication: is the backend's login or token valid?)",
            EXIT_STACK_NOT_FOUND: " (no such stack)",
            EXIT_NO_CHANGES: " (changes where none were expected)",
            EXIT_CANCELLED: " (cancelled)",
        }.get(code, "")
        detail = f": {stderr.strip()}" if stderr.strip() else ""
        super().__init__(
            f"`{' '.join(command)}` failed with exit code {code}{meaning}{detail}",
            code if code > 0 else EXIT_ERROR,
        )


def _target(args: argparse.Namespace) -> tuple[naming.BranchStack, config.Settings]:
    if args.stack == naming.SHARED_STACK:
        return naming.shared_stack(), config.settings_for_stack(naming.SHARED_STACK)
    if args.stack:
        raise StackCommandError(
            f"--stack {args.stack!r}: only 'shared' is named directly; branch stacks are "
            "named from their branch with --branch"
        )
    stack_name = naming.slugify(args.branch)
    settings = config.settings_for_stack(stack_name)
    return settings.branch_stack(args.branch), settings


def _pulumi(pulumi: str, *arguments: str, capture: bool = False) -> str:
    """Run pulumi in the project, handing it any SIGINT/SIGTERM this process gets.

    A cancelled GitHub job signals the step's process, not its grandchild pulumi, then
    kills the tree; pulumi, signalled, cancels gracefully: it lets the operations in
    flight finish, writes the state and deletes its lock (cancellation_scope.go).
    """
    command = [pulumi, *arguments, "--non-interactive"]
    print(f"stack: $ {' '.join(command)}", file=sys.stderr, flush=True)
    # Its own session: a terminal's Ctrl-C reaches pulumi once, through us, not twice.
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        text=True,
        start_new_session=True,
    )
    last_forwarded = [0.0]

    def forward(signum: int, _frame: object) -> None:
        now = time.monotonic()
        if now - last_forwarded[0] < SIGNAL_REPEAT_SECONDS:
            return
        first = last_forwarded[0] == 0.0
        last_forwarded[0] = now
        # The first signal asks for a graceful cancel; a later one, to terminate.
        process.send_signal(signal.SIGINT if first else signal.SIGTERM)
        print(f"stack: passed signal {signum} on to pulumi", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stdout, stderr = process.communicate()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if process.returncode != 0:
        shown = ["pulumi", *arguments]
        raise PulumiFailed(shown, process.returncode, stderr or "")
    return stdout or ""


def save_outputs(pulumi: str, stack: str, path: Path) -> dict[str, object]:
    """The stack's outputs for the verbs after deploy; the API URL becomes the job's output."""
    values = json.loads(
        _pulumi(pulumi, "stack", "output", "--json", "--stack", stack, capture=True)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, sort_keys=True))
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output and values.get("api_url"):
        with open(github_output, "a", encoding="utf-8") as handle:
            handle.write(f"api_url={values['api_url']}\n")
    return values


def settings_file(stack: str) -> Path:
    return PROJECT_ROOT / f"Pulumi.{stack}.yaml"


CREATE_RACE_ATTEMPTS = 5


def _select_created_meanwhile(pulumi: str, stack: str) -> None:
    # The other creation holds its lock until its checkpoint is written: a moment.
    for attempt in range(1, CREATE_RACE_ATTEMPTS + 1):
        try:
            _pulumi(pulumi, "stack", "select", stack)
            return
        except PulumiFailed as error:
            if error.code != EXIT_STACK_NOT_FOUND or attempt == CREATE_RACE_ATTEMPTS:
                raise
            time.sleep(attempt)


def select(pulumi: str, stack: naming.BranchStack, settings: config.Settings, create: bool) -> None:
    """Select the stack; only preview creates one (stack_select.go: exit 6 when it is missing)."""
    if create:
        # The provider counts only when the stack is created (pulumi/pulumi#5650); an
        # existing stack's comes from its settings file, or its state (see secrets below).
        secrets = os.environ.get("PULUMI_SECRETS_PROVIDER")
        extra = ["--secrets-provider", secrets] if secrets else []
        try:
            _pulumi(pulumi, "stack", "select", stack.stack, "--create", *extra, capture=True)
        except PulumiFailed as error:
            # A push and a pull request preview a new branch at once: one creates the
            # stack, the other finds it exists (or locked by the creation) by then.
            if "already exists" not in str(error) and "locked" not in str(error):
                raise
            print(f"stack: {error}; selecting the stack created meanwhile", file=sys.stderr)
            _select_created_meanwhile(pulumi, stack.stack)
    else:
        _pulumi(pulumi, "stack", "select", stack.stack)
    _secrets_for_a_fresh_workspace(stack.stack, settings.project)
    if stack.branch:
        # The stack name is a lossy slug; the stack keeps its real branch. The settings
        # file lives only in this workspace, so every run writes it again.
        _pulumi(
            pulumi,
            "config",
            "set",
            f"{settings.project}:branch",
            stack.branch,
            "--stack",
            stack.stack,
        )


def _secrets_for_a_fresh_workspace(stack: str, project: str) -> None:
    """Name the KMS provider in the settings file when nothing else can on this runner.

    Without the file, pulumi takes an existing stack's provider from its state, but only
    with PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER set (pkg/cmd/pulumi/stack/secrets.go),
    and a stack never deployed has none in its state (CreateStack writes an empty
    deployment); either way it would fall back to a passphrase nobody has. So when the
    state has none and the file names none, the file names PULUMI_SECRETS_PROVIDER.
    """
    provider = os.environ.get("PULUMI_SECRETS_PROVIDER")
    path = settings_file(stack)
    current = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
    if not provider or current.get("secretsprovider") or current.get("encryptionsalt"):
        return
    diy = _diy()
    if diy is None or diy.state_has_secrets_provider(project, stack):
        return
    current["secretsprovider"] = provider
    path.write_text(yaml.safe_dump(current, sort_keys=True))


def _policy() -> list[str]:
    """The project's policy pack gates preview and up.

    The CLI installs a missing analyzer plugin, never a Python pack's dependencies: the
    pack's virtualenv (policy/venv, PulumiPolicy.yaml) must exist first (`nox -s policy`).
    """
    python = POLICY_PACK / "venv" / "bin" / "python"
    if not python.exists():
        raise StackCommandError(
            f"the policy pack's virtualenv {python.parent.parent} does not exist; create it "
            "with `nox -s policy` (CI does in the step before this one)"
        )
    return ["--policy-pack", str(POLICY_PACK)]


def _companions(plan: Path) -> tuple[Path, Path]:
    """What preview keeps beside its plan: the stack settings file and the checkpoint it read."""
    return plan.with_name(plan.stem + ".settings.yaml"), plan.with_name(plan.stem + ".state.json")


def _diy() -> backend.Backend | None:
    return backend.open_backend(os.environ.get("PULUMI_BACKEND_URL"))


def _refuse_if_locked(diy: backend.Backend | None, project: str, stack: str, doing: str) -> None:
    locks = diy.locks(project, stack) if diy else []
    if locks:
        holders = "; ".join(lock.describe() for lock in locks)
        raise StackCommandError(
            f"stack {stack!r} is being updated (locked by {holders}); {doing} would read a "
            "state in the middle of changing. Run it again when the update has finished "
            "(a lock left by a killed run: `nox -s unlock -- --branch NAME` on that machine, "
            "or `pulumi cancel`)",
            EXIT_ERROR,
        )


def preview(pulumi: str, stack: naming.BranchStack, settings: config.Settings, plan: Path | None):
    select(pulumi, stack, settings, create=True)
    diy = _diy()
    before = diy.checkpoint_digest(settings.project, stack.stack) if diy else None
    extra = ["--save-plan", str(plan)] if plan else []
    _pulumi(pulumi, "preview", "--stack", stack.stack, "--diff", *_policy(), *extra)
    if plan:
        kept_settings, kept_state = _companions(plan)
        # The data key that encrypted the plan's secrets is in this file only (for a new
        # stack, the state has none yet): deploy, on another runner, needs the same one.
        if settings_file(stack.stack).is_file():
            shutil.copyfile(settings_file(stack.stack), kept_settings)
        kept_state.write_text(json.dumps({"stack": stack.stack, "checkpoint": before}))


def deploy(
    pulumi: str,
    stack: naming.BranchStack,
    settings: config.Settings,
    plan: Path | None,
    outputs_file: Path | None,
) -> None:
    extra: list[str] = []
    if plan:
        kept_settings, kept_state = _companions(plan)
        if kept_settings.is_file():
            shutil.copyfile(kept_settings, settings_file(stack.stack))
        extra = ["--plan", str(plan)]
    select(pulumi, stack, settings, create=False)
    diy = _diy()
    if plan and diy and kept_state.is_file():
        reviewed = json.loads(kept_state.read_text()).get("checkpoint")
        now = diy.checkpoint_digest(settings.project, stack.stack)
        if reviewed != now:
            raise StackCommandError(
                f"stack {stack.stack!r} changed since the preview that saved this plan (another "
                "run updated it); the plan was computed from a state that is gone. Run the "
                "preview again and deploy its plan",
                EXIT_ERROR,
            )
    _pulumi(pulumi, "up", "--stack", stack.stack, "--yes", "--skip-preview", *_policy(), *extra)
    if outputs_file:
        save_outputs(pulumi, stack.stack, outputs_file)


def drift(pulumi: str, stack: naming.BranchStack, settings: config.Settings) -> str:
    select(pulumi, stack, settings, create=False)
    # refresh --preview-only takes no lock on this backend (diy backend.go Refresh).
    _refuse_if_locked(_diy(), settings.project, stack.stack, "a drift check")
    try:
        _pulumi(pulumi, "refresh", "--stack", stack.stack, "--preview-only", "--expect-no-changes")
    except PulumiFailed as error:
        if error.code == EXIT_NO_CHANGES:
            raise StackCommandError(
                f"stack {stack.stack!r} drifted: the cloud no longer matches its state (the "
                "refresh above lists what differs)",
                EXIT_NO_CHANGES,
            ) from None
        raise
    return "no drift"


def destroy(pulumi: str, stack: naming.BranchStack, settings: config.Settings) -> str:
    try:
        select(pulumi, stack, settings, create=False)
    except PulumiFailed as error:
        if error.code == EXIT_STACK_NOT_FOUND:
            return f"no stack {stack.stack!r}: nothing to destroy"
        raise
    _pulumi(pulumi, "destroy", "--stack", stack.stack, "--yes", "--remove")
    return "destroyed"


def unlock(stack: naming.BranchStack, settings: config.Settings) -> str:
    """After a cancelled or crashed job: release its locks and say how to repair pending work."""
    diy = _diy()
    if diy is None:
        return "no diy backend (PULUMI_BACKEND_URL): nothing to release here"
    released = diy.release_own_locks(settings.project, stack.stack)
    others = diy.locks(settings.project, stack.stack)
    pending = diy.pending_operations(settings.project, stack.stack)
    lines = [f"released {len(released)} lock(s) this machine's pulumi left"]
    lines += [f"kept another machine's lock: {lock.describe()}" for lock in others]
    if pending:
        kinds = ", ".join(
            f"{op.get('resource', {}).get('urn', '?')} ({op.get('type', '?')})" for op in pending
        )
        lines.append(
            f"{len(pending)} operation(s) were interrupted: {kinds}. A pending create may have "
            "made a resource pulumi does not know about; repair before the next deploy with "
            f"`pulumi refresh --stack {stack.stack} --import-pending-creates` (adopt them) or "
            "`--clear-pending-creates` (after deleting them): see docs/pulumi-cli.md"
        )
    return "\n".join(lines)


def check(verb: str, args: argparse.Namespace) -> tuple[naming.BranchStack, config.Settings]:
    """The stack a verb acts on, refused before anything runs when the verb may not touch it."""
    stack, settings = _target(args)
    if verb == "destroy" and stack.stack == naming.SHARED_STACK:
        raise StackCommandError(
            "stack 'shared' is protected: it holds the account-wide resources (CI roles, "
            "state bucket, CodeArtifact) every branch depends on; the pipeline never destroys it "
            "(docs/guide.md, 'Removing everything', says how to by hand)"
        )
    if verb == "destroy" and stack.protected:
        raise StackCommandError(
            f"stack {stack.stack!r} is protected (branch {stack.branch!r} is the default "
            f"or a long-lived branch: {', '.join(settings.protected_branches)}); "
            "it is never destroyed by the pipeline"
        )
    return stack, settings


def run(verb: str, args: argparse.Namespace, pulumi: str | None) -> tuple[str, str]:
    stack, settings = check(verb, args)
    if verb == "unlock":
        return stack.stack, unlock(stack, settings)
    if pulumi is None:
        raise StackCommandError(INSTALL_HINT)
    if verb == "preview":
        preview(pulumi, stack, settings, args.plan)
        return stack.stack, "previewed"
    if verb == "deploy":
        deploy(pulumi, stack, settings, args.plan, args.outputs_file)
        return stack.stack, "deployed"
    if verb == "drift":
        return stack.stack, drift(pulumi, stack, settings)
    return stack.stack, destroy(pulumi, stack, settings)


_VERBS = {
    "preview": "Pulumi preview of the stack, with the policy pack; --plan saves the plan",
    "deploy": "Pulumi up on the stack, with the policy pack; --plan applies a saved plan",
    "destroy": "destroy an ephemeral branch's stack (refuses protected stacks and shared)",
    "drift": "refresh in preview and fail (exit 7) if the cloud drifted from the state",
    "unlock": "after a cancelled or killed job: release this machine's locks on the stack",
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("stack", __doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, text in _VERBS.items():
        sub = verbs.add_parser(verb, help=text, description=text, formatter_class=cli.HelpFormatter)
        target = sub.add_mutually_exclusive_group(required=True)
        target.add_argument("--branch", type=cli.branch_arg, help="the git branch of the stack")
        target.add_argument(
            "--stack", choices=(naming.SHARED_STACK,), help="the account-wide stack"
        )
        if verb in ("preview", "deploy"):
            sub.add_argument(
                "--plan",
                type=Path,
                help="plan file: saved by preview, applied by deploy",
            )
        if verb == "deploy":
            sub.add_argument("--outputs-file", type=Path, help="save the stack outputs here")
    args = parser.parse_args(argv)
    for name in ("plan", "outputs_file"):
        setattr(args, name, getattr(args, name, None))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    started = time.monotonic()
    try:
        # The input is judged before the CLI is looked for: a refused stack is
        # refused the same way with or without Pulumi installed.
        check(args.verb, args)
        stack, outcome = run(args.verb, args, shutil.which("pulumi"))
    except StackCommandError as error:
        print(f"stack {args.verb}: {error}", file=sys.stderr)
        summary.write_step_summary(f"### {args.verb}: failed\n\n{error}\n")
        return error.code
    except (naming.NamingError, config.ConfigError) as error:
        print(f"stack {args.verb}: {error}", file=sys.stderr)
        return EXIT_USAGE
    elapsed = time.monotonic() - started
    print(f"stack {args.verb}: {outcome}", file=sys.stderr)
    summary.write_step_summary(
        f"### {args.verb} `{stack}`\n\n{outcome}\n\n{args.verb} finished in {elapsed:.0f}s.\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
