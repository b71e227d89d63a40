"""Drive the Pulumi CLI on a branch's stack: preview, deploy, destroy, drift.

    python -m scripts.stack preview --branch NAME [--plan PATH]
    python -m scripts.stack deploy  --branch NAME [--plan PATH] [--outputs-file PATH]
    python -m scripts.stack destroy --branch NAME
    python -m scripts.stack drift   --branch NAME
    (--stack shared instead of --branch for the account-wide stack; never destroyed)

The stack is selected, or created on first use with its branch recorded in
its config. Preview saves a plan; deploy applies that plan when given, so
what was reviewed is what runs, then saves the stack outputs for the verbs
after it and hands the API URL to GitHub. Destroy refuses protected stacks.
Drift refreshes without changing anything and fails if the cloud drifted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from infra import config, naming
from scripts import cli, summary

POLICY_PACK = Path(__file__).resolve().parent.parent / "policy"


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
    pass


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
    command = [pulumi, *arguments, "--non-interactive"]
    print(f"stack: $ {' '.join(command)}", file=sys.stderr, flush=True)
    result = subprocess.run(command, check=False, capture_output=capture, text=True)
    if result.returncode != 0:
        raise StackCommandError(f"`{' '.join(command)}` failed with exit code {result.returncode}")
    return result.stdout or ""


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


def select(pulumi: str, stack: naming.BranchStack, settings: config.Settings) -> None:
    # A stack created in CI encrypts its secrets with the shared KMS key the
    # bootstrap made (repository variable PULUMI_SECRETS_PROVIDER).
    secrets = os.environ.get("PULUMI_SECRETS_PROVIDER")
    extra = ["--secrets-provider", secrets] if secrets else []
    _pulumi(pulumi, "stack", "select", stack.stack, "--create", *extra)
    if stack.branch:
        # The stack name is a lossy slug; the stack keeps its real branch.
        _pulumi(
            pulumi,
            "config",
            "set",
            f"{settings.project}:branch",
            stack.branch,
            "--stack",
            stack.stack,
        )


def _policy() -> list[str]:
    """The project's policy pack gates preview and up (Pulumi installs its venv on first use)."""
    return ["--policy-pack", str(POLICY_PACK)]


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


def run(verb: str, args: argparse.Namespace, pulumi: str) -> str:
    stack, settings = check(verb, args)
    select(pulumi, stack, settings)
    if verb == "preview":
        extra = ["--save-plan", str(args.plan)] if args.plan else []
        _pulumi(pulumi, "preview", "--stack", stack.stack, "--diff", *_policy(), *extra)
    elif verb == "deploy":
        extra = ["--plan", str(args.plan)] if args.plan else []
        _pulumi(pulumi, "up", "--stack", stack.stack, "--yes", "--skip-preview", *_policy(), *extra)
        if args.outputs_file:
            save_outputs(pulumi, stack.stack, args.outputs_file)
    elif verb == "drift":
        _pulumi(pulumi, "refresh", "--stack", stack.stack, "--preview-only", "--expect-no-changes")
    else:
        _pulumi(pulumi, "destroy", "--stack", stack.stack, "--yes", "--remove")
    return stack.stack


_VERBS = {
    "preview": "Pulumi preview of the stack, with the policy pack; --plan saves the plan",
    "deploy": "Pulumi up on the stack, with the policy pack; --plan applies a saved plan",
    "destroy": "destroy an ephemeral branch's stack (refuses protected stacks and shared)",
    "drift": "refresh in preview and fail (exit 2) if the cloud drifted from the state",
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
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise StackCommandError(INSTALL_HINT)
        stack = run(args.verb, args, pulumi)
    except (StackCommandError, naming.NamingError, config.ConfigError) as error:
        print(f"stack {args.verb}: {error}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    summary.write_step_summary(
        f"### {args.verb} `{stack}`\n\n{args.verb} finished in {elapsed:.0f}s.\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
