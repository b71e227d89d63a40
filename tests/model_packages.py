"""Model packages the model tests run against: the shipped one and a team's variant.

A package is a folder holding the serving handler and the artifact the REAL training
code wrote. The variant is what a team does to the template: an extra feature in the
dataset, a new version string and a third-party dependency. Every model test runs
over both, so no test can lean on the shipped model's version, features or weights.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType

from model import train

ROOT = Path(__file__).resolve().parent.parent
HANDLER_DIR = ROOT / "infra/handlers/model"
EXTRA_FEATURE = "days_since_last_login"
VARIANT_VERSION = "2.3.0rc1+team.variant"
# Small, pure Python, wheels on PyPI: stands for whatever library a team's model imports.
VARIANT_REQUIREMENT = "six==1.17.0"


@dataclass(frozen=True)
class ModelPackage:
    name: str
    folder: Path  # handler.py + model.json, as the Lambda gets them
    spec: dict
    artifact: dict
    # The metrics come from a training run; the handler tests never read the shipped
    # package's, so that run waits until something does.
    measure: Callable[[], dict] = field(repr=False, compare=False)
    dataset: bytes
    requirements: Path

    @cached_property
    def metrics(self) -> dict:
        return self.measure()

    def load_handler(self) -> ModuleType:
        module_name = f"model_handler_{self.name}"
        loader = importlib.util.spec_from_file_location(module_name, self.folder / "handler.py")
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        return module

    def rows(self) -> list[dict[str, float]]:
        """The dataset's rows as request instances (the model's features only)."""
        reader = csv.DictReader(io.StringIO(self.dataset.decode()))
        return [{f: float(r[f]) for f in self.spec["features"]} for r in reader]


def shipped() -> ModelPackage:
    spec = train.load_spec(train.SPEC)
    dataset = train.read_dataset(spec["dataset"])
    artifact = json.loads((HANDLER_DIR / "model.json").read_text())
    return ModelPackage(
        "shipped",
        HANDLER_DIR,
        spec,
        artifact,
        lambda: train.train(spec, dataset)[1],
        dataset,
        ROOT / "model/requirements.txt",
    )


def variant_dataset(dataset: bytes) -> bytes:
    """The shipped rows plus a column that carries signal (recent logins keep customers)."""
    reader = csv.DictReader(io.StringIO(dataset.decode()))
    out = io.StringIO()
    writer = csv.DictWriter(out, [*reader.fieldnames, EXTRA_FEATURE], lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(reader):
        churned = int(row["churned"])
        row[EXTRA_FEATURE] = (i * 7) % 30 + (25 if churned else 0)
        writer.writerow(row)
    return out.getvalue().encode()


def variant(root: Path) -> ModelPackage:
    """A team's edit of the model, trained for real, laid out as a repository under `root`:
    model/ (spec, data, requirements) and infra/handlers/ (the handlers, the artifact)."""
    spec = train.load_spec(train.SPEC)
    data = variant_dataset(train.read_dataset(spec["dataset"]))
    model_dir = root / "model"
    (model_dir / "data").mkdir(parents=True, exist_ok=True)
    (model_dir / "data/churn.csv").write_bytes(data)
    spec = {
        **spec,
        "model_version": VARIANT_VERSION,
        "features": [*spec["features"], EXTRA_FEATURE],
        "dataset": str(model_dir / "data/churn.csv"),
    }
    (model_dir / "spec.json").write_text(json.dumps(spec))
    (model_dir / "requirements.txt").write_text(f"# the team's library\n{VARIANT_REQUIREMENT}\n")
    handlers = root / "infra/handlers"
    shutil.copytree(HANDLER_DIR.parent, handlers, ignore=shutil.ignore_patterns("__pycache__"))
    folder = handlers / "model"
    out = root / "build/train"
    status = train.main(
        [
            "--spec",
            str(model_dir / "spec.json"),
            "--out",
            str(out),
            "--serve",
            str(folder / "model.json"),
        ]
    )
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return ModelPackage(
        "variant",
        folder,
        spec,
        json.loads((folder / "model.json").read_text()),
        lambda: metrics,
        data,
        model_dir / "requirements.txt",
    )
