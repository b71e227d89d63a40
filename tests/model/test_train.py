"""The training entry point: real fits on the shipped dataset and on a team's variant."""

from __future__ import annotations

import json

import pytest

from model import train
from tests import model_packages


def test_the_served_artifact_is_what_training_writes_not_a_hand_edit():
    spec = train.load_spec(train.SPEC)
    artifact, _ = train.train(spec, train.read_dataset(spec["dataset"]))
    served = json.loads((model_packages.HANDLER_DIR / "model.json").read_text())
    assert served == artifact, "infra/handlers/model/model.json is stale: run `nox -s train`"


def test_training_is_deterministic_and_learns(tmp_path):
    package = model_packages.variant(tmp_path)
    again, metrics = train.train(package.spec, package.dataset)
    assert again == package.artifact
    assert metrics == package.metrics
    # The variant's extra column carries signal: the trained model must use it and beat
    # chance on rows it never saw.
    assert package.artifact["features"][-1] == model_packages.EXTRA_FEATURE
    assert package.artifact["weights"][-1] > 0
    assert package.metrics["metrics"]["auc"] > 0.6
    held_out = round(len(package.rows()) * package.spec["test_fraction"])
    assert package.metrics["rows_test"] == held_out


def test_split_is_disjoint_and_covers_every_row():
    rows = [([float(i)], i % 2) for i in range(40)]
    train_rows, test_rows = train.split(rows, 0.25, seed=3)
    assert len(test_rows) == 10
    assert sorted(r[0][0] for r in train_rows + test_rows) == [float(i) for i in range(40)]
    assert train.split(rows, 0.25, seed=3) == (train_rows, test_rows)
    assert train.split(rows, 0.25, seed=4) != (train_rows, test_rows)


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
    ],
)
def test_auc_matches_hand_counted_pairs(scores, labels, expected):
    assert train.auc(scores, labels) == pytest.approx(expected)


def test_main_writes_artifact_and_metrics_with_provenance(tmp_path):
    out = tmp_path / "out"
    assert train.main(["--out", str(out), "--commit", "abc1234", "--run-id", "proj:42"]) == 0
    artifact = json.loads((out / "model.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert artifact["training"]["commit"] == metrics["commit"] == "abc1234"
    assert artifact["training"]["run_id"] == metrics["run_id"] == "proj:42"
    assert set(metrics["metrics"]) == set(train.HIGHER_IS_BETTER)


def _spec(tmp_path, **changes):
    spec = train.load_spec(train.SPEC) | changes
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"features": ["tenure_months", "tenure_months"]}, "features must be a non-empty list"),
        ({"test_fraction": 0.9}, "test_fraction must be a number in (0, 0.5]"),
        ({"label": "tenure_months"}, "label must be a string that is not a feature"),
        ({"features": ["tenure_months", "no_such_column"]}, "lacks column(s) no_such_column"),
        ({"dataset": "model/data/missing.csv"}, "cannot read dataset model/data/missing.csv"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(tmp_path, capsys, changes, message):
    out = tmp_path / "out"
    assert train.main(["--spec", str(_spec(tmp_path, **changes)), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_non_numeric_row_names_its_line(tmp_path, capsys):
    data = tmp_path / "d.csv"
    lines = train.read_dataset("model/data/churn.csv").decode().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[0], "ten", 1)
    data.write_text("\n".join(lines))
    assert train.main(["--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "dataset line 4: features must be numbers" in capsys.readouterr().err
