"""A Lambda alias and the versions it can point at: refusing unpublished versions,
reading the alias, and moving it only from the revision this run read.

Promote (both strategies), rollback and smoke share these; every move of an alias in
scripts/ goes through `set_alias`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from scripts.lib import aws


class ConcurrentChange(aws.ScriptError):
    """The alias moved since this run read it: another promotion or a rollback owns it now."""


@dataclass(frozen=True)
class AliasState:
    primary: str
    weights: Mapping[str, float]
    # Lambda's alias revision: every traffic move names the one it read, so a move made
    # by someone else in between fails instead of being silently overwritten.
    revision: str = field(default="", compare=False)

    def weight_of(self, version: str) -> int:
        return round(self.weights.get(version, 0.0) * 100)

    def describe(self) -> str:
        if not self.weights:
            return f"version {self.primary} at 100%"
        shares = [f"version {v} at {round(w * 100)}%" for v, w in sorted(self.weights.items())]
        rest = 100 - sum(round(w * 100) for w in self.weights.values())
        return ", ".join([f"version {self.primary} at {rest}%", *shares])


def published_versions(lambda_client: Any, function: str) -> list[str]:
    listing = aws.pages(
        lambda_client, "list_versions_by_function", "Versions", FunctionName=function
    )
    return [v["Version"] for v in listing if v["Version"] != "$LATEST"]


def require_version(lambda_client: Any, function: str, version: str, flag: str) -> None:
    """Refuse, before anything changes, a version that is not a published one."""
    if str(version).isdigit():
        try:
            lambda_client.get_function(FunctionName=function, Qualifier=str(version))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise aws.translate(error, f"checking version {version} of {function}") from error
        else:
            return
    published = ", ".join(published_versions(lambda_client, function)) or "none"
    raise aws.UsageError(
        f"{flag} {version}: function {function} has no published version {version!r} "
        f"(published: {published}); pass one of those"
    )


def read_alias(lambda_client: Any, function: str, alias: str) -> AliasState:
    response = aws.call(
        f"reading alias {alias} of {function}",
        lambda_client.get_alias,
        FunctionName=function,
        Name=alias,
    )
    weights = (response.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return AliasState(
        str(response["FunctionVersion"]),
        {str(v): float(w) for v, w in weights.items() if w > 0},
        str(response.get("RevisionId") or ""),
    )


def set_alias(
    lambda_client: Any,
    function: str,
    alias: str,
    version: str,
    weights: Mapping[str, float] | None = None,
    *,
    revision: str,
) -> str:
    """Point the alias at `version` (without weights: 100%) if it is still at `revision`.

    Returns the alias's new revision, for the next move. ConcurrentChange when the alias
    moved since `revision` was read: nothing is overwritten.
    """
    # The primary version is always sent too, so each call states the whole routing and
    # repeating it (a re-run) lands in the same place.
    lock = {"RevisionId": revision} if revision else {}
    try:
        response = lambda_client.update_alias(
            FunctionName=function,
            Name=alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": dict(weights or {})},
            **lock,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailedException":
            raise ConcurrentChange(
                f"alias {alias} of {function} changed since this run read it (another "
                "promotion or a rollback moved it); this run left it as it is. See `nox -s "
                "events -- history`, then re-run if this promotion is still wanted"
            ) from None
        raise aws.translate(
            error, f"pointing alias {alias} of {function} at version {version}"
        ) from error
    return str(response.get("RevisionId") or "")
