"""The push pipeline's critical path under act: the old order against the new, same tests.

    python -m bench.pipeline --order old|new

Runs the preview and the jobs it needs (`act --job preview`) under act (host mode, the
act tests' stand-ins: moto, a local GitHub API, the recording `pulumi`), on a snapshot
of the working tree, with the real sessions and the real suite: the critical path from
a push to its first test verdict and to its preview. The tier that runs beside the
preview has a runner of its own on GitHub; under act on one host it would take cores
from the critical path, so it is left out. The two orders, from today's push.yml:

- new: push.yml as it is: `unit` (lint + the unit tier) gates the preview, and
  `integration` (moto + act tiers) runs beside the preview;
- old: one `test` job running `lint tests` (the whole suite), the preview after it.

Prints one JSON object: seconds from the push to each job's end, to the first test
verdict, to the preview, to the end of all tests, and the sum of the jobs' durations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = "bench-pipeline.yml"
TEST_JOBS = {"new": ("unit", "integration"), "old": ("test",)}
ACT_TIMEOUT_SECONDS = 3000


def derive(push: dict[str, Any], order: str) -> dict[str, Any]:
    """push.yml cut after the preview, in the given order of its test jobs."""
    jobs = push["jobs"]
    kept = {name: dict(jobs[name]) for name in ("unit", "integration", "preview")}
    if order == "old":
        test = dict(kept["unit"])
        test["with"] = {**test["with"], "sessions": "lint tests"}
        kept = {"test": test, "preview": {**kept["preview"], "needs": "test"}}
    else:
        kept["unit"]["with"] = {**kept["unit"]["with"], "sessions": "lint unit"}
        kept["integration"]["with"] = {**kept["integration"]["with"], "sessions": "integration"}
    return {
        "name": f"bench pipeline ({order} order)",
        "on": {"push": None},
        **{k: v for k, v in push.items() if k not in ("name", "on", True, "jobs")},
        "jobs": kept,
    }


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def timeline(entries: Sequence[dict[str, Any]], started: float, job_of) -> dict[str, dict]:
    """Per job: seconds from `started` to its first log line and to its result."""
    jobs: dict[str, dict] = {}
    for entry in entries:
        if "time" not in entry or "job" not in entry:
            continue
        job, at = job_of(entry), _epoch(entry["time"]) - started
        span = jobs.setdefault(job, {"start": at, "end": at, "result": None})
        span["start"], span["end"] = min(span["start"], at), max(span["end"], at)
        if "jobResult" in entry:
            span["result"] = entry["jobResult"]
    return jobs


def measure(order: str) -> dict[str, Any]:
    # The act machinery lives with the act tests; the bench borrows it.
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    from tests.workflows import conftest  # noqa: PLC0415
    from tests.workflows.conftest import Act, ActRun, snapshot_repo  # noqa: PLC0415
    from tests.workflows.standins import AwsFront, GitHubApi, action_repos  # noqa: PLC0415

    # The act tests run a few quick tests per job; here every job runs the real suite.
    conftest.ACT_TIMEOUT_SECONDS = ACT_TIMEOUT_SECONDS

    push = yaml.safe_load((ROOT / ".github/workflows/push.yml").read_text())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    assert server._server is not None  # started just above
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    front = AwsFront(endpoint)
    # The state bucket a bootstrapped account has, as the act tests' `act` fixture makes it.
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    ).create_bucket(Bucket=conftest.STATE_BUCKET)
    github = GitHubApi()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            base = Path(tmp)
            repo = snapshot_repo(base / "repo")
            # Outside the repository: inside it, the suite under test would see an extra
            # workflow (the README's pipeline diagram and the static checks would fail).
            (base / WORKFLOW).write_text(yaml.safe_dump(derive(push, order), sort_keys=False))
            act = Act(
                repo=repo,
                workdir=base,
                standins=list(action_repos(base / "actions")),
                aws=front,
                github=github,
            )
            payload = {
                "ref": "refs/heads/bench/pipeline",
                "repository": {
                    "full_name": "acme/mlship",
                    "name": "mlship",
                    "owner": {"login": "acme"},
                    "default_branch": "main",
                },
            }
            started = time.time()
            run: ActRun = act(
                "push",
                payload,
                f"../../../{WORKFLOW}",  # from .github/workflows/ in the repo to `base`
                # The real suite, in parallel workers as the sessions run it.
                pytest_addopts="",
                env={"PYTEST_XDIST_AUTO_NUM_WORKERS": ""},
                # The preview and the jobs it needs: on GitHub each job has a runner of
                # its own, so the tier that runs beside the preview takes no core from
                # the critical path; under act on one host it would.
                job="preview",
            )
    finally:
        github.close()
        front.close()
        server.stop()
    jobs = timeline(run.entries, started, ActRun.job_of)
    tests = [jobs[name] for name in TEST_JOBS[order] if name in jobs]
    result = {
        "order": order,
        "returncode": run.returncode,
        "results": run.results,
        "seconds": run.seconds,
        "jobs": jobs,
        "first_verdict_s": min((j["end"] for j in tests), default=None),
        "all_tests_s": max((j["end"] for j in tests), default=None),
        "preview_s": jobs.get("preview", {}).get("end"),
        "job_sum_s": sum(j["end"] - j["start"] for j in jobs.values()),
        "failed": [
            str(e.get("msg", "")).strip()
            for e in run.entries
            if "FAILED" in str(e.get("msg", "")) or "Session" in str(e.get("msg", ""))
        ][-8:]
        if run.returncode
        else [],
    }
    # Why a run failed, for the person reading the bench's output (stderr: the JSON on
    # stdout stays one line).
    if run.returncode:
        print(run.explain(), file=sys.stderr)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline")
    parser.add_argument("--order", choices=sorted(TEST_JOBS), required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(json.dumps(measure(args.order)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
