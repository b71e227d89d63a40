"""The cost estimate: idle and per-request arithmetic from the price table, and its refresh."""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra import naming
from infra.components import type_token
from scripts import cost, synth

# The arithmetic is checked against the reference table, which prices every type the
from scripts.lib import aws, cost_estimate, cost_report, price_refresh, price_table

# program can create, whatever region the project is in; every other committed table
# is checked below by what it prices.
PRICED = "us-east-1"
UNPRICED = "ap-northeast-3"  # a region with no committed table

BRANCH = "feature/cost"
NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"


@pytest.fixture(scope="module")
def table() -> price_table.PriceTable:
    return price_table.load_prices(PRICED)


def _estimate(overrides: dict[str, object] | None = None) -> cost_estimate.Estimate:
    key = tuple(sorted((overrides or {}).items()))
    return _cached_estimate(key)


@functools.cache
def _cached_estimate(overrides: tuple[tuple[str, object], ...]) -> cost_estimate.Estimate:
    # A whole-program synth takes ~0.5 s; each configuration is evaluated once per run.
    values = {"branch": BRANCH, "aws:region": PRICED, **dict(overrides)}
    synthesis = synth.synthesize(naming.slugify(BRANCH), overrides=values)
    return cost_estimate.for_synthesis(synthesis, values)


@dataclass
class Res:
    """A registration as the estimate reads it."""

    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    parent: str = "urn:stack"
    custom: bool = True

    @property
    def physical_name(self) -> str:
        return str(self.inputs.get("name", ""))


# --- product targets, on the real program ----------------------------------------------


def test_default_branch_environment_idles_under_a_dollar_a_month() -> None:
    estimate = _estimate()
    assert estimate.idle_monthly < cost_estimate.IDLE_TARGET_USD
    assert estimate.idle_target_met is True
    # Nothing the default branch stack creates is missing from the table.
    assert estimate.unpriced == ()


def test_the_notebook_setting_adds_exactly_its_monthly_price(table: price_table.PriceTable) -> None:
    without = _estimate()
    enabled = _estimate({"notebookEnabled": True, "notebookInstanceType": "ml.t3.medium"})
    entry = table.prices[NOTEBOOK]
    monthly = (
        entry["hourly_by_instance_type"]["ml.t3.medium"] * table.hours_per_month
        + entry["storage_gb_monthly"] * entry["default_volume_gb"]
    )
    assert enabled.idle_monthly - without.idle_monthly == pytest.approx(monthly)
    assert enabled.idle_target_met is False
    # The default estimate says what enabling it would cost, the enabled one what it does.
    (would,) = [lever for lever in without.levers if lever.setting == "notebookEnabled"]
    (does,) = [lever for lever in enabled.levers if lever.setting == "notebookEnabled"]
    assert would.monthly == pytest.approx(monthly)
    assert does.monthly == pytest.approx(monthly)
    assert "would add" in would.text
    assert f"${monthly:.2f}" in cost_report.render_markdown(without)


def test_the_estimate_names_alarms_and_kms_keys_as_what_moves_idle_cost(
    table: price_table.PriceTable,
) -> None:
    estimate = _estimate()
    levers = {lever.setting: lever for lever in estimate.levers}
    alarm = table.prices["aws:cloudwatch/metricAlarm:MetricAlarm"]["idle_monthly"]
    alarms = [line for line in estimate.lines if line.type.endswith("metricAlarm:MetricAlarm")]
    assert levers["alarms"].monthly == pytest.approx(alarm * len(alarms))
    assert levers["kms keys"].monthly == 0
    assert estimate.idle_monthly == pytest.approx(alarm * len(alarms))


def test_per_million_model_requests_charges_the_request_path_only(
    table: price_table.PriceTable,
) -> None:
    estimate = _estimate()
    charged = {line.type for line in estimate.lines if line.per_million_requests}
    assert charged == {
        "aws:apigateway/restApi:RestApi",
        "aws:lambda/function:Function",
        "aws:cloudwatch/logGroup:LogGroup",
    }
    # The event processor runs per lifecycle event and the deploy hooks per deployment,
    # not per model request.
    functions = [line for line in estimate.lines if line.type == "aws:lambda/function:Function"]
    assert sorted(bool(line.per_million_requests) for line in functions) == [False, False, True]


# --- arithmetic on hand-made resources -------------------------------------------------


def _request_path(memory: int = 512, architectures: list[str] | None = None) -> list[Res]:
    function_inputs: dict[str, Any] = {"name": "fn", "memorySize": float(memory)}
    if architectures:
        function_inputs["architectures"] = architectures
    return [
        Res(type_token("PythonFunction"), "model", custom=False, parent="urn:stack"),
        Res("pulumi:providers:aws", "aws"),
        Res("aws:lambda/function:Function", "model-fn", function_inputs, parent="urn:model"),
        Res(
            "aws:cloudwatch/logGroup:LogGroup",
            "model-logs",
            {"name": "/aws/lambda/fn"},
            "urn:model",
        ),
        Res("aws:cloudwatch/logGroup:LogGroup", "other-logs", {"name": "/other"}, "urn:other"),
        Res("aws:lambda/alias:Alias", "alias", {"name": "live", "functionName": "fn"}),
        Res("aws:apigateway/restApi:RestApi", "api", {"name": "api"}),
    ]


def test_per_million_arithmetic(table: price_table.PriceTable) -> None:
    assumptions = cost_estimate.Assumptions(model_duration_ms=200, log_bytes_per_request=1000)
    estimate = cost_estimate.estimate(_request_path(memory=512), table, assumptions=assumptions)
    p = table.prices
    lam = p["aws:lambda/function:Function"]
    expected = {
        "model-fn": lam["per_million_requests"] + 1e6 * 0.5 * 0.2 * lam["gb_second"],
        "model-logs": 1e6
        * 1000
        / 1024**3
        * p["aws:cloudwatch/logGroup:LogGroup"]["per_gb_ingested"],
        "other-logs": 0.0,
        "alias": 0.0,
        "api": p["aws:apigateway/restApi:RestApi"]["per_million_requests"],
    }
    assert {line.name: line.per_million_requests for line in estimate.lines} == pytest.approx(
        expected
    )
    assert estimate.per_million_requests == pytest.approx(sum(expected.values()))
    assert estimate.skipped == 2  # the component and the provider: not AWS resources
    assert estimate.unpriced == ()


def test_arm64_functions_use_the_arm_duration_price(table: price_table.PriceTable) -> None:
    assumptions = cost_estimate.Assumptions(model_duration_ms=1000)
    estimate = cost_estimate.estimate(
        _request_path(1024, ["arm64"]), table, assumptions=assumptions
    )
    (line,) = [line for line in estimate.lines if line.name == "model-fn"]
    lam = table.prices["aws:lambda/function:Function"]
    assert line.per_million_requests == pytest.approx(
        lam["per_million_requests"] + 1e6 * lam["gb_second_arm64"]
    )


def test_unknown_types_are_unpriced_never_zero(table: price_table.PriceTable) -> None:
    resources = [
        Res("aws:ec2/natGateway:NatGateway", "nat"),
        Res("aws:iam/role:Role", "role", {"name": "r"}),
        Res(NOTEBOOK, "nb", {"instanceType": "ml.p5.48xlarge"}),
    ]
    estimate = cost_estimate.estimate(resources, table)
    assert [(u.type, u.name) for u in estimate.unpriced] == [
        ("aws:ec2/natGateway:NatGateway", "nat"),
        (NOTEBOOK, "nb"),
    ]
    assert "ml.p5.48xlarge" in estimate.unpriced[1].reason
    # A type in the table at $0 is priced at $0, with the table's reason.
    (role,) = estimate.lines
    assert (role.idle_monthly, role.per_million_requests) == (0, 0)
    assert role.note == table.prices["aws:iam/role:Role"]["notes"]
    markdown = cost_report.render_markdown(estimate)
    assert "aws:ec2/natGateway:NatGateway" in markdown
    assert "not in the totals" in markdown
    assert "aws:ec2/natGateway:NatGateway" in cost_report.render_pr_comment(estimate)


def test_a_table_for_another_region_is_refused(table: price_table.PriceTable) -> None:
    synthesis = synth.synthesize(naming.slugify(BRANCH), overrides={"branch": BRANCH})
    settings = cost_estimate.settings_for(
        synthesis.stack, {"branch": BRANCH, "aws:region": UNPRICED}
    )
    with pytest.raises(price_table.PriceTableError, match=rf"{UNPRICED}.*{PRICED}"):
        cost_estimate.estimate(synthesis.resources, table, settings)


def test_renderings_carry_totals_and_the_date(table: price_table.PriceTable) -> None:
    estimate = _estimate()
    comment = cost_report.render_pr_comment(estimate)
    assert f"${estimate.idle_monthly:.2f}/month" in comment
    assert f"${estimate.per_million_requests:.2f}" in comment
    assert table.as_of in comment and PRICED in comment
    assert len(comment.strip().splitlines()) <= 2
    document = json.loads(cost_report.render_json(estimate))
    assert document["idle_monthly"] == pytest.approx(estimate.idle_monthly)
    assert document["unpriced"] == []
    assert len(document["resources"]) == len(estimate.lines)


@pytest.mark.usefixtures("shared_evaluations")
def test_cli_prints_the_estimate_of_a_branch(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--branch", BRANCH, "--format", "comment"]) == 0
    assert "Cost estimate" in capsys.readouterr().out


@pytest.mark.usefixtures("shared_evaluations")
def test_a_region_without_a_table_is_unpriced_never_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--branch", BRANCH, "--config", f"aws:region={UNPRICED}"]
    assert cost.main([*args, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["region"] == UNPRICED
    assert document["priced"] is False
    # No totals rather than $0: nothing was priced.
    assert document["idle_monthly"] is None and document["per_million_requests"] is None
    assert document["idle_target_met"] is None
    assert document["resources"] == []
    assert document["unpriced"]
    assert {u["reason"] for u in document["unpriced"]} == {f"no price table for {UNPRICED}"}
    assert cost.main([*args, "--format", "comment"]) == 0
    comment = capsys.readouterr().out
    assert "unpriced" in comment and f"--refresh-prices --region {UNPRICED}" in comment
    assert "$0" not in comment


@pytest.mark.usefixtures("shared_evaluations")
def test_the_shared_stack_takes_its_repository_as_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cost.main(["--stack", "shared", "--config", "githubRepository="]) == 2
    assert "--config githubRepository=OWNER/NAME" in capsys.readouterr().err
    args = ["--stack", "shared", "--config", "githubRepository=acme/models"]
    assert cost.main([*args, "--config", f"aws:region={PRICED}", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["stack"] == "shared"
    assert document["idle_target_met"] is None  # paid once per account, no branch target
    kms = [line for line in document["resources"] if line["type"] == "aws:kms/key:Key"]
    assert kms and document["idle_monthly"] >= sum(line["idle_monthly"] for line in kms) > 0


@pytest.mark.parametrize("region", price_table.available_regions())
def test_every_committed_table_loads_and_prices_a_default_branch(region: str) -> None:
    table = price_table.load_prices(region)
    assert table.region == region and table.source
    assert dt.date.fromisoformat(table.as_of)
    estimate = _estimate({"aws:region": region})
    assert estimate.priced and estimate.region == region
    # Whatever a table leaves out is named as unpriced, never counted as $0.
    priced_types = {line.type for line in estimate.lines}
    assert priced_types.isdisjoint({u.type for u in estimate.unpriced})
    assert estimate.idle_target_met is True


# --- the price table file --------------------------------------------------------------


def _document() -> dict[str, Any]:
    return json.loads(price_table.price_file("us-east-1").read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("region"), r"missing 'region'"),
        (lambda d: d.pop("as_of"), r"missing 'as_of' \(the date the prices were read"),
        (lambda d: d.update(as_of="22/11/2026"), r"not a YYYY-MM-DD date"),
        (lambda d: d.update(as_of="2026-02-30"), r"not a real date"),
        (lambda d: d.update(currency="EUR"), r"only USD"),
        (lambda d: d.update(prices={}), r"non-empty"),
        (
            lambda d: d["prices"]["aws:iam/role:Role"].update(idle=0),
            r"prices\['aws:iam/role:Role'\] has unknown fields \['idle'\]",
        ),
        (
            lambda d: d["prices"]["aws:kms/key:Key"].update(idle_monthly=-1),
            r"idle_monthly must be a number >= 0",
        ),
        (lambda d: d["prices"]["aws:iam/role:Role"].pop("notes"), r"needs notes"),
        (
            lambda d: d["prices"]["aws:iam/role:Role"].pop("idle_monthly"),
            r"needs idle_monthly",
        ),
    ],
)
def test_price_table_schema_errors_are_clear(change, message: str) -> None:
    document = _document()
    change(document)
    with pytest.raises(price_table.PriceTableError, match=message):
        price_table.parse_price_table(document, "prices/aws-us-east-1.json")


def test_the_committed_table_is_stamped_and_valid(table: price_table.PriceTable) -> None:
    assert table.region == PRICED
    assert dt.date.fromisoformat(table.as_of)
    assert table.source


def test_loading_a_missing_or_mismatched_table(tmp_path: Path) -> None:
    with pytest.raises(price_table.PriceTableError, match=r"--refresh-prices --region eu-west-1"):
        price_table.load_prices("eu-west-1", tmp_path)
    (tmp_path / "aws-eu-west-1.json").write_text(json.dumps(_document()))
    with pytest.raises(
        price_table.PriceTableError, match=r"region is 'us-east-1', expected 'eu-west-1'"
    ):
        price_table.load_prices("eu-west-1", tmp_path)


# --- refreshing from the Price List API (Stubber: no network) -------------------------


def _product(usage_type: str, *dimensions: tuple[str, str]) -> str:
    return json.dumps(
        {
            "product": {"sku": "SKU", "attributes": {"usagetype": usage_type}},
            "terms": {
                "OnDemand": {
                    "SKU.TERM": {
                        "priceDimensions": {
                            f"SKU.TERM.{i}": {"beginRange": begin, "pricePerUnit": {"USD": usd}}
                            for i, (begin, usd) in enumerate(dimensions)
                        }
                    }
                }
            },
        }
    )


# usage type as the API spells it in us-east-1 -> the USD price it returns
_API_PRICES = {
    "Request": "0.0000002100",
    "Lambda-GB-Second": "0.0000170000",
    "USE1-ApiGatewayRequest": "0.0000036000",
    "CW:AlarmMonitorUsage": "0.1100000000",
    "USE1-DataProcessing-Bytes": "0.5500000000",
    "us-east-1-KMS-Keys": "1.1000000000",
}


def _expected_request(sku: price_refresh.Sku, token: str | None = None) -> dict[str, Any]:
    request = {
        "ServiceCode": sku.service_code,
        "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}]
        + [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in sku.filters],
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token:
        request["NextToken"] = token
    return request


@pytest.fixture
def prices_dir(tmp_path: Path) -> Path:
    shutil.copy(price_table.price_file("us-east-1"), tmp_path / "aws-us-east-1.json")
    return tmp_path


@pytest.fixture
def price_list():
    client = boto3.client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _stub_all(stubber: Stubber, table: price_table.PriceTable) -> None:
    for sku in price_refresh.skus(table):
        if sku.usage_type == "Lambda-GB-Second":
            # Tiered, listed out of order: the first tier (beginRange 0) is the price.
            body = [_product("Lambda-GB-Second", ("6000000000", "0.000015"), ("0", "0.000017"))]
        elif sku.usage_type == "ApiGatewayRequest":
            # Paginated: the REST request price is on the second page.
            stubber.add_response(
                "get_products",
                {
                    "PriceList": [_product("USE1-ApiGatewayHttpRequest", ("0", "0.000001"))],
                    "NextToken": "page-2",
                    "FormatVersion": "aws_v1",
                },
                _expected_request(sku),
            )
            stubber.add_response(
                "get_products",
                {"PriceList": [_product("USE1-ApiGatewayRequest", ("0", "0.0000036"))]},
                _expected_request(sku, "page-2"),
            )
            continue
        elif sku.usage_type.startswith("Notebk:"):
            body = [_product(f"USE1-{sku.usage_type}", ("0", "0.0600000000"))]
        else:
            usage = next(u for u in _API_PRICES if u.endswith(sku.usage_type))
            body = [_product(usage, ("0", _API_PRICES[usage]))]
        stubber.add_response("get_products", {"PriceList": body}, _expected_request(sku))


def test_refresh_rewrites_the_table_from_the_price_list_api(price_list, prices_dir: Path) -> None:
    client, stubber = price_list
    before = price_table.load_prices("us-east-1", prices_dir)
    path = prices_dir / "aws-us-east-1.json"
    path.chmod(0o644)
    _stub_all(stubber, before)
    table = price_refresh.refresh_prices(client, "us-east-1", prices_dir, today=dt.date(2031, 1, 2))
    reloaded = price_table.load_prices("us-east-1", prices_dir)
    assert reloaded.as_of == table.as_of == "2031-01-02"
    assert path.stat().st_mode & 0o777 == 0o644  # replaced, not left private
    assert [p.name for p in prices_dir.iterdir()] == ["aws-us-east-1.json"]
    assert "Price List API" in reloaded.source
    p = reloaded.prices
    assert p["aws:lambda/function:Function"]["per_million_requests"] == pytest.approx(0.21)
    assert p["aws:lambda/function:Function"]["gb_second"] == pytest.approx(0.000017)
    assert p["aws:apigateway/restApi:RestApi"]["per_million_requests"] == pytest.approx(3.6)
    assert p["aws:cloudwatch/metricAlarm:MetricAlarm"]["idle_monthly"] == pytest.approx(0.11)
    assert p["aws:cloudwatch/logGroup:LogGroup"]["per_gb_ingested"] == pytest.approx(0.55)
    assert p["aws:kms/key:Key"]["idle_monthly"] == pytest.approx(1.1)
    assert set(p[NOTEBOOK]["hourly_by_instance_type"].values()) == {0.06}
    # What the API was not asked about is kept, notes included.
    assert p["aws:iam/role:Role"] == before.prices["aws:iam/role:Role"]
    assert p[NOTEBOOK]["notes"] == before.prices[NOTEBOOK]["notes"]


def test_a_failed_refresh_leaves_the_file_unchanged(price_list, prices_dir: Path) -> None:
    client, stubber = price_list
    path = prices_dir / "aws-us-east-1.json"
    original = path.read_bytes()
    table = price_table.load_prices("us-east-1", prices_dir)
    first, second, *_ = price_refresh.skus(table)
    stubber.add_response(
        "get_products",
        {"PriceList": [_product("Request", ("0", "0.0000002"))]},
        _expected_request(first),
    )
    stubber.add_client_error(
        "get_products", "AccessDeniedException", "not allowed", 400, _expected_request(second)
    )
    with pytest.raises(price_refresh.RefreshError, match="AccessDeniedException"):
        price_refresh.refresh_prices(client, "us-east-1", prices_dir)
    assert path.read_bytes() == original
    assert [p.name for p in prices_dir.iterdir()] == ["aws-us-east-1.json"]


def test_a_price_the_api_does_not_have_fails_the_refresh(price_list, prices_dir: Path) -> None:
    client, stubber = price_list
    path = prices_dir / "aws-us-east-1.json"
    original = path.read_bytes()
    first = price_refresh.skus(price_table.load_prices("us-east-1", prices_dir))[0]
    stubber.add_response(
        "get_products",
        {"PriceList": [_product("Request-ARM", ("0", "0.0000002"))]},
        _expected_request(first),
    )
    with pytest.raises(
        price_refresh.RefreshError, match=r"no AWSLambda product with usage type 'Request'"
    ):
        price_refresh.refresh_prices(client, "us-east-1", prices_dir)
    assert path.read_bytes() == original


def test_cli_refresh_failure_says_the_file_was_not_changed(
    price_list,
    prices_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, stubber = price_list
    monkeypatch.setattr(price_table, "PRICES_DIR", prices_dir)
    path = prices_dir / "aws-us-east-1.json"
    original = path.read_bytes()
    first = price_refresh.skus(price_table.load_prices("us-east-1", prices_dir))[0]
    stubber.add_client_error(
        "get_products", "ThrottlingException", "slow down", 400, _expected_request(first)
    )
    monkeypatch.setattr(aws, "client", lambda service, region=None: client)
    assert cost.main(["--refresh-prices"]) == 1
    assert "was not changed" in capsys.readouterr().err
    assert path.read_bytes() == original
