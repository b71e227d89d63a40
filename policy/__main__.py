"""The mlship policy pack: `policy.rules`, enforced by `pulumi preview/up --policy-pack policy`.

Every policy here is a thin adapter: it turns pulumi_policy's arguments into
`rules.Resource` values and reports what `rules.evaluate` finds for its one
rule, so the pack and the offline synth can never disagree about a rule.

- Per-resource rules are ResourceValidationPolicies: they see the resource and
  its provider, whose `defaultTags` carry the required tags and the stack's
  `kind` (protected/ephemeral), so no stack config has to reach the pack.
- Bucket rules need the whole stack (a bucket's encryption and public access
  block are separate resources): StackValidationPolicies.

Pulumi runs this file with `python -m pulumi.policy`, i.e. as `__main__`;
importing it (as the tests do) builds the policies without serving them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

# The pack runs with its own folder on sys.path; the repository root makes
# `policy.rules` the same module here, in scripts and in tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    PolicyProviderResource,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# Private to pulumi_policy, hence the exact pin in requirements.txt.
from pulumi_policy import proxy as policy_proxy

from policy import rules

PACK_NAME = "mlship"
# Policy config keys (`pulumi preview --policy-pack-config FILE`, see config_schema below).
ALLOW_NOTEBOOK = "allowEphemeralNotebook"
REQUIRED_TAGS = "requiredTags"

LEVELS = {rules.MANDATORY: EnforcementLevel.MANDATORY, rules.ADVISORY: EnforcementLevel.ADVISORY}
CONFIG_SCHEMAS = {
    rules.NO_EPHEMERAL_NOTEBOOK: PolicyConfigSchema(
        properties={
            ALLOW_NOTEBOOK: {
                "type": "boolean",
                "default": False,
                "description": "Allow a SageMaker notebook in an ephemeral stack (bills hourly).",
            }
        }
    ),
    rules.REQUIRED_TAGS_RULE: PolicyConfigSchema(
        properties={
            REQUIRED_TAGS: {
                "type": "array",
                "items": {"type": "string"},
                "default": list(rules.REQUIRED_TAGS),
                "description": "Tags every AWS resource must carry.",
            }
        }
    ),
}

# Preview's placeholders for values that only exist once a resource does.
UNKNOWN_SENTINELS = frozenset(
    {
        policy_proxy.UNKNOWN_BOOLEAN_VALUE,
        policy_proxy.UNKNOWN_NUMBER_VALUE,
        policy_proxy.UNKNOWN_STRING_VALUE,
        policy_proxy.UNKNOWN_ARRAY_VALUE,
        policy_proxy.UNKNOWN_ASSET_VALUE,
        policy_proxy.UNKNOWN_ARCHIVE_VALUE,
        policy_proxy.UNKNOWN_OBJECT_VALUE,
    }
)


def plain(value: Any) -> Any:
    """pulumi_policy props as plain wire-form data, preview's unknowns as `rules.UNKNOWN`.

    pulumi_policy wraps props in proxies that raise on reading an unknown value;
    the rules decide themselves what an unknown means, so the raw values are read.
    """
    if isinstance(value, policy_proxy._DictProxy | policy_proxy._ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return rules.UNKNOWN
    return value


def provider_view(provider: PolicyProviderResource | None) -> rules.Resource | None:
    if provider is None:
        return None
    return rules.Resource(
        urn=provider.urn,
        type=provider.resource_type,
        name=provider.name,
        props=plain(provider.props),
    )


def resource_view(args: ResourceValidationArgs) -> list[rules.Resource]:
    """The resource under validation, preceded by its provider when the engine names one."""
    provider = provider_view(args.provider)
    resource = rules.Resource(
        urn=args.urn,
        type=args.resource_type,
        name=args.name,
        props=plain(args.props),
        provider=provider.urn if provider else "",
    )
    return [provider, resource] if provider else [resource]


def _depends_on(resource: PolicyResource) -> tuple[str, ...]:
    urns = {d.urn for d in resource.dependencies}
    urns |= {d.urn for deps in resource.property_dependencies.values() for d in deps}
    return tuple(sorted(urns))


def stack_view(args: StackValidationArgs) -> list[rules.Resource]:
    """Every resource of the stack, plus the providers they name (once each)."""
    views: dict[str, rules.Resource] = {}
    for resource in args.resources:
        provider = provider_view(resource.provider)
        if provider is not None:
            views.setdefault(provider.urn, provider)
    for resource in args.resources:
        views.setdefault(
            resource.urn,
            rules.Resource(
                urn=resource.urn,
                type=resource.resource_type,
                name=resource.name,
                props=plain(resource.props),
                provider=resource.provider.urn if resource.provider else "",
                depends_on=_depends_on(resource),
            ),
        )
    return list(views.values())


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """`rules.evaluate` keywords from one policy's config."""
    tags = config.get(REQUIRED_TAGS)
    return {
        "allow_notebook": config.get(ALLOW_NOTEBOOK) is True,
        "required_tags": tuple(tags) if isinstance(tags, list) and tags else rules.REQUIRED_TAGS,
    }


def _report(violations: Iterable[rules.Violation], report_violation: ReportViolation) -> None:
    for violation in violations:
        report_violation(violation.message, violation.urn or None)


def validate_resource(rule: str) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        view = resource_view(args)
        _report(rules.evaluate(view, rules=[rule], **settings(args.get_config())), report_violation)

    return validate


def validate_stack(rule: str) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        view = stack_view(args)
        _report(rules.evaluate(view, rules=[rule], **settings(args.get_config())), report_violation)

    return validate


def policies() -> list[Policy]:
    """One policy per rule, at the rule's enforcement level."""
    built: list[Policy] = []
    for rule in rules.RULES.values():
        common: dict[str, Any] = {
            "name": rule.name,
            "description": rule.description,
            "enforcement_level": LEVELS[rule.level],
            "config_schema": CONFIG_SCHEMAS.get(rule.name),
        }
        if rule.scope == "stack":
            built.append(StackValidationPolicy(validate=validate_stack(rule.name), **common))
        else:
            built.append(ResourceValidationPolicy(validate=validate_resource(rule.name), **common))
    return built


def main() -> None:
    # Serves the policies to the engine over gRPC until the engine stops it.
    PolicyPack(
        PACK_NAME,
        policies=policies(),
        enforcement_level=EnforcementLevel.MANDATORY,
        description="mlship guardrails: encrypted private buckets, no * on * IAM, tags, "
        "Lambda limits, no notebook in branch stacks",
    )


if __name__ == "__main__":
    main()
