"""scripts.lib.backend reads a diy backend's objects where pulumi pkg/backend/diy puts them."""

from __future__ import annotations

import json
import socket

import boto3
import pytest

from infra import config
from scripts.lib import backend

PROJECT = config.read_project()[0]
STACK = "feature-x-1234abcd"
LOCKS = f".pulumi/locks/organization/{PROJECT}/{STACK}"


@pytest.fixture
def bucket(aws: str) -> str:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="state-test")
    for host, name in ((socket.gethostname(), "mine"), ("fv-az99-1", "theirs")):
        lock = {"pid": 1, "username": "runner", "hostname": host, "timestamp": "t"}
        s3.put_object(Bucket="state-test", Key=f"team/{LOCKS}/{name}.json", Body=json.dumps(lock))
    # Another stack's lock and a checkpoint: neither is this stack's lock.
    s3.put_object(Bucket="state-test", Key=f"team/{LOCKS}-other/x.json", Body=b"{}")
    s3.put_object(
        Bucket="state-test", Key=f"team/.pulumi/stacks/{PROJECT}/{STACK}.json", Body=b"{}"
    )
    return "state-test"


def test_s3_locks_are_listed_and_only_this_machine_s_are_released(bucket: str) -> None:
    diy = backend.open_backend(f"s3://{bucket}/team?region=us-east-1")
    assert sorted(lock.hostname for lock in diy.locks(PROJECT, STACK)) == sorted(
        [socket.gethostname(), "fv-az99-1"]
    )
    released = diy.release_own_locks(PROJECT, STACK)
    assert [lock.key for lock in released] == [f"{LOCKS}/mine.json"]
    assert [lock.hostname for lock in diy.locks(PROJECT, STACK)] == ["fv-az99-1"]


def test_the_checkpoint_digest_changes_with_the_checkpoint(bucket: str) -> None:
    diy = backend.open_backend(f"s3://{bucket}/team")
    before = diy.checkpoint_digest(PROJECT, STACK)
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=bucket, Key=f"team/.pulumi/stacks/{PROJECT}/{STACK}.json", Body=b'{"v": 2}'
    )
    assert before is not None
    assert diy.checkpoint_digest(PROJECT, STACK) not in {before, None}
    assert diy.checkpoint_digest(PROJECT, "no-such-stack") is None


def test_only_diy_backends_are_read() -> None:
    assert backend.open_backend(None) is None
    assert backend.open_backend("https://api.pulumi.com") is None
