"""Draw the pipeline from the workflow files, into the README between its markers.

    python -m scripts.pipeline_diagram [--check] [--readme PATH] [--workflows DIR]

Reads every workflow that is triggered by an event (not the reusable ones, which it
follows through `uses:`) and writes a Mermaid flowchart and a table of the jobs: what
starts them, what they wait for, their approval or deployment environment, the AWS role
they assume, the nox sessions they call and their concurrency. The README block between
`<!-- pipeline:start -->` and `<!-- pipeline:end -->` is replaced with it.

--check rewrites nothing: exit 1 when the README's block differs from what the workflows
say (run without --check to update it), 0 when it is current.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- pipeline:start -->"
END = "<!-- pipeline:end -->"
GENERATED = (
    "<!-- Generated from .github/workflows by `nox -s docs` (python -m scripts.pipeline_diagram): "
    "edit the workflows, then run it (a test fails while this is stale). -->"
)
TRIGGER_ORDER = ("push", "pull_request", "delete", "schedule", "workflow_dispatch")
_ROLE = re.compile(r"vars\.AWS_([A-Z_]+)_ROLE_ARN")
_NOX = re.compile(r"python -m nox\b(?P<args>[^\n]*)")
_SCRIPT = re.compile(r"python -m (scripts\.\w+)")
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MATRIX = re.compile(r"\$\{\{\s*matrix\.[^}]*\}\}")


class DiagramError(Exception):
    pass


@dataclass
class Job:
    workflow: str  # file stem of the calling workflow
    id: str
    name: str
    needs: list[str]
    environment: str = ""
    roles: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    concurrency: str = ""
    condition: str = ""

    @property
    def node(self) -> str:
        return re.sub(r"\W", "_", f"{self.workflow}_{self.id}")


@dataclass
class Workflow:
    file: str
    name: str
    triggers: list[str]
    jobs: list[Job]


def load_yaml(path: Path) -> dict[str, Any]:
    # libyaml's safe loader where PyYAML ships it: the same mapping, several times faster.
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
    if not isinstance(data, dict):
        raise DiagramError(f"{path} is not a workflow (no mapping at the top)")
    return data


def triggers_of(workflow: Mapping[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean true.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on or {})


def _plain(text: str) -> str:
    """An expression as a reader wants it: `${{ inputs.stack }}` -> `{stack}`."""

    def name(match: re.Match[str]) -> str:
        expression = match[1]
        fallback = re.search(r"\|\|\s*'([^']*)'", expression)
        if fallback:
            return fallback[1]
        return "{" + expression.split(".")[-1].strip() + "}"

    return _EXPRESSION.sub(name, text)


def _resolve(
    value: str, step_env: Mapping[str, Any], inputs: Mapping[str, Any], given: Mapping[str, Any]
) -> str:
    """A `$VAR` of a run step, followed through its env to the workflow's inputs."""
    if not value.startswith("$"):
        return value
    source = str(step_env.get(value.lstrip("$").strip("{}"), ""))
    match = re.fullmatch(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", source)
    if not match:
        return value
    name = match[1]
    supplied = given.get(name)
    if supplied is not None and "${{" not in str(supplied):
        return str(supplied)
    if supplied is not None:
        return _plain(str(supplied))
    return str((inputs.get(name) or {}).get("default", value))


def _runs(
    steps: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any], given: Mapping[str, Any]
) -> list[str]:
    found: list[str] = []
    for step in steps:
        run = str(step.get("run", ""))
        env = step.get("env") or {}
        for match in _NOX.finditer(run):
            words = match["args"].split(" -- ")[0].split()
            sessions: list[str] = []
            taking = False
            for word in words:
                if word in {"-s", "--session", "--sessions"}:
                    taking = True
                elif word.startswith("-"):
                    taking = False
                elif taking:
                    sessions += _resolve(word, env, inputs, given).split()
            if sessions:
                found.append(f"nox -s {' '.join(sessions)}")
        found += [f"python -m {m}" for m in _SCRIPT.findall(run)]
    return list(dict.fromkeys(found))


def _matrix(spec: Mapping[str, Any]) -> str:
    """` (shared, main)` for a job run once per matrix entry."""
    matrix = (spec.get("strategy") or {}).get("matrix") or {}
    values = [
        str(entry.get("name", entry)) if isinstance(entry, Mapping) else str(entry)
        for key, entries in matrix.items()
        if key not in {"include", "exclude"} and isinstance(entries, list)
        for entry in entries
    ]
    return f" ({', '.join(values)})" if values else ""


def _concurrency(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        return f"{_plain(value)} (queued)"
    group = _plain(str(value.get("group", "")))
    mode = "cancels superseded" if value.get("cancel-in-progress") else "queued"
    return f"{group} ({mode})"


def _environment(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("name", "")
    return _plain(str(value or ""))


def _job(
    workflow_stem: str,
    job_id: str,
    spec: Mapping[str, Any],
    root: Path,
    workflow_concurrency: Any,
) -> Job:
    needs = spec.get("needs") or []
    job = Job(
        workflow=workflow_stem,
        id=job_id,
        # A matrix job's name names its entry; the diagram lists the entries instead.
        name=_plain(_MATRIX.sub("", str(spec.get("name") or job_id)).strip()) + _matrix(spec),
        needs=[needs] if isinstance(needs, str) else list(needs),
        concurrency=_concurrency(spec.get("concurrency") or workflow_concurrency),
        condition=_EXPRESSION.sub(r"\1", " ".join(str(spec.get("if", "")).split())),
    )
    bodies: list[tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]] = []
    uses = spec.get("uses")
    if uses:
        if not str(uses).startswith("./"):
            raise DiagramError(f"job {job_id} calls a remote workflow {uses}: not drawn")
        called = load_yaml(root / str(uses).removeprefix("./"))
        call = (triggers_of(called).get("workflow_call") or {}).get("inputs") or {}
        for inner in (called.get("jobs") or {}).values():
            bodies.append((inner, call, spec.get("with") or {}))
    else:
        bodies.append((spec, {}, {}))
    for body, inputs, given in bodies:
        # What a called workflow's expressions mean, with this caller's inputs.
        environment = _environment(body.get("environment"))
        for name, value in given.items():
            environment = environment.replace("{" + name + "}", _plain(str(value)))
        job.environment = job.environment or environment
        job.roles += [
            r.lower().replace("_", "-")
            for r in _ROLE.findall(yaml.safe_dump(body.get("steps") or []))
        ]
        job.runs += _runs(body.get("steps") or [], inputs, given)
        if not job.concurrency and body.get("concurrency"):
            job.concurrency = _concurrency(body.get("concurrency"))
            for name, value in given.items():
                job.concurrency = job.concurrency.replace("{" + name + "}", _plain(str(value)))
    job.roles = list(dict.fromkeys(job.roles))
    job.runs = list(dict.fromkeys(job.runs))
    return job


def read_workflows(directory: Path, root: Path) -> list[Workflow]:
    workflows = []
    for path in sorted(directory.glob("*.y*ml")):
        data = load_yaml(path)
        triggers = [t for t in triggers_of(data) if t != "workflow_call"]
        if not triggers:
            continue  # reusable: drawn where it is called
        jobs = [
            _job(path.stem, job_id, spec, root, data.get("concurrency"))
            for job_id, spec in (data.get("jobs") or {}).items()
        ]
        workflows.append(Workflow(path.name, str(data.get("name") or path.stem), triggers, jobs))

    def order(workflow: Workflow) -> tuple[int, str]:
        first = workflow.triggers[0]
        return (TRIGGER_ORDER.index(first) if first in TRIGGER_ORDER else 99, workflow.file)

    return sorted(workflows, key=order)


def _is_gate(environment: str) -> bool:
    """An approval environment: a fixed name. Deployment environments carry the stack."""
    return bool(environment) and "{" not in environment


def mermaid(workflows: Sequence[Workflow]) -> str:
    lines = ["flowchart LR"]
    for workflow in workflows:
        title = f"{workflow.file}: on {', '.join(workflow.triggers)}"
        graph = re.sub(r"\W", "_", workflow.file)
        lines.append(f'  subgraph {graph}["{title}"]')
        nodes = {job.id: job.node for job in workflow.jobs}
        for job in workflow.jobs:
            label = [job.name]
            if job.environment and not _is_gate(job.environment):
                label.append(f"env {job.environment}")
            if job.roles:
                label.append(f"role: {', '.join(job.roles)}")
            label += job.runs
            text = "<br/>".join(part.replace('"', "'") for part in label)
            lines.append(f'    {job.node}["{text}"]')
            if _is_gate(job.environment):
                lines.append(f'    {job.node}_gate{{{{"approval: {job.environment}"}}}}')
        for job in workflow.jobs:
            target = f"{job.node}_gate" if _is_gate(job.environment) else job.node
            # Only the edges a reader needs: a need that another need implies is implicit.
            implied = {
                earlier
                for need in job.needs
                for earlier in _all_needs(workflow, need)
                if earlier != need
            }
            lines += [
                f"    {nodes[need]} --> {target}" for need in job.needs if need not in implied
            ]
            if _is_gate(job.environment):
                lines.append(f"    {job.node}_gate --> {job.node}")
        lines.append("  end")
    return "\n".join(lines)


def _all_needs(workflow: Workflow, job_id: str) -> set[str]:
    jobs = {j.id: j for j in workflow.jobs}
    seen: set[str] = set()
    todo = [job_id]
    while todo:
        current = todo.pop()
        if current in seen or current not in jobs:
            continue
        seen.add(current)
        todo += jobs[current].needs
    return seen


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def table(workflows: Sequence[Workflow]) -> str:
    rows = [
        "| workflow | job | needs | environment | AWS role | runs | concurrency |",
        "|---|---|---|---|---|---|---|",
    ]
    for workflow in workflows:
        for job in workflow.jobs:
            environment = (
                f"{job.environment} (approval)" if _is_gate(job.environment) else job.environment
            )
            cells = [
                f"`{workflow.file}` ({', '.join(workflow.triggers)})",
                job.name + (f" — if `{job.condition}`" if job.condition else ""),
                ", ".join(job.needs),
                environment,
                ", ".join(job.roles),
                ", ".join(f"`{r}`" for r in job.runs),
                job.concurrency,
            ]
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


NOTES = """\
Approval gates are GitHub environments with required reviewers: the job waits in the
Actions UI until someone approves, and the promote role trusts only tokens issued inside
those environments, so no other job can move traffic or release. Each such job first runs
`nox -s preflight`, which stops it unless its environment really requires a reviewer
(GitHub creates an environment a job names, unprotected). Each deploy runs in its
branch's environment (`branch/` and the stack's slug), whose URL is the API's. Every job
starts from `permissions: {}`, is granted what it uses, and gets AWS only through OIDC;
the branch name reaches scripts through `env:`, never inside `run:`.

`tests/workflows` runs these files under act (host mode): remote actions are replaced by
local stand-ins, AWS is moto, the Pulumi CLI a recording stand-in, GitHub's API a local
server. What act ignores (environments, concurrency, OIDC) is checked from the files."""


def render(directory: Path, root: Path = ROOT) -> str:
    workflows = read_workflows(directory, root)
    return "\n".join(
        [GENERATED, "", "```mermaid", mermaid(workflows), "```", "", table(workflows), "", NOTES]
    )


def replace_block(readme: str, block: str) -> str:
    if (
        readme.count(START) != 1
        or readme.count(END) != 1
        or readme.index(START) > readme.index(END)
    ):
        raise DiagramError(f"the README needs exactly one {START} ... {END} block")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{block}\n{END}{after}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.pipeline_diagram", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--workflows", type=Path, default=ROOT / ".github/workflows")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        readme = args.readme.read_text(encoding="utf-8")
        updated = replace_block(readme, render(args.workflows, args.workflows.parent.parent))
    except (OSError, DiagramError, yaml.YAMLError) as error:
        print(f"pipeline_diagram: {error}", file=sys.stderr)
        return 2
    if args.check:
        if updated != readme:
            print(
                f"pipeline_diagram: the pipeline in {args.readme} is stale; "
                "run `nox -s docs` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"pipeline_diagram: {args.readme} is current")
        return 0
    if updated != readme:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"pipeline_diagram: updated {args.readme}")
    else:
        print(f"pipeline_diagram: {args.readme} was already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
