"""A failing suite the act tests hand the test jobs (via PYTEST_ADDOPTS): the pipeline must stop.

Not named test_*.py: pytest collects it only when it is named on the command line. The
unit tier fails (its assertion must reach the job summary); the other tiers pass.
"""

import pytest


def test_fails():
    live_version = "1"
    assert live_version == "2", "deliberately failing: nothing after the test job may run"


@pytest.mark.moto
def test_passes_in_the_moto_tier():
    assert True


@pytest.mark.act
def test_passes_in_the_act_tier():
    assert True
