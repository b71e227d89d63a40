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
