"""AWS access for the pipeline verbs: one client factory, errors people can act on.

Verbs take boto3 clients from their caller, so tests hand them clients bound
to moto (or a Stubber) and `main` hands them real ones from `client()`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

# Standard mode retries throttling and transient errors with backoff; ten
# attempts ride out the bursts that CI runs for many branches cause.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})


class ScriptError(Exception):
    """A failure the verb reports as one line, with the exit code it deserves."""

    exit_code = 1


class UsageError(ScriptError):
    """Bad input: nothing was changed."""

    exit_code = 2


class NotFoundError(ScriptError):
    """A resource the stack should have is not there."""


class AccessError(ScriptError):
    """The credentials in use may not do this."""


_NOT_FOUND = {
    "ResourceNotFoundException",
    "NotFoundException",
    "NoSuchBucket",
    "NoSuchKey",
    "ApplicationDoesNotExistException",
    "DeploymentGroupDoesNotExistException",
    "DeploymentDoesNotExistException",
}
_ACCESS = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId"}


def client(service: str, region: str | None = None):  # boto3 clients are untyped
    """A boto3 client with standard retries; honours AWS_ENDPOINT_URL like every boto3 client."""
    # The service is chosen at run time; the stubs type clients per literal service name.
    return boto3.client(service, region_name=region, config=RETRY_CONFIG)  # type: ignore[call-overload]


def translate(error: ClientError, doing: str) -> ScriptError:
    """Turn an AWS error into the project's own, saying what was being done."""
    code = error.response.get("Error", {}).get("Code", "Unknown")
    message = error.response.get("Error", {}).get("Message", str(error))
    if code in _NOT_FOUND:
        return NotFoundError(
            f"{doing}: not found ({code}: {message}); is the stack deployed? "
            "`nox -s deploy -- --branch NAME` creates it"
        )
    if code in _EXPIRED:
        return AccessError(
            f"{doing}: the AWS credentials are expired or invalid ({code}); assume the role "
            "again (in CI: re-run the job; locally: refresh your profile's session)"
        )
    if code in _ACCESS:
        return AccessError(
            f"{doing}: access denied ({message}); the role in use lacks this permission"
        )
    return ScriptError(f"{doing}: AWS said {code}: {message}")


def call(doing: str, operation: Callable[..., dict], /, **kwargs: object) -> dict:
    """Run one AWS call; its failure becomes a ScriptError that says what was being done."""
    try:
        return operation(**kwargs)
    except ClientError as error:
        raise translate(error, doing) from error


_BOTOCORE_HINTS: Sequence[tuple[type[BotoCoreError], str]] = (
    (NoCredentialsError, "no AWS credentials (set AWS_PROFILE, or assume the role)"),
    (NoRegionError, "no AWS region (the stack outputs name none: set AWS_REGION)"),
    (
        EndpointConnectionError,
        "{error}; is the region right (the stack outputs' 'region') and the network up?",
    ),
)


def _failure(error: ScriptError | ClientError | BotoCoreError) -> ScriptError:
    """The project's own error for anything a verb may meet in ordinary use."""
    if isinstance(error, ScriptError):
        return error
    if isinstance(error, ClientError):
        # A call outside `call()`: still one line that says what AWS refused.
        return translate(error, f"calling {getattr(error, 'operation_name', 'AWS')}")
    for kind, text in _BOTOCORE_HINTS:
        if isinstance(error, kind):
            return ScriptError(text.format(error=error))
    return ScriptError(str(error))


def run(verb: str, body: Callable[[], int]) -> int:
    """Run a verb's body; report failures as one line on stderr with the right exit code."""
    try:
        return body()
    except (ScriptError, ClientError, BotoCoreError) as error:
        failure = _failure(error)
        print(f"{verb}: {failure}", file=sys.stderr)
        return failure.exit_code


def pages(client_: Any, operation: str, key: str, **kwargs: object) -> list[Any]:
    """Every item of a paginated listing (objects, or ids where the API lists ids).

    A refusal becomes a ScriptError, as from `call()`: what a verb does when AWS fails
    mid-way (a promotion puts its alias back) must see a listing's failure too.
    """
    items: list[Any] = []
    try:
        for page in client_.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
    except ClientError as error:
        raise _failure(error) from error
    return items
