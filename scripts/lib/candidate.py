"""The candidate version a deploy hands to promote: the fingerprint of its code, the check
that an approved version number still holds that code, and whether alias `live` needs it.
"""

from __future__ import annotations

from typing import Any

from scripts.lib import aws
from scripts.lib.lambda_alias import read_alias, require_version


def code_sha256(lambda_client: Any, function: str, version: str) -> str:
    require_version(lambda_client, function, version, "--version")
    response = aws.call(
        f"reading version {version} of {function}",
        lambda_client.get_function,
        FunctionName=function,
        Qualifier=str(version),
    )
    return str(response["Configuration"]["CodeSha256"])


def require_deployed_code(lambda_client: Any, function: str, version: str, expected: str) -> None:
    """Refuse a version whose code is not what the deploy that asked for it published.

    Version numbers restart when a stack is destroyed and deployed again, so an approval
    given days ago may name a number that now holds other code.
    """
    actual = code_sha256(lambda_client, function, version)
    if actual != expected:
        raise aws.UsageError(
            f"--version {version}: its code (CodeSha256 {actual}) is not what this run "
            f"deployed ({expected}); the stack was redeployed since. Nothing changed: "
            "promote from the run that deployed the version you mean"
        )


def promotion_check(
    lambda_client: Any, function: str, alias: str, candidate: str
) -> tuple[dict[str, str], str]:
    """What the pipeline's promote job should be asked: its outputs, and the summary line."""
    sha = code_sha256(lambda_client, function, candidate)
    state = read_alias(lambda_client, function, alias)
    needed = state.primary != candidate or bool(state.weights)
    values = {
        "candidate-version": candidate,
        "candidate-sha256": sha,
        "promote": "true" if needed else "false",
    }
    if needed:
        line = (
            f"Promotion of version {candidate} awaits approval in `canary-promotion` "
            f"(alias {alias} serves {state.describe()})."
        )
    else:
        line = (
            f"Promotion skipped: alias {alias} already serves version {candidate} at 100% "
            "(this deploy published no new model version)."
        )
    return values, line
