"""The test tiers, defined once: what `feedback` times and what a person runs while editing.

The unit tier is every test that runs in the test's own process: the program
under Pulumi's mocks, pure functions, Stubber-backed request shapes. It is
chosen by marker: tests/conftest.py marks every test that uses the moto server
`moto` and every test that uses the Pulumi CLI stand-in `process`, the act
tests carry `act`, and a test that starts any other process (git, nox, pytest,
a linter) must carry `process` or it fails, so a new test lands in the right
tier by what it uses. A process costs an interpreter's start-up or more per
call; those tests run beside the preview and gate the deploy.

    python -m bench.tiers [unit|integration|all]     # its pytest arguments

`nox -s unit` and `nox -s integration` run the two tiers (in parallel workers); the
push and pull-request pipelines gate preview on the first and deploy on both.
"""

from __future__ import annotations

import sys

UNIT_TIER: tuple[str, ...] = ("-m", "not moto and not act and not process")
# Everything the unit tier leaves out: the tests that talk to moto, run act or start
# other processes.
INTEGRATION_TIER: tuple[str, ...] = ("-m", "moto or act or process")
# The whole suite: pytest's own testpaths (pyproject.toml), everything.
WHOLE_SUITE: tuple[str, ...] = ()
# pytest-xdist, one worker per CPU. Not in pyproject's addopts: the act tests run pytest
# inside their workflows, where a worker pool would only add start-up time. A module's
# tests stay on one worker, so a module-scoped fixture (an evaluated program, a moto
# stack) is built once, not once per worker.
PARALLEL: tuple[str, ...] = ("-n", "auto", "--dist", "loadfile")

TIERS = {"unit": UNIT_TIER, "integration": INTEGRATION_TIER, "all": WHOLE_SUITE}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    name = args[0] if args else "unit"
    if name not in TIERS:
        print(f"usage: python -m bench.tiers [{'|'.join(TIERS)}]", file=sys.stderr)
        return 2
    print(" ".join(TIERS[name]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
