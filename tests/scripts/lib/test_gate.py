"""The quality gate: bounds, regressions in each metric's own direction, and the table."""

from __future__ import annotations

import json

import pytest

from scripts.lib import gate

DIRECTIONS = {"auc": True, "log_loss": False}


def metrics(**values: float) -> dict:
    return {"metrics": values, "higher_is_better": DIRECTIONS}


@pytest.mark.parametrize(
    ("run", "baseline", "rules", "failure"),
    [
        ({"auc": 0.69}, None, {"auc": {"min": 0.7}}, "auc 0.69 is below the minimum 0.7"),
        ({"log_loss": 0.7}, None, {"log_loss": {"max": 0.65}}, "log_loss 0.7 is above the max"),
        (
            {"auc": 0.80},
            {"auc": 0.83},
            {"auc": {"maxRegression": 0.02}},
            "auc regressed by 0.03 against the default branch (0.83 -> 0.8)",
        ),
        (
            {"log_loss": 0.55},
            {"log_loss": 0.52},
            {"log_loss": {"maxRegression": 0.02}},
            "log_loss regressed by 0.03",
        ),
        ({}, None, {"auc": {"min": 0.7}}, "auc: the run reported no finite value"),
        ({"auc": float("nan")}, None, {"auc": {"min": 0.7}}, "auc: the run reported no finite"),
    ],
)
def test_a_breach_fails_naming_metric_and_bound(run, baseline, rules, failure) -> None:
    comparison = gate.compare(metrics(**run), baseline and metrics(**baseline), rules, "main")
    assert not comparison.passed
    assert any(f.startswith(failure) for f in comparison.failures()), comparison.failures()


@pytest.mark.parametrize(
    ("run", "baseline"),
    [
        ({"auc": 0.82, "log_loss": 0.50}, {"auc": 0.83, "log_loss": 0.49}),  # within 0.02
        ({"auc": 0.90, "log_loss": 0.40}, {"auc": 0.83, "log_loss": 0.49}),  # better
        ({"auc": 0.83, "log_loss": 0.49}, {"auc": 0.83, "log_loss": 0.49}),  # same
        ({"auc": 0.81 + 1e-12, "log_loss": 0.49}, {"auc": 0.83, "log_loss": 0.49}),  # at the edge
    ],
)
def test_within_the_gate_passes(run, baseline) -> None:
    rules = {"auc": {"min": 0.7, "maxRegression": 0.02}, "log_loss": {"maxRegression": 0.02}}
    comparison = gate.compare(metrics(**run), metrics(**baseline), rules, "main")
    assert comparison.passed, comparison.failures()


def test_without_a_baseline_only_bounds_apply() -> None:
    rules = {"auc": {"min": 0.7, "maxRegression": 0.0}}
    assert gate.compare(metrics(auc=0.71), None, rules).passed
    assert not gate.compare(metrics(auc=0.69), None, rules).passed


def test_a_regression_rule_needs_the_metrics_direction() -> None:
    run = {"metrics": {"f1": 0.5}}
    comparison = gate.compare(run, {"metrics": {"f1": 0.6}}, {"f1": {"maxRegression": 0.5}})
    assert "does not say whether higher is better" in comparison.failures()[0]


def test_table_shows_values_deltas_and_the_reason() -> None:
    comparison = gate.compare(
        metrics(auc=0.80, log_loss=0.45),
        metrics(auc=0.83, log_loss=0.50),
        {"auc": {"maxRegression": 0.02}},
        "main @ abc1234 (run r-1)",
    )
    text = gate.markdown(comparison, "Model `1.0.0`")
    assert "### Model `1.0.0`: quality gate FAILED" in text
    assert "Compared with: main @ abc1234 (run r-1)" in text
    assert "| auc | 0.8 | 0.83 | -0.03 ▼ worse | max regression 0.02 | FAILED |" in text
    assert "| log_loss | 0.45 | 0.5 | -0.05 ▲ better | - | - |" in text
    assert "- auc regressed by 0.03" in text


def test_a_saved_comparison_loads_back_with_its_failures() -> None:
    comparison = gate.compare(
        metrics(auc=0.6, log_loss=0.5), None, {"auc": {"min": 0.7}, "log_loss": {"max": 0.6}}
    )
    loaded = gate.load(json.dumps(comparison.as_dict()))
    assert loaded.failures() == comparison.failures()
    assert gate.markdown(loaded, "x") == gate.markdown(comparison, "x")
