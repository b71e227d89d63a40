"""Destroy the ephemeral stacks whose branch is gone or that sat idle past their TTL.

    python -m scripts.cleanup [--yes] [--remote R | --branches-file F | --github-repo O/N]
                              [--now ISO]

Lists the project's stacks (`pulumi stack ls --json`) and the live branches
(`git ls-remote --heads REMOTE`; a file: one branch a line, or the output of
that command; or GitHub's REST API for OWNER/NAME, every page of it, with
$GITHUB_TOKEN). A stack belongs to the live branch whose slug is its name;
a stack no live branch slugs to is orphaned. Orphaned stacks, and stacks not
updated for longer than their `stackTtlHours`, are stale.

Dry run by default: prints what it would destroy and why. `--yes` destroys
the stale stacks one by one (`pulumi destroy --remove`), goes on past a
failure, and exits 1 if any failed. The `shared` stack and the stacks of the
default and protected branches are never destroyed, orphaned or old.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from infra import config, naming
from scripts.lib import aws, backend, cli, github, summary
from scripts.lib.progress import Progress
from scripts.stack import INSTALL_HINT

# Where Pulumi.yaml and the stack files live; pulumi and git run here.
PROJECT_ROOT = config.REPO_ROOT
GIT_TIMEOUT_SECONDS = 120
DELETED = "(deleted)"


@dataclasses.dataclass(frozen=True)
class StackInfo:
    """One entry of `pulumi stack ls --json`."""

    name: str  # as pulumi printed it, possibly `org/project/stack`: what destroy is given
    last_update: dt.datetime | None
    resource_count: int | None
    # Pulumi Cloud reports a running update here; the diy (S3) backend never does: its
    # locks say it (scripts.lib.backend), and `locked_by` carries who holds them.
    update_in_progress: bool = False
    locked_by: str = ""

    @property
    def stack(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Decision:
    info: StackInfo
    branch: str | None
    age: dt.timedelta | None
    reason: str
    destroy: bool


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        return _utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise aws.UsageError(
            f"--now {text!r} is not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)"
        ) from None


# ---------------------------------------------------------------- inputs


def parse_stack_list(text: str) -> list[StackInfo]:
    try:
        entries = json.loads(text or "[]")
    except json.JSONDecodeError as error:
        raise aws.ScriptError(f"`pulumi stack ls --json` printed no JSON: {error}") from None
    if not isinstance(entries, list):
        raise aws.ScriptError("`pulumi stack ls --json` printed no list of stacks")
    stacks = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise aws.ScriptError(
                f"`pulumi stack ls --json` printed an entry without name: {entry}"
            )
        last_update = None
        if entry.get("lastUpdate"):
            try:
                last_update = _utc(dt.datetime.fromisoformat(str(entry["lastUpdate"])))
            except ValueError:
                last_update = None
        count = entry.get("resourceCount")
        stacks.append(
            StackInfo(
                name=entry["name"],
                last_update=last_update,
                resource_count=count if isinstance(count, int) else None,
                update_in_progress=bool(entry.get("updateInProgress")),
            )
        )
    return stacks


def list_stacks(pulumi: str, cwd: Path) -> list[StackInfo]:
    """The project's stacks (pulumi filters by the project of the working directory)."""
    result = subprocess.run(
        [pulumi, "stack", "ls", "--json", "--non-interactive"],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    if result.returncode != 0:
        raise aws.ScriptError(
            f"`pulumi stack ls` failed with exit code {result.returncode}: "
            f"{result.stderr.strip()}; is pulumi logged in to the project's backend?"
        )
    return parse_stack_list(result.stdout)


def parse_branch_lines(lines: Sequence[str]) -> list[str]:
    """Branch names from `name` or `refs/heads/name` lines, or `git ls-remote` output."""
    branches = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        branches.append(naming.strip_ref(line.split()[-1]))
    return branches


def remote_branches(remote: str, cwd: Path) -> list[str]:
    git = shutil.which("git")
    if git is None:
        raise aws.UsageError("git is not on PATH to list the live branches; pass --branches-file")
    try:
        result = subprocess.run(
            [git, "ls-remote", "--heads", remote],
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            timeout=GIT_TIMEOUT_SECONDS,
            # A missing credential must fail, not wait for someone to type it.
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except subprocess.TimeoutExpired:
        raise aws.ScriptError(
            f"`git ls-remote --heads {remote}` did not answer in {GIT_TIMEOUT_SECONDS}s; "
            "nothing was destroyed"
        ) from None
    if result.returncode != 0:
        raise aws.UsageError(
            f"--remote {remote!r}: `git ls-remote --heads` failed ({result.stderr.strip()}); "
            "name a remote or URL git can list, or pass --branches-file"
        )
    return parse_branch_lines(result.stdout.splitlines())


def file_branches(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise aws.UsageError(
            f"--branches-file {path} cannot be read ({error}); give a text file with one "
            "branch a line (or the output of `git ls-remote --heads`)"
        ) from None
    return parse_branch_lines(text.splitlines())


def github_branches(repo: str, client: github.Client | None = None) -> list[str]:
    """Every branch of OWNER/NAME on GitHub, following the listing page by page."""
    try:
        owner, name = github.parse_repo(repo)
    except aws.UsageError:
        raise aws.UsageError(
            f"--github-repo {repo!r} is not OWNER/NAME of a GitHub repository "
            "(e.g. octo-org/ml-models)"
        ) from None
    client = client or github.Client.from_env()
    items = client.paginate(
        f"/repos/{owner}/{name}/branches",
        doing=f"listing the branches of {owner}/{name}",
        needs=github.METADATA_READ,
    )
    return [item["name"] for item in items if isinstance(item, dict) and "name" in item]


def branch_slugs(branches: Sequence[str], stream: TextIO) -> dict[str, str]:
    """slug -> live branch; a branch no stack can be named after is noted and skipped."""
    slugs: dict[str, str] = {}
    for branch in branches:
        try:
            slugs[naming.slugify(branch)] = branch
        except naming.NamingError as error:
            print(f"cleanup: skipping branch {branch!r}: {error}", file=stream)
    return slugs


def with_locks(stacks: Sequence[StackInfo], project: str) -> list[StackInfo]:
    """Each stack with the holders of its locks in the diy backend (PULUMI_BACKEND_URL).

    A lock is a running up, destroy or refresh (pkg/backend/diy/lock.go), or one a killed
    run left behind; either way the stack is not the sweeper's to destroy now.
    """
    diy = backend.open_backend(os.environ.get("PULUMI_BACKEND_URL"))
    if diy is None:
        return list(stacks)
    found = []
    for info in stacks:
        locks = diy.locks(project, info.stack)
        holders = "; ".join(lock.describe() for lock in locks)
        found.append(dataclasses.replace(info, locked_by=holders) if locks else info)
    return found


# ---------------------------------------------------------------- decisions


def project_settings(root: Path) -> config.Settings:
    """Project-wide settings (Pulumi.yaml alone): the default and protected branches."""
    project, values = config.read_project(root)
    return config.settings_from_mapping(project, values)


def protection(stack: str, project: config.Settings, root: Path) -> str | None:
    """Why a stack must never be destroyed, or None. Checked when planning and again before acting.

    The project's default and protected branches protect their stacks; so do a
    stack's own file's, in case it overrides them. A stack whose own config
    cannot be read is kept too: nothing it says can be trusted to judge it.
    """
    if stack == naming.SHARED_STACK:
        return "protected: the account-wide shared stack"
    sources = [project]
    try:
        sources.append(config.settings_for_stack(stack, root))
    except config.ConfigError as error:
        return f"kept: its config is invalid ({error})"
    for settings in sources:
        if stack == naming.slugify(settings.default_branch):
            return f"protected: default branch {settings.default_branch}"
        for branch in settings.protected_branches:
            if stack == naming.slugify(branch):
                return f"protected: long-lived branch {branch}"
    return None


def _hours(age: dt.timedelta) -> float:
    return age.total_seconds() / 3600


def format_age(age: dt.timedelta | None) -> str:
    if age is None:
        return "?"
    minutes = max(int(age.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"


def decide(
    stacks: Sequence[StackInfo],
    live: Mapping[str, str],
    now: dt.datetime,
    project: config.Settings,
    root: Path,
) -> list[Decision]:
    """What happens to each stack, and why; protected stacks are decided first and kept."""
    return [_decide(info, live, now, project, root) for info in sorted(stacks, key=_by_stack)]


def _by_stack(info: StackInfo) -> str:
    return info.stack


def _decide(
    info: StackInfo,
    live: Mapping[str, str],
    now: dt.datetime,
    project: config.Settings,
    root: Path,
) -> Decision:
    branch = live.get(info.stack)
    age = now - info.last_update if info.last_update else None
    guarded = protection(info.stack, project, root)
    if guarded:
        return Decision(info, branch, age, guarded, destroy=False)
    if info.locked_by:
        return Decision(info, branch, age, f"kept: locked by {info.locked_by}", destroy=False)
    if info.update_in_progress:
        return Decision(info, branch, age, "kept: an update is running on it", destroy=False)
    if branch is None:
        return Decision(info, None, age, "stale: its branch is gone", destroy=True)
    ttl = config.settings_for_stack(info.stack, root).stack_ttl_hours
    if age is None:
        reason, stale = f"kept: branch live, never updated (TTL {ttl}h)", False
    elif _hours(age) > ttl:
        reason, stale = f"stale: not updated for {format_age(age)}, TTL {ttl}h", True
    else:
        reason, stale = f"kept: branch live, updated {format_age(age)} ago (TTL {ttl}h)", False
    return Decision(info, branch, age, reason, destroy=stale)


# ---------------------------------------------------------------- acting


def destroy(
    pulumi: str,
    decision: Decision,
    project: config.Settings,
    root: Path,
    stream: TextIO,
) -> int:
    """`pulumi destroy --remove` one stack, streaming its output; returns pulumi's exit code."""
    # Second guard, independent of how the plan was made: a protected stack
    # never reaches pulumi destroy, whatever a bug upstream decided.
    guarded = protection(decision.info.stack, project, root)
    if guarded or not decision.destroy:
        raise aws.ScriptError(
            f"refusing to destroy stack {decision.info.stack!r}: {guarded or 'not stale'}"
        )
    command = [pulumi, "destroy", "--stack", decision.info.name, "--yes", "--remove"]
    command.append("--non-interactive")
    print(f"cleanup: $ {' '.join(command)}", file=stream, flush=True)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"cleanup:   | {line.rstrip()}", file=stream, flush=True)
    return process.returncode


def _action(decision: Decision, apply: bool, outcome: Mapping[str, str]) -> str:
    if not decision.destroy:
        return "keep"
    if not apply:
        return "would destroy"
    return outcome.get(decision.info.stack, "not attempted")


def report(decisions: Sequence[Decision], apply: bool, outcome: Mapping[str, str]) -> str:
    rows = [
        [
            d.info.stack,
            d.branch or ("-" if d.info.stack == naming.SHARED_STACK else DELETED),
            format_age(d.age),
            d.reason,
            _action(d, apply, outcome),
        ]
        for d in decisions
    ]
    stale = [d for d in decisions if d.destroy]
    failed = [name for name, result in outcome.items() if result != "destroyed"]
    verb = "destroyed" if apply else "would be destroyed"
    counts = (
        f"{len(decisions)} stacks: {len(stale) - len(failed)} {verb}, "
        f"{len(decisions) - len(stale)} kept"
    )
    if failed:
        counts += f", {len(failed)} failed ({', '.join(failed)})"
    title = "### Stack cleanup" + ("" if apply else " (dry run: pass --yes to destroy)")
    table = summary.table(["stack", "branch", "age", "reason", "action"], rows)
    return f"{title}\n\n{table}\n\n{counts}\n"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("cleanup", __doc__.splitlines()[0])
    parser.add_argument("--yes", action="store_true", help="destroy (default: dry run)")
    branches = parser.add_mutually_exclusive_group()
    branches.add_argument("--remote", default="origin", help="git remote or URL (default origin)")
    branches.add_argument(
        "--branches-file",
        type=Path,
        help="live branches, one a line (or `git ls-remote --heads` output), instead of git",
    )
    branches.add_argument(
        "--github-repo",
        metavar="OWNER/NAME",
        help="list the live branches with GitHub's API ($GITHUB_TOKEN), instead of git",
    )
    parser.add_argument("--now", help="judge ages as of this ISO 8601 time (default: now)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, root: Path, stream: TextIO) -> int:
    now = parse_now(args.now)
    try:
        project = project_settings(root)
    except config.ConfigError as error:
        raise aws.UsageError(str(error)) from None
    if args.branches_file:
        source, branches = (
            f"--branches-file {args.branches_file}",
            file_branches(args.branches_file),
        )
    elif args.github_repo:
        source, branches = f"GitHub {args.github_repo}", github_branches(args.github_repo)
    else:
        source, branches = f"remote {args.remote}", remote_branches(args.remote, root)
    live = branch_slugs(branches, stream)
    # An empty or wrong branch list would make every stack look orphaned.
    if project.default_branch not in live.values():
        raise aws.UsageError(
            f"the branches from {source} do not include the default branch "
            f"{project.default_branch!r}; refusing to judge stacks against an incomplete list "
            "(wrong --remote or --branches-file?)"
        )
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise aws.UsageError(INSTALL_HINT)
    listed = with_locks(list_stacks(pulumi, root), project.project)
    decisions = decide(listed, live, now, project, root)
    stale = [d for d in decisions if d.destroy]
    outcome: dict[str, str] = {}
    if args.yes and stale:
        progress = Progress("cleanup", total=len(stale), stream=stream)
        for decision in stale:
            name = decision.info.stack
            progress.note(f"destroying {name} ({decision.reason})")
            try:
                code = destroy(pulumi, decision, project, root, stream)
                outcome[name] = "destroyed" if code == 0 else f"FAILED (exit {code})"
            except aws.ScriptError as error:
                outcome[name] = f"REFUSED ({error})"
            progress.step(f"{name}: {outcome[name]}")
    elif stale:
        print(
            f"cleanup: dry run: {len(stale)} stale stacks would be destroyed; pass --yes",
            file=stream,
        )
    markdown = report(decisions, args.yes, outcome)
    print(markdown)
    summary.write_step_summary(markdown)
    return 1 if any(result != "destroyed" for result in outcome.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return aws.run("cleanup", lambda: run(args, PROJECT_ROOT, sys.stderr))


if __name__ == "__main__":
    raise SystemExit(main())
