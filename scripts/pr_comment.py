"""Post a stack's preview on its pull request: one sticky comment, edited in place.

    python -m scripts.pr_comment --branch NAME [--stack SLUG] --output FILE
        [--outcome success|failure|cancelled|skipped] [--pr N] [--repo OWNER/NAME]
        [--sha SHA] [--run-url URL] [--cost FILE] [--evaluation FILE] [--body-file PATH]
        [--dry-run]

The body starts with a hidden marker naming the stack (`<!-- mlship:preview:STACK -->`),
then a summary (outcome, the resource changes Pulumi counted, commit, run, the cost, the
branch's model metrics against the default branch's with their deltas), then the
preview's output in a collapsed block. GitHub refuses a comment over 65,536 characters:
the output is cut to fit, the summary always comes first, and the comment says what was
cut. The same body goes to the job's step summary.

The comment carrying the marker is looked for on every page of the pull request's
comments and edited in place; without one, it is created. The token comes from the
environment (GITHUB_TOKEN) and is never printed; the API from GITHUB_API_URL, the
repository from GITHUB_REPOSITORY, the pull request from --pr or the event payload.
Exit codes: 0 posted (or a dry run), 1 GitHub refused or could not be reached, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import naming
from scripts.lib import cli, gate, summary

MAX_BODY = 65_536  # GitHub: "body is too long (maximum is 65536 characters)"
MARKER_PREFIX = "mlship:preview:"
DEFAULT_API = "https://api.github.com"
TIMEOUT_SECONDS = 30
PER_PAGE = 100

OUTCOMES = {
    "success": "✅ succeeded",
    "failure": "❌ failed",
    "cancelled": "⚪ cancelled",
    "skipped": "⚪ skipped",
}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BACKTICKS = re.compile(r"`+")


class UsageError(Exception):
    """Bad arguments or environment: nothing was sent."""


class GitHubError(Exception):
    """GitHub refused a request, or could not be reached."""


def marker(stack: str) -> str:
    if not _STACK.fullmatch(stack):
        raise UsageError(f"stack {stack!r} is not a stack name (letters, digits, . _ -)")
    return f"<!-- {MARKER_PREFIX}{stack} -->"


def code(text: str) -> str:
    """`text` as inline code, whatever backticks it holds."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def clean_output(text: str) -> str:
    """Preview output as a reader wants it: no colour codes, no carriage returns."""
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def resource_changes(output: str) -> list[str]:
    """The lines of Pulumi's `Resources:` block (`+ 3 to create`, `12 unchanged`), if any."""
    lines = output.splitlines()
    changes: list[str] = []
    for index, line in enumerate(lines):
        if line.strip() == "Resources:":
            changes = []
            for entry in lines[index + 1 :]:
                if not entry.strip() or not entry.startswith((" ", "\t")):
                    break
                changes.append(entry.strip())
    return changes


def build_summary(
    *,
    stack: str,
    branch: str,
    outcome: str,
    output: str,
    sha: str = "",
    run_url: str = "",
    cost: str = "",
    evaluation: str = "",
) -> str:
    lines = [f"### Pulumi preview of {code(stack)}: {OUTCOMES.get(outcome, outcome)}", ""]
    facts = [f"branch {code(branch)}"]
    if sha:
        facts.append(f"commit {code(sha[:12])}")
    if run_url:
        facts.append(f"[run log]({run_url})")
    lines += [" · ".join(facts), ""]
    changes = resource_changes(output)
    if changes:
        lines += [summary.table(["resources"], [[change] for change in changes]), ""]
    elif outcome == "success":
        lines += ["Pulumi printed no resource counts.", ""]
    if cost.strip():
        lines += [cost.strip(), ""]
    lines += [_evaluation(evaluation), ""]
    return "\n".join(lines).rstrip() + "\n"


def _evaluation(text: str) -> str:
    """The branch's model against the default branch's, as its last training run saw it."""
    if not text.strip():
        return "_No training run of this branch yet: push it to train and compare its model._"
    try:
        data = json.loads(text)
        comparison = gate.load(text)
    except (ValueError, TypeError, AttributeError) as error:
        return f"_The latest evaluation could not be read: {error}_"
    commit = str(data.get("commit") or "")[:12]
    return f"{gate.markdown(comparison, gate.title(data))}\n\nTrained from commit {code(commit)}."


def _fence(text: str) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(3, longest + 1)


def build_body(stack: str, summary_text: str, output: str, limit: int = MAX_BODY) -> str:
    """Marker, summary, then the output; cut to `limit` characters, the output first.

    The result never exceeds `limit`, starts with the marker and the summary (cut only
    if the summary alone would not fit), and says when and how much was cut.
    """
    head = f"{marker(stack)}\n{summary_text.rstrip()}\n"
    output = output.rstrip("\n") or "(the preview printed nothing)"
    fence = _fence(output)

    def assemble(shown: str, note: str) -> str:
        return (
            f"{head}{note}\n<details><summary>Preview output</summary>\n\n"
            f"{fence}text\n{shown}\n{fence}\n\n</details>\n"
        )

    body = assemble(output, "")
    if len(body) <= limit:
        return body

    def note(hidden: int) -> str:
        return (
            f"\n> [!NOTE]\n> Trimmed to fit GitHub's {limit:,}-character limit: the last "
            f"{hidden:,} characters of the output are not shown here; the job log has all "
            "of it.\n"
        )

    # The widest the note can be: as many digits as the output's whole length.
    widest_note = note(10 ** len(str(len(output))) - 1)
    budget = limit - len(assemble("", widest_note))
    if budget < 0:
        # The summary alone does not fit: cut it too, and say so.
        cut_mark = "\n\n(summary trimmed)\n"
        room = len(summary_text.rstrip()) + budget - len(cut_mark)
        head = f"{marker(stack)}\n{summary_text.rstrip()[: max(room, 0)]}{cut_mark}"
        budget = max(limit - len(assemble("", widest_note)), 0)
    shown = output[:budget]
    line_end = shown.rfind("\n")
    if line_end > budget // 2:
        shown = shown[:line_end]  # cut at a line boundary when that loses little
    body = assemble(shown, note(len(output) - len(shown)))
    if len(body) > limit:  # only a limit too small for the frame itself gets here
        body = body[:limit]
    return body


@dataclass
class Comment:
    id: int
    url: str
    body: str


class GitHub:
    """The few REST calls the sticky comment needs, with errors that say what to do."""

    def __init__(self, api_url: str, token: str, session: Any | None = None) -> None:
        import requests  # noqa: PLC0415 - only the posting path needs it

        self.api_url = api_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "mlship-pr-comment",
            }
        )
        self._request_error = requests.RequestException

    def _call(self, method: str, url: str, doing: str, **kwargs: Any) -> Any:
        try:
            response = self.session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
        except self._request_error as error:
            raise GitHubError(
                f"cannot reach GitHub at {self.api_url} while {doing}: {type(error).__name__}"
            ) from None
        if response.status_code >= 400:
            raise GitHubError(_refusal(response, doing))
        return response

    def comments(self, repo: str, pr: int) -> Iterator[Comment]:
        url: str | None = f"{self.api_url}/repos/{repo}/issues/{pr}/comments"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        page = 0
        while url:
            page += 1
            response = self._call(
                "GET", url, f"listing comments of #{pr} (page {page})", params=params
            )
            for item in response.json():
                yield Comment(int(item["id"]), item.get("html_url", ""), item.get("body") or "")
            # The next page's URL carries every parameter itself.
            url, params = response.links.get("next", {}).get("url"), None

    def upsert(self, repo: str, pr: int, stack: str, body: str) -> tuple[str, str]:
        """Edit the comment carrying the stack's marker, or create it: (action, url)."""
        tag = marker(stack)
        found = next((c for c in self.comments(repo, pr) if c.body.startswith(tag)), None)
        if found is not None:
            response = self._call(
                "PATCH",
                f"{self.api_url}/repos/{repo}/issues/comments/{found.id}",
                f"editing comment {found.id} on #{pr}",
                json={"body": body},
            )
            return "updated", response.json().get("html_url", found.url)
        response = self._call(
            "POST",
            f"{self.api_url}/repos/{repo}/issues/{pr}/comments",
            f"commenting on #{pr}",
            json={"body": body},
        )
        return "created", response.json().get("html_url", "")


def _refusal(response: Any, doing: str) -> str:
    try:
        message = response.json().get("message", "")
    except ValueError:
        message = response.text[:200]
    status = response.status_code
    said = f" GitHub said: {message}" if message else ""
    if status == 401:
        hint = "the token was not accepted; set GITHUB_TOKEN to the job's token"
    elif status == 403:
        hint = (
            "the token may not write to the pull request: grant the job "
            "`permissions: pull-requests: write` (a pull request from a fork only ever "
            "gets a read-only token)"
        )
    elif status == 404:
        hint = (
            "not found: check the repository (OWNER/NAME) and the pull request number, "
            "and that the token can see the repository"
        )
    else:
        hint = "GitHub could not do it"
    return f"GitHub answered {status} while {doing}: {hint}.{said}"


def _event_pr(path: str | None) -> int | None:
    if not path or not Path(path).is_file():
        return None
    try:
        event: Mapping[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    return int(number) if number else None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("pr_comment", __doc__.splitlines()[0])
    parser.add_argument("--branch", required=True, help="the pull request's head branch")
    parser.add_argument("--stack", default="", help="the stack (default: the branch's slug)")
    parser.add_argument("--output", type=Path, required=True, help="the preview's output")
    parser.add_argument("--outcome", choices=list(OUTCOMES), default="success")
    parser.add_argument("--pr", type=int, help="pull request number (default: the event's)")
    parser.add_argument("--repo", help="OWNER/NAME (default: $GITHUB_REPOSITORY)")
    parser.add_argument("--sha", default=os.environ.get("GITHUB_SHA", ""), help="the commit")
    parser.add_argument("--run-url", default="", help="link to the run's log")
    parser.add_argument(
        "--cost", type=Path, help="the cost estimate to carry (`scripts.cost --format comment`)"
    )
    parser.add_argument(
        "--evaluation",
        type=Path,
        help="the branch's latest model evaluation (`scripts.evaluation`), shown as a table",
    )
    parser.add_argument("--body-file", type=Path, help="also write the body here")
    parser.add_argument("--dry-run", action="store_true", help="print the body; post nothing")
    return parser.parse_args(argv)


def _read_output(path: Path) -> str:
    try:
        return clean_output(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as error:
        return f"(no preview output was recorded: {path}: {error.strerror or error})"


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        stack = args.stack or naming.slugify(args.branch)
    except naming.NamingError as error:
        raise UsageError(f"--branch {args.branch!r}: {error}") from None
    output = _read_output(args.output)
    summary_text = build_summary(
        stack=stack,
        branch=args.branch,
        outcome=args.outcome,
        output=output,
        sha=args.sha,
        run_url=args.run_url,
        # A missing estimate (the step failed) leaves the comment without one.
        cost=args.cost.read_text(encoding="utf-8") if args.cost and args.cost.is_file() else "",
        # Likewise a branch never trained, or a fetch that failed: the comment says so.
        evaluation=args.evaluation.read_text(encoding="utf-8")
        if args.evaluation and args.evaluation.is_file()
        else "",
    )
    body = build_body(stack, summary_text, output)
    summary.write_step_summary(body)
    if args.body_file:
        args.body_file.parent.mkdir(parents=True, exist_ok=True)
        args.body_file.write_text(body, encoding="utf-8")
    if args.dry_run:
        print(body)
        return 0

    token = environ.get("GITHUB_TOKEN", "")
    repo = args.repo or environ.get("GITHUB_REPOSITORY", "")
    pr = args.pr or _event_pr(environ.get("GITHUB_EVENT_PATH"))
    if not token:
        raise UsageError("GITHUB_TOKEN is not set: pass the job's token in the step's env")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise UsageError(f"repository {repo!r} is not OWNER/NAME: pass --repo")
    if not pr:
        raise UsageError("no pull request number: pass --pr (or run on a pull_request event)")
    client = GitHub(environ.get("GITHUB_API_URL") or DEFAULT_API, token)
    action, url = client.upsert(repo, pr, stack, body)
    print(f"pr_comment: {action} the preview comment of stack {stack} on #{pr}: {url}")
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args, os.environ if environ is None else environ)
    except UsageError as error:
        print(f"pr_comment: {error}", file=sys.stderr)
        return 2
    except GitHubError as error:
        print(f"pr_comment: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
