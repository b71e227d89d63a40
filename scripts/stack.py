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
from scripts import summary

POLICY_PACK = Path(__file__).resolve().parent.parent / "policy"

INSTALL_HINT = (
    "the pulumi CLI is not on PATH. Install it (https://www.pulumi.com/docs/install/, "
    "e.g. `curl -fsSL https://get.pulumi.com | sh`), log in to a backend "
    "(`pulumi login s3://BUCKET` or `pulumi login --local`), then run this again. "
    "`nox -s synth` evaluates the program offline without it."
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


def run(verb: str, args: argparse.Namespace, pulumi: str) -> str:
    stack, settings = _target(args)
    if verb == "destroy" and stack.protected:
        raise StackCommandError(
            f"stack {stack.stack!r} is protected (branch {stack.branch or '-'!r} is the default "
            f"or a long-lived branch: {', '.join(settings.protected_branches)}); "
            "it is never destroyed by the pipeline"
        )
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("preview", "deploy", "destroy", "drift"))
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--branch")
    target.add_argument("--stack")
    parser.add_argument("--plan", type=Path, help="plan file: saved by preview, applied by deploy")
    parser.add_argument("--outputs-file", type=Path, help="deploy: save the stack outputs here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    pulumi = shutil.which("pulumi")
    started = time.monotonic()
    try:
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
