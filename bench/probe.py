"""The child side of the benchmarks that need to look inside a process.

Each command runs in a fresh interpreter started by the bench and prints one
JSON object as its last line of stdout.

    python -m bench.probe synth [--api-versions N] [--evaluations K] [--bare]
    python -m bench.probe promotion --poll S --bake S --alarm-after S [--steps 10,50,100]
    python -m bench.probe calibrate
    python -m bench.probe sweeper --stacks N
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

SYNTH_BRANCH = "bench/synth"
PROMOTION_BRANCH = "bench/promotion"


def _versions(count: int) -> list[str]:
    return [f"v{i}" for i in range(1, count + 1)]


def synth(api_versions: int | None, evaluations: int, bare: bool) -> dict[str, Any]:
    """Imports, then the program evaluated `evaluations` times; then the bare engine's floor."""
    # Imported here, not at the top: how long they take is part of the result.
    started = time.perf_counter()
    import pulumi  # noqa: PLC0415
    import pulumi_aws  # noqa: F401, PLC0415

    eager = set(loaded_aws_modules())  # what `import pulumi_aws` loads by itself

    from infra import naming  # noqa: PLC0415
    from scripts import synth as synth_module  # noqa: PLC0415

    imported = time.perf_counter() - started
    overrides: dict[str, object] = {"branch": SYNTH_BRANCH}
    if api_versions is not None:
        overrides["apiVersions"] = _versions(api_versions)
    stack = naming.slugify(SYNTH_BRANCH)
    times: list[float] = []
    resources = 0
    for _ in range(evaluations):
        began = time.perf_counter()
        synthesis = synth_module.synthesize(stack, overrides=overrides)
        times.append(time.perf_counter() - began)
        resources = len(synthesis.resources)

    # The floor of evaluation: as many plain custom resources, through the same
    # mock monitor, with none of the program's code.
    def plain() -> None:
        for i in range(resources):
            pulumi.CustomResource("bench:index:Thing", f"thing-{i}", props={"name": f"t{i}"})

    bare_times = []
    for _ in range(evaluations if bare else 0):
        began = time.perf_counter()
        synth_module.run_under_mocks(plain, project="bench", stack="bench")
        bare_times.append(time.perf_counter() - began)
    return {
        "api_versions": api_versions,
        "resources": resources,
        "aws_modules": sorted(set(loaded_aws_modules()) - eager),
        "import_s": imported,
        "evaluations_s": times,
        "bare_evaluations_s": bare_times,
    }


def loaded_aws_modules() -> list[str]:
    """The pulumi_aws service modules really loaded: pulumi_aws registers every one of its
    ~250 modules lazily, and loads one only when the program touches an attribute of it."""
    import types  # noqa: PLC0415

    loaded = set()
    for name, module in list(sys.modules.items()):
        parts = name.split(".")
        service = len(parts) == 2 and parts[0] == "pulumi_aws" and not parts[1].startswith("_")
        # A module still waiting to be loaded is an importlib.util._LazyModule.
        if service and type(module) is types.ModuleType and hasattr(module, "__file__"):
            loaded.add(name)
    return sorted(loaded)


def calibrate(work: int = 3_000_000) -> dict[str, Any]:
    """A fixed CPU-bound loop: wall / CPU time says how much of a core this process got."""
    wall, cpu = time.perf_counter(), time.process_time()
    total = 0
    for i in range(work):
        total += i * i % 7
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "checksum": total,
    }


def sweeper(stacks: int) -> dict[str, Any]:
    """scripts.cleanup over `stacks` branch stacks, 3/4 of them with a live branch on a
    GitHub stand-in (paged, 100 a page), the rest orphaned and destroyed (fake pulumi)."""
    import math  # noqa: PLC0415
    import stat  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    import types  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    import responses  # noqa: PLC0415

    from infra import config, naming  # noqa: PLC0415
    from scripts import cleanup  # noqa: PLC0415
    from tests.conftest import FAKE_PULUMI, seed_stack  # noqa: PLC0415
    from tests.github_branches import API, REPO, BranchListing  # noqa: PLC0415

    live = stacks * 3 // 4
    default = cleanup.project_settings(config.REPO_ROOT).default_branch
    branches = [f"feature/scale-{i:04d}" for i in range(stacks)]
    recent = "2024-05-31T23:00:00.000Z"
    entries = [{"name": naming.slugify(b), "lastUpdate": recent} for b in branches]
    entries.append({"name": naming.slugify(default), "lastUpdate": recent})
    with tempfile.TemporaryDirectory(prefix="bench-sweeper-") as tmp:
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "pulumi"
        fake.write_text(FAKE_PULUMI.replace("{python}", sys.executable))
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        log, answers = Path(tmp) / "calls.jsonl", Path(tmp) / "answers.json"
        log.touch()
        answers.write_text(json.dumps({"stack ls": json.dumps(entries)}))
        # The stacks in a file:// backend, as deploys leave them: destroy needs a backend.
        backend = types.SimpleNamespace(backend=Path(tmp) / "backend")
        for entry in entries:
            seed_stack(backend, entry["name"])
        os.environ.update(
            PULUMI_BACKEND_URL=f"file://{backend.backend}",
            PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            FAKE_PULUMI_LOG=str(log),
            FAKE_PULUMI_ANSWERS=str(answers),
            GITHUB_TOKEN="ghs_bench-token",  # noqa: S106 - a stand-in's token
            GITHUB_API_URL=API,
        )
        os.environ.pop("GITHUB_STEP_SUMMARY", None)
        with responses.RequestsMock() as mock:
            listing = BranchListing(mock, [default, *branches[:live]])
            began = time.perf_counter()
            with contextlib_redirect():
                code = cleanup.main(["--yes", "--github-repo", REPO, "--now", "2024-06-01T00:00Z"])
            seconds = time.perf_counter() - began
        calls = [json.loads(line) for line in log.read_text().splitlines()]
    return {
        "stacks": stacks + 1,
        "exit": code,
        "seconds": seconds,
        "github_pages": len(listing.pages),
        "expected_pages": math.ceil((live + 1) / 100),
        "pulumi_calls": len(calls),
        "destroyed": sum(1 for c in calls if c[:1] == ["destroy"]),
        "stale": stacks - live,
    }


def contextlib_redirect() -> Any:
    """The sweeper's report and progress go nowhere: only the probe's JSON is stdout."""
    import contextlib  # noqa: PLC0415

    sink = io.StringIO()
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(sink))
    stack.enter_context(contextlib.redirect_stderr(sink))
    return stack


def _start_moto() -> Any:
    # moto is a test dependency: imported only by the benchmark that needs it.
    import requests  # noqa: PLC0415
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    assert server._server is not None  # start() created it
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    # Lambda without Docker: create, publish and alias work (as in tests/conftest.py).
    requests.post(f"{endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
    # moto's dummy credentials, as in tests/conftest.py.
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    return server


def _count_calls(client: Any, counter: Counter[str]) -> None:
    service = client.meta.service_model.service_name

    def count(model: Any, **_: Any) -> None:
        counter[f"{service}:{model.name}"] += 1

    client.meta.events.register("before-call", count)


def promotion(
    *, poll: float, bake: float, alarm_after: float, steps: Sequence[int]
) -> dict[str, Any]:
    """A clean promotion (calls per step), then one where an alarm fires mid-bake."""
    server = _start_moto()
    try:
        # After moto is up and the environment points at it.
        from scripts.lib import aws, promotion  # noqa: PLC0415
        from scripts.lib.progress import Progress  # noqa: PLC0415
        from tests.moto_stack import build_deployed_stack  # noqa: PLC0415

        stack = build_deployed_stack(PROMOTION_BRANCH)
        function, alias = stack.names.model_function, stack.names.model_alias
        alarms = list(stack.outputs["alarms"])
        lam, cloudwatch = aws.client("lambda"), aws.client("cloudwatch")
        calls: Counter[str] = Counter()
        _count_calls(lam, calls)
        _count_calls(cloudwatch, calls)

        def run(candidate: str) -> Any:
            return promotion.promote_alias(
                lam,
                cloudwatch,
                function=function,
                alias=alias,
                candidate=candidate,
                steps=steps,
                bake_seconds=bake,
                poll_seconds=poll,
                alarms=alarms,
                sleep=time.sleep,
                clock=time.monotonic,
                progress=Progress("promote", total=len(steps), stream=io.StringIO()),
            )

        # 1. No alarm: every step baked; the calls a whole promotion makes.
        candidate = stack.publish_candidate()
        began = time.perf_counter()
        clean = run(candidate)
        clean_s = time.perf_counter() - began
        clean_calls = dict(calls)

        # 2. The alarm goes off `alarm_after` seconds into the first bake.
        previous = candidate
        candidate = stack.publish_candidate()
        calls.clear()
        shifted = threading.Event()
        marks: dict[str, float] = {}

        def watch_alias(parsed: dict[str, Any], **_: Any) -> None:
            weights = (parsed.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            if weights and "shifted" not in marks:
                marks["shifted"] = time.perf_counter()
                shifted.set()
            elif "alarm" in marks and parsed.get("FunctionVersion") == previous and not weights:
                marks.setdefault("restored", time.perf_counter())

        lam.meta.events.register("after-call.lambda.UpdateAlias", watch_alias)
        raiser_client = aws.client("cloudwatch")  # not counted: the alarm is not promote's call

        def raise_alarm() -> None:
            if not shifted.wait(timeout=60):
                return
            time.sleep(alarm_after)
            # Stamped before the call: the latency includes the call, never less than real.
            marks["alarm"] = time.perf_counter()
            raiser_client.set_alarm_state(
                AlarmName=alarms[-1], StateValue="ALARM", StateReason="bench: raised mid-bake"
            )

        raiser = threading.Thread(target=raise_alarm, daemon=True)
        raiser.start()
        rolled = run(candidate)
        raiser.join(timeout=60)
        final = aws.client("lambda").get_alias(FunctionName=function, Name=alias)
        final_weights = (final.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        restored = final["FunctionVersion"] == previous and not final_weights
        latency = (
            marks["restored"] - marks["alarm"] if "restored" in marks and "alarm" in marks else None
        )
        return {
            "poll_s": poll,
            "bake_s": bake,
            "steps": list(steps),
            "alarm_after_s": alarm_after,
            "clean_outcome": clean.outcome,
            "clean_s": clean_s,
            "clean_calls": clean_calls,
            "rollback_outcome": rolled.outcome,
            "rollback_calls": dict(calls),
            "restored": restored,
            "rollback_latency_s": latency,
        }
    finally:
        server.stop()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.probe")
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("synth")
    s.add_argument("--api-versions", type=int, help="default: the stack's config")
    s.add_argument("--evaluations", type=int, default=3)
    s.add_argument("--bare", action="store_true", help="also time plain resources (the floor)")
    p = commands.add_parser("promotion")
    p.add_argument("--poll", type=float, required=True)
    p.add_argument("--bake", type=float, required=True)
    p.add_argument("--alarm-after", type=float, required=True)
    p.add_argument("--steps", default="10,50,100")
    commands.add_parser("calibrate")
    w = commands.add_parser("sweeper")
    w.add_argument("--stacks", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "synth":
        result = synth(args.api_versions, max(args.evaluations, 2), args.bare)
    elif args.command == "calibrate":
        result = calibrate()
    elif args.command == "sweeper":
        result = sweeper(args.stacks)
    else:
        result = promotion(
            poll=args.poll,
            bake=args.bake,
            alarm_after=args.alarm_after,
            steps=[int(s) for s in args.steps.split(",")],
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
