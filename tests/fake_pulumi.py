"""The `pulumi` the tests put on PATH: the CLI (3.272, diy backend) where the pipeline's bugs live.

Not an engine: no program runs and no resource is touched. What it does model is what a
fresh CI runner meets, each behaviour taken from pulumi/pulumi at the path named beside it
(docs/pulumi-cli.md lists them):

- the diy backend's objects, project-scoped, in a local directory (file://) or an S3
  bucket (s3://, reached with boto3, so moto in the tests): the checkpoint, its .bak,
  backups, history and lock files (pkg/backend/diy/store.go, state.go, lock.go);
- the stack settings file Pulumi.<stack>.yaml in the project directory, and the secrets
  manager chosen from it, from the checkpoint when PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER
  is set (always for destroy), or else the passphrase provider, which stops without
  PULUMI_CONFIG_PASSPHRASE (pkg/cmd/pulumi/stack/secrets.go, pkg/secrets/passphrase);
- `stack select` without --create on a missing stack (pkg/cmd/pulumi/stack/stack_select.go)
  and the exit codes 3, 6, 7, 8 (pkg/cmd/pulumi/cmd/exit_codes.go);
- locks taken by up, destroy, refresh and stack creation but not by preview or
  `refresh --preview-only` (pkg/backend/diy/backend.go), deleted at the end, left behind
  when the process is killed; `pulumi cancel` deletes every lock of the stack;
- graceful cancellation on the first SIGINT/SIGTERM (pkg/backend/cancellation_scope.go);
- a Python policy pack's virtualenv, which the CLI never creates
  (sdk/python/toolchain/pip.go NewVirtualEnvError).

Test hooks (environment): FAKE_PULUMI_LOG (argv, one JSON line per call),
FAKE_PULUMI_FAIL_ON=WORD [+ FAKE_PULUMI_FAIL_CODE] (fail any call naming WORD),
FAKE_PULUMI_ANSWERS (JSON {"argv prefix": "stdout text"}), FAKE_PULUMI_DRIFT=1 (refresh
and preview find changes), FAKE_PULUMI_HANG=VERB (stop mid-operation with a pending
create written, until signalled or killed; the pid goes to FAKE_PULUMI_HANG_MARKER),
FAKE_PULUMI_RACE_CREATE=1 (another process creates the stack between select's lookup and
its create), FAKE_PULUMI_OUTPUTS (a JSON file: the outputs `up` records).
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import yaml

CLI_VERSION = "3.272.0"
# pkg/cmd/pulumi/cmd/exit_codes.go
EXIT_ERROR, EXIT_AUTH, EXIT_STACK_NOT_FOUND, EXIT_NO_CHANGES, EXIT_CANCELLED = 1, 3, 6, 7, 8
BOOKKEEPING = ".pulumi"  # workspace.BookkeepingDir
HANG_SECONDS = 120
ANSWERED: list[str] = []  # a scripted answer replaced the model's own output


def _load_yaml(text: str):
    # libyaml when PyYAML has it: the CLI stand-in runs once per call, and the pure-Python
    # loader spent more time on Pulumi.yaml than the rest of a call.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def truthy(name: str) -> bool:
    # sdk/go/common/util/env: a Bool is set by "1" or "true".
    return os.environ.get(name, "").strip().lower() in {"1", "true"}


# ---------------------------------------------------------------- the backend's bucket


class FileBucket:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())


class S3Bucket:
    def __init__(self, bucket: str, prefix: str, region: str | None) -> None:
        import boto3  # noqa: PLC0415 - only an s3:// backend needs it

        self.client = boto3.client("s3", region_name=region)
        self.bucket, self.prefix = bucket, prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str) -> list[str]:
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        ):
            keys += [o["Key"] for o in page.get("Contents", [])]
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in keys)


def open_backend() -> FileBucket | S3Bucket:
    url = os.environ.get("PULUMI_BACKEND_URL", "")
    if not url:
        # No backend URL means Pulumi Cloud, which needs a token in a non-interactive run.
        if not os.environ.get("PULUMI_ACCESS_TOKEN"):
            fail(
                "PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions",
                EXIT_AUTH,
            )
        fail("the stand-in models only diy backends (file://, s3://)")
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FileBucket(Path(parts.netloc + parts.path).expanduser())
    if parts.scheme == "s3":
        region = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("region")
        return S3Bucket(parts.netloc, parts.path, region)
    fail(f"unsupported backend URL {url!r}")


# ---------------------------------------------------------------- project and stack


def project_dir() -> Path:
    here = Path.cwd()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    fail("no Pulumi.yaml project file found (searching upwards from the working directory)")


class Stack:
    """One stack of the project: its objects in the bucket (store.go projectReferenceStore)."""

    def __init__(self, bucket: FileBucket | S3Bucket, project: str, name: str) -> None:
        # store.go ParseReference: `stack`, or `organization/<project>/<stack>`.
        self.bucket, self.project, self.name = bucket, project, name.rsplit("/", 1)[-1]
        name = self.name
        self.checkpoint_key = f"{BOOKKEEPING}/stacks/{project}/{name}.json"
        self.history_dir = f"{BOOKKEEPING}/history/{project}/{name}"
        self.backup_dir = f"{BOOKKEEPING}/backups/{project}/{name}"
        # lock.go: stackLockDir(FullyQualifiedName) = locks/organization/<project>/<stack>
        self.lock_dir = f"{BOOKKEEPING}/locks/organization/{project}/{name}"
        self.settings_file = project_dir() / f"Pulumi.{name}.yaml"

    def exists(self) -> bool:
        return self.bucket.read(self.checkpoint_key) is not None

    def require(self) -> None:
        if not self.exists():
            # backenderr.StackNotFoundError -> ExitStackNotFound
            fail(f"no stack named '{self.name}' found", EXIT_STACK_NOT_FOUND)

    def checkpoint(self) -> dict:
        return json.loads(self.bucket.read(self.checkpoint_key) or b"{}")

    def save(self, deployment: dict | None) -> None:
        """state.go saveCheckpoint: the old file to .bak, the new one, a history entry."""
        old = self.bucket.read(self.checkpoint_key)
        if old is not None:
            self.bucket.write(self.checkpoint_key + ".bak", old)
            self.bucket.write(f"{self.backup_dir}/{self.name}.{time.time_ns()}.json", old)
        body = {"version": 3, "checkpoint": {"stack": self.fqn, "latest": deployment}}
        self.bucket.write(self.checkpoint_key, json.dumps(body, indent=4).encode())

    def record_history(self, kind: str, result: str) -> None:
        entry = {"kind": kind, "result": result, "endTime": int(time.time())}
        key = f"{self.history_dir}/{self.name}-{time.time_ns()}.history.json"
        self.bucket.write(key, json.dumps(entry).encode())

    @property
    def fqn(self) -> str:
        return f"organization/{self.project}/{self.name}"

    # -- settings file (Pulumi.<stack>.yaml)

    def settings(self) -> dict:
        if not self.settings_file.is_file():
            return {}
        return _load_yaml(self.settings_file.read_text()) or {}

    def save_settings(self, settings: dict) -> None:
        self.settings_file.write_text(yaml.safe_dump(settings, sort_keys=True))

    # -- locks (lock.go)

    def locks(self) -> list[str]:
        return [k for k in self.bucket.list(self.lock_dir) if k.endswith(".json")]

    def lock(self) -> str:
        others = self.locks()
        if others:
            lines = "".join(f"\n  {self._describe(k)}" for k in others)
            fail(
                f"the stack is currently locked by {len(others)} lock(s). Either wait for the "
                f"other process(es) to end or delete the lock file with `pulumi cancel`.{lines}"
            )
        key = f"{self.lock_dir}/{uuid.uuid4()}.json"
        content = {
            "pid": os.getpid(),
            "username": getpass.getuser(),
            "hostname": socket.gethostname(),
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        }
        self.bucket.write(key, json.dumps(content).encode())
        return key

    def _describe(self, key: str) -> str:
        content = json.loads(self.bucket.read(key) or b"{}")
        return (
            f"{key}: created by {content.get('username')}@{content.get('hostname')} "
            f"(pid {content.get('pid')}) at {content.get('timestamp')}"
        )


# ---------------------------------------------------------------- secrets managers


def kms_state(url: str) -> dict:
    # pkg/secrets/cloud: a data key, encrypted by the KMS key, kept beside the URL.
    return {"url": url, "encryptedkey": base64.b64encode(os.urandom(32)).decode()}


def secrets_manager(stack: Stack, *, fallback: bool) -> dict:
    """secrets.go GetSecretsManager: the settings file, else the state, else a passphrase."""
    settings = stack.settings()
    provider = settings.get("secretsprovider", "")
    if provider and provider not in {"passphrase", "default"}:
        if not settings.get("encryptedkey"):
            # A new data key, and the settings file must keep it (SecretsManagerMustSave).
            settings["encryptedkey"] = kms_state(provider)["encryptedkey"]
            stack.save_settings(settings)
        return {"type": "cloud", "state": {"url": provider, "key": settings["encryptedkey"]}}
    if settings.get("encryptionsalt"):
        return passphrase_manager(stack, settings, new=False)
    if fallback:
        latest = stack.checkpoint().get("checkpoint", {}).get("latest") or {}
        from_state = latest.get("secrets_providers")
        if from_state:
            if from_state["type"] == "cloud":
                settings["secretsprovider"] = from_state["state"]["url"]
                settings["encryptedkey"] = from_state["state"]["key"]
            else:
                settings["encryptionsalt"] = from_state["state"]["salt"]
            stack.save_settings(settings)  # SecretsManagerShouldSave
            return from_state
    # diyBackend.DefaultSecretManager: the passphrase provider.
    return passphrase_manager(stack, settings, new=True)


def passphrase_manager(stack: Stack, settings: dict, *, new: bool) -> dict:
    if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and not os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        # pkg/secrets/passphrase/manager.go, non-interactive
        fail(
            "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
            "PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
        )
    if new:
        # A new salt on every runner: what one encrypts, another cannot read (#16412).
        settings["encryptionsalt"] = "v1:" + base64.b64encode(os.urandom(8)).decode()
        stack.save_settings(settings)
    return {"type": "passphrase", "state": {"salt": settings["encryptionsalt"]}}


# ---------------------------------------------------------------- the policy pack


def check_policy_pack(pack: Path) -> None:
    """The analyzer runs the pack with its own virtualenv's python; nothing creates it."""
    document = _load_yaml((pack / "PulumiPolicy.yaml").read_text())
    venv = (document.get("runtime") or {}).get("options", {}).get("virtualenv")
    if not venv:
        return
    full = (pack / venv).resolve()
    python = full / "bin" / "python"
    if not python.exists():
        state = (
            "doesn't exist" if not full.exists() else "doesn't appear to be a virtual environment"
        )
        # sdk/python/toolchain/pip.go NewVirtualEnvError
        fail(
            f"The 'virtualenv' option in PulumiPolicy.yaml is set to {venv!r}, but "
            f"{str(full)!r} {state}; run the following commands to create the virtual "
            f"environment and install dependencies into it:\n\n    1. python3 -m venv {full}\n"
            f"    2. {python} -m pip install -r requirements.txt"
        )
    # Starting the pack is what fails without its dependencies; that is checked once per
    # venv (a stamp in it) to keep the tests quick, where the CLI starts the pack each time.
    stamp = full / ".fake-pulumi-pack-starts"
    if stamp.is_file():
        return
    probe = subprocess.run(
        [str(python), "-c", "import pulumi_policy"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        fail(f"could not start policy pack {pack}: {probe.stderr.strip().splitlines()[-1]}")
    stamp.touch()


# ---------------------------------------------------------------- commands


class Cancelled(Exception):
    pass


def _on_signal(signum: int, _frame: object) -> None:
    name = "SIGTERM" if signum == signal.SIGTERM else "^C"
    # cancellation_scope.go: the first signal cancels gracefully, the second terminates.
    sys.stdout.write(f"{name} received; cancelling. If you would like to terminate immediately, ")
    sys.stdout.write("send it again.\n")
    sys.stdout.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Cancelled


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


def positional(args: list[str]) -> list[str]:
    values, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in {
                "--stack",
                "-s",
                "--secrets-provider",
                "--plan",
                "--save-plan",
                "--policy-pack",
                "--file",
                "--target",
                "--message",
                "-m",
            }
        else:
            values.append(arg)
    return values


def stack_select(bucket: FileBucket | S3Bucket, project: str, args: list[str]) -> None:
    name = option(args, "--stack") or positional(args)[2]
    stack = Stack(bucket, project, name)
    if stack.exists():
        return
    if "--create" not in args and "-c" not in args:
        fail(f"no stack named '{name}' found", EXIT_STACK_NOT_FOUND)
    if truthy("FAKE_PULUMI_RACE_CREATE"):
        stack.save(None)  # another run's preview created it a moment ago
    create(stack, option(args, "--secrets-provider", "default"))


def create(stack: Stack, provider: str) -> None:
    """backend.go CreateStack: locked, an empty checkpoint; the settings file keeps the provider."""
    lock = stack.lock()
    try:
        if stack.exists():
            fail(f"stack '{stack.fqn}' already exists")  # StackAlreadyExistsError
        settings = stack.settings()
        if provider in {"default", "passphrase"}:
            passphrase_manager(stack, settings, new=True)
        else:
            settings.update(
                secretsprovider=provider, encryptedkey=kms_state(provider)["encryptedkey"]
            )
            stack.save_settings(settings)
        # An empty deployment: no secrets provider in the state until the first update.
        stack.save(None)
    finally:
        stack.bucket.delete(lock)


def config_set(bucket: FileBucket | S3Bucket, project: str, args: list[str]) -> None:
    stack = Stack(bucket, project, option(args, "--stack") or "")
    stack.require()
    key, value = positional(args)[2:4]
    # A plain value needs no secrets manager (config.go configSetCmd.Run).
    settings = stack.settings()
    settings.setdefault("config", {})[key] = value
    stack.save_settings(settings)


def resources_of(stack: Stack) -> list[dict]:
    latest = stack.checkpoint().get("checkpoint", {}).get("latest") or {}
    return latest.get("resources") or []


def operation(bucket: FileBucket | S3Bucket, project: str, verb: str, args: list[str]) -> int:
    stack = Stack(bucket, project, option(args, "--stack") or "")
    stack.require()
    manager = secrets_manager(
        stack, fallback=verb == "destroy" or truthy("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER")
    )
    if verb in {"preview", "up"} and "--policy-pack" in args:
        check_policy_pack(Path(option(args, "--policy-pack")))
    preview_only = verb == "preview" or "--preview-only" in args
    drift = truthy("FAKE_PULUMI_DRIFT")
    if preview_only:
        # Preview and --preview-only take no lock (backend.go Preview, Refresh, Destroy).
        changes = drift or (verb == "preview" and not resources_of(stack))
        if "--save-plan" in args:
            plan = {
                "stack": stack.fqn,
                "secrets": manager,
                "config": stack.settings().get("config"),
            }
            Path(option(args, "--save-plan")).write_text(json.dumps(plan))
        if not ANSWERED:
            print(
                f"{'Previewing' if verb == 'preview' else 'Refreshing'} ({stack.name}): "
                f"{'changes' if changes else 'no changes'}"
            )
        if "--expect-no-changes" in args and changes:
            fail(f"no changes were expected for {verb} but changes were proposed", EXIT_NO_CHANGES)
        return 0
    if verb == "up" and "--plan" in args:
        plan_file = Path(option(args, "--plan"))
        if not plan_file.is_file():
            fail(f"could not read plan {plan_file}")
        if json.loads(plan_file.read_text()).get("secrets") != manager:
            # The plan's secrets were encrypted by another manager (another runner's key).
            fail("failed to decrypt the plan: it was saved with a different secrets provider")
    lock = stack.lock()
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        return apply(stack, verb, args, manager)
    except Cancelled:
        # The operations in flight finish and are recorded: nothing is left pending.
        latest = stack.checkpoint().get("checkpoint", {}).get("latest") or {}
        if latest.pop("pending_operations", None):
            stack.save(latest)
        stack.record_history(verb, "failed")
        sys.stderr.write(f"error: {verb} canceled\n")
        return EXIT_CANCELLED
    finally:
        stack.bucket.delete(lock)  # deferred Unlock: skipped only when the process is killed


def apply(stack: Stack, verb: str, args: list[str], manager: dict) -> int:
    resources = resources_of(stack)
    pending = (stack.checkpoint().get("checkpoint", {}).get("latest") or {}).get(
        "pending_operations"
    )
    if pending:
        print(
            f"warning: Attempting to deploy or update resources with {len(pending)} pending "
            "operations from previous deployment."
        )
    if verb == "up":
        outputs_file = os.environ.get("FAKE_PULUMI_OUTPUTS")
        outputs = json.loads(Path(outputs_file).read_text()) if outputs_file else {}
        root = {
            "urn": f"urn:pulumi:{stack.name}::{stack.project}::pulumi:pulumi:Stack::"
            f"{stack.project}-{stack.name}",
            "type": "pulumi:pulumi:Stack",
            "outputs": outputs,
        }
        if os.environ.get("FAKE_PULUMI_HANG") == "up":
            in_flight = {
                "resource": {"urn": "urn:pulumi:model", "type": "aws:lambda:Function"},
                "type": "creating",
            }
            stack.save(
                {
                    "secrets_providers": manager,
                    "resources": resources,
                    "pending_operations": [in_flight],
                }
            )
            hang()
        stack.save({"secrets_providers": manager, "resources": [root]})
    elif verb == "refresh":
        stack.save({"secrets_providers": manager, "resources": resources})
    elif verb == "destroy":
        stack.save({"secrets_providers": manager, "resources": []})
        if "--remove" in args:
            for key in (
                stack.checkpoint_key,
                stack.checkpoint_key + ".bak",
                *stack.bucket.list(stack.history_dir),
            ):
                stack.bucket.delete(key)
            stack.settings_file.unlink(missing_ok=True)
            return 0
    stack.record_history(verb, "succeeded")
    return 0


def hang() -> None:
    marker = os.environ.get("FAKE_PULUMI_HANG_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + HANG_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
    fail("the stand-in hung for too long without being signalled")


def stack_ls(bucket: FileBucket | S3Bucket, project: str) -> None:
    prefix = f"{BOOKKEEPING}/stacks/{project}/"
    entries = []
    for key in bucket.list(prefix):
        if not key.endswith(".json"):
            continue
        stack = Stack(bucket, project, key[len(prefix) : -len(".json")])
        entries.append(
            {"name": stack.name, "current": False, "resourceCount": len(resources_of(stack))}
        )
    print(json.dumps(entries, indent=4))


def stack_output(bucket: FileBucket | S3Bucket, project: str, args: list[str]) -> None:
    stack = Stack(bucket, project, option(args, "--stack") or "")
    stack.require()
    outputs = next(
        (
            r.get("outputs", {})
            for r in resources_of(stack)
            if r.get("type") == "pulumi:pulumi:Stack"
        ),
        {},
    )
    print(json.dumps(outputs, indent=4))


def cancel(bucket: FileBucket | S3Bucket, project: str, args: list[str]) -> None:
    stack = Stack(bucket, project, option(args, "--stack") or (positional(args)[1:2] or [""])[0])
    stack.require()
    # backend.go CancelCurrentUpdate: every lock file of the stack, whoever wrote it.
    for key in stack.locks():
        bucket.delete(key)
    print(f"The currently running update for '{stack.name}' has been canceled!")


def plugin_rm(args: list[str]) -> int:
    """plugin_remove.go: KIND [NAME [VERSION range]]; the stand-in's cache is always empty."""
    filters = positional(args)[2:]
    kinds = {"analyzer", "language", "resource", "converter", "tool"}
    if not filters and "--all" not in args:
        fail("please pass --all if you'd like to remove all plugins")
    if filters and filters[0] not in kinds:
        fail(f"unrecognized plugin kind: {filters[0]}")
    if len(filters) > 2 and not filters[2].lstrip("!<>=~^").split(".")[0].isdigit():
        fail(f"invalid plugin semver: {filters[2]}")
    if "--yes" not in args and "-y" not in args:
        fail("--yes must be passed in to proceed when running in non-interactive mode", 2)
    sys.stderr.write("no plugins found to uninstall\n")
    return 0


def scripted(args: list[str]) -> bool:
    """Test hooks that replace the model: a forced failure, or a scripted answer."""
    log = os.environ.get("FAKE_PULUMI_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(args) + "\n")
    env_log = os.environ.get("FAKE_PULUMI_ENV_LOG")
    if env_log:
        # What reached pulumi from the workflow's environment.
        with open(env_log, "a", encoding="utf-8") as handle:
            seen = {
                "argv": args,
                "backend": os.environ.get("PULUMI_BACKEND_URL"),
                "access_token_set": bool(os.environ.get("PULUMI_ACCESS_TOKEN")),
                "aws_credentials": bool(os.environ.get("AWS_ACCESS_KEY_ID")),
                "fallback": os.environ.get("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"),
                "skip_update_check": os.environ.get("PULUMI_SKIP_UPDATE_CHECK"),
            }
            handle.write(json.dumps(seen) + "\n")
    failing = os.environ.get("FAKE_PULUMI_FAIL_ON", "")
    if failing and failing in args:
        sys.exit(int(os.environ.get("FAKE_PULUMI_FAIL_CODE", "3")))
    answers = os.environ.get("FAKE_PULUMI_ANSWERS")
    if answers:
        for prefix, text in json.loads(Path(answers).read_text()).items():
            if args[: len(prefix.split())] == prefix.split():
                sys.stdout.write(text)
                ANSWERED.append(prefix)
                # An operation still happens (locks, state, plan); a query is only answered.
                return args[0] not in {"preview", "up", "destroy", "refresh"}
    return False


def main(args: list[str]) -> int:
    if scripted(args):
        return 0
    if args[:1] == ["version"]:
        print(f"v{CLI_VERSION}")
        return 0
    if args[:2] in (["plugin", "rm"], ["plugin", "remove"]):
        return plugin_rm(args)
    bucket = open_backend()
    project = str(_load_yaml((project_dir() / "Pulumi.yaml").read_text())["name"])
    command = positional(args)[:2]
    if command == ["stack", "select"]:
        stack_select(bucket, project, args)
    elif command == ["stack", "ls"]:
        stack_ls(bucket, project)
    elif command == ["stack", "output"]:
        stack_output(bucket, project, args)
    elif command == ["config", "set"]:
        config_set(bucket, project, args)
    elif command[:1] == ["cancel"]:
        cancel(bucket, project, args)
    elif command[:1] in (["preview"], ["up"], ["destroy"], ["refresh"]):
        sys.stdout.flush()
        return operation(bucket, project, command[0], args)
    else:
        fail(f"the stand-in does not model `pulumi {' '.join(args)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
