"""In-process stand-ins for boto3 clients: each answers from a table and logs every call.

For unit tests of a verb's AWS conversation (which calls, in which order, with which
arguments, and what it does with each answer) where moto would cost a server and a
deployed stack per test. An operation's answer is a value, a callable of the call's
keyword arguments, or a list consumed one answer per call; an answer that is an
exception is raised, as botocore raises a ClientError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


def client_error(code: str, operation: str = "Operation", message: str = "refused") -> ClientError:
    """The ClientError botocore raises for an AWS error code."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeClient:
    """A boto3 client whose operations answer from `answers` and record their calls.

    `pages` answers `get_paginator(op).paginate(**kwargs)`: a list of pages, or a callable
    of the keyword arguments returning one.
    """

    def __init__(
        self,
        answers: dict[str, Any] | None = None,
        pages: dict[str, Any] | None = None,
    ) -> None:
        self.answers = dict(answers or {})
        self.page_answers = dict(pages or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        if operation.startswith("_") or operation not in self.answers:
            raise AttributeError(operation)

        def call(**kwargs: Any) -> Any:
            self.calls.append((operation, kwargs))
            return _answer(self.answers, operation, kwargs, queue=True)

        return call

    def get_paginator(self, operation: str) -> Any:
        client = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> list[Any]:
                client.calls.append((operation, kwargs))
                return list(_answer(client.page_answers, operation, kwargs, queue=False))

        return Paginator()

    def operations(self) -> list[str]:
        """The operations called, in order."""
        return [name for name, _ in self.calls]

    def arguments(self, operation: str) -> list[dict[str, Any]]:
        """The keyword arguments of each call of `operation`, in order."""
        return [kwargs for name, kwargs in self.calls if name == operation]


def _answer(table: dict[str, Any], operation: str, kwargs: dict[str, Any], *, queue: bool) -> Any:
    answer = table[operation]
    # A list of answers is a queue; its last answer repeats.
    if queue and isinstance(answer, list):
        answer = answer.pop(0) if len(answer) > 1 else answer[0]
    if callable(answer) and not isinstance(answer, type):
        answer = answer(**kwargs)
    if isinstance(answer, BaseException):
        raise answer
    return answer


class LambdaAlias:
    """One Lambda alias with its revision lock, and the versions its function has published.

    `client` is the Lambda client; `moves` logs each update_alias as (version, weights,
    revision named), refused ones included. A call naming another function or alias is
    answered as Lambda answers it: ResourceNotFoundException.
    """

    def __init__(
        self,
        primary: str,
        weights: dict | None = None,
        published=("1", "2", "3"),
        *,
        function: str = "model-x",
        alias: str = "live",
    ):
        self.primary, self.weights, self.revision = primary, dict(weights or {}), "r0"
        self.published = list(published)
        self.function, self.alias = function, alias
        self.moves: list[tuple[str, dict, str | None]] = []
        self.client = FakeClient(
            {
                "get_alias": self.get_alias,
                "update_alias": self.update_alias,
                "get_function": self.get_function,
            },
            {"list_versions_by_function": self.list_versions},
        )

    def _exists(self, function: str, *alias: str) -> None:
        # An alias call must name the alias (botocore refuses a missing or None Name).
        if function != self.function or alias not in ((), (self.alias,)):
            raise client_error("ResourceNotFoundException", "Lambda", f"{function}:{alias}")

    def get_alias(self, FunctionName: str, Name: str) -> dict:
        self._exists(FunctionName, Name)
        routing = {"AdditionalVersionWeights": self.weights} if self.weights else {}
        return {
            "FunctionVersion": self.primary,
            "RoutingConfig": routing,
            "RevisionId": self.revision,
        }

    def update_alias(self, FunctionName, Name, FunctionVersion, RoutingConfig, RevisionId=None):
        self._exists(FunctionName, Name)
        self.moves.append((FunctionVersion, RoutingConfig["AdditionalVersionWeights"], RevisionId))
        if RevisionId is not None and RevisionId != self.revision:
            raise client_error("PreconditionFailedException", "UpdateAlias")
        self.primary, self.weights = FunctionVersion, RoutingConfig["AdditionalVersionWeights"]
        self.revision = f"r{len(self.moves)}"
        return {"RevisionId": self.revision}

    def get_function(self, FunctionName: str, Qualifier: str) -> dict:
        self._exists(FunctionName)
        if Qualifier not in self.published:
            raise client_error("ResourceNotFoundException", "GetFunction")
        return {"Configuration": {"CodeSha256": f"sha-of-{Qualifier}"}}

    def list_versions(self, FunctionName: str) -> list[dict]:
        self._exists(FunctionName)
        return [{"Versions": [{"Version": "$LATEST"}, *({"Version": v} for v in self.published)]}]
