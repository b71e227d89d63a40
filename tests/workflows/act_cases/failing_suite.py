"""A failing suite the act tests hand the test job (via PYTEST_ADDOPTS): the pipeline must stop.

Not named test_*.py: pytest collects it only when it is named on the command line.
"""


def test_fails():
    raise AssertionError("deliberately failing: nothing after the test job may run")
