"""Evaluate the real Pulumi program offline, under Pulumi's mock runtime.

No Pulumi CLI, no credentials, no network: the program runs exactly as
`pulumi up` would run it, but each resource registration is answered by
`ProgramMocks`, which returns the computed outputs AWS would (ARNs, ids,
versions) so the program's own wiring is exercised. The result is an
inventory of every resource the stack would hold.

    python -m scripts.synth --branch feature/x [--format tree|markdown|json] [--output PATH]
    python -m scripts.synth --stack shared --config githubRepository=OWNER/NAME

The default output is a compact tree for a terminal (components, resource
counts, the policy verdict); `--format markdown` is the full inventory (also
written to $GITHUB_STEP_SUMMARY), `--format json` the same for machines. The
account id in bucket names is a placeholder: there is no AWS account offline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import __main__ as program
from infra import config, naming
from policy import rules as policy_rules
from scripts.lib import cli, cost_estimate, cost_report, price_table, summary

MOCK_ACCOUNT_ID = "123456789012"
STACK_TYPE = "pulumi:pulumi:Stack"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"

# The settings worth a column in the inventory, by the wire name Pulumi uses.
_INTERESTING = (
    "runtime",
    "memorySize",
    "timeout",
    "publish",
    "functionVersion",
    "deploymentConfigName",
    "computePlatform",
    "stageName",
    "pathPart",
    "httpMethod",
    "retentionDays",
    "retentionInDays",
    "forceDestroy",
    "instanceType",
    "sseAlgorithm",
    "eventPattern",
    "statisticsThreshold",
    "threshold",
    "enabled",
)

_ARN_SERVICE = {
    "cloudwatch/eventBus": ("events", "event-bus/{name}"),
    "cloudwatch/eventRule": ("events", "rule/{name}"),
    "cloudwatch/eventArchive": ("events", "archive/{name}"),
    "cloudwatch/logGroup": ("logs", "log-group:{name}"),
    "cloudwatch/metricAlarm": ("cloudwatch", "alarm:{name}"),
    "lambda/function": ("lambda", "function:{name}"),
    "lambda/alias": ("lambda", "function:{functionName}:{name}"),
    "sqs/queue": ("sqs", "{name}"),
    "sns/topic": ("sns", "{name}"),
    "codebuild/project": ("codebuild", "project/{name}"),
    "codedeploy/application": ("codedeploy", "application:{name}"),
    "codedeploy/deploymentGroup": ("codedeploy", "deploymentgroup:{appName}/{deploymentGroupName}"),
    "codeartifact/domain": ("codeartifact", "domain/{domain}"),
    "codeartifact/repository": ("codeartifact", "repository/{domain}/{repository}"),
    "sagemaker/notebookInstance": ("sagemaker", "notebook-instance/{name}"),
    "apigateway/restApi": ("apigateway", "/restapis/{name}"),
    "kms/key": ("kms", "key/{name}"),
}


class ProgramMocks(pulumi.runtime.Mocks):
    """Answers registrations with the outputs AWS computes, so the wiring is real."""

    def __init__(self, region: str, account_id: str = MOCK_ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id
        self.published_versions = 0

    def _arn(self, service: str, path: str, regional: bool = True) -> str:
        region = self.region if regional else ""
        account = self.account_id
        return f"arn:aws:{service}:{region}:{account}:{path}"

    def new_resource(  # noqa: PLR0912 - one branch per AWS type whose outputs the program reads
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        module_type = args.typ.split(":")[1] if args.typ.count(":") == 2 else args.typ
        name = str(state.get("name") or state.get("bucket") or args.name)
        resource_id = f"{name}-id"
        if args.typ == STACK_REFERENCE_TYPE:
            state["outputs"] = self.stack_reference_outputs(str(state.get("name", "")))
            return f"{state.get('name')}", state
        if module_type in _ARN_SERVICE:
            service, path = _ARN_SERVICE[module_type]
            values = {"name": name, **{k: v for k, v in state.items() if isinstance(v, str)}}
            state.setdefault("arn", self._arn(service, path.format_map(_Blank(values))))
        if module_type == "s3/bucket":
            state.update(bucket=name, arn=f"arn:aws:s3:::{name}")
            resource_id = name
        elif module_type == "iam/role":
            state["arn"] = f"arn:aws:iam::{self.account_id}:role/{name}"
            resource_id = name
        elif module_type == "iam/policy":
            state["arn"] = f"arn:aws:iam::{self.account_id}:policy/{name}"
        elif module_type == "iam/openIdConnectProvider":
            state["arn"] = f"arn:aws:iam::{self.account_id}:oidc-provider/{state.get('url', '')}"
        elif module_type == "lambda/function":
            if state.get("publish"):
                self.published_versions += 1
            version = str(self.published_versions) if state.get("publish") else "$LATEST"
            state.update(
                version=version,
                qualifiedArn=f"{state['arn']}:{version}",
                invokeArn=self._invoke_arn(state["arn"]),
                qualifiedInvokeArn=self._invoke_arn(f"{state['arn']}:{version}"),
            )
            resource_id = name
        elif module_type == "lambda/alias":
            state["invokeArn"] = self._invoke_arn(state["arn"])
        elif module_type == "apigateway/restApi":
            resource_id = f"{name[:6]}api01"
            state.update(
                rootResourceId=f"{resource_id}-root",
                executionArn=f"arn:aws:execute-api:{self.region}:{self.account_id}:{resource_id}",
            )
        elif module_type == "apigateway/stage":
            state["invokeUrl"] = (
                f"https://{state.get('restApi')}.execute-api.{self.region}.amazonaws.com/"
                f"{state.get('stageName')}"
            )
        elif module_type == "sqs/queue":
            state["url"] = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
        elif module_type == "codeartifact/domain":
            state["owner"] = self.account_id
        elif module_type == "kms/key":
            resource_id = f"{args.name}-key-id"
        return resource_id, state

    def _invoke_arn(self, function_arn: str) -> str:
        return (
            f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
            f"{function_arn}/invocations"
        )

    def stack_reference_outputs(self, reference: str) -> dict[str, Any]:
        """What the shared stack exports, named by the same naming module it uses."""
        project = reference.split("/")[-2] if reference.count("/") == 2 else reference
        shared = naming.shared_names(project, self.account_id)
        domain_arn = self._arn("codeartifact", f"domain/{shared.codeartifact_domain}")
        repo_arn = self._arn(
            "codeartifact", f"repository/{shared.codeartifact_domain}/{shared.team_repository}"
        )
        return {
            "codeartifact_domain": shared.codeartifact_domain,
            "codeartifact_domain_owner": self.account_id,
            "codeartifact_domain_arn": domain_arn,
            "codeartifact_repository": shared.team_repository,
            "codeartifact_repository_arn": repo_arn,
            "role_boundary_arn": f"arn:aws:iam::{self.account_id}:policy/{shared.role_boundary}",
            "protected_role_boundary_arn": (
                f"arn:aws:iam::{self.account_id}:policy/{shared.protected_role_boundary}"
            ),
        }

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/synth",
                "userId": "SYNTH",
                "id": self.account_id,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        raise NotImplementedError(f"synth has no mock for the call {args.token}")


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return key


@dataclass
class Registration:
    """One resource as the engine would see it: identity, options and inputs."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    depends_on: list[str]
    inputs: dict[str, Any] = field(repr=False)

    @property
    def physical_name(self) -> str:
        for key in ("name", "bucket", "deploymentGroupName", "stageName", "repository", "domain"):
            value = self.inputs.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    @property
    def parent_name(self) -> str:
        if not self.parent or f"::{STACK_TYPE}::" in self.parent:
            return ""
        return self.parent.rsplit("::", 1)[-1]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping what it was asked to register, in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                provider=request.provider,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges),
                depends_on=list(request.dependencies),
                inputs=rpc.deserialize_properties(request.object),
            )
        )
        return response


@dataclass
class Synthesis:
    project: str
    stack: str
    kind: str
    resources: list[Registration]
    outputs: dict[str, Any]
    violations: list[policy_rules.Violation] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {len(found)}")
        return found[0]


class SynthError(RuntimeError):
    """The program failed; the message is the program's own error."""


def _config_string(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run_under_mocks(
    build: Callable[[], Any],
    *,
    project: str,
    stack: str,
    config_values: Mapping[str, str] | None = None,
    region: str = "us-east-1",
    account_id: str = MOCK_ACCOUNT_ID,
) -> Synthesis:
    """Run `build` (a whole program or one component) under mocks; return what it registered."""
    pulumi.runtime.set_all_config(dict(config_values or {}))
    mocks = ProgramMocks(region=region, account_id=account_id)
    monitor = RecordingMonitor(mocks)
    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    try:
        _sync_await(run_pulumi_func(build))
    except Exception as error:
        raise SynthError(f"{type(error).__name__}: {error}") from error
    outputs = _resolve_outputs()
    resources = [r for r in monitor.registrations if r.type != STACK_TYPE]
    kind = "protected" if stack == naming.SHARED_STACK else str(outputs.get("stack_kind", ""))
    return Synthesis(project, stack, kind, resources, outputs)


def synthesize(
    stack: str,
    *,
    root: Path = config.REPO_ROOT,
    overrides: Mapping[str, object] | None = None,
    account_id: str = MOCK_ACCOUNT_ID,
    environment: Mapping[str, str] | None = None,
) -> Synthesis:
    """Run the program for `stack` under mocks, with the config the CLI would give it.

    `overrides` are config values keyed as in Pulumi.yaml (`apiVersions`,
    `aws:region`), as `pulumi config set` would give them.
    """
    project, values = config.read_project_config(stack, root)
    values.update(overrides or {})
    qualified = {k if ":" in k else f"{project}:{k}": _config_string(v) for k, v in values.items()}
    return run_under_mocks(
        lambda: program.main(environment or {}),
        project=project,
        stack=stack,
        config_values=qualified,
        region=str(values.get("aws:region", "us-east-1")),
        account_id=account_id,
    )


def _resolve_outputs() -> dict[str, Any]:
    stack_resource = ROOT.get()
    if stack_resource is None:
        return {}
    resolved = {}
    for key, value in stack_resource.outputs.items():  # type: ignore[attr-defined]
        resolved[key] = _sync_await(pulumi.Output.from_input(value).future())
    return resolved


def _tree_order(resources: list[Registration]) -> list[Registration]:
    """Each component followed by its children, in registration order: the program's shape."""
    urns = {r.urn for r in resources}
    children: dict[str, list[Registration]] = {}
    for r in resources:
        children.setdefault(r.parent if r.parent in urns else "", []).append(r)
    ordered: list[Registration] = []

    def visit(parent: str) -> None:
        for r in children.get(parent, []):
            ordered.append(r)
            visit(r.urn)

    visit("")
    return ordered


SECRET_MASK = "[secret]"


def masked(value: Any) -> Any:
    """Inputs as `pulumi preview --json` shows them: every secret's value replaced."""
    if rpc.is_rpc_secret(value):
        return SECRET_MASK
    if isinstance(value, Mapping):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def inventory_rows(synthesis: Synthesis) -> list[dict[str, Any]]:
    rows = []
    for r in _tree_order(synthesis.resources):
        settings = {k: masked(r.inputs[k]) for k in _INTERESTING if k in r.inputs}
        rows.append(
            {
                "type": r.type,
                "name": r.name,
                "physical_name": r.physical_name,
                "parent": r.parent_name,
                "component": not r.custom,
                "protect": r.protect,
                "ignore_changes": r.ignore_changes,
                "settings": settings,
                # Everything the resource is given (policies included), for
                # reviewers and the access tests; the table shows `settings`.
                "inputs": masked(r.inputs),
            }
        )
    return rows


@dataclass(frozen=True)
class Counts:
    """One count of a synthesis, used by every rendering, so they never disagree."""

    resources: int  # AWS resources: what the account will hold
    components: int  # ComponentResources: the program's structure, nothing in AWS
    pulumi: int  # providers and stack references: Pulumi's own
    registrations: int  # all of the above

    @classmethod
    def of(cls, synthesis: Synthesis) -> Counts:
        regs = synthesis.resources
        own = sum(1 for r in regs if r.custom and r.type.startswith("pulumi:"))
        components = sum(1 for r in regs if not r.custom)
        return cls(len(regs) - own - components, components, own, len(regs))

    def describe(self) -> str:
        return (
            f"{self.resources} AWS resources in {self.components} components "
            f"(+ {self.pulumi} Pulumi provider/reference; {self.registrations} registrations)"
        )


def placeholder_note() -> str:
    return (
        f"account `{MOCK_ACCOUNT_ID}` in names is a placeholder: offline there is no AWS "
        "account; bucket names end in your account id when deployed"
    )


def _short_type(type_: str) -> str:
    return type_.rsplit(":", 1)[-1]


def _wrap(prefix: str, parts: Sequence[str], width: int) -> list[str]:
    lines: list[str] = []
    line = prefix
    for part in parts:
        piece = part if line == prefix else ", " + part
        if len(line) + len(piece) > width and line != prefix:
            lines.append(line + ",")
            line = " " * len(prefix) + part
        else:
            line += piece
    lines.append(line)
    return lines


def render_tree(synthesis: Synthesis, width: int = 100) -> str:
    """A terminal view: each component with its resources counted by type, then the verdict."""
    counts = Counts.of(synthesis)
    region = synthesis.outputs.get("region")
    lines = [
        f"stack {synthesis.stack} ({synthesis.kind}), project {synthesis.project}"
        + (f", region {region}" if region else ""),
        counts.describe(),
        f"account {MOCK_ACCOUNT_ID} in names is a placeholder (offline there is no AWS account)",
        "",
    ]
    by_urn = {r.urn: r for r in synthesis.resources}
    children: dict[str, list[Registration]] = {}
    for r in synthesis.resources:
        children.setdefault(r.parent if r.parent in by_urn else "", []).append(r)

    def subtree_total(urn: str) -> int:
        return sum((1 if c.custom else 0) + subtree_total(c.urn) for c in children.get(urn, []))

    def visit(parent: str, depth: int) -> None:
        kids = children.get(parent, [])
        aws_kids: dict[str, int] = {}
        for c in kids:
            if c.custom and not c.type.startswith("pulumi:"):
                aws_kids[_short_type(c.type)] = aws_kids.get(_short_type(c.type), 0) + 1
        indent = "  " * depth
        if aws_kids:
            parts = [f"{n} {t}" if n > 1 else t for t, n in sorted(aws_kids.items())]
            lines.extend(_wrap(indent + "· ", parts, width))
        for c in kids:
            if not c.custom:
                total = subtree_total(c.urn)
                label = f"{indent}{c.name} ({_short_type(c.type)}): {total} AWS resources"
                lines.append(label[:width])
                visit(c.urn, depth + 1)

    visit("", 0)
    lines.append("")
    blocking = [v for v in synthesis.violations if v.level == "mandatory"]
    if not synthesis.violations:
        lines.append(f"policy: no violations of the {len(policy_rules.RULES)} rules")
    else:
        lines.append(f"policy: {len(synthesis.violations)} violation(s), {len(blocking)} mandatory")
        for v in synthesis.violations:
            text = f"  [{v.rule}] {v.level} {v.resource_name or '(stack)'}: {v.message}"
            lines.extend(textwrap.wrap(text, width, subsequent_indent="    "))
    lines.append("full inventory: --format markdown (or json)")
    return "\n".join(line[:width] for line in lines) + "\n"


def render_json(synthesis: Synthesis) -> str:
    document = {
        "project": synthesis.project,
        "stack": synthesis.stack,
        "kind": synthesis.kind,
        # Every registration (components and providers too); `counts` splits them.
        "resource_count": len(synthesis.resources),
        "counts": dataclasses.asdict(Counts.of(synthesis)),
        "placeholder_account_id": MOCK_ACCOUNT_ID,
        "resources": inventory_rows(synthesis),
        "outputs": synthesis.outputs,
        "policy_violations": [v.as_dict() for v in synthesis.violations],
    }
    return json.dumps(document, indent=2, sort_keys=True, default=str)


def render_markdown(synthesis: Synthesis) -> str:
    by_type: dict[str, int] = {}
    for r in synthesis.resources:
        if r.custom:
            by_type[r.type] = by_type.get(r.type, 0) + 1
    lines = [
        f"## Synth: stack `{synthesis.stack}` ({synthesis.kind})",
        "",
        f"{Counts.of(synthesis).describe()}, evaluated offline with Pulumi's mock runtime; "
        f"{placeholder_note()}.",
        "",
    ]
    rows = [
        [
            f"`{row['type']}`",
            ("**" + row["name"] + "**") if row["component"] else row["name"],
            f"`{row['physical_name']}`" if row["physical_name"] else "",
            row["parent"],
            ", ".join(f"{k}={_short(v)}" for k, v in row["settings"].items())
            + (" protect" if row["protect"] else "")
            + (f" ignore_changes={row['ignore_changes']}" if row["ignore_changes"] else ""),
        ]
        for row in inventory_rows(synthesis)
    ]
    lines.append(
        summary.table(["type", "logical name", "physical name", "parent", "settings"], rows)
    )
    lines += ["", "### Policy", ""]
    if synthesis.violations:
        lines.append(
            summary.table(
                ["rule", "level", "resource", "message"],
                [
                    [v.rule, v.level, v.resource_name or "(stack)", v.message]
                    for v in synthesis.violations
                ],
            )
        )
    else:
        lines.append(f"No violations of the {len(policy_rules.RULES)} policy rules.")
    lines += ["", "### Outputs", ""]
    lines.append(
        summary.table(
            ["key", "value"], [[f"`{k}`", _short(v)] for k, v in synthesis.outputs.items()]
        )
    )
    lines += ["", "### Resource types", ""]
    lines.append(
        summary.table(["type", "count"], [[f"`{t}`", str(n)] for t, n in sorted(by_type.items())])
    )
    return "\n".join(lines) + "\n"


def _short(value: object, limit: int = 60) -> str:
    # Numbers come back from the engine's wire format as floats.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_shared_config(stack: str, overrides: Mapping[str, object]) -> None:
    """The shared stack needs the repository its CI roles trust; say how to give it offline."""
    if stack != naming.SHARED_STACK:
        return
    if "githubRepository" in overrides:
        repository = overrides["githubRepository"]
    else:
        repository = config.settings_for_stack(naming.SHARED_STACK).github_repository
    if repository:
        return
    raise config.ConfigError(
        "config githubRepository is empty: the shared stack's CI roles trust one GitHub "
        "repository; pass --config githubRepository=OWNER/NAME (bootstrap records it in "
        "Pulumi.shared.yaml)"
    )


def check_inputs(stack: str, overrides: Mapping[str, object]) -> None:
    """Judge the config as the program will, before anything runs (bad input: exit 2)."""
    check_shared_config(stack, overrides)
    project, values = config.read_project_config(stack)
    config.settings_from_mapping(project, {**values, **overrides})


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = cli.parser("synth", __doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--branch", type=cli.branch_arg, help="git branch whose stack to evaluate")
    target.add_argument("--stack", choices=(naming.SHARED_STACK,), help="the account-wide stack")
    parser.add_argument(
        "--format",
        choices=("tree", "markdown", "json"),
        default="tree",
        help="tree: compact, for a terminal; markdown: the full inventory; json: for machines",
    )
    parser.add_argument("--output", type=Path, help="write the inventory here instead of stdout")
    parser.add_argument("--git-sha", help="commit to tag resources with (default: $GITHUB_SHA)")
    parser.add_argument(
        "--cost",
        action="store_true",
        help="add the idle monthly cost and the cost per million model requests",
    )
    parser.add_argument(
        "--allow-notebook",
        action="store_true",
        help="allow a SageMaker notebook on an ephemeral stack (policy no-ephemeral-notebook)",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=cli.config_arg,
        help="override a setting as `pulumi config set` would (repeatable)",
    )
    return parser.parse_args(argv)


def render(
    form: str, synthesis: Synthesis, estimate: cost_estimate.Estimate | None
) -> tuple[str, str]:
    """The step summary's Markdown, and the text in the format asked for."""
    markdown = render_markdown(synthesis)
    if estimate is not None:
        markdown += "\n" + cost_report.render_markdown(estimate)
    if form == "json":
        document = json.loads(render_json(synthesis))
        if estimate is not None:
            document["cost"] = cost_report.to_dict(estimate)
        return markdown, json.dumps(document, indent=2, sort_keys=True, default=str)
    if form == "tree":
        text = render_tree(synthesis)
        if estimate is not None:
            text += cost_report.render_terminal(estimate)
        return markdown, text
    return markdown, markdown


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parsed(parse_args, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    started = time.monotonic()
    git_sha = args.git_sha or os.environ.get("GITHUB_SHA")
    environment = {"GITHUB_SHA": git_sha} if git_sha else {}
    overrides: dict[str, object] = dict(args.config)
    try:
        stack = args.stack or naming.slugify(args.branch)
        if args.branch:
            overrides["branch"] = args.branch
        check_inputs(stack, overrides)
    except (naming.NamingError, config.ConfigError) as error:
        print(f"synth: {error}", file=sys.stderr)
        return 2
    print(f"synth: evaluating stack {stack!r} under Pulumi's mock runtime…", file=sys.stderr)
    try:
        synthesis = synthesize(stack, overrides=overrides, environment=environment)
    except (SynthError, config.ConfigError, naming.NamingError) as error:
        print(f"synth: the program failed for stack {stack!r}: {error}", file=sys.stderr)
        return 1
    synthesis.violations = policy_rules.check_registrations(
        synthesis.resources, allow_notebook=args.allow_notebook
    )
    try:
        estimate = cost_estimate.for_synthesis(synthesis, overrides) if args.cost else None
    except price_table.CostError as error:
        print(f"synth: cannot estimate the cost of stack {stack!r}: {error}", file=sys.stderr)
        return 1
    markdown, text = render(args.format, synthesis, estimate)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    summary.write_step_summary(markdown)
    elapsed = time.monotonic() - started
    print(
        f"synth: stack {stack!r}: {Counts.of(synthesis).describe()} in {elapsed:.2f}s",
        file=sys.stderr,
    )
    blocking = [v for v in synthesis.violations if v.level == "mandatory"]
    for violation in blocking:
        print(f"synth: policy violation {violation}", file=sys.stderr)
    return 3 if blocking else 0


if __name__ == "__main__":
    raise SystemExit(main())
