"""The workflows' promises that act cannot show (it ignores environments, concurrency and
OIDC), checked from the files themselves, plus zizmor and the GitHub workflow schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import config, naming
from scripts import bootstrap
from scripts import protected as protected_script
from scripts import stack as stack_script
from tests.project import ROOT
from tests.yaml_files import load_yaml as load

GITHUB = ROOT / ".github"
WORKFLOW_FILES = sorted((GITHUB / "workflows").glob("*.yml"))
ACTION_FILES = sorted((GITHUB / "actions").rglob("action.yml"))
AWS_ACTION = "aws-actions/configure-aws-credentials"
APPROVAL = {"promote": "canary-promotion", "release": "api-release", "rollback": "canary-promotion"}

# Every remote action, at the one commit each is pinned to: its current release, all on
# node24 (runners default to Node 24 since 2026-06-02). Confirmed on 2026-12-01 in a snapshot
# of each action's repository: the tag resolves to this commit, and the commit's action.yml
# says `using: node24` and declares the inputs below. A new pin must be confirmed the same way.
CONFIRMED_PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
}
# The inputs each pinned release's action.yml declares, as read there.
ACTION_INPUTS = {
    "actions/checkout": {
        "allow-unsafe-pr-checkout",
        "clean",
        "fetch-depth",
        "fetch-tags",
        "filter",
        "github-server-url",
        "lfs",
        "path",
        "persist-credentials",
        "ref",
        "repository",
        "set-safe-directory",
        "show-progress",
        "sparse-checkout",
        "sparse-checkout-cone-mode",
        "ssh-key",
        "ssh-known-hosts",
        "ssh-strict",
        "ssh-user",
        "submodules",
        "token",
    },
    "actions/cache": {
        "enableCrossOsArchive",
        "fail-on-cache-miss",
        "key",
        "lookup-only",
        "path",
        "restore-keys",
        "save-always",
        "upload-chunk-size",
    },
    "actions/download-artifact": {
        "artifact-ids",
        "digest-mismatch",
        "github-token",
        "merge-multiple",
        "name",
        "path",
        "pattern",
        "repository",
        "run-id",
        "skip-decompress",
    },
    "actions/setup-python": {
        "allow-prereleases",
        "architecture",
        "cache",
        "cache-dependency-path",
        "check-latest",
        "freethreaded",
        "pip-version",
        "python-version",
        "python-version-file",
        "token",
        "update-environment",
    },
    "actions/upload-artifact": {
        "archive",
        "compression-level",
        "if-no-files-found",
        "include-hidden-files",
        "name",
        "overwrite",
        "path",
        "retention-days",
    },
    "aws-actions/configure-aws-credentials": {
        "action-timeout-s",
        "allowed-account-ids",
        "audience",
        "aws-access-key-id",
        "aws-profile",
        "aws-region",
        "aws-secret-access-key",
        "aws-session-token",
        "custom-tags",
        "disable-retry",
        "force-skip-oidc",
        "http-proxy",
        "inline-session-policy",
        "managed-session-policies",
        "mask-aws-account-id",
        "no-proxy",
        "output-credentials",
        "output-env-credentials",
        "overwrite-aws-profile",
        "retry-max-attempts",
        "role-chaining",
        "role-duration-seconds",
        "role-external-id",
        "role-session-name",
        "role-skip-session-tagging",
        "role-to-assume",
        "special-characters-workaround",
        "sts-endpoint",
        "transitive-tag-keys",
        "unset-current-credentials",
        "use-existing-credentials",
        "web-identity-token-file",
    },
}


def triggers(workflow: Mapping[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    return dict.fromkeys(on) if isinstance(on, list) else dict(on or {})


WORKFLOWS = {path.stem: load(path) for path in WORKFLOW_FILES}
CALLERS = {name: w for name, w in WORKFLOWS.items() if set(triggers(w)) - {"workflow_call"}}


@dataclass
class Job:
    """A job as it runs: a caller's job, or a called workflow's job under its caller."""

    workflow: str
    id: str
    spec: Mapping[str, Any]  # where steps, environment and permissions are
    caller: Mapping[str, Any]  # the caller's job (the same as spec for a direct job)
    given: Mapping[str, Any]  # inputs the caller passes

    @property
    def steps(self) -> list[Mapping[str, Any]]:
        return list(self.spec.get("steps") or [])

    @property
    def environment(self) -> str:
        value = self.spec.get("environment") or ""
        return value.get("name", "") if isinstance(value, Mapping) else value

    @property
    def permissions(self) -> Mapping[str, str]:
        return self.spec.get("permissions") or {}

    def aws_steps(self) -> list[Mapping[str, Any]]:
        return [s for s in self.steps if str(s.get("uses", "")).startswith(AWS_ACTION + "@")]

    @property
    def roles(self) -> set[str]:
        return {s["with"]["role-to-assume"] for s in self.aws_steps()}

    @property
    def key(self) -> str:
        return f"{self.workflow}:{self.id}"


def running_jobs() -> Iterator[Job]:
    for name, workflow in CALLERS.items():
        for job_id, spec in workflow["jobs"].items():
            uses = spec.get("uses")
            if uses:
                called = load(ROOT / uses.removeprefix("./"))
                for inner in called["jobs"].values():
                    yield Job(name, job_id, inner, spec, spec.get("with") or {})
            else:
                yield Job(name, job_id, spec, spec, {})


JOBS = list(running_jobs())


def all_steps() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for path in WORKFLOW_FILES:
        for job_id, job in load(path)["jobs"].items():
            for step in job.get("steps") or []:
                yield f"{path.name}:{job_id}", step
    for path in ACTION_FILES:
        for step in load(path)["runs"].get("steps") or []:
            yield str(path.relative_to(ROOT)), step


def tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else (shutil.which(name) or name)


# ---------------------------------------------------------------- linters


@pytest.mark.process
def test_zizmor_finds_nothing_offline():
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--config", ".github/zizmor.yml", ".github"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.process
@pytest.mark.parametrize(
    ("schema", "files"),
    [("vendor.github-workflows", WORKFLOW_FILES), ("vendor.github-actions", ACTION_FILES)],
)
def test_the_github_schema_accepts_every_file(schema, files):
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- permissions and roles


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_workflow_starts_with_no_permissions(path):
    assert load(path)["permissions"] == {}


def test_every_job_says_what_it_may_do():
    for name, workflow in WORKFLOWS.items():
        for job_id, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name}:{job_id} has no permissions block"


def test_a_called_job_asks_for_no_more_than_its_caller_grants():
    for job in JOBS:
        granted = job.caller.get("permissions") or {}
        for scope, level in job.permissions.items():
            allowed = {level, "write"} if level == "read" else {level}
            assert granted.get(scope) in allowed, f"{job.key}: wants {scope}: {level}, {granted}"


def test_id_token_is_granted_exactly_where_aws_is_assumed():
    for job in JOBS:
        assumes = bool(job.aws_steps())
        assert (job.permissions.get("id-token") == "write") == assumes, job.key
        if job.caller is not job.spec:
            assert (job.caller["permissions"].get("id-token") == "write") == assumes, job.key


def role_variables(job: Job) -> set[str]:
    """The repository variables a job's role-to-assume expressions can pick from."""
    return {v for role in job.roles for v in re.findall(r"vars\.(AWS_\w+_ROLE_ARN)", role)}


def test_each_duty_has_its_role_and_region_from_repository_variables():
    # Which variable a job picks, for which event and stack kind, and whether its
    # token may assume that role: tests/iam/test_workflow_access.py.
    for job in JOBS:
        for step in job.aws_steps():
            assert role_variables(job) <= set(bootstrap.VARIABLES), job.key
            assert re.sub(r"\s+", " ", step["with"]["role-to-assume"]).startswith("${{ "), job.key
            assert step["with"]["aws-region"] == "${{ vars.AWS_REGION }}", job.key
            assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"])


def test_only_the_traffic_and_release_jobs_take_a_promote_role():
    promote = {job.key for job in JOBS if any("PROMOTE" in v for v in role_variables(job))}
    assert promote == {"push:promote", "push:release", "rollback:rollback"}
    for job in JOBS:
        if job.key in promote:
            # ...and nothing else: an approval environment hosts traffic alone.
            assert {v for v in role_variables(job) if "PROMOTE" not in v} == set(), job.key


def test_traffic_and_release_jobs_run_in_their_approval_environment():
    for job in JOBS:
        if any("PROMOTE" in v for v in role_variables(job)):
            assert f"'{APPROVAL[job.id]}'" in job.environment, job.key
        elif job.environment:
            assert not any(a in job.environment for a in naming.APPROVAL_ENVIRONMENTS), job.key


def test_approval_jobs_check_their_gate_before_asking_for_aws():
    # GitHub creates a named environment on first use, unprotected; the preflight session
    # fails closed unless it requires a reviewer, and runs before any credential exists.
    for job in JOBS:
        if not any(a in job.environment for a in naming.APPROVAL_ENVIRONMENTS):
            continue
        check = 'python -m nox --no-install -s preflight -- --environment "$APPROVAL"'
        runs = [str(s.get("run", "")) for s in job.steps]
        (gate,) = [i for i, run in enumerate(runs) if run.startswith(check)]
        # The gate checks the very environment the job runs in.
        assert job.steps[gate]["env"]["APPROVAL"] == job.environment, job.key
        first_aws = next(i for i, s in enumerate(job.steps) if s in job.aws_steps())
        assert gate < first_aws, job.key
        assert job.permissions.get("actions") == "read", job.key


def needs_of(workflow: str, job_id: str) -> set[str]:
    jobs = CALLERS[workflow]["jobs"]
    direct = jobs[job_id].get("needs") or []
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needs_of(workflow, n) for n in direct)) if direct else set()


def test_traffic_and_release_wait_for_a_successful_deploy():
    assert needs_of("push", "promote") >= {"deploy", "train", "unit", "integration", "preview"}
    assert {"deploy", "train", "promote"} <= set(CALLERS["push"]["jobs"]["release"]["needs"])
    # Whether they run when deploy and training succeeded is shown by act (test_act.py);
    # that they never run after a failed one, here: promote's condition reads an output
    # only a successful training run sets, release's demands success outright.
    assert CALLERS["push"]["jobs"]["promote"]["if"] == "needs.train.outputs.promote == 'true'"
    release_if = CALLERS["push"]["jobs"]["release"]["if"]
    assert "needs.deploy.result == 'success'" in release_if
    assert "needs.train.result == 'success'" in release_if
    # The one traffic job outside the pipeline is started by a person, by hand.
    assert set(triggers(CALLERS["rollback"])) == {"workflow_dispatch"}


def test_deploy_runs_in_its_branch_environment_with_the_api_url():
    (deploy,) = [job for job in JOBS if job.key == "push:deploy"]
    environment = deploy.spec["environment"]
    # The deploy role trusts `environment:branch/*` (infra/components/ci_duties.py).
    assert environment["name"] == naming.DEPLOY_ENVIRONMENT_PREFIX + "${{ inputs.stack }}"
    assert environment["url"] == "${{ steps.deploy.outputs.api_url }}"
    assert deploy.given["stack"] == "${{ needs.preview.outputs.stack }}"
    assert role_variables(deploy) == {"AWS_DEPLOY_ROLE_ARN", "AWS_DEPLOY_PROTECTED_ROLE_ARN"}


def test_the_job_writing_to_the_pull_request_holds_no_aws_and_vice_versa():
    for job in JOBS:
        if job.permissions.get("pull-requests") == "write":
            assert not job.aws_steps(), job.key
        if job.aws_steps():
            assert "pull-requests" not in job.permissions, job.key


# ---------------------------------------------------------------- steps


def test_every_remote_action_is_pinned_to_a_confirmed_commit_with_its_version():
    uses = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
    seen = set()
    for path in [*WORKFLOW_FILES, *ACTION_FILES]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = uses.match(line)
            if not match or match["ref"].startswith("./"):
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            action, _, sha = match["ref"].partition("@")
            repo = "/".join(action.split("/")[:2])
            assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{where}: {match['ref']} is not a SHA"
            version = re.fullmatch(r"\s+#\s*(v\d+(?:\.\d+)*)\s*", match["comment"])
            assert version, f"{where}: no `# vX.Y.Z` comment"
            assert CONFIRMED_PINS.get(repo) == (sha, version[1]), f"{where}: unconfirmed pin"
            seen.add(repo)
    assert seen == set(CONFIRMED_PINS)


def test_every_action_gets_only_inputs_its_release_declares_and_the_stand_ins_agree():
    from tests.workflows.standins import STANDIN_ACTIONS  # noqa: PLC0415 - test helper

    for where, step in all_steps():
        uses = str(step.get("uses", ""))
        if uses.startswith("./") or not uses:
            continue
        repo = "/".join(uses.partition("@")[0].split("/")[:2])
        unknown = set(step.get("with") or {}) - ACTION_INPUTS[repo]
        assert not unknown, f"{where}: {repo} declares no input {sorted(unknown)}"
    for repo, text in STANDIN_ACTIONS.items():
        declared = set(yaml.safe_load(text).get("inputs") or {})
        assert declared <= ACTION_INPUTS[repo], (
            f"stand-in for {repo}: {declared - ACTION_INPUTS[repo]}"
        )


def test_no_expression_inside_any_run():
    for where, step in all_steps():
        assert "${{" not in str(step.get("run", "")), f"{where}: {step.get('name', step)}"


def test_checkout_keeps_no_credentials():
    checkouts = [
        (w, s) for w, s in all_steps() if str(s.get("uses", "")).startswith("actions/checkout@")
    ]
    assert checkouts
    for where, step in checkouts:
        assert (step.get("with") or {}).get("persist-credentials") is False, where


def test_callers_pass_only_declared_inputs_and_secrets():
    for name, workflow in CALLERS.items():
        for job_id, job in workflow["jobs"].items():
            if "uses" not in job:
                continue
            declared = triggers(load(ROOT / job["uses"].removeprefix("./")))["workflow_call"]
            inputs, secrets = declared.get("inputs") or {}, declared.get("secrets") or {}
            given = job.get("with") or {}
            assert set(given) <= set(inputs), f"{name}:{job_id}"
            required = {k for k, v in inputs.items() if v.get("required")}
            assert required <= set(given), f"{name}:{job_id} misses {required - set(given)}"
            assert job.get("secrets") != "inherit", f"{name}:{job_id}"
            assert set(job.get("secrets") or {}) <= set(secrets), f"{name}:{job_id}"


# ---------------------------------------------------------------- concurrency


def concurrency(job: Job) -> Mapping[str, Any]:
    """The job's own concurrency, else its caller job's, else its workflow's."""
    return (
        job.spec.get("concurrency")
        or job.caller.get("concurrency")
        or CALLERS[job.workflow].get("concurrency")
        or {}
    )


def by_key(key: str) -> Job:
    return next(job for job in JOBS if job.key == key)


def test_one_deploying_run_per_branch_queued_never_cancelled():
    deploy, destroy = by_key("push:deploy"), by_key("delete:destroy")
    for job in (deploy, destroy):
        assert concurrency(job) == {
            "group": "mlship-stack-${{ inputs.branch }}",
            "cancel-in-progress": False,
        }, job.key
    # The same branch gives the same group: push names it by ref_name, delete by event.ref.
    assert deploy.given["branch"] == "${{ github.ref_name }}"
    assert destroy.given["branch"] == "${{ github.event.ref }}"


def test_superseded_previews_are_cancelled():
    push_preview = CALLERS["push"]["jobs"]["preview"]["concurrency"]
    assert push_preview == {
        "group": "mlship-preview-push-${{ github.ref_name }}",
        "cancel-in-progress": True,
    }
    assert CALLERS["pull-request"]["concurrency"] == {
        "group": "mlship-preview-pr-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }


def test_nothing_that_changes_aws_can_be_cancelled_by_a_newer_run():
    for job in JOBS:
        # A preview changes nothing whatever role it holds: the S3 backend takes
        # no lock for it (pulumi/pulumi pkg/backend/diy/backend.go, Preview).
        if job.aws_steps() and job.id != "preview":
            # In a group, queued and never cancelled in progress; or in none at all.
            assert concurrency(job).get("cancel-in-progress", False) is False, job.key
            workflow_level = CALLERS[job.workflow].get("concurrency") or {}
            assert not workflow_level.get("cancel-in-progress"), job.key


# ---------------------------------------------------------------- the delete path


def test_delete_destroys_only_a_deleted_branch_through_nox():
    workflow = CALLERS["delete"]
    assert set(triggers(workflow)) == {"delete"}
    job = workflow["jobs"]["destroy"]
    assert job["uses"] == "./.github/workflows/reusable-destroy.yml"
    for gated in ("quiesce", "destroy"):
        condition = " ".join(workflow["jobs"][gated]["if"].split())
        assert "github.event.ref_type == 'branch'" in condition
        assert "github.event.ref != github.event.repository.default_branch" in condition
    # The environment goes only after its stack did.
    assert workflow["jobs"]["environment"]["needs"] == "destroy"
    destroy = by_key("delete:destroy")
    runs = [s["run"] for s in destroy.steps if "run" in s]
    assert runs == [
        'exec python -m nox --no-install -s destroy -- --branch "$BRANCH"',
        'python -m nox --no-install -s unlock -- --branch "$BRANCH"',
    ]
    # The unlock step runs only when the destroy was cancelled or failed.
    unlock = next(s for s in destroy.steps if "-s unlock" in s.get("run", ""))
    assert unlock["if"] == "cancelled() || steps.destroy.outcome == 'failure'"


def test_no_workflow_drives_pulumi_directly():
    # Every stack operation goes through a nox session, so its guards always apply.
    for where, step in all_steps():
        run = str(step.get("run", ""))
        assert not re.search(r"\bpulumi (up|destroy|preview|refresh|stack rm)\b", run), where


@pytest.mark.parametrize("target", [["--branch", "main"], ["--stack", "shared"]])
def test_the_destroy_session_refuses_protected_stacks_before_pulumi_runs(
    target, fake_pulumi, capsys
):
    assert stack_script.main(["destroy", *target]) == 2
    assert fake_pulumi() == []
    assert "protected" in capsys.readouterr().err


def test_drift_watches_every_protected_stack():
    project, values = config.read_project(ROOT)
    extra = {**values, "protectedBranches": ["release/2026", "staging"]}
    settings = config.settings_from_mapping(project, extra)
    protected = {("--stack", "shared")} | {
        ("--branch", branch) for branch in (settings.default_branch, "release/2026", "staging")
    }
    # The matrix is whatever the stacks job lists from config (act runs it: test_act.py).
    assert {(t["option"], t["name"]) for t in protected_script.targets(settings)} == protected
    (drift,) = [job for job in JOBS if job.key == "schedule:drift"]
    assert drift.spec["strategy"]["matrix"]["target"] == (
        "${{ fromJSON(needs.stacks.outputs.targets) }}"
    )
    # Drift only reads (`refresh --preview-only`), but only the protected role may
    # decrypt protected stacks' secrets; test_workflow_access.py checks its trust.
    assert drift.roles == {"${{ vars.AWS_DEPLOY_PROTECTED_ROLE_ARN }}"}


def test_the_sweeper_destroys_only_through_cleanup_with_a_branch_list():
    cleanup = by_key("schedule:cleanup")
    runs = "\n".join(s.get("run", "") for s in cleanup.steps)
    # The branches come from GitHub's API, every page (tests/scripts/test_cleanup_scale.py); an
    # incomplete list is refused by cleanup itself (test_cleanup.py).
    assert '-s cleanup -- --yes --github-repo "$GITHUB_REPOSITORY"' in runs
    (step,) = [s for s in cleanup.steps if "-s cleanup" in s.get("run", "")]
    assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


def test_the_branch_the_act_tests_push_has_the_documented_slug():
    assert naming.slugify("feature/Fancy_Model") == "feature-fancy-mode-c084cfc5"
