"""What a stack costs: price tables, the estimate, and its renderings (the library of `cost`).

The prices come from `prices/aws-<region>.json`, stamped with its region and
the date it was written; nothing here calls AWS except `--refresh-prices`,
which rewrites that file from the AWS Price List API.

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

`scripts.cost` is the command line over this module, and `synth --cost` uses it
too; neither this module nor `synth` imports the other's command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra import config
from scripts.lib import summary

PRICES_DIR = config.REPO_ROOT / "prices"
# A branch environment nobody uses should cost less than this a month.
IDLE_TARGET_USD = 1.00
GB = 1024**3

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER_FIELDS = (
    "idle_monthly",
    "per_million_requests",
    "gb_second",
    "gb_second_arm64",
    "per_gb_ingested",
    "storage_gb_monthly",
    "default_volume_gb",
)
_RATE_MAP_FIELDS = ("hourly_by_instance_type", "per_build_minute_by_compute_type")


class CostError(Exception):
    """A price table or estimate that cannot be used; the message says how to fix it."""


class PriceTableError(CostError):
    """The price table file is missing, malformed, or for another region."""


class RefreshError(CostError):
    """The Price List API did not give a price the table needs; the file was left as it was."""


class Resource(Protocol):
    """What the estimate reads of a registration (`scripts.synth.Registration` is one)."""

    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]

    @property
    def physical_name(self) -> str: ...


# --- the price table -------------------------------------------------------


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str
    currency: str
    source: str
    hours_per_month: float
    prices: Mapping[str, Mapping[str, Any]]
    path: Path | None = None

    def entry(self, type_: str) -> Mapping[str, Any] | None:
        return self.prices.get(type_)

    def to_document(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "as_of": self.as_of,
            "currency": self.currency,
            "source": self.source,
            "hours_per_month": self.hours_per_month,
            "prices": {k: dict(v) for k, v in sorted(self.prices.items())},
        }


def price_file(region: str, root: Path = PRICES_DIR) -> Path:
    return root / f"aws-{region}.json"


def _check_number(where: str, key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PriceTableError(f"{where}: {key} must be a number >= 0, not {value!r}")


def _check_entry(at: str, entry: object) -> None:
    if not isinstance(entry, Mapping):
        raise PriceTableError(f"{at} must be an object")
    known = {*_NUMBER_FIELDS, *_RATE_MAP_FIELDS, "notes"}
    unknown = set(entry) - known
    if unknown:
        raise PriceTableError(f"{at} has unknown fields {sorted(unknown)}; known: {sorted(known)}")
    if not isinstance(entry.get("notes"), str) or not entry["notes"].strip():
        raise PriceTableError(f"{at} needs notes saying what is charged (or why nothing is)")
    if "idle_monthly" not in entry and "hourly_by_instance_type" not in entry:
        raise PriceTableError(
            f"{at} needs idle_monthly (0 if free at idle) or hourly_by_instance_type"
        )
    for key in _NUMBER_FIELDS:
        if key in entry:
            _check_number(at, key, entry[key])
    for key in _RATE_MAP_FIELDS:
        if key in entry:
            rates = entry[key]
            if not isinstance(rates, Mapping) or not rates:
                raise PriceTableError(f"{at}: {key} must be a non-empty object")
            for name, rate in rates.items():
                _check_number(at, f"{key}[{name!r}]", rate)


def parse_price_table(document: object, where: str = "price table") -> PriceTable:
    """Validate a price table document; every error names the file and the field."""
    if not isinstance(document, Mapping):
        raise PriceTableError(f"{where}: expected a JSON object at the top level")
    for key, meaning in (
        ("region", "the AWS region the prices are for, e.g. us-east-1"),
        ("as_of", "the date the prices were read, YYYY-MM-DD"),
        ("currency", "the currency of every price, USD"),
        ("source", "where the prices were read"),
        ("prices", "resource type token -> prices"),
    ):
        if key not in document or document[key] in (None, ""):
            raise PriceTableError(f"{where}: missing {key!r} ({meaning})")
    if not isinstance(document["as_of"], str) or not _DATE_RE.fullmatch(document["as_of"]):
        raise PriceTableError(f"{where}: as_of {document['as_of']!r} is not a YYYY-MM-DD date")
    try:
        dt.date.fromisoformat(document["as_of"])
    except ValueError:
        raise PriceTableError(f"{where}: as_of {document['as_of']!r} is not a real date") from None
    if document["currency"] != "USD":
        raise PriceTableError(f"{where}: currency {document['currency']!r}: only USD is supported")
    hours = document.get("hours_per_month", 730)
    _check_number(where, "hours_per_month", hours)
    prices = document["prices"]
    if not isinstance(prices, Mapping) or not prices:
        raise PriceTableError(f"{where}: prices must be a non-empty object of type -> prices")
    for type_, entry in prices.items():
        _check_entry(f"{where}: prices[{type_!r}]", entry)
    return PriceTable(
        region=str(document["region"]),
        as_of=document["as_of"],
        currency=document["currency"],
        source=str(document["source"]),
        hours_per_month=float(hours),
        prices={k: dict(v) for k, v in prices.items()},
    )


def available_regions(root: Path = PRICES_DIR) -> list[str]:
    """The regions that have a price table, for messages."""
    return sorted(p.name[len("aws-") : -len(".json")] for p in root.glob("aws-*.json"))


def missing_table(region: str, root: Path = PRICES_DIR) -> PriceTable:
    """A table with no prices: every resource of an estimate against it is unpriced."""
    have = ", ".join(available_regions(root)) or "none"
    return PriceTable(
        region=region,
        as_of="",
        currency="USD",
        source=(
            f"no price table for {region} (tables: {have}); write one with "
            f"`python -m nox -s cost -- --refresh-prices --region {region}` (needs AWS credentials)"
        ),
        hours_per_month=730.0,
        prices={},
    )


def load_prices(region: str, root: Path = PRICES_DIR) -> PriceTable:
    """The price table of `region`, validated; a clear error when it is missing or wrong."""
    path = price_file(region, root)
    if not path.is_file():
        raise PriceTableError(
            f"no price table for region {region}: {path} does not exist; write it with "
            f"`python -m nox -s cost -- --refresh-prices --region {region}` (needs AWS credentials)"
        )
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PriceTableError(f"{path}: not valid JSON ({error})") from None
    table = parse_price_table(document, str(path))
    if table.region != region:
        raise PriceTableError(f"{path}: region is {table.region!r}, expected {region!r}")
    return dataclasses.replace(table, path=path)


# --- the estimate ----------------------------------------------------------


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


# --- rendering -------------------------------------------------------------


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"


def _render_unpriced(est: Estimate) -> str:
    kinds = sorted({u.type for u in est.unpriced})
    return (
        f"### Cost estimate{f': stack `{est.stack}`' if est.stack else ''}\n\n"
        f"Unpriced: {est.source}. None of its {len(est.unpriced)} AWS resources "
        f"({len(kinds)} types) is in the totals, so there are none.\n"
    )


def render_markdown(est: Estimate) -> str:
    """The estimate for the inventory and the step summary: totals, then per resource."""
    if not est.priced:
        return _render_unpriced(est)
    verdict = {
        True: f"under the ${IDLE_TARGET_USD:.2f}/month target for a branch environment",
        False: f"**over** the ${IDLE_TARGET_USD:.2f}/month target for a branch environment",
        None: "not a branch environment: paid once per account",
    }[est.idle_target_met]
    lines = [
        f"### Cost estimate{f': stack `{est.stack}`' if est.stack else ''}",
        "",
        f"{est.region} list prices as of {est.as_of} ({est.currency}); {est.source}.",
        "",
        f"- **Idle: {_usd(est.idle_monthly)}/month** (no traffic): {verdict}",
        f"- **{_usd(est.per_million_requests)} per million model requests** on top",
        f"- unpriced (not in the totals): {len(est.unpriced) or 'none'}",
        "",
        "What changes the idle cost:",
        "",
        *[f"- {lever.text}" for lever in est.levers],
        "",
    ]
    costly = sorted(
        (line for line in est.lines if line.idle_monthly or line.per_million_requests),
        key=lambda line: (-line.idle_monthly, -line.per_million_requests, line.name),
    )
    if costly:
        lines.append(
            summary.table(
                ["resource", "type", "idle /month", "per 1M requests", "how"],
                [
                    [
                        f"`{line.physical_name or line.name}`",
                        f"`{line.type}`",
                        _usd(line.idle_monthly),
                        _usd(line.per_million_requests),
                        line.note,
                    ]
                    for line in costly
                ],
            )
        )
        lines.append("")
    free: dict[str, list[Line]] = {}
    for line in est.lines:
        if not (line.idle_monthly or line.per_million_requests):
            free.setdefault(line.type, []).append(line)
    if free:
        lines += ["Priced at $0 idle and per model request:", ""]
        lines.append(
            summary.table(
                ["type", "resources", "why"],
                [[f"`{t}`", str(len(group)), group[0].note] for t, group in sorted(free.items())],
            )
        )
        lines.append("")
    if est.unpriced:
        lines += ["Unpriced (not in the price table, so not in the totals):", ""]
        lines += [f"- `{u.type}` {u.name}: {u.reason}" for u in est.unpriced]
        lines.append("")
    lines += ["Assumptions:", "", *[f"- {a}" for a in est.assumptions.describe()]]
    return "\n".join(lines) + "\n"


def render_pr_comment(est: Estimate) -> str:
    """The short block for the preview PR comment."""
    if not est.priced:
        return f"**Cost estimate**: unpriced, {est.source}\n"
    mark = {
        True: f"✅ (target < ${IDLE_TARGET_USD:.2f})",
        False: f"⚠️ over the ${IDLE_TARGET_USD:.2f} target",
        None: "(shared: once per account)",
    }[est.idle_target_met]
    unpriced = ", ".join(sorted({f"`{u.type}`" for u in est.unpriced})) if est.unpriced else "none"
    drivers = "; ".join(
        lever.text for lever in est.levers if lever.monthly or "would" in lever.text
    )
    return (
        f"**Cost estimate** ({est.region} list prices, {est.as_of}): "
        f"idle **{_usd(est.idle_monthly)}/month** {mark} · "
        f"**{_usd(est.per_million_requests)}** per million model requests · "
        f"unpriced: {unpriced}\n" + (f"<sub>{drivers}</sub>\n" if drivers else "")
    )


def render_terminal(est: Estimate, width: int = 100) -> str:
    """A few short lines under synth's tree."""
    if not est.priced:
        return textwrap.fill(f"cost: unpriced, {est.source}", width, subsequent_indent="  ") + "\n"
    target = {
        True: f"under the ${IDLE_TARGET_USD:.2f} target",
        False: f"OVER the ${IDLE_TARGET_USD:.2f} target",
        None: "shared: paid once per account",
    }[est.idle_target_met]
    lines = [
        f"cost ({est.region} list prices, {est.as_of}): idle {_usd(est.idle_monthly)}/month "
        f"({target})",
        f"  {_usd(est.per_million_requests)} per million model requests; unpriced: "
        f"{len(est.unpriced) or 'none'} (--format markdown lists every line)",
    ]
    return "\n".join(lines) + "\n"


def to_dict(est: Estimate) -> dict[str, Any]:
    return {
        "region": est.region,
        "as_of": est.as_of,
        "currency": est.currency,
        "source": est.source,
        "stack": est.stack,
        "priced": est.priced,
        "idle_monthly": round(est.idle_monthly, 6) if est.priced else None,
        "idle_target": IDLE_TARGET_USD,
        "idle_target_met": est.idle_target_met,
        "branch": est.branch,
        "per_million_requests": round(est.per_million_requests, 6) if est.priced else None,
        "resources": [dataclasses.asdict(line) for line in est.lines],
        "unpriced": [dataclasses.asdict(u) for u in est.unpriced],
        "skipped_not_aws": est.skipped,
        "levers": [dataclasses.asdict(lever) for lever in est.levers],
        "assumptions": dataclasses.asdict(est.assumptions),
    }


def render_json(est: Estimate) -> str:
    return json.dumps(to_dict(est), indent=2, sort_keys=True)


# --- refreshing the table from the AWS Price List API ------------------------


@dataclass(frozen=True)
class Sku:
    """One price the table takes from the Price List API."""

    type: str
    field: str  # the table field it sets (a rate map's key after a dot)
    service_code: str
    filters: tuple[tuple[str, str], ...]
    usage_type: str  # compared with the region prefix (USE1-, us-east-1-) removed
    scale: float = 1.0  # API unit -> table unit (per request -> per million)


def skus(table: PriceTable) -> list[Sku]:
    """The handful of SKUs the estimate depends on; the rest of the table is kept as is."""
    found = [
        Sku(
            "aws:lambda/function:Function",
            "per_million_requests",
            "AWSLambda",
            (("group", "AWS-Lambda-Requests"),),
            "Request",
            1e6,
        ),
        Sku(
            "aws:lambda/function:Function",
            "gb_second",
            "AWSLambda",
            (("group", "AWS-Lambda-Duration"),),
            "Lambda-GB-Second",
        ),
        Sku(
            "aws:apigateway/restApi:RestApi",
            "per_million_requests",
            "AmazonApiGateway",
            (("productFamily", "API Calls"),),
            "ApiGatewayRequest",
            1e6,
        ),
        Sku(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "idle_monthly",
            "AmazonCloudWatch",
            (("productFamily", "Alarm"),),
            "CW:AlarmMonitorUsage",
        ),
        Sku(
            "aws:cloudwatch/logGroup:LogGroup",
            "per_gb_ingested",
            "AmazonCloudWatch",
            (("productFamily", "Data Payload"),),
            "DataProcessing-Bytes",
        ),
        Sku(
            "aws:kms/key:Key",
            "idle_monthly",
            "awskms",
            (("productFamily", "Encryption Key"),),
            "KMS-Keys",
        ),
    ]
    notebook = table.entry("aws:sagemaker/notebookInstance:NotebookInstance") or {}
    for instance_type in sorted(notebook.get("hourly_by_instance_type", {})):
        found.append(
            Sku(
                "aws:sagemaker/notebookInstance:NotebookInstance",
                f"hourly_by_instance_type.{instance_type}",
                "AmazonSageMaker",
                (("productFamily", "ML Instance"),),
                f"Notebk:{instance_type}",
            )
        )
    return found


_USAGE_PREFIX = re.compile(r"^(?:[A-Z]{2,4}[0-9]*-|[a-z]{2}(?:-[a-z]+)+-[0-9]+-)")


def _first_tier_usd(product: Mapping[str, Any]) -> float | None:
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        dimensions = list(term.get("priceDimensions", {}).values())
        dimensions.sort(key=lambda d: float(d.get("beginRange", "0") or 0))
        for dimension in dimensions:
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if usd is not None:
                return float(usd)
    return None


def fetch_price(pricing: Any, sku: Sku, region: str) -> float:
    """The first-tier on-demand USD price of one SKU in `region`, scaled to the table's unit."""
    filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}] + [
        {"Type": "TERM_MATCH", "Field": name, "Value": value} for name, value in sku.filters
    ]
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "ServiceCode": sku.service_code,
            "Filters": filters,
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
        }
        if token:
            kwargs["NextToken"] = token
        page = pricing.get_products(**kwargs)
        for item in page.get("PriceList", []):
            product = json.loads(item) if isinstance(item, str) else item
            usage = product.get("product", {}).get("attributes", {}).get("usagetype", "")
            if _USAGE_PREFIX.sub("", usage) == sku.usage_type:
                price = _first_tier_usd(product)
                if price is not None:
                    return price * sku.scale
        token = page.get("NextToken")
        if not token:
            raise RefreshError(
                f"the Price List API has no {sku.service_code} product with usage type "
                f"{sku.usage_type!r} in {region} (for {sku.type} {sku.field})"
            )


def refresh_prices(
    pricing: Any, region: str, root: Path = PRICES_DIR, today: dt.date | None = None
) -> PriceTable:
    """Re-read every SKU in `skus()`; rewrite the table only when all of them came back."""
    path = price_file(region, root)
    copied = not path.is_file()  # a new region starts from the us-east-1 table's shape
    template = load_prices("us-east-1" if copied else region, root)
    prices = {k: dict(v) for k, v in template.prices.items()}
    try:
        for sku in skus(template):
            value = round(fetch_price(pricing, sku, region), 10)
            entry = prices.setdefault(sku.type, {"notes": "refreshed from the Price List API"})
            head, _, key = sku.field.partition(".")
            if key:
                entry.setdefault(head, {})[key] = value
            else:
                entry[head] = value
    except RefreshError:
        raise
    except Exception as error:  # any failure must leave the file as it was
        raise RefreshError(f"refreshing prices for {region} failed: {error}") from error
    today = today or dt.datetime.now(dt.UTC).date()
    source = "AWS Price List API (get_products, first-tier on-demand prices)"
    if copied:
        source += "; types not refreshed were copied from the us-east-1 table"
    table = PriceTable(
        region=region,
        as_of=today.isoformat(),
        currency="USD",
        source=source,
        hours_per_month=template.hours_per_month,
        prices=prices,
    )
    document = table.to_document()
    parse_price_table(document, str(path))  # never write a table that would not load
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    # Written beside the table, then renamed over it: the file is never half-written.
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        temporary = Path(handle.name)
        try:
            handle.write(json.dumps(document, indent=2) + "\n")
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
    temporary.chmod(mode)
    os.replace(temporary, path)
    return dataclasses.replace(table, path=path)
