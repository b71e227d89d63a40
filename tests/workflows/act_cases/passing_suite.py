"""A suite the act tests hand the test job (via PYTEST_ADDOPTS) so it passes quickly.

Not named test_*.py: pytest collects it only when it is named on the command line.
"""


def test_passes():
    assert True
