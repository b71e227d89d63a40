"""Benchmarks of the template's feedback loops, each measured beside its floor.

    python -m bench [--only NAME ...] [--quick] [--repeat N] [--output-dir DIR]

Every measurement runs in a fresh interpreter (a subprocess): wall time by
`time.perf_counter` around it, peak RSS from the child's own rusage (`os.wait4`).
Each is repeated (3 times by default) and the median reported, beside a floor
measured in the same run, interleaved with it. Targets are checked here, never
by timed unit tests: the bench exits 1 and names every figure that missed.
Results go to benchmarks/results.md and benchmarks/results.json (not
committed), stdout, and $GITHUB_STEP_SUMMARY when set.
"""
