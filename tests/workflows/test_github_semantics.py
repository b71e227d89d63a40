"""What GitHub does with the workflow files and act does not show: concurrency groups,
approval waits against artifact retention, which commit a pull request previews.

The concurrency rule is GitHub's, simulated over the groups the jobs really name (resolved
from the files for each run): a group holds one running job and one pending job; a job
that arrives while another is pending cancels that older pending one. A job waiting for
approval is counted as pending, the conservative reading (it is then as cancellable as it
can be).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import pytest

from tests.workflows.test_static import CALLERS, JOBS, Job, concurrency, load

BRANCH = "feature/x"
# Longest wait GitHub allows a job for its environment's approval.
APPROVAL_WAIT_DAYS = 30


def _resolve(text: str, job: Job, run: int, branch: str) -> str:
    """A group expression as GitHub evaluates it for one run of one branch."""
    context = {
        "github.ref_name": branch,
        "github.event.ref": branch,
        "github.head_ref": branch,
        "github.run_id": str(run),
        "github.event.pull_request.number": "7",
        "github.workflow": job.workflow,
    }

    def value(expression: str) -> str:
        expression = expression.strip()
        if expression.startswith("inputs."):
            given = str(job.given[expression.removeprefix("inputs.")])
            return _resolve(given, job, run, branch)
        return context[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: value(m[1]), text)


@dataclass
class Arrival:
    job: str  # workflow:job key
    run: int
    awaiting_approval: bool = False
    branch: str = BRANCH

    @property
    def name(self) -> str:
        return f"{self.job}#{self.run}"


@dataclass
class GitHub:
    """One running and one pending job per group; a newer pending cancels the older."""

    running: dict[str, Arrival] = field(default_factory=dict)
    pending: dict[str, Arrival] = field(default_factory=dict)
    cancelled: list[tuple[str, str]] = field(default_factory=list)  # (victim, by)
    started: list[str] = field(default_factory=list)

    @staticmethod
    def group(arrival: Arrival) -> str | None:
        job = next(j for j in JOBS if j.key == arrival.job)
        spec = concurrency(job)
        return _resolve(spec["group"], job, arrival.run, arrival.branch) if spec else None

    def arrive(self, arrival: Arrival) -> None:
        group = self.group(arrival)
        if group is None:
            self.started.append(arrival.name)
            return
        if group not in self.running and not arrival.awaiting_approval:
            self.running[group] = arrival
            self.started.append(arrival.name)
            return
        if group in self.pending:
            self.cancelled.append((self.pending[group].name, arrival.name))
        self.pending[group] = arrival

    def finish(self, arrival: Arrival) -> None:
        group = self.group(arrival)
        if group is not None and self.running.get(group) is arrival:
            del self.running[group]
            waiting = self.pending.get(group)
            if waiting is not None and not waiting.awaiting_approval:
                del self.pending[group]
                self.arrive(waiting)

    def approve(self, arrival: Arrival) -> None:
        arrival.awaiting_approval = False
        group = self.group(arrival)
        if group is not None and self.pending.get(group) is arrival and group not in self.running:
            del self.pending[group]
            self.arrive(arrival)

    def was_cancelled(self, arrival: Arrival) -> bool:
        return any(victim == arrival.name for victim, _ in self.cancelled)


def test_a_rollback_is_never_cancelled_whatever_arrives_around_it():
    others = [
        Arrival("push:promote", 1, awaiting_approval=True),
        Arrival("push:release", 1, awaiting_approval=True),
        Arrival("push:promote", 2, awaiting_approval=True),
        Arrival("push:release", 2, awaiting_approval=True),
        Arrival("rollback:rollback", 4, awaiting_approval=True),
        Arrival("delete:quiesce", 5),
    ]
    for position in range(len(others) + 1):
        rollback = Arrival("rollback:rollback", 3, awaiting_approval=True)
        order = [*others[:position], rollback, *others[position:]]
        github = GitHub()
        for arrival in order:
            arrival.awaiting_approval = arrival.job != "delete:quiesce"
            github.arrive(arrival)
        assert not github.was_cancelled(rollback), (order, github.cancelled)


def test_one_run_s_release_and_the_next_run_s_promotion_do_not_cancel_each_other():
    github = GitHub()
    promote_1 = Arrival("push:promote", 1)
    github.arrive(promote_1)
    github.finish(promote_1)
    release_1 = Arrival("push:release", 1, awaiting_approval=True)
    github.arrive(release_1)
    # The next push deploys while run 1's release still waits for its reviewer.
    promote_2 = Arrival("push:promote", 2, awaiting_approval=True)
    github.arrive(promote_2)
    release_2 = Arrival("push:release", 2, awaiting_approval=True)
    github.arrive(release_2)  # would only come after promote 2; the worst case all the same

    assert not github.was_cancelled(promote_2)
    # Run 1's release is superseded by run 2's release of the same API, and by nothing else.
    assert github.cancelled in ([], [(release_1.name, release_2.name)])


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(["promote", "release"])))
def test_only_a_newer_job_of_the_same_duty_supersedes_a_waiting_one(first, second):
    github = GitHub()
    older = Arrival(f"push:{first}", 1, awaiting_approval=True)
    github.arrive(older)
    github.arrive(Arrival(f"push:{second}", 2, awaiting_approval=True))
    assert not github.was_cancelled(older)
    github.arrive(Arrival(f"push:{first}", 3, awaiting_approval=True))
    assert github.cancelled == [(older.name, f"push:{first}#3")]


def test_a_destroy_waits_for_a_running_promotion_and_drops_a_waiting_one():
    github = GitHub()
    promoting = Arrival("push:promote", 1)
    github.arrive(promoting)
    quiesce = Arrival("delete:quiesce", 9)
    github.arrive(quiesce)
    # The destroy job needs quiesce: it cannot start while the promotion shifts traffic.
    assert quiesce.name not in github.started
    github.finish(promoting)
    assert quiesce.name in github.started
    assert CALLERS["delete"]["jobs"]["destroy"]["needs"] == "quiesce"

    # A promotion still waiting for approval: GitHub drops it when quiesce has to queue
    # behind a running one; otherwise its approval may come after the deletion, and then
    # the job's first check refuses a deleted branch before it asks AWS for anything.
    github = GitHub()
    running, waiting = Arrival("push:promote", 1), Arrival("push:promote", 2, True)
    github.arrive(running)
    github.arrive(waiting)
    github.arrive(Arrival("delete:quiesce", 9))
    assert github.was_cancelled(waiting)
    for key in ("push:promote", "push:release"):
        job = next(j for j in JOBS if j.key == key)
        names = [s.get("name", "") for s in job.steps]
        (preflight,) = [s for s in job.steps if "-s preflight" in str(s.get("run", ""))]
        assert '--branch "$BRANCH"' in preflight["run"]
        assert preflight["env"]["BRANCH"] == "${{ inputs.branch }}"
        first_aws = next(
            i for i, s in enumerate(job.steps) if "configure-aws" in str(s.get("uses"))
        )
        assert names.index(preflight.get("name", "")) < first_aws, key


def test_deploys_queue_and_branches_never_share_a_group():
    github = GitHub()
    deploy_1, deploy_2 = Arrival("push:deploy", 1), Arrival("push:deploy", 2)
    github.arrive(deploy_1)
    github.arrive(deploy_2)
    assert deploy_2.name not in github.started and not github.cancelled
    github.finish(deploy_1)
    assert deploy_2.name in github.started
    for key in ("push:deploy", "push:promote", "push:release"):
        a, b = Arrival(key, 1, branch="a"), Arrival(key, 1, branch="b")
        assert GitHub.group(a) != GitHub.group(b), key


# ---------------------------------------------------------------- time


def _approval_jobs_on_the_way(workflow: str, job_id: str) -> list[str]:
    """Jobs needing approval from the uploader to this job, this one included."""
    jobs = CALLERS[workflow]["jobs"]
    chain, current = [], job_id
    while current != "deploy":
        chain.append(current)
        needs = jobs[current].get("needs")
        needs = [needs] if isinstance(needs, str) else list(needs)
        current = "promote" if "promote" in needs else "deploy"
    return [j for j in chain if next(x for x in JOBS if x.key == f"{workflow}:{j}").environment]


def _artifact_name(job, step) -> str:
    """The artifact a step names, followed through the caller's inputs."""
    name = str(step["with"]["name"]).strip()
    match = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", name)
    return str(job.given.get(match[1], name)) if match else name


def test_the_stack_outputs_outlive_every_approval_that_reads_them():
    push = [job for job in JOBS if job.workflow == "push"]
    kept = {
        _artifact_name(job, step): (job.id, int(step["with"]["retention-days"]))
        for job in push
        for step in job.steps
        if "upload-artifact" in str(step.get("uses")) and "retention-days" in step["with"]
    }
    readers = {
        (job.id, _artifact_name(job, step))
        for job in push
        for step in job.steps
        if "download-artifact" in str(step.get("uses")) and _artifact_name(job, step) in kept
    }
    # Deploy's outputs feed training and release, training's outputs feed promote.
    assert {job for job, _ in readers} >= {"train", "promote", "release"}
    for job_id, artifact in readers:
        writer, retention_days = kept[artifact]
        assert retention_days <= 90  # GitHub's maximum without a repository setting
        gates = _approval_jobs_on_the_way("push", job_id)
        # Each gate may hold its job for the longest approval wait, then the job runs.
        worst_days = sum(
            APPROVAL_WAIT_DAYS
            + next(x for x in JOBS if x.key == f"push:{g}").spec["timeout-minutes"] / 1440
            for g in gates
        )
        assert worst_days < retention_days, (job_id, artifact, writer, gates, worst_days)


# ---------------------------------------------------------------- pull requests


def test_a_pull_request_previews_the_commit_a_push_of_its_branch_deploys():
    preview = CALLERS["pull-request"]["jobs"]["preview"]
    # GitHub checks out refs/pull/N/merge for pull_request events unless told otherwise;
    # a push of the head branch deploys the head commit, so that is what must be previewed.
    assert preview["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    called = load(
        next(p for p in (CALLERS["pull-request"],) if p) and _reusable("reusable-preview.yml")
    )
    (checkout,) = [
        s
        for s in called["jobs"]["preview"]["steps"]
        if str(s.get("uses", "")).startswith("actions/checkout@")
    ]
    assert checkout["with"]["ref"] == "${{ inputs.ref }}"
    # The push pipeline's preview passes no ref: the pushed commit, which deploy applies.
    assert "ref" not in CALLERS["push"]["jobs"]["preview"]["with"]


def _reusable(name: str):
    from tests.workflows.test_static import ROOT  # noqa: PLC0415

    return ROOT / ".github/workflows" / name
