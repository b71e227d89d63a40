"""An IAM policy evaluator for the access tests: the part of AWS's logic the project uses.

Follows "Policy evaluation logic" in the IAM User Guide, for one account:

1. An explicit Deny in any policy (identity, boundary, resource) decides.
2. A permissions boundary, when present, must allow the request.
3. Otherwise an Allow in an identity policy, or in a resource policy naming
   the principal, allows; nothing allowing means an implicit deny.

KMS is the exception AWS documents: a key policy must allow, either naming
the principal or handing the key to the account's IAM (`:root`), in which
case the identity policy must allow too (`evaluate_kms`).

Elements: Action/NotAction (case-insensitive), Resource/NotResource,
Principal/NotPrincipal (by type: a role under AWS, an identity provider under
Federated), `*` and `?` wildcards (a `*` spans `/` and `:`),
and Condition with the operators below, their `...IfExists` forms, `Null`,
and the `ForAnyValue:`/`ForAllValues:` set prefixes. A key missing from the
request makes a condition false, except negated operators (true), IfExists
(true) and Null ("IAM JSON policy elements: Condition operators").
Unknown elements or operators raise: a policy this cannot read is not passed.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"
_KNOWN_ELEMENTS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}


class UnsupportedPolicy(ValueError):
    """A policy uses something this evaluator does not model."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str = "*"
    # Condition keys of the request context; values are str, bool or lists (multi-valued keys).
    context: Mapping[str, Any] = field(default_factory=dict)
    principal: str = ""  # the caller's ARN, matched against resource policies' Principal


Policy = Mapping[str, Any] | str


def _document(policy: Policy) -> Mapping[str, Any]:
    return json.loads(policy) if isinstance(policy, str) else policy


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _translated(pattern: str) -> str:
    # fnmatch's `[` classes do not exist in IAM: escape them.
    translated = fnmatch.translate(pattern.replace("[", "\0").replace("]", "\1"))
    return translated.replace("\0", r"\[").replace("\1", r"\]")


@cache
def _compiled(patterns: tuple[str, ...], ignore_case: bool) -> re.Pattern[str]:
    # One alternation of whole-string patterns: it fully matches a value when any one does.
    alternatives = "|".join(f"(?:{_translated(p)})" for p in patterns)
    return re.compile(alternatives, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run of characters (`/` and `:` included), `?` one."""
    return bool(_compiled((pattern,), ignore_case).fullmatch(value))


def _glob_any(patterns: Any, value: str, *, ignore_case: bool = False) -> bool:
    """Does any of an element's patterns (a string or a list of them) match `value`?"""
    # The access tests match hundreds of thousands of statements: one regex per element's
    # patterns, cached by their text, instead of a match per pattern.
    key = tuple(patterns) if isinstance(patterns, list | tuple) else (patterns,)
    if not key:
        return False
    try:
        matcher = _compiled(key, ignore_case)
    except (TypeError, AttributeError):
        # Not all strings: one at a time, as documented, so what follows a match is not read.
        return any(glob(p, value, ignore_case=ignore_case) for p in key)
    return matcher.fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    # ArnLike matches each of the six colon-separated parts on its own.
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return glob(pattern, value)
    return all(glob(p, v) for p, v in zip(p_parts, v_parts, strict=True))


def _bool(policy_value: Any, value: Any) -> bool:
    return str(policy_value).lower() == str(value).lower()


_MATCHERS = {
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringNotEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": glob,
    "StringNotLike": glob,
    "ArnEquals": _arn_like,
    "ArnNotEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotLike": _arn_like,
    "Bool": _bool,
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
}


def _context_value(context: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    # Condition key names are case-insensitive.
    for name, value in context.items():
        if name.lower() == key.lower():
            return True, value
    return False, None


def _condition_holds(  # noqa: PLR0911 - one return per documented case
    operator: str, key: str, policy_values: Any, context: Mapping[str, Any]
) -> bool:
    present, value = _context_value(context, key)
    expected = [str(v) if not isinstance(v, bool) else v for v in as_list(policy_values)]
    if operator == "Null":
        return any(_bool(e, not present) for e in expected)
    set_operator = None
    if ":" in operator:
        set_operator, operator = operator.split(":", 1)
        if set_operator not in ("ForAnyValue", "ForAllValues"):
            raise UnsupportedPolicy(f"condition set operator {set_operator!r}")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _MATCHERS:
        raise UnsupportedPolicy(f"condition operator {operator!r}")
    if not present:
        if if_exists:
            return True
        if set_operator == "ForAllValues":
            return True  # vacuously: no value fails
        return base in _NEGATED and set_operator is None
    match = _MATCHERS[base]

    def one(actual: Any) -> bool:
        hit = any(match(e, actual) for e in expected)
        return not hit if base in _NEGATED else hit

    values = as_list(value)
    if set_operator == "ForAnyValue":
        return any(one(v) for v in values)
    if set_operator == "ForAllValues":
        return all(one(v) for v in values)
    if len(values) != 1:
        raise UnsupportedPolicy(
            f"{operator} on multi-valued key {key!r} needs ForAnyValue/ForAllValues"
        )
    return one(values[0])


def _conditions_hold(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    # Operators AND together, keys within an operator AND, values within a key OR.
    return all(
        _condition_holds(operator, key, values, context)
        for operator, block in condition.items()
        for key, values in block.items()
    )


# The principal types a policy may name, spelled as AWS requires: it refuses a policy that
# names another ("IAM JSON policy elements: Principal").
_PRINCIPAL_TYPES = {"AWS", "Federated", "Service", "CanonicalUser"}


def _principal_type(caller: str) -> str:
    # A web identity or SAML caller is its provider's ARN, matched under "Federated" only.
    return "Federated" if ":oidc-provider/" in caller or ":saml-provider/" in caller else "AWS"


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    unknown = set(principal) - _PRINCIPAL_TYPES
    if unknown:
        raise UnsupportedPolicy(
            f"principal types {sorted(unknown)}: AWS takes only {sorted(_PRINCIPAL_TYPES)}"
        )
    for kind, values in principal.items():
        if kind != _principal_type(caller):
            continue
        for value in as_list(values):
            # `arn:...:root` names the account, not its roles: a resource policy
            # naming it hands the decision to IAM (see evaluate_kms), it grants nothing.
            if value in {"*", caller}:
                return True
    return False


def statement_applies(
    stmt: Mapping[str, Any], request: Request, *, resource_policy: bool = False
) -> bool:
    if not _KNOWN_ELEMENTS.issuperset(stmt):
        raise UnsupportedPolicy(f"statement elements {sorted(set(stmt) - _KNOWN_ELEMENTS)}")
    if "Action" in stmt:
        actions = _glob_any(stmt["Action"], request.action, ignore_case=True)
    elif "NotAction" in stmt:
        actions = not _glob_any(stmt["NotAction"], request.action, ignore_case=True)
    else:
        raise UnsupportedPolicy("a statement needs Action or NotAction")
    return actions and _applies_past_action(stmt, request, resource_policy=resource_policy)


def _applies_past_action(
    stmt: Mapping[str, Any], request: Request, *, resource_policy: bool
) -> bool:
    if "Resource" in stmt and not _glob_any(stmt["Resource"], request.resource):
        return False
    if "NotResource" in stmt and _glob_any(stmt["NotResource"], request.resource):
        return False
    if resource_policy and not _principal_applies(stmt, request.principal):
        return False
    return _conditions_hold(stmt.get("Condition", {}), request.context)


def _principal_applies(stmt: Mapping[str, Any], caller: str) -> bool:
    if "Principal" in stmt:
        return _principal_matches(stmt["Principal"], caller)
    if "NotPrincipal" in stmt:
        return not _principal_matches(stmt["NotPrincipal"], caller)
    raise UnsupportedPolicy("a resource policy statement needs Principal or NotPrincipal")


class _NotPlain(Exception):
    """A policy holds something besides dicts, lists, tuples, strings, numbers and None."""


_PLAIN_LEAVES = (str, int, float, bool, type(None))


def _plain_copy(value: Any) -> Any:
    # Exact types only: an object that could change without its container noticing, or
    # compare equal to what it is not, cannot stand in a snapshot that is compared.
    if type(value) is dict:
        return {key: _plain_copy(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain_copy(item) for item in value)
    if type(value) in _PLAIN_LEAVES:
        return value
    raise _NotPlain


@dataclass
class _ActionIndex:
    """Which of a policy's statements name an action, found once per action."""

    policy: dict[str, Any]  # held, so no other policy takes its id while it is cached
    # The policy as indexed, which it must still equal for the index to stand; None: the
    # policy is not indexed (it holds more than plain data or a statement is malformed).
    snapshot: dict[str, Any] | None
    matchers: list[tuple[re.Pattern[str] | None, bool]]  # per statement: patterns, NotAction
    by_action: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def statements_for(self, action: str) -> tuple[int, ...]:
        found = self.by_action.get(action)
        if found is None:
            found = self.by_action[action] = tuple(
                i
                for i, (matcher, negated) in enumerate(self.matchers)
                if (matcher is not None and matcher.fullmatch(action) is not None) != negated
            )
        return found


def _action_index(policy: dict[str, Any]) -> _ActionIndex:
    unindexed = _ActionIndex(policy, None, [])
    try:
        snapshot = _plain_copy(policy)
    except _NotPlain:
        return unindexed
    if "Statement" not in snapshot:
        return unindexed
    matchers = []
    for stmt in as_list(snapshot["Statement"]):
        if type(stmt) is not dict or not _KNOWN_ELEMENTS.issuperset(stmt):
            return unindexed
        element = "Action" if "Action" in stmt else "NotAction"
        if element not in stmt:
            return unindexed
        patterns = tuple(as_list(stmt[element]))
        if not all(type(p) is str for p in patterns):
            return unindexed
        matcher = _compiled(patterns, True) if patterns else None
        matchers.append((matcher, element == "NotAction"))
    return _ActionIndex(policy, snapshot, matchers)


# The access tests ask thousands of questions of the same few policies of dozens of
# statements each, and most statements name other actions. Both map id(policy) to
# something holding the policy, so no other takes its id while it is remembered.
_ASKED_ONCE: dict[int, Policy] = {}
_ACTION_INDEXES: dict[int, _ActionIndex] = {}
_MAX_REMEMBERED = 256


def _remember(memory: dict[int, Any], policy: Policy, value: Any) -> None:
    if len(memory) >= _MAX_REMEMBERED:
        memory.clear()
    memory[id(policy)] = value


def _statements_for(policy: Policy, action: str) -> tuple[int, ...] | None:
    """Positions of the statements whose Action admits `action`; None: check them all."""
    if type(policy) is not dict:
        return None
    index = _ACTION_INDEXES.get(id(policy))
    if index is None or index.policy is not policy:
        # Indexing costs about a pass over the statements: only for the same policy object
        # asked again (one parsed afresh for each question is checked in full).
        if _ASKED_ONCE.get(id(policy)) is not policy:
            _remember(_ASKED_ONCE, policy, policy)
            return None
        index = _action_index(policy)
        _remember(_ACTION_INDEXES, policy, index)
    elif index.snapshot is not None and index.snapshot != policy:
        # Changed since it was indexed: a dict is mutable.
        index = _action_index(policy)
        _remember(_ACTION_INDEXES, policy, index)
    return None if index.snapshot is None else index.statements_for(action)


def _applying(
    policy: Policy, request: Request, *, resource_policy: bool
) -> Iterator[Mapping[str, Any]]:
    """A policy's statements that apply to the request, in order."""
    statements = as_list(_document(policy)["Statement"])
    positions = _statements_for(policy, request.action)
    if positions is None:
        for stmt in statements:
            if statement_applies(stmt, request, resource_policy=resource_policy):
                yield stmt
        return
    for i in positions:
        # Indexed statements are well-formed and admit the action: the rest of the checks.
        if _applies_past_action(statements[i], request, resource_policy=resource_policy):
            yield statements[i]


def _effects(
    policies: Iterable[Policy], request: Request, *, resource_policy: bool = False
) -> set[str]:
    effects = set()
    for policy in policies:
        for stmt in _applying(policy, request, resource_policy=resource_policy):
            if stmt["Effect"] not in ("Allow", "Deny"):
                raise UnsupportedPolicy(f"Effect {stmt['Effect']!r}")
            effects.add(stmt["Effect"])
    return effects


def _with_principal(request: Request) -> Request:
    """AWS sets `aws:PrincipalArn` on every request (a role session's is the role's ARN)."""
    if not request.principal or _context_value(request.context, "aws:PrincipalArn")[0]:
        return request
    context = {**request.context, "aws:PrincipalArn": request.principal}
    return Request(request.action, request.resource, context, request.principal)


def evaluate(
    identity: Sequence[Policy],
    request: Request,
    *,
    boundary: Policy | None = None,
    resource: Policy | None = None,
) -> str:
    """The decision for one principal's request within one account."""
    request = _with_principal(request)
    own = _effects(identity, request)
    bound = _effects([boundary], request) if boundary is not None else {"Allow"}
    granted = _effects([resource], request, resource_policy=True) if resource is not None else set()
    if "Deny" in own | bound | granted:
        return EXPLICIT_DENY
    if "Allow" not in bound:
        return IMPLICIT_DENY
    return ALLOW if "Allow" in own | granted else IMPLICIT_DENY


def evaluate_kms(identity: Sequence[Policy], key_policy: Policy, request: Request) -> str:
    """A KMS key: its policy must allow the caller, directly or by handing the key to IAM."""
    key = _document(key_policy)
    request = _with_principal(request)
    account = request.principal.split(":")[4]
    root = f"arn:aws:iam::{account}:root"
    as_account = Request(request.action, request.resource, request.context, root)
    named = _effects([key], request, resource_policy=True)
    delegated = _effects([key], as_account, resource_policy=True)
    own = _effects(identity, request)
    if "Deny" in named | own:
        return EXPLICIT_DENY
    if "Allow" in named:
        return ALLOW
    return ALLOW if "Allow" in delegated and "Allow" in own else IMPLICIT_DENY


def can_assume_with_web_identity(
    trust: Policy, provider_arn: str, claims: Mapping[str, str], issuer: str
) -> bool:
    """Would STS let a token with these claims (`sub`, `aud`) assume a role with this trust?"""
    request = Request(
        action="sts:AssumeRoleWithWebIdentity",
        context={f"{issuer}:{name}": value for name, value in claims.items()},
        principal=provider_arn,
    )
    effects = _effects([trust], request, resource_policy=True)
    return "Allow" in effects and "Deny" not in effects
