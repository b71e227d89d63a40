"""bootstrap: the shared stack's state machine, and GitHub set to exactly what is wanted.

GitHub is a stateful fake behind `responses` (environments and variables
persist between runs, so a second run sees what the first one wrote). Pulumi
is a stateful fake CLI on PATH: it keeps one stack per backend URL in a JSON
world file and records, for every call, its argv and the PULUMI_BACKEND_URL
it was given, so each test can say which backend each step used.
"""

from __future__ import annotations

import json
import re
import stat
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import responses

from infra import config, naming
from scripts import bootstrap, pin_pulumi
from scripts.lib import bootstrap_github, github
from tests.conftest import starts_processes
from tests.project import OTHER_REGION, PROJECT
from tests.project import REGION as HOME_REGION

API = "https://api.github.test"
# A fake, distinctive enough to search every output for.
TOKEN = "ghp_BootstrapTestTokenDoNotLeak0123456789"
REPO = "octo-org/ml-models"
USERS = {"alice": 501, "bob": 502, "carol": 503}
ACCOUNT = "123456789012"
# Not the project's region, so bootstrap has the region to move every stack to.
REGION = OTHER_REGION
BUCKET = f"{PROJECT}-state-{ACCOUNT}"
S3 = f"s3://{BUCKET}"
OUTPUTS = {
    "ci_preview_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-ci-preview",
    "ci_deploy_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-ci-deploy",
    "ci_promote_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-ci-promote",
    "ci_deploy_protected_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-ci-deploy-protected",
    "ci_promote_protected_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-ci-promote-protected",
    "state_bucket": BUCKET,
    "backend_url": S3,
    "secrets_provider": f"awskms://alias/{PROJECT}-state?region={REGION}",
    "ephemeral_secrets_provider": f"awskms://alias/{PROJECT}-state-ephemeral?region={REGION}",
    "region": REGION,
    "oidc_provider_arn": (
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    ),
}
VARIABLES = {
    "AWS_PREVIEW_ROLE_ARN": OUTPUTS["ci_preview_role_arn"],
    "AWS_DEPLOY_ROLE_ARN": OUTPUTS["ci_deploy_role_arn"],
    "AWS_DEPLOY_PROTECTED_ROLE_ARN": OUTPUTS["ci_deploy_protected_role_arn"],
    "AWS_PROMOTE_ROLE_ARN": OUTPUTS["ci_promote_role_arn"],
    "AWS_PROMOTE_PROTECTED_ROLE_ARN": OUTPUTS["ci_promote_protected_role_arn"],
    "AWS_REGION": REGION,
    "PULUMI_BACKEND_URL": S3,
    "PULUMI_SECRETS_PROVIDER": OUTPUTS["secrets_provider"],
    "PULUMI_EPHEMERAL_SECRETS_PROVIDER": OUTPUTS["ephemeral_secrets_provider"],
}
ARGS = ["--repo", REPO, "--reviewers", "alice,bob", "--region", REGION]


# ---------------------------------------------------------------- fake GitHub


class FakeGitHub:
    """Repository, users, environments and variables, answering as GitHub's REST API does."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.repository: dict[str, Any] = {
            "full_name": REPO,
            "owner": {"login": REPO.split("/", maxsplit=1)[0], "type": "Organization"},
            "private": False,
            "visibility": "public",
            "permissions": {"admin": True, "push": True, "pull": True},
        }
        self.users = {
            login: {"login": login, "id": ident, "type": "User"} for login, ident in USERS.items()
        }
        self.environments: dict[str, dict[str, Any]] = {}
        # environment -> its custom deployment-branch policies
        self.branch_policies: dict[str, list[dict[str, Any]]] = {}
        self.subject_template: dict[str, Any] = {"use_default": True}
        self.org_subject_template: dict[str, Any] | None = None  # None: never set (404)
        self.variables: dict[str, str] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.failures: list[tuple[str, re.Pattern[str], int, dict[str, str], str]] = []
        self.drop_reviewers = False  # a private repository on a plan without them
        for method in ("GET", "PUT", "POST", "PATCH", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=self.handle)

    # -- setup helpers

    def fail(self, method: str, path: str, status: int, message: str = "", **headers: str):
        self.failures.append((method, re.compile(path), status, headers, message))

    def environment(self, name: str, reviewers: list[str], **extra: Any) -> dict[str, Any]:
        rules = [
            {
                "id": 1,
                "type": "required_reviewers",
                "prevent_self_review": extra.pop("prevent_self_review", False),
                "reviewers": [
                    {"type": "User", "reviewer": {"login": login, "id": USERS[login]}}
                    for login in reviewers
                ],
            }
        ]
        if "wait_timer" in extra:
            rules.append({"id": 2, "type": "wait_timer", "wait_timer": extra.pop("wait_timer")})
        document = {
            "id": 10,
            "name": name,
            "protection_rules": rules,
            "deployment_branch_policy": extra.pop("deployment_branch_policy", None),
            "can_admins_bypass": True,
        }
        self.environments[name] = document
        return document

    @property
    def writes(self) -> list[tuple[str, str, Any]]:
        return [call for call in self.calls if call[0] != "GET"]

    # -- the API

    def handle(self, request) -> tuple[int, dict[str, str], str]:
        path = request.path_url.split("?")[0]
        body = json.loads(request.body) if request.body else None
        self.calls.append((request.method, path, body))
        return self.refusal(request, path) or self.route(request.method, path, body)

    def refusal(self, request, path: str) -> tuple[int, dict[str, str], str] | None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, {"message": "Bad credentials"})
        for method, pattern, status, headers, message in self.failures:
            if method == request.method and pattern.fullmatch(path):
                return self.answer(status, {"message": message or "Failed"}, headers)
        return None

    def route(  # noqa: PLR0911 - one return per endpoint
        self, method: str, path: str, body: Any
    ) -> tuple[int, dict[str, str], str]:
        repo = f"/repos/{REPO}"
        if method == "GET" and path == repo:
            return self.answer(200, self.repository)
        if match := re.fullmatch(r"/users/([^/]+)", path):
            user = self.users.get(match.group(1))
            return self.answer(200, user) if user else self.answer(404, {"message": "Not Found"})
        if method == "GET" and path == f"{repo}/actions/oidc/customization/sub":
            return self.answer(200, self.subject_template)
        if (
            method == "GET"
            and path == f"/orgs/{REPO.split('/', maxsplit=1)[0]}/actions/oidc/customization/sub"
        ):
            found = self.org_subject_template
            return self.answer(200, found) if found else self.answer(404, {"message": "Not Found"})
        policies = r"/environments/([^/]+)/deployment-branch-policies(?:/(\d+))?"
        if match := re.fullmatch(re.escape(repo) + policies, path):
            return self.on_branch_policy(method, unquote(match.group(1)), match.group(2), body)
        if match := re.fullmatch(re.escape(repo) + r"/environments/([^/]+)", path):
            return self.on_environment(method, unquote(match.group(1)), body)
        if match := re.fullmatch(re.escape(repo) + r"/actions/variables(?:/([^/]+))?", path):
            return self.on_variable(method, match.group(1), body)
        return self.answer(404, {"message": "Not Found"})

    def on_environment(self, method: str, name: str, body: Any):
        if method == "GET":
            found = self.environments.get(name)
            return self.answer(200, found) if found else self.answer(404, {"message": "Not Found"})
        if method == "PUT":
            logins = {ident: login for login, ident in USERS.items()}
            reviewers = [] if self.drop_reviewers else [logins[r["id"]] for r in body["reviewers"]]
            if not (body["deployment_branch_policy"] or {}).get("custom_branch_policies"):
                self.branch_policies.pop(name, None)  # GitHub drops them with the setting
            extra = {"deployment_branch_policy": body["deployment_branch_policy"]}
            for key in ("wait_timer", "prevent_self_review"):
                if key in body:
                    extra[key] = body[key]
            return self.answer(200, self.environment(name, reviewers, **extra))
        return self.answer(405, {"message": "Method Not Allowed"})

    def on_branch_policy(self, method: str, environment: str, ident: str | None, body: Any):
        if environment not in self.environments:
            return self.answer(404, {"message": "Not Found"})
        policies = self.branch_policies.setdefault(environment, [])
        if method == "GET" and ident is None:
            return self.answer(200, {"total_count": len(policies), "branch_policies": policies})
        if method == "POST" and ident is None:
            policy = {"id": 900 + len(policies), "name": body["name"], "type": body["type"]}
            policies.append(policy)
            return self.answer(200, policy)
        if method == "DELETE" and ident is not None:
            self.branch_policies[environment] = [p for p in policies if p["id"] != int(ident)]
            return 204, {}, ""
        return self.answer(405, {"message": "Method Not Allowed"})

    def on_variable(self, method: str, name: str | None, body: Any):
        if method == "GET" and name:
            if name not in self.variables:
                return self.answer(404, {"message": "Not Found"})
            return self.answer(200, {"name": name, "value": self.variables[name]})
        if method == "POST" and name is None:
            if body["name"] in self.variables:
                return self.answer(409, {"message": "Already exists"})
            self.variables[body["name"]] = body["value"]
            return self.answer(201, {})
        if method == "PATCH" and name in self.variables:
            self.variables[name] = body["value"]
            return 204, {}, ""
        return self.answer(404, {"message": "Not Found"})

    @staticmethod
    def answer(status: int, document: Any, headers: dict[str, str] | None = None):
        return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(document)


# ---------------------------------------------------------------- fake pulumi

FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python}
    # A stateful stand-in for the Pulumi CLI: one `shared` stack per backend URL.
    import json, os, sys
    args = [a for a in sys.argv[1:] if a != "--non-interactive"]
    backend = os.environ.get("PULUMI_BACKEND_URL", "")
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps({
            "argv": args,
            "backend": backend,
            "passphrase_file": os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"),
            "passphrase": "PULUMI_CONFIG_PASSPHRASE" in os.environ,
            "aws_region": os.environ.get("AWS_REGION"),
            "github_token": "GITHUB_TOKEN" in os.environ,
        }) + "\\n")
    path = os.environ["FAKE_PULUMI_WORLD"]
    world = json.load(open(path))
    stacks = world.setdefault("stacks", {})
    stack = stacks.get(backend)

    def done(code=0, out=""):
        json.dump(world, open(path, "w"))
        sys.stdout.write(out)
        sys.exit(code)

    def value(flag):
        return args[args.index(flag) + 1]

    if any(token in world.get("fail", []) for token in args):
        sys.stderr.write("fake pulumi: failing as asked\\n")
        sys.exit(3)
    if args[:2] == ["stack", "ls"]:
        done(out=json.dumps([{"name": "shared", "resourceCount": 30}] if stack else []))
    if args[:2] == ["stack", "select"] and "--create" in args:
        stacks.setdefault(backend, {"outputs": {}, "provider": value("--secrets-provider")})
        done()
    if args[:2] == ["stack", "init"]:
        if stack:
            done(1)
        stacks[backend] = {"outputs": {}, "provider": value("--secrets-provider")}
        done()
    if stack is None:
        sys.stderr.write("no stack named 'shared' found\\n")
        sys.exit(255)
    if args[0] == "config":
        stack.setdefault("config", {})[args[2]] = args[3]
    elif args[0] == "up":
        stack["outputs"] = world["outputs"]
        world["pending_changes"] = False
    elif args[0] == "preview":
        # exit_codes.go: 7 is ExitNoChanges (changes where none were expected).
        done(7 if world.get("pending_changes") else 0)
    elif args[:2] == ["stack", "output"]:
        done(out=json.dumps(stack["outputs"]))
    elif args[:2] == ["stack", "change-secrets-provider"]:
        stack["provider"] = args[2]
    elif args[:2] == ["stack", "export"]:
        json.dump({"deployment": stack}, open(value("--file"), "w"))
    elif args[:2] == ["stack", "import"]:
        stack["outputs"] = json.load(open(value("--file")))["deployment"]["outputs"]
    elif args[:2] == ["stack", "rm"]:
        del stacks[backend]
    done()
    """
)


class World:
    """The fake pulumi's state and call log."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "pulumi-world.json"
        self.log = directory / "pulumi-calls.jsonl"
        self.log.touch()
        self.save({"outputs": OUTPUTS, "stacks": {}})

    def load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())

    def save(self, world: dict[str, Any]) -> None:
        self.path.write_text(json.dumps(world))

    def update(self, **changes: Any) -> None:
        self.save({**self.load(), **changes})

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def forget_calls(self) -> None:
        self.log.write_text("")

    def commands(self) -> list[tuple[str, str]]:
        """(backend scheme, command) of each call, e.g. ("s3", "stack import")."""
        return [(c["backend"].split(":")[0], " ".join(c["argv"][:2])) for c in self.calls()]


@pytest.fixture
@starts_processes
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable = bin_dir / "pulumi"
    executable.write_text(FAKE_PULUMI.replace("{python}", sys.executable))
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    state = World(tmp_path)
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(state.log))
    monkeypatch.setenv("FAKE_PULUMI_WORLD", str(state.path))
    return state


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", API)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "from-the-caller")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGitHub(mock)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project directory with the real Pulumi.yaml, already in the region bootstrap is given."""
    directory = tmp_path / "project"
    directory.mkdir()
    text = config.PROJECT_FILE.read_text()
    (directory / "Pulumi.yaml").write_text(
        text.replace(f"value: {HOME_REGION}", f"value: {REGION}")
    )
    return directory


@pytest.fixture
def run(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """Run bootstrap; returns (exit code, stdout, stderr)."""

    def call(*argv: str, state_dir: Path | None = None) -> tuple[int, str, str]:
        code = bootstrap.main(
            list(argv or ARGS), root=root, state_dir=state_dir or tmp_path / "bootstrap-state"
        )
        out, err = capsys.readouterr()
        return code, out, err

    return call


def _summary(tmp_path: Path) -> str:
    path = tmp_path / "summary.md"
    return path.read_text() if path.exists() else ""


def _environment_body(*ids: int) -> dict[str, Any]:
    return {
        "reviewers": [{"type": "User", "id": ident} for ident in ids],
        "deployment_branch_policy": None,
    }


WANTED = bootstrap_github.wanted_environments(config.settings_for_stack("shared"))
CUSTOM = {"protected_branches": False, "custom_branch_policies": True}


def _guarded(
    gh: FakeGitHub, wanted: bootstrap_github.WantedEnvironment, reviewers: list[str]
) -> None:
    """An environment as bootstrap leaves it."""
    if wanted.branch is None:
        gh.environment(wanted.name, reviewers)
        return
    gh.environment(
        wanted.name, reviewers if wanted.reviewed else [], deployment_branch_policy=CUSTOM
    )
    gh.branch_policies[wanted.name] = [{"id": 1, "name": wanted.branch, "type": "branch"}]


def _configure_everything(gh: FakeGitHub, reviewers: list[str]) -> None:
    for wanted in WANTED:
        _guarded(gh, wanted, reviewers)
    gh.variables.update(VARIABLES)


def _environment_writes(reviewer_ids: tuple[int, ...] = (501, 502)) -> list[tuple[str, str, Any]]:
    """What a first run writes for each environment, in order."""
    writes: list[tuple[str, str, Any]] = []
    for wanted in WANTED:
        path = f"/repos/{REPO}/environments/{quote(wanted.name, safe='')}"
        body = _environment_body(*reviewer_ids) if wanted.reviewed else _environment_body()
        if wanted.branch is None:
            writes.append(("PUT", path, body))
            continue
        writes.append(("PUT", path, {**body, "deployment_branch_policy": CUSTOM}))
        writes.append(
            (
                "POST",
                f"{path}/deployment-branch-policies",
                {"name": wanted.branch, "type": "branch"},
            )
        )
    return writes


def _remote_stack(world: World) -> None:
    """The state of a bootstrap that already ran: `shared` deployed in the bucket."""
    world.update(stacks={S3: {"outputs": OUTPUTS, "provider": OUTPUTS["secrets_provider"]}})


# ---------------------------------------------------------------- first run


def test_first_run_deploys_locally_migrates_and_configures_github(
    gh: FakeGitHub, world: World, run, tmp_path: Path
) -> None:
    code, out, err = run()

    assert code == 0, err
    state_dir = tmp_path / "bootstrap-state"
    local = (state_dir / "state").resolve().as_uri()
    calls = world.calls()
    assert [(c["backend"], c["argv"]) for c in calls] == [
        (local, ["stack", "select", "shared", "--create", "--secrets-provider", "passphrase"]),
        (local, ["config", "set", f"{PROJECT}:githubRepository", REPO, "--stack", "shared"]),
        (local, ["config", "set", "aws:region", REGION, "--stack", "shared"]),
        (local, ["up", "--yes", "--stack", "shared"]),
        (local, ["stack", "output", "--json", "--stack", "shared"]),
        (
            local,
            ["stack", "change-secrets-provider", OUTPUTS["secrets_provider"], "--stack", "shared"],
        ),
        (
            local,
            [
                "stack",
                "export",
                "--stack",
                "shared",
                "--file",
                str(state_dir / "shared-export.json"),
            ],
        ),
        (S3, ["stack", "ls", "--json"]),
        (S3, ["stack", "init", "shared", "--secrets-provider", OUTPUTS["secrets_provider"]]),
        (
            S3,
            [
                "stack",
                "import",
                "--stack",
                "shared",
                "--file",
                str(state_dir / "shared-export.json"),
            ],
        ),
        (S3, ["stack", "output", "--json", "--stack", "shared"]),
        (local, ["stack", "rm", "shared", "--yes", "--force", "--preserve-config"]),
    ]
    # The local backend has its own passphrase file; the caller's passphrase is not passed.
    for call in calls:
        if call["backend"] == local:
            assert call["passphrase_file"] == str((state_dir / "passphrase").resolve())
            assert call["passphrase"] is False
        else:
            assert call["aws_region"] == REGION  # the s3 backend needs one
        assert call["github_token"] is False
    assert (state_dir / "passphrase").stat().st_mode & 0o077 == 0
    assert json.loads((state_dir / "backend.json").read_text())["backend_url"] == S3
    assert (state_dir / ".gitignore").read_text().splitlines()[-1] == "*"
    # One copy of the state, in the bucket, keyed to KMS.
    assert world.load()["stacks"] == {
        S3: {
            "outputs": OUTPUTS,
            "provider": OUTPUTS["secrets_provider"],
        }
    }

    repo = f"/repos/{REPO}"
    assert gh.writes == [
        *_environment_writes(),
        *[
            ("POST", f"{repo}/actions/variables", {"name": name, "value": value})
            for name, value in VARIABLES.items()
        ],
    ]
    # Every protected stack's environments admit its branch alone.
    for wanted in WANTED:
        if wanted.branch is not None:
            assert [p["name"] for p in gh.branch_policies[wanted.name]] == [wanted.branch]
    # Every read happened before the first write.
    methods = [method for method, _, _ in gh.calls]
    assert "GET" not in methods[methods.index("PUT") :]
    assert gh.variables == VARIABLES
    assert (
        "| environment | canary-promotion | created | reviewers alice, bob; all branches |" in out
    )
    assert f"| variable | PULUMI_BACKEND_URL | created | {S3} |" in out
    assert f"{1 + len(WANTED) + len(VARIABLES)} changed, 0 already right." in out
    assert "Commit `Pulumi.shared.yaml`" in out
    assert out.strip() in _summary(tmp_path)
    assert "bootstrap: [local] $ pulumi up --yes --stack shared" in err
    assert "[5/5] done" in err


def test_second_run_changes_nothing_and_says_so(
    gh: FakeGitHub, world: World, run, tmp_path: Path
) -> None:
    assert run()[0] == 0
    world.forget_calls()
    gh.calls.clear()

    code, out, err = run()

    assert code == 0, err
    assert gh.writes == []
    # The marker sent it straight to the bucket: no local backend, no `up` (preview was clean).
    assert world.commands() == [
        ("s3", "stack ls"),
        ("s3", "stack output"),
        ("s3", "config set"),
        ("s3", "config set"),
        ("s3", "preview --stack"),
    ]
    assert "Nothing to change: everything was already as wanted." in out
    assert "| stack | shared | unchanged |" in out
    assert out.count("| unchanged |") == 1 + len(WANTED) + len(VARIABLES)


def test_a_fresh_clone_finds_the_state_through_the_repository_variable(
    gh: FakeGitHub, world: World, run
) -> None:
    _configure_everything(gh, ["alice", "bob"])
    _remote_stack(world)

    code, out, err = run()

    assert code == 0, err
    assert {backend for backend, _ in world.commands()} == {"s3"}
    assert gh.writes == []
    assert "Nothing to change" in out


def test_stack_changes_are_applied_on_the_bucket_backend(gh: FakeGitHub, world: World, run):
    _configure_everything(gh, ["alice", "bob"])
    _remote_stack(world)
    world.update(pending_changes=True)

    code, out, _ = run()

    assert code == 0
    assert ("s3", "up --yes") in world.commands()
    assert "| stack | shared | updated |" in out
    assert f"1 changed, {len(WANTED) + len(VARIABLES)} already right." in out


def test_a_failing_preview_is_an_error_not_changes(gh: FakeGitHub, world: World, run):
    _configure_everything(gh, ["alice", "bob"])
    _remote_stack(world)
    world.update(fail=["preview"])  # exit 3, as an expired login would

    code, _, err = run()

    assert code == 1
    assert "failed with exit code 3" in err
    assert ("s3", "up --yes") not in world.commands()
    assert gh.writes == []


def test_backend_url_flag_wins(gh: FakeGitHub, world: World, run) -> None:
    _configure_everything(gh, ["alice", "bob"])
    _remote_stack(world)
    gh.variables["PULUMI_BACKEND_URL"] = "s3://some-other-bucket"

    code, _, err = run(*ARGS, "--backend-url", S3)

    assert code == 0, err
    assert world.calls()[0]["backend"] == S3


def test_an_interrupted_migration_is_resumed(gh: FakeGitHub, world: World, run, tmp_path):
    world.update(fail=["import"])
    code, _, err = run()
    assert code == 1
    assert "`pulumi stack import --stack shared" in err
    assert gh.writes == []  # GitHub waits for the stack
    assert not (tmp_path / "bootstrap-state" / "backend.json").exists()

    world.update(fail=[])
    world.forget_calls()
    code, _, err = run()

    assert code == 0, err
    commands = world.commands()
    # Local state again (the bucket has an empty `shared` without outputs), no second init.
    assert ("s3", "stack init") not in commands
    assert commands[-3:] == [("s3", "stack import"), ("s3", "stack output"), ("file", "stack rm")]
    assert list(world.load()["stacks"]) == [S3]


def test_a_failed_deployment_changes_nothing_on_github(gh: FakeGitHub, world: World, run):
    world.update(fail=["up"])

    code, out, err = run()

    assert code == 1
    assert "`pulumi up --yes --stack shared` (local backend" in err
    assert gh.writes == []
    assert out == ""


def test_an_unreadable_backend_stops_before_anything(gh: FakeGitHub, world: World, run):
    gh.variables["PULUMI_BACKEND_URL"] = S3
    world.update(fail=["ls"])

    code, _, err = run()

    assert code == 1
    assert f"cannot read the state backend {S3} (from repository variable" in err
    assert world.commands() == [("s3", "stack ls")]
    assert gh.writes == []


# ---------------------------------------------------------------- GitHub changes


def test_a_changed_reviewer_updates_only_that_environment(gh: FakeGitHub, world: World, run):
    _remote_stack(world)
    _configure_everything(gh, ["alice", "bob"])
    gh.environment("canary-promotion", ["alice", "carol"])
    gh.environment("api-release", ["bob", "alice"])  # order does not matter

    code, out, _ = run()

    assert code == 0
    assert gh.writes == [
        (
            "PUT",
            f"/repos/{REPO}/environments/canary-promotion",
            # prevent_self_review is not bootstrap's to decide: sent back as it was.
            {**_environment_body(501, 502), "prevent_self_review": False},
        )
    ]
    assert "reviewers alice, carol -> alice, bob; all branches" in out
    assert "| environment | api-release | unchanged |" in out


def test_a_branch_restriction_is_lifted_and_other_settings_are_kept(
    gh: FakeGitHub, world: World, run
) -> None:
    _remote_stack(world)
    _configure_everything(gh, ["alice", "bob"])
    gh.environment(
        "canary-promotion",
        ["alice", "bob"],
        wait_timer=5,
        prevent_self_review=True,
        deployment_branch_policy={"protected_branches": True, "custom_branch_policies": False},
    )

    code, out, _ = run()

    assert code == 0
    assert gh.writes == [
        (
            "PUT",
            f"/repos/{REPO}/environments/canary-promotion",
            {**_environment_body(501, 502), "wait_timer": 5, "prevent_self_review": True},
        )
    ]
    assert "protected branches only -> all branches" in out


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_new_region_reaches_every_stack_through_pulumi_yaml(
    gh: FakeGitHub, world: World, run, root: Path, dry_run: bool
) -> None:
    project = root / "Pulumi.yaml"
    project.write_text(project.read_text().replace(f"value: {REGION}", f"value: {HOME_REGION}"))
    before = project.read_text()

    code, out, _ = run(*ARGS, *(["--dry-run"] if dry_run else []))

    assert code == 0
    if dry_run:
        assert project.read_text() == before
        assert f"| file | Pulumi.yaml | would update | aws:region {HOME_REGION} -> {REGION}" in out
    else:
        # Branch stacks read their region from Pulumi.yaml, not from the shared stack's file.
        assert config.settings_for_stack("feature-x", root).region == REGION
        assert project.read_text() == before.replace(f"value: {HOME_REGION}", f"value: {REGION}")
        assert f"| file | Pulumi.yaml | updated | aws:region {HOME_REGION} -> {REGION}" in out


def _cli_release(root: Path, tmp_path: Path, digest: str) -> str:
    """A tree whose setup action pins no CLI yet, and a release serving its checksums."""
    sdk = (config.REPO_ROOT / "requirements.txt").read_text()
    (root / "requirements.txt").write_text(sdk)
    pin_file = root / bootstrap.PIN_FILE
    pin_file.parent.mkdir(parents=True)
    pin_file.write_text("# pins: none yet\n")
    version = pin_pulumi.sdk_version(root / "requirements.txt")
    release = tmp_path / "releases" / f"v{version}"
    release.mkdir(parents=True)
    (release / f"pulumi-{version}-checksums.txt").write_text(
        f"{'0' * 64}  pulumi-v{version}-darwin-arm64.tar.gz\n"
        f"{digest}  {pin_pulumi.archive_name(version)}\n"
    )
    return pin_pulumi.archive_name(version)


@pytest.mark.parametrize("dry_run", [False, True])
def test_bootstrap_pins_the_pulumi_cli_the_workflows_install(
    gh: FakeGitHub, world: World, run, root: Path, *, tmp_path: Path, monkeypatch, dry_run: bool
) -> None:
    digest = "ab" * 32
    archive = _cli_release(root, tmp_path, digest)
    monkeypatch.setattr(pin_pulumi, "RELEASES", (tmp_path / "releases").as_uri())
    pin_file = root / bootstrap.PIN_FILE

    code, out, _ = run(*ARGS, *(["--dry-run"] if dry_run else []))

    assert code == 0
    if dry_run:
        assert not pin_pulumi.pinned(pin_file, archive)
        assert f"would pin the SHA-256 of {archive}" in out
    else:
        # What the setup action's installer reads: `sha256sum` lines, the archive's own.
        assert f"{digest}  {archive}" in pin_file.read_text().splitlines()
        assert f"SHA-256 of {archive} pinned: commit it" in out
        # Pinned once: a second run leaves the file alone.
        before = pin_file.read_text()
        assert run()[0] == 0
        assert pin_file.read_text() == before


def test_a_cli_release_out_of_reach_stops_bootstrap_before_any_change(
    gh: FakeGitHub, world: World, run, root: Path, *, tmp_path: Path, monkeypatch
) -> None:
    _cli_release(root, tmp_path, "cd" * 32)
    monkeypatch.setattr(pin_pulumi, "RELEASES", (tmp_path / "nowhere").as_uri())

    code, _, err = run()

    assert code == 2
    assert "python -m scripts.pin_pulumi" in err and "nothing was changed" in err
    assert gh.writes == []
    assert world.calls() == []


def test_a_variable_with_another_value_is_patched(gh: FakeGitHub, world: World, run) -> None:
    _configure_everything(gh, ["alice", "bob"])
    _remote_stack(world)
    gh.variables["AWS_REGION"] = "us-east-1"

    code, out, _ = run()

    assert code == 0
    assert gh.writes == [
        (
            "PATCH",
            f"/repos/{REPO}/actions/variables/AWS_REGION",
            {"name": "AWS_REGION", "value": REGION},
        )
    ]
    assert f"| variable | AWS_REGION | updated | us-east-1 -> {REGION} |" in out


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [
        (401, github.AuthenticationError, "GitHub rejected the token (401"),
        (403, github.PermissionDenied, "Metadata: read"),
        (404, github.NotFound, "does not exist or the token cannot see it"),
    ],
)
def test_github_refusing_a_read_changes_nothing(
    gh: FakeGitHub, world: World, run, *, status: int, cls: type, words: str
) -> None:
    gh.fail("GET", f"/repos/{REPO}", status, "Resource not accessible")

    code, out, err = run()

    assert code == 1
    assert cls.exit_code == 1
    assert words in err
    assert "nothing was changed" in err
    assert gh.writes == []
    assert world.calls() == []  # not even the stack was touched
    assert out == ""


def test_a_bad_token_is_reported_and_changes_nothing(
    gh: FakeGitHub, world: World, run, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_expiredTokenValue0000000000000000000")

    code, _, err = run()

    assert code == 1
    assert "GitHub rejected the token (401 Bad credentials)" in err
    assert "expiredTokenValue" not in err
    assert [method for method, _, _ in gh.calls] == ["GET"]
    assert world.calls() == []


def test_a_refused_write_stops_there_and_says_what_changed(gh: FakeGitHub, world: World, run):
    _remote_stack(world)
    gh.fail(
        "POST",
        f"/repos/{REPO}/actions/variables",
        403,
        "Resource not accessible by personal access token",
        **{"X-Accepted-GitHub-Permissions": "actions_variables=write"},
    )

    code, _, err = run()

    assert code == 1
    assert "creating variable AWS_PREVIEW_ROLE_ARN: the token may not do this (403" in err
    assert "Variables: write" in err
    assert "GitHub accepts: actions_variables=write" in err
    environments = ", ".join(f"environment {w.name}" for w in WANTED)
    assert f"changed before it: {environments}" in err
    assert "run bootstrap again once fixed" in err
    # Nothing was attempted after the refusal.
    assert gh.calls[-1][:2] == ("POST", f"/repos/{REPO}/actions/variables")
    assert gh.writes == [*_environment_writes(), gh.writes[-1]]


def test_a_refused_first_write_changed_nothing(gh: FakeGitHub, world: World, run) -> None:
    _remote_stack(world)
    gh.fail("PUT", f"/repos/{REPO}/environments/.*", 403, "Must have admin rights")

    code, _, err = run()

    assert code == 1
    assert "configuring environment canary-promotion: the token may not do this" in err
    assert "Administration: write" in err
    assert "nothing on GitHub changed" in err
    assert len(gh.writes) == 1


def test_reviewers_on_a_plan_without_them(gh: FakeGitHub, world: World, run) -> None:
    _remote_stack(world)
    gh.repository.update(private=True, visibility="private")
    gh.fail(
        "PUT",
        f"/repos/{REPO}/environments/canary-promotion",
        422,
        "Failed to create the environment protection rule",
    )

    code, _, err = run()

    assert code == 1
    assert "GitHub refused the values (422" in err
    assert "required reviewers need a public repository, or a plan" in err


def test_reviewers_silently_dropped_are_caught(gh: FakeGitHub, world: World, run) -> None:
    _remote_stack(world)
    gh.drop_reviewers = True

    code, _, err = run()

    assert code == 1
    assert "GitHub saved environment canary-promotion without its required reviewers" in err
    assert len(gh.writes) == 1


def test_a_private_repository_gets_the_plan_note(gh: FakeGitHub, world: World, run) -> None:
    _configure_everything(gh, ["alice", "bob"])
    _remote_stack(world)
    gh.repository.update(private=True, visibility="private")

    code, out, _ = run()

    assert code == 0
    assert f"{REPO} is private: required reviewers need a public repository" in out


def test_a_non_admin_is_stopped_before_anything(gh: FakeGitHub, world: World, run) -> None:
    gh.repository["permissions"] = {"admin": False, "push": True, "pull": True}

    code, _, err = run()

    assert code == 1
    assert "not an admin of octo-org/ml-models" in err
    assert gh.writes == []
    assert world.calls() == []


# ---------------------------------------------------------------- inputs


def test_an_unknown_reviewer_stops_before_anything(gh: FakeGitHub, world: World, run) -> None:
    code, out, err = run("--repo", REPO, "--reviewers", "alice,nobody-here,ghost")

    assert code == 2
    assert "no GitHub user nobody-here, ghost" in err
    assert "nothing was changed" in err
    assert gh.writes == []
    assert world.calls() == []
    assert out == ""


def test_an_organization_is_not_a_reviewer(gh: FakeGitHub, world: World, run) -> None:
    gh.users["octo-org"] = {"login": "octo-org", "id": 9, "type": "Organization"}

    code, _, err = run("--repo", REPO, "--reviewers", "octo-org")

    assert code == 2
    assert "octo-org is a GitHub Organization, not a person" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--repo", "octo-org", "--reviewers", "alice"], "is not OWNER/NAME"),
        (["--repo", "https://github.com/a/b", "--reviewers", "alice"], "is not OWNER/NAME"),
        (["--repo", REPO, "--reviewers", " , "], "names nobody"),
        (["--repo", REPO, "--reviewers", "al/ice"], "is not a GitHub login"),
        (["--repo", REPO, "--reviewers", "a,b,c,d,e,f,g"], "at most 6"),
        (["--repo", REPO, "--reviewers", "alice", "--region", "Mars"], "is not an AWS region"),
        (["--repo", REPO, "--reviewers", "alice", "--backend-url", "gs://x"], "is not s3://"),
        (["--repo", REPO, "--reviewers", "alice", "--outputs-file", "o.json"], "--skip-stack"),
    ],
)
def test_bad_input_is_refused_before_anything(
    gh: FakeGitHub, world: World, run, argv: list[str], words: str
) -> None:
    code, _, err = run(*argv)

    assert code == 2
    assert words in err
    assert gh.calls == []
    assert world.calls() == []


def test_no_token_is_bad_input(gh: FakeGitHub, world: World, run, monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")

    code, _, err = run()

    assert code == 2
    assert "$GITHUB_TOKEN is not set" in err
    assert "gh auth token" in err
    assert gh.calls == []


def test_no_pulumi_is_bad_input(gh: FakeGitHub, run, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    code, _, err = run()

    assert code == 2
    assert "the pulumi CLI is not on PATH" in err
    assert gh.calls == []


def test_reviewers_are_deduplicated_and_may_carry_an_at(gh: FakeGitHub, world: World, run):
    code, _, err = run("--repo", REPO, "--reviewers", "@alice, Alice ,bob", "--region", REGION)

    assert code == 0, err
    assert gh.writes[0][2] == _environment_body(501, 502)


# ---------------------------------------------------------------- modes


def test_dry_run_changes_nothing(gh: FakeGitHub, world: World, run, tmp_path: Path) -> None:
    code, out, err = run(*ARGS, "--dry-run")

    assert code == 0, err
    assert gh.writes == []
    assert world.calls() == []  # first run: nothing to read from a backend yet
    assert not (tmp_path / "bootstrap-state").exists()
    assert "(dry run: nothing changed)" in out
    assert "| stack | shared | would create |" in out
    assert "| environment | canary-promotion | would create |" in out
    assert "| variable | AWS_REGION | would set |" in out
    assert f"{1 + len(WANTED) + len(VARIABLES)} would change, 0 already right." in out


def test_dry_run_on_a_deployed_stack_previews_only(gh: FakeGitHub, world: World, run) -> None:
    _remote_stack(world)
    _configure_everything(gh, ["alice", "bob"])
    del gh.environments["api-release"]

    code, out, _ = run(*ARGS, "--dry-run")

    assert code == 0
    assert gh.writes == []
    assert world.commands() == [
        ("s3", "stack ls"),
        ("s3", "stack output"),
        ("s3", "preview --stack"),
    ]
    assert "| environment | api-release | would create |" in out
    # The stack (unchanged), every other environment, every variable.
    assert f"1 would change, {1 + len(WANTED) - 1 + len(VARIABLES)} already right." in out


def test_skip_stack_with_an_outputs_file(gh: FakeGitHub, world: World, run, tmp_path: Path):
    outputs = tmp_path / "shared.json"
    outputs.write_text(json.dumps(OUTPUTS))

    code, out, err = run(*ARGS, "--skip-stack", "--outputs-file", str(outputs))

    assert code == 0, err
    assert world.calls() == []
    assert gh.variables == VARIABLES
    assert "| stack | shared | skipped | --skip-stack |" in out


def test_skip_stack_alone_configures_the_environments_only(
    gh: FakeGitHub, world: World, run, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no pulumi needed

    code, out, _ = run(*ARGS, "--skip-stack")

    assert code == 0
    assert gh.writes == _environment_writes()
    assert not any("/actions/variables" in path for _, path, _ in gh.calls)
    assert "| variable | AWS_REGION | skipped |" in out


def test_outputs_missing_a_value_stop_before_github_writes(
    gh: FakeGitHub, world: World, run, tmp_path: Path
) -> None:
    outputs = tmp_path / "shared.json"
    outputs.write_text(json.dumps({**OUTPUTS, "ci_promote_role_arn": None}))

    code, _, err = run(*ARGS, "--skip-stack", "--outputs-file", str(outputs))

    assert code == 1
    assert "the shared stack has no output ci_promote_role_arn" in err
    assert gh.writes == []


# ---------------------------------------------------------------- secrets


def test_the_token_never_appears_anywhere(
    gh: FakeGitHub, world: World, run, tmp_path: Path
) -> None:
    outputs: list[str] = []
    code, out, err = run()
    outputs += [out, err]
    assert code == 0
    gh.fail("PUT", f"/repos/{REPO}/environments/.*", 403, f"echoing {TOKEN} back")
    gh.environments.clear()
    code, out, err = run()
    outputs += [out, err]
    assert code == 1
    assert "echoing *** back" in err

    assert all(TOKEN not in text for text in outputs)
    assert TOKEN not in _summary(tmp_path)
    assert TOKEN not in world.log.read_text()
    assert not any(call["github_token"] for call in world.calls())
    for path in (tmp_path / "bootstrap-state").rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text()


def test_a_token_with_a_newline_is_refused_without_echoing_it(
    gh: FakeGitHub, world: World, run, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", f"{TOKEN}\nX-Injected: 1")

    code, out, err = run()

    assert code == 2
    assert "contains spaces or control characters" in err
    assert TOKEN not in out + err
    assert gh.calls == []


# ---------------------------------------------------------------- contract


# ---------------------------------------------------------------- what the trust relies on


def protected_wanted() -> list[bootstrap_github.WantedEnvironment]:
    return [w for w in WANTED if w.branch is not None]


def test_each_protected_stack_gets_environments_open_to_its_branch_alone() -> None:
    settings = config.settings_for_stack("shared")
    protected = list(dict.fromkeys([settings.default_branch, *settings.protected_branches]))
    for branch in protected:
        stack = settings.branch_stack(branch)
        mine = {w.name: w for w in WANTED if w.branch == branch}
        assert set(mine) == {
            naming.deploy_environment(stack),
            *(naming.approval_environment(a, stack) for a in naming.APPROVAL_ENVIRONMENTS),
        }
        assert not mine[naming.deploy_environment(stack)].reviewed
    shared = {w.name for w in WANTED if w.branch is None}
    assert shared == set(naming.APPROVAL_ENVIRONMENTS)


def test_a_wider_branch_policy_on_a_protected_environment_is_narrowed(
    gh: FakeGitHub, world: World, run
) -> None:
    _remote_stack(world)
    _configure_everything(gh, ["alice", "bob"])
    target = protected_wanted()[0]
    # Someone let every branch deploy there (`*`), or switched the policy off.
    gh.branch_policies[target.name] = [
        {"id": 7, "name": "*", "type": "branch"},
        {"id": 8, "name": target.branch, "type": "branch"},
    ]

    code, out, err = run()

    assert code == 0, err
    path = f"/repos/{REPO}/environments/{quote(target.name, safe='')}"
    assert [(m, p) for m, p, _ in gh.writes] == [
        ("PUT", path),
        ("DELETE", f"{path}/deployment-branch-policies/7"),
    ]
    assert [p["name"] for p in gh.branch_policies[target.name]] == [target.branch]
    assert f"branches *, {target.branch} -> branch {target.branch} only" in out


def test_an_environment_open_to_all_branches_is_limited_to_its_own(
    gh: FakeGitHub, world: World, run
) -> None:
    _remote_stack(world)
    _configure_everything(gh, ["alice", "bob"])
    target = protected_wanted()[0]
    gh.environment(target.name, [], deployment_branch_policy=None)
    gh.branch_policies.pop(target.name)

    assert run()[0] == 0

    assert gh.environments[target.name]["deployment_branch_policy"] == CUSTOM
    assert [p["name"] for p in gh.branch_policies[target.name]] == [target.branch]


def test_the_repository_is_recorded_as_github_spells_it(gh: FakeGitHub, world: World, run):
    # Typed in lowercase; GitHub's `sub` claim carries the real case, and AWS
    # matches it case-sensitively.
    gh.repository["full_name"] = "Octo-Org/ML-Models"
    code, _, err = run("--repo", REPO.lower(), "--reviewers", "alice,bob", "--region", REGION)

    assert code == 0, err
    config_sets = [c["argv"] for c in world.calls() if c["argv"][:2] == ["config", "set"]]
    assert [
        "config",
        "set",
        f"{PROJECT}:githubRepository",
        "Octo-Org/ML-Models",
        "--stack",
        "shared",
    ] in (config_sets)


@pytest.mark.parametrize("where", ["repository", "organization"])
def test_a_customized_oidc_subject_stops_before_anything(
    gh: FakeGitHub, world: World, run, where: str
) -> None:
    keys = ["repo", "context", "job_workflow_ref"]
    if where == "repository":
        gh.subject_template = {"use_default": False, "include_claim_keys": keys}
    else:
        gh.org_subject_template = {"include_claim_keys": keys}

    code, _, err = run()

    assert code == 2
    assert f"customizes GitHub's OIDC subject (claims {keys})" in err
    assert "use_default=true" in err
    assert gh.writes == []
    assert world.calls() == []


def test_the_default_subject_spelled_out_is_accepted(gh: FakeGitHub, world: World, run) -> None:
    gh.subject_template = {"use_default": False, "include_claim_keys": ["repo", "context"]}
    gh.org_subject_template = {"include_claim_keys": ["repo", "context"]}
    assert run()[0] == 0
