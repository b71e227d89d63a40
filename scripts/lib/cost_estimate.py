"""What a stack costs: idle per month and per million model requests, resource by resource,
priced from a region's table (`scripts.lib.price_table`).

- A resource type the table does not list is *unpriced*: it is named in the
  estimate and left out of the totals, never counted as $0.
- A type listed with idle 0 (IAM, an empty bucket) is priced at $0, with the
  table's note saying why.
- Pulumi's own registrations (components, providers, stack references) are not
  AWS resources: they are skipped, neither priced nor unpriced.
- "Per million model requests" charges only what a model request touches: the
  REST API, the Lambda function behind the alias and its log group, under the
  stated `Assumptions` (duration, log bytes per request). Everything else is
  driven by lifecycle events or builds, not by model traffic.

`scripts.cost` is the command line over this module (`scripts.lib.cost_report` renders
the estimate), and `synth --cost` uses it too; neither this module nor `synth` imports
the other's command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra import config
from scripts.lib.price_table import (
    PRICES_DIR,
    PriceTable,
    PriceTableError,
    load_prices,
    missing_table,
    price_file,
)

# A branch environment nobody uses should cost less than this a month.
IDLE_TARGET_USD = 1.00
GB = 1024**3


class Resource(Protocol):
    """What the estimate reads of a registration (`scripts.synth.Registration` is one)."""

    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]

    @property
    def physical_name(self) -> str: ...


@dataclass(frozen=True)
class Assumptions:
    """What the per-request figures assume; each is a knob of the CLI."""

    # Mean billed duration of one model invocation (the handler scores a small
    # logistic regression: tens of ms; 100 ms leaves room for cold starts).
    model_duration_ms: float = 100.0
    # Log bytes one invocation writes: Lambda's START/END/REPORT lines (~300 B)
    # plus a line from the handler.
    log_bytes_per_request: int = 400

    def describe(self) -> list[str]:
        return [
            f"model invocation billed for {self.model_duration_ms:g} ms on average",
            f"{self.log_bytes_per_request} log bytes per model request (START/END/REPORT + one)",
            "list prices: no free tier, no savings plans, no data transfer out",
        ]


@dataclass(frozen=True)
class Line:
    """One priced resource: what it costs idle, and per million model requests."""

    type: str
    name: str
    physical_name: str
    idle_monthly: float
    per_million_requests: float
    note: str


@dataclass(frozen=True)
class Unpriced:
    type: str
    name: str
    reason: str


@dataclass(frozen=True)
class Lever:
    """A setting (or a kind of resource) that moves the idle cost, and by how much."""

    setting: str
    monthly: float
    text: str


@dataclass(frozen=True)
class Estimate:
    region: str
    as_of: str
    currency: str
    source: str
    stack: str
    lines: tuple[Line, ...]
    unpriced: tuple[Unpriced, ...]
    skipped: int
    levers: tuple[Lever, ...]
    assumptions: Assumptions = field(default_factory=Assumptions)
    # The idle target is for branch environments; the shared stack is paid once per account.
    branch: str = ""
    # False when the region has no price table: every resource is unpriced, no totals.
    priced: bool = True

    @property
    def idle_monthly(self) -> float:
        return sum(line.idle_monthly for line in self.lines)

    @property
    def per_million_requests(self) -> float:
        return sum(line.per_million_requests for line in self.lines)

    @property
    def idle_target_met(self) -> bool | None:
        """Whether a branch environment idles under the target; None for the shared stack."""
        if not self.priced:
            return None
        return self.idle_monthly < IDLE_TARGET_USD if self.branch else None


def _request_path(resources: Sequence[Resource]) -> tuple[set[str], set[str]]:
    """The functions a model request runs (behind an alias) and their log groups, by parent."""
    served = {
        str(r.inputs.get("functionName"))
        for r in resources
        if r.type == "aws:lambda/alias:Alias" and r.inputs.get("functionName")
    }
    functions = [
        r
        for r in resources
        if r.type == "aws:lambda/function:Function" and r.inputs.get("name") in served
    ]
    # A function's log group is its sibling under the same PythonFunction component.
    parents = {r.parent for r in functions if r.parent}
    log_groups = {
        r.name
        for r in resources
        if r.type == "aws:cloudwatch/logGroup:LogGroup" and r.parent in parents
    }
    return {r.name for r in functions}, log_groups


def _number(value: object, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _price_resource(
    r: Resource,
    entry: Mapping[str, Any],
    table: PriceTable,
    assumptions: Assumptions,
    on_path: bool,
) -> Line | Unpriced:
    notes = [entry["notes"]]
    per_million = 0.0
    if "hourly_by_instance_type" in entry:
        instance_type = str(r.inputs.get("instanceType", ""))
        rate = entry["hourly_by_instance_type"].get(instance_type)
        if rate is None:
            return Unpriced(r.type, r.name, f"no hourly price for instance type {instance_type!r}")
        volume = _number(r.inputs.get("volumeSize"), entry.get("default_volume_gb", 0))
        idle = rate * table.hours_per_month + entry.get("storage_gb_monthly", 0) * volume
        notes.insert(
            0,
            f"{instance_type} ${rate:g}/h x {table.hours_per_month:g} h"
            + (f" + {volume:g} GB x ${entry['storage_gb_monthly']:g}" if volume else ""),
        )
    else:
        idle = float(entry["idle_monthly"])
    if on_path and r.type == "aws:lambda/function:Function":
        memory_gb = _number(r.inputs.get("memorySize"), 128) / 1024
        arm = "arm64" in (r.inputs.get("architectures") or [])
        gb_second = entry.get("gb_second_arm64" if arm else "gb_second", 0.0)
        compute = 1e6 * memory_gb * assumptions.model_duration_ms / 1000 * gb_second
        per_million = entry.get("per_million_requests", 0.0) + compute
        notes.insert(
            0,
            f"model requests: ${entry.get('per_million_requests', 0.0):.2f}/M + "
            f"{memory_gb * 1024:g} MB x {assumptions.model_duration_ms:g} ms = "
            f"${compute:.4f}/M compute",
        )
    elif on_path and r.type == "aws:cloudwatch/logGroup:LogGroup":
        gigabytes = 1e6 * assumptions.log_bytes_per_request / GB
        per_million = gigabytes * entry.get("per_gb_ingested", 0.0)
        notes.insert(0, f"model logs: {gigabytes:.3f} GB ingested per million requests")
    elif on_path:
        per_million = entry.get("per_million_requests", 0.0)
    return Line(r.type, r.name, r.physical_name, idle, per_million, "; ".join(notes))


def _levers(
    lines: Sequence[Line], table: PriceTable, settings: config.Settings | None
) -> tuple[Lever, ...]:
    levers: list[Lever] = []
    notebook_type = "aws:sagemaker/notebookInstance:NotebookInstance"
    notebooks = [line for line in lines if line.type == notebook_type]
    entry = table.entry(notebook_type)
    if notebooks:
        monthly = sum(line.idle_monthly for line in notebooks)
        levers.append(
            Lever(
                "notebookEnabled",
                monthly,
                f"notebookEnabled=true: the notebook is ${monthly:.2f}/month of it; "
                "set notebookEnabled=false when not in use",
            )
        )
    elif settings is not None and settings.branch and entry is not None:
        rate = entry["hourly_by_instance_type"].get(settings.notebook_instance_type)
        if rate is not None:
            monthly = rate * table.hours_per_month + entry.get("storage_gb_monthly", 0) * entry.get(
                "default_volume_gb", 0
            )
            levers.append(
                Lever(
                    "notebookEnabled",
                    monthly,
                    f"notebookEnabled=true would add ${monthly:.2f}/month "
                    f"({settings.notebook_instance_type}, billed every hour it exists)",
                )
            )
    for type_, setting, what, fix in (
        (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "alarms",
            "CloudWatch alarms",
            "the canary's rollback watch needs them",
        ),
        (
            "aws:kms/key:Key",
            "kms keys",
            "customer-managed KMS keys",
            "AWS-managed keys (aws/s3, aws/sns) cost nothing",
        ),
    ):
        found = [line for line in lines if line.type == type_]
        each = (table.entry(type_) or {}).get("idle_monthly", 0.0)
        total = sum(line.idle_monthly for line in found)
        levers.append(
            Lever(
                setting,
                total,
                f"{len(found)} {what} at ${each:.2f}/month each = ${total:.2f} ({fix})",
            )
        )
    return tuple(levers)


def estimate(
    resources: Iterable[Resource],
    prices: PriceTable,
    settings: config.Settings | None = None,
    assumptions: Assumptions | None = None,
    stack: str = "",
) -> Estimate:
    """Idle monthly cost and cost per million model requests, per resource and in total."""
    assumptions = assumptions or Assumptions()
    resources = list(resources)
    if settings is not None and settings.region != prices.region:
        raise PriceTableError(
            f"the stack runs in {settings.region} but the price table is for {prices.region}; "
            f"load prices/aws-{settings.region}.json"
        )
    functions, log_groups = _request_path(resources)
    lines: list[Line] = []
    unpriced: list[Unpriced] = []
    skipped = 0
    for r in resources:
        if not r.custom or r.type.startswith("pulumi:"):
            skipped += 1  # components, providers, stack references: not AWS resources
            continue
        entry = prices.entry(r.type)
        if entry is None:
            reason = (
                f"not in the price table {prices.region}"
                if prices.prices
                else f"no price table for {prices.region}"
            )
            unpriced.append(Unpriced(r.type, r.name, reason))
            continue
        on_path = (
            r.type == "aws:apigateway/restApi:RestApi"
            or (r.type == "aws:lambda/function:Function" and r.name in functions)
            or (r.type == "aws:cloudwatch/logGroup:LogGroup" and r.name in log_groups)
        )
        result = _price_resource(r, entry, prices, assumptions, on_path)
        (lines if isinstance(result, Line) else unpriced).append(result)  # type: ignore[arg-type]
    return Estimate(
        region=prices.region,
        as_of=prices.as_of,
        currency=prices.currency,
        source=prices.source,
        stack=stack,
        lines=tuple(lines),
        unpriced=tuple(unpriced),
        skipped=skipped,
        levers=_levers(lines, prices, settings) if prices.prices else (),
        assumptions=assumptions,
        branch=settings.branch if settings is not None else "",
        priced=bool(prices.prices),
    )


def settings_for(stack: str, overrides: Mapping[str, object] | None = None) -> config.Settings:
    """The settings a synthesis ran with: the stack's config files plus the same overrides."""
    project, values = config.read_project_config(stack)
    values.update(overrides or {})
    return config.settings_from_mapping(project, values)


def for_synthesis(
    synthesis: Any,
    overrides: Mapping[str, object] | None = None,
    assumptions: Assumptions | None = None,
    prices_root: Path = PRICES_DIR,
) -> Estimate:
    """The estimate of a `scripts.synth.Synthesis`, with the price table of its region.

    A region without a table is not an error: the estimate lists every resource
    as unpriced and says how to write the table, so a fork in any region can run
    the pipeline's cost step.
    """
    settings = settings_for(synthesis.stack, overrides)
    if price_file(settings.region, prices_root).is_file():
        table = load_prices(settings.region, prices_root)
    else:
        table = missing_table(settings.region, prices_root)
    return estimate(synthesis.resources, table, settings, assumptions, stack=synthesis.stack)
