"""The price tables behind a cost estimate: `prices/aws-<region>.json`, one per region,
stamped with its region and the date its prices were read, and validated on load so a
bad table names the file and the field.

Nothing here calls AWS; `scripts.lib.price_refresh` rewrites a table from the AWS Price
List API (`cost --refresh-prices`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import config

PRICES_DIR = config.REPO_ROOT / "prices"

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
