"""The model packages every model-handler test runs over (tests/model_packages.py)."""

from __future__ import annotations

import pytest

from tests import model_packages


@pytest.fixture(scope="session", params=["shipped", "variant"])
def package(request, tmp_path_factory) -> model_packages.ModelPackage:
    if request.param == "shipped":
        return model_packages.shipped()
    return model_packages.variant(tmp_path_factory.mktemp("variant-model"))
