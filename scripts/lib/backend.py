"""Read (and release) what the Pulumi diy backend keeps for a stack: its checkpoint and locks.

The CLI has no command that lists a stack's locks or names the checkpoint a plan was
computed from, so the pipeline reads the backend's objects itself, at the paths
pulumi/pulumi pkg/backend/diy writes them (project-scoped layout, the default since 3.61):

    .pulumi/stacks/<project>/<stack>.json                       checkpoint (store.go)
    .pulumi/locks/organization/<project>/<stack>/<id>.json      one lock per running
                                                                 up/destroy/refresh (lock.go)

A lock holds {"pid", "username", "hostname", "timestamp"}. Backends: file://DIR and
s3://BUCKET[/PREFIX][?region=R]; any other URL (Pulumi Cloud) has none of these objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from scripts.lib import aws

BOOKKEEPING = ".pulumi"


@dataclasses.dataclass(frozen=True)
class Lock:
    key: str
    pid: int | None
    username: str
    hostname: str
    timestamp: str

    def describe(self) -> str:
        return f"{self.username}@{self.hostname} (pid {self.pid}) since {self.timestamp}"


class Backend:
    """The objects of one diy backend; `read` returns None for a missing object."""

    def __init__(
        self,
        url: str,
        read: Callable[[str], bytes | None],
        list_keys: Callable[[str], list[str]],
        delete: Callable[[str], None],
    ) -> None:
        self.url = url
        self.read = read
        self.list_keys = list_keys
        self.delete = delete

    def checkpoint_key(self, project: str, stack: str) -> str:
        return f"{BOOKKEEPING}/stacks/{project}/{stack}.json"

    def checkpoint_digest(self, project: str, stack: str) -> str | None:
        """Names the state a plan was computed from: any update writes a new checkpoint."""
        data = self.read(self.checkpoint_key(project, stack))
        return hashlib.sha256(data).hexdigest() if data is not None else None

    def _latest(self, project: str, stack: str) -> dict:
        data = self.read(self.checkpoint_key(project, stack))
        if data is None:
            return {}
        return (json.loads(data).get("checkpoint") or {}).get("latest") or {}

    def pending_operations(self, project: str, stack: str) -> list[dict]:
        return list(self._latest(project, stack).get("pending_operations") or [])

    def state_has_secrets_provider(self, project: str, stack: str) -> bool:
        """False until the first update: a new stack's checkpoint is an empty deployment."""
        return bool(self._latest(project, stack).get("secrets_providers"))

    def locks(self, project: str, stack: str) -> list[Lock]:
        found = []
        for key in self.list_keys(f"{BOOKKEEPING}/locks/organization/{project}/{stack}/"):
            if not key.endswith(".json"):
                continue
            try:
                content = json.loads(self.read(key) or b"{}")
            except json.JSONDecodeError:
                content = {}
            found.append(
                Lock(
                    key=key,
                    pid=content.get("pid"),
                    username=str(content.get("username", "?")),
                    hostname=str(content.get("hostname", "?")),
                    timestamp=str(content.get("timestamp", "?")),
                )
            )
        return found

    def release_own_locks(
        self, project: str, stack: str, hostname: str | None = None
    ) -> list[Lock]:
        """Delete the locks this machine's pulumi left; `pulumi cancel` would delete everyone's."""
        host = hostname or socket.gethostname()
        released = [lock for lock in self.locks(project, stack) if lock.hostname == host]
        for lock in released:
            self.delete(lock.key)
        return released


def _file_backend(url: str, root: Path) -> Backend:
    def read(key: str) -> bytes | None:
        path = root / key
        return path.read_bytes() if path.is_file() else None

    def list_keys(prefix: str) -> list[str]:
        base = root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())

    def delete(key: str) -> None:
        (root / key).unlink(missing_ok=True)

    return Backend(url, read, list_keys, delete)


def _s3_backend(url: str, bucket: str, prefix: str, region: str | None) -> Backend:
    s3 = aws.client("s3", region)
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    def read(key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=base + key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    def list_keys(key_prefix: str) -> list[str]:
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=base + key_prefix
        ):
            keys += [item["Key"][len(base) :] for item in page.get("Contents", [])]
        return sorted(keys)

    def delete(key: str) -> None:
        s3.delete_object(Bucket=bucket, Key=base + key)

    return Backend(url, read, list_keys, delete)


def open_backend(url: str | None) -> Backend | None:
    """The diy backend at PULUMI_BACKEND_URL, or None when it is not one (Pulumi Cloud)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme == "file":
        return _file_backend(url, Path(parts.netloc + parts.path).expanduser())
    if parts.scheme == "s3":
        region: str | None = (parse_qs(parts.query).get("region") or [""])[0] or None
        return _s3_backend(url, parts.netloc, parts.path, region)
    return None
