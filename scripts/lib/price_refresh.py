"""Refreshing a price table from the AWS Price List API (`cost --refresh-prices`).

Only the handful of prices the estimate depends on are read; the rest of the table is
kept as it is. The file is rewritten only when every one of them came back, and never
half-written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.lib.price_table import (
    PRICES_DIR,
    CostError,
    PriceTable,
    load_prices,
    parse_price_table,
    price_file,
)


class RefreshError(CostError):
    """The Price List API did not give a price the table needs; the file was left as it was."""


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
