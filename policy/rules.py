"""The project's policies as pure functions over a neutral view of a stack's resources.

One set of rules, judged in two places:

- offline, by `scripts.synth` and the tests, over what the program registers
  under Pulumi's mocks (`check_registrations`);
- in `pulumi preview` / `pulumi up`, by the policy pack (`policy/__main__.py`),
  which turns pulumi_policy's arguments into `Resource` values and reports what
  `evaluate` returns.

Canonical property form: Pulumi's WIRE form, the one both sides already hold.
pulumi_policy 1.21 hands a Python pack `props` as the engine sends them
(`json_format.MessageToDict` of the property struct: the provider schema's
camelCase keys, nested plain objects, numbers as floats, policy documents as
JSON strings), and synth's `Registration.inputs` are the same request
deserialized by the SDK. So no key is ever translated: the pack only unwraps
pulumi_policy's proxies and turns preview's unknown sentinels into `UNKNOWN`.
A rule that meets `UNKNOWN` where it needs a value skips that check: during
`pulumi up` the engine analyzes each resource again with resolved inputs.

No imports beyond the standard library: the pack runs this module in its own
virtualenv, next to nothing but pulumi-policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The tags every AWS resource must carry; `infra.naming.tags` writes them (a test
# keeps the two in step).
REQUIRED_TAGS: tuple[str, ...] = ("project", "stack", "kind", "branch")
EPHEMERAL = "ephemeral"
PROTECTED = "protected"

MANDATORY = "mandatory"
ADVISORY = "advisory"


class _Unknown:
    """A value the engine cannot know yet (preview of a resource that does not exist)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Rule:
    name: str
    level: str  # MANDATORY or ADVISORY
    scope: str  # "resource": judged one resource (and its provider) at a time; "stack": the whole
    description: str


BUCKET_ENCRYPTED = "bucket-encrypted"
BUCKET_PUBLIC_ACCESS_BLOCKED = "bucket-public-access-blocked"
IAM_NO_STAR_ON_STAR = "iam-no-star-on-star"
REQUIRED_TAGS_RULE = "required-tags"
LAMBDA_TIMEOUT = "lambda-timeout"
NO_EPHEMERAL_NOTEBOOK = "no-ephemeral-notebook"

RULES: Mapping[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            BUCKET_ENCRYPTED,
            MANDATORY,
            "stack",
            "Every S3 bucket has a server-side encryption configuration.",
        ),
        Rule(
            BUCKET_PUBLIC_ACCESS_BLOCKED,
            MANDATORY,
            "stack",
            "Every S3 bucket has a public access block with all four settings true.",
        ),
        Rule(
            IAM_NO_STAR_ON_STAR,
            MANDATORY,
            "resource",
            'No IAM or resource policy allows "*" (or a whole service, "svc:*") on resource "*".',
        ),
        Rule(
            REQUIRED_TAGS_RULE,
            MANDATORY,
            "resource",
            "Every AWS resource carries the project, stack, kind and branch tags, through its "
            "provider's default tags or its own.",
        ),
        Rule(
            LAMBDA_TIMEOUT,
            MANDATORY,
            "resource",
            "Every Lambda function sets its timeout (1-900 s) and memory size explicitly.",
        ),
        Rule(
            NO_EPHEMERAL_NOTEBOOK,
            MANDATORY,
            "resource",
            "No SageMaker notebook instance in an ephemeral (branch) stack unless explicitly "
            "allowed: it bills every hour until the branch is deleted.",
        ),
    )
}


@dataclass(frozen=True)
class Resource:
    """One resource as every rule sees it; `props` in wire form (see the module docstring)."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    provider: str = ""  # URN of the provider resource it is created with; "" when not known
    depends_on: tuple[str, ...] = ()  # URNs of the resources its inputs or options depend on


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    message: str

    @property
    def level(self) -> str:
        return RULES[self.rule].level

    @property
    def resource_name(self) -> str:
        """The logical name at the end of the URN (empty for a stack-wide violation)."""
        return self.urn.rsplit("::", 1)[-1] if self.urn else ""

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "level": self.level,
            "resource": self.resource_name,
            "urn": self.urn,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource_name or '<stack>'}: {self.message}"


class UnknownRule(ValueError):
    """A rule name that is not in RULES."""


# --- resource types ---------------------------------------------------------------------------

AWS_PROVIDER = "pulumi:providers:aws"
BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
ENCRYPTION_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
PUBLIC_ACCESS_BLOCK_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
LAMBDA_FUNCTION_TYPE = "aws:lambda/function:Function"
NOTEBOOK_TYPE = "aws:sagemaker/notebookInstance:NotebookInstance"
# In a key policy, Resource "*" means "this key", so "kms:*" on "*" is the key's own default
# policy rather than account-wide reach; only a bare "*" action is flagged there.
KEY_POLICY_TYPES = frozenset(
    {"aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy", "aws:kms/replicaKey:ReplicaKey"}
)
# Properties that hold an IAM policy document (JSON string or object) on any AWS resource:
# role, user and group policies, managed policies, bucket/queue/topic/key policies,
# CodeArtifact domain and repository permissions, ...
POLICY_DOCUMENT_PROPS = ("policy", "policyDocument", "accessPolicies")
ADMINISTRATOR_ACCESS = re.compile(r"arn:[^:]+:iam::aws:policy/AdministratorAccess")
LAMBDA_TIMEOUT_MAX = 900
LAMBDA_MEMORY_RANGE = (128, 10240)


def is_aws_resource(resource: Resource) -> bool:
    return resource.type.startswith("aws:")


# --- small readers ----------------------------------------------------------------------------


def _known(value: Any) -> bool:
    return value is not UNKNOWN


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping) or not _known(value):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def _get(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]...; None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _json_object(value: Any) -> Mapping[str, Any] | None:
    """A JSON object given as a string or already decoded; None when absent, unknown or not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def provider_urn(reference: str) -> str:
    """The URN in a provider reference (`<urn>::<id>`), as the engine records it."""
    # A URN holds three "::" (urn:pulumi:STACK::PROJECT::TYPE::NAME); a reference adds the id.
    return reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference


def default_tags(provider: Resource | None) -> Mapping[str, Any]:
    """`defaultTags.tags` of an AWS provider (a JSON string on the wire, or an object)."""
    if provider is None:
        return {}
    settings = _json_object(provider.props.get("defaultTags"))
    tags = _json_object(settings.get("tags")) if settings else None
    return tags or {}


def stack_kind_of(resources: Iterable[Resource]) -> str:
    """The stack's kind from its AWS providers' `kind` default tag; "" when absent or ambiguous."""
    kinds = {
        default_tags(r).get("kind")
        for r in resources
        if r.type == AWS_PROVIDER and isinstance(default_tags(r).get("kind"), str)
    }
    return str(kinds.pop()) if len(kinds) == 1 else ""


# --- the rules --------------------------------------------------------------------------------


def _covers(setting: Resource, bucket: Resource) -> bool:
    """Whether a bucket setting resource (encryption, public access block) is for `bucket`.

    By value when the setting's `bucket` is known (a bucket's id is its name); by
    dependency when it is not, as in the preview of a bucket that does not exist yet.
    """
    target = setting.props.get("bucket")
    if _known(target):
        names = {bucket.props.get(key) for key in ("bucket", "id")}
        return target in {n for n in names if isinstance(n, str) and n}
    return bucket.urn in setting.depends_on


def check_bucket_encrypted(resources: Sequence[Resource]) -> Iterator[Violation]:
    configs = [r for r in resources if r.type in ENCRYPTION_TYPES]
    for bucket in (r for r in resources if r.type in BUCKET_TYPES):
        if _json_object(bucket.props.get("serverSideEncryptionConfiguration")):
            continue  # the deprecated inline form still encrypts
        mine = [c for c in configs if _covers(c, bucket)]
        if not mine:
            yield Violation(
                BUCKET_ENCRYPTED,
                bucket.urn,
                f"bucket {bucket.name!r} has no BucketServerSideEncryptionConfiguration; "
                "use infra.components.storage.SecureBucket",
            )
            continue
        for config in mine:
            rules = config.props.get("rules")
            if not _known(rules):
                continue
            algorithms = [
                _get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
                for rule in _as_list(rules)
            ]
            if not any(algorithms):
                yield Violation(
                    BUCKET_ENCRYPTED,
                    bucket.urn,
                    f"bucket {bucket.name!r}: encryption configuration {config.name!r} sets no "
                    "default sseAlgorithm",
                )


def check_bucket_public_access_blocked(resources: Sequence[Resource]) -> Iterator[Violation]:
    blocks = [r for r in resources if r.type == PUBLIC_ACCESS_BLOCK_TYPE]
    for bucket in (r for r in resources if r.type in BUCKET_TYPES):
        mine = [b for b in blocks if _covers(b, bucket)]
        if not mine:
            yield Violation(
                BUCKET_PUBLIC_ACCESS_BLOCKED,
                bucket.urn,
                f"bucket {bucket.name!r} has no BucketPublicAccessBlock; "
                "use infra.components.storage.SecureBucket",
            )
            continue
        for block in mine:
            off = [
                flag
                for flag in PUBLIC_ACCESS_FLAGS
                if _known(block.props.get(flag)) and block.props.get(flag) is not True
            ]
            if off:
                yield Violation(
                    BUCKET_PUBLIC_ACCESS_BLOCKED,
                    bucket.urn,
                    f"bucket {bucket.name!r}: public access block {block.name!r} does not set "
                    + ", ".join(f"{flag}=true" for flag in off),
                )


def _policy_documents(resource: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, document) for every known policy document the resource carries."""
    for key in POLICY_DOCUMENT_PROPS:
        document = _json_object(resource.props.get(key))
        if document is not None:
            yield key, document
    inline = resource.props.get("inlinePolicies")
    if _known(inline):
        for index, entry in enumerate(_as_list(inline)):
            if isinstance(entry, Mapping):
                document = _json_object(entry.get("policy"))
                if document is not None:
                    label = entry.get("name") if isinstance(entry.get("name"), str) else index
                    yield f"inlinePolicies[{label}]", document


def _service_wide(action: str) -> bool:
    return action == "*" or bool(re.fullmatch(r"[^:]+:\*", action))


def star_on_star_statements(
    document: Mapping[str, Any], *, key_policy: bool = False
) -> Iterator[str]:
    """A description of each Allow statement that grants "*" (or "svc:*") on resource "*"."""
    for index, statement in enumerate(_as_list(document.get("Statement"))):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        label = statement.get("Sid") if isinstance(statement.get("Sid"), str) else index
        if "NotResource" in statement:
            everywhere = True
        else:
            everywhere = "*" in _as_list(statement.get("Resource"))
        if not everywhere:
            continue
        if "NotAction" in statement:
            yield f"statement {label}: Allow NotAction on every resource"
            continue
        actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]
        broad = [a for a in actions if (a == "*" if key_policy else _service_wide(a))]
        if broad:
            yield f"statement {label}: Allow {', '.join(broad)} on Resource *"


def check_iam_no_star_on_star(resources: Sequence[Resource]) -> Iterator[Violation]:
    for resource in resources:
        if not is_aws_resource(resource):
            continue
        key_policy = resource.type in KEY_POLICY_TYPES
        for where, document in _policy_documents(resource):
            for finding in star_on_star_statements(document, key_policy=key_policy):
                yield Violation(
                    IAM_NO_STAR_ON_STAR,
                    resource.urn,
                    f"{resource.name!r} {where} {finding}; name the actions and scope the "
                    "resources (only actions without resource-level permissions may use *)",
                )
        arns = [resource.props.get("policyArn"), *_as_list(resource.props.get("managedPolicyArns"))]
        for arn in arns:
            if isinstance(arn, str) and ADMINISTRATOR_ACCESS.fullmatch(arn):
                yield Violation(
                    IAM_NO_STAR_ON_STAR,
                    resource.urn,
                    f"{resource.name!r} attaches {arn}, which allows * on *",
                )


def _tag_names(tags: Any) -> set[str]:
    tags = _json_object(tags)
    if not tags:
        return set()
    return {k for k, v in tags.items() if (isinstance(v, str) and v) or not _known(v)}


def check_required_tags(
    resources: Sequence[Resource], required: Collection[str] = REQUIRED_TAGS
) -> Iterator[Violation]:
    providers = {r.urn: r for r in resources if r.type.startswith("pulumi:providers:")}
    for resource in resources:
        if not is_aws_resource(resource):
            continue
        provider = providers.get(resource.provider)
        sources = [
            provider.props.get("defaultTags") if provider else None,
            resource.props.get("tags"),
            resource.props.get("tagsAll"),  # outputs, and inputs the provider has checked
        ]
        present = _tag_names(default_tags(provider)) | {
            name for source in sources[1:] for name in _tag_names(source)
        }
        missing = [tag for tag in required if tag not in present]
        if not missing or not all(_known(source) for source in sources):
            continue  # complete, or an unknown source may still bring them: judged at `up`
        if provider is None:
            source = (
                f"its provider {resource.provider!r} is not in view"
                if resource.provider
                else "it names no provider (the default one carries no default tags)"
            )
        else:
            source = f"provider {provider.name!r} has no default tags for them"
        yield Violation(
            REQUIRED_TAGS_RULE,
            resource.urn,
            f"{resource.name!r} lacks tags {', '.join(missing)}: {source} and it does not set "
            "them itself; create it with the stack's aws.Provider (parent it to a component)",
        )


def _whole_number_within(value: Any, low: int, high: int) -> bool:
    """An integer (floats on the wire) from low to high; never a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and low <= value <= high


def check_lambda_timeout(resources: Sequence[Resource]) -> Iterator[Violation]:
    low_memory, high_memory = LAMBDA_MEMORY_RANGE
    settings = (
        ("timeout", 1, LAMBDA_TIMEOUT_MAX, "s", "Lambda's default 3 s"),
        ("memorySize", low_memory, high_memory, "MB", "Lambda's default 128 MB"),
    )
    for function in (r for r in resources if r.type == LAMBDA_FUNCTION_TYPE):
        for key, low, high, unit, default in settings:
            value = function.props.get(key)
            if not _known(value) or _whole_number_within(value, low, high):
                continue
            shown = f"unset ({default})" if value is None else repr(value)
            yield Violation(
                LAMBDA_TIMEOUT,
                function.urn,
                f"function {function.name!r} {key} is {shown}: set it explicitly, "
                f"{low}-{high} {unit}",
            )


def check_no_ephemeral_notebook(
    resources: Sequence[Resource], stack_kind: str, allow_notebook: bool
) -> Iterator[Violation]:
    # An unknown kind counts as ephemeral: only a stack known to be protected may keep one.
    if allow_notebook or stack_kind == PROTECTED:
        return
    kind = f"an {stack_kind} stack" if stack_kind else "a stack whose kind tag is missing"
    for notebook in (r for r in resources if r.type == NOTEBOOK_TYPE):
        yield Violation(
            NO_EPHEMERAL_NOTEBOOK,
            notebook.urn,
            f"notebook instance {notebook.name!r} in {kind} bills every hour until the branch "
            "is deleted: set notebookEnabled=false, or allow it explicitly (offline: "
            "synth --allow-notebook; under pulumi: the policy pack's config "
            "allowEphemeralNotebook=true)",
        )


# --- entry points -----------------------------------------------------------------------------


def evaluate(
    resources: Iterable[Resource],
    *,
    stack_kind: str | None = None,
    allow_notebook: bool = False,
    required_tags: Collection[str] = REQUIRED_TAGS,
    rules: Collection[str] | None = None,
) -> list[Violation]:
    """Every violation of the selected rules (default: all), rule by rule in RULES order.

    `stack_kind` defaults to what the AWS providers' `kind` default tag says, which is
    what the policy pack sees too.
    """
    view = list(resources)
    kind = stack_kind_of(view) if stack_kind is None else stack_kind
    checks: dict[str, Callable[[], Iterable[Violation]]] = {
        BUCKET_ENCRYPTED: lambda: check_bucket_encrypted(view),
        BUCKET_PUBLIC_ACCESS_BLOCKED: lambda: check_bucket_public_access_blocked(view),
        IAM_NO_STAR_ON_STAR: lambda: check_iam_no_star_on_star(view),
        REQUIRED_TAGS_RULE: lambda: check_required_tags(view, required_tags),
        LAMBDA_TIMEOUT: lambda: check_lambda_timeout(view),
        NO_EPHEMERAL_NOTEBOOK: lambda: check_no_ephemeral_notebook(view, kind, allow_notebook),
    }
    selected = list(RULES) if rules is None else list(rules)
    unknown = [name for name in selected if name not in RULES]
    if unknown:
        raise UnknownRule(f"no such rule: {', '.join(unknown)} (rules: {', '.join(RULES)})")
    return [violation for name in RULES if name in selected for violation in checks[name]()]


def from_registrations(registrations: Iterable[Any]) -> list[Resource]:
    """Synth's `Registration` records (custom resources only) as the rules' view.

    Duck-typed on `urn`, `type`, `name`, `custom`, `provider`, `depends_on` and `inputs`
    so this module never imports `scripts`.
    """
    return [
        Resource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            props=dict(r.inputs),
            provider=provider_urn(r.provider or ""),
            depends_on=tuple(r.depends_on),
        )
        for r in registrations
        if r.custom
    ]


def check_registrations(
    registrations: Iterable[Any], *, allow_notebook: bool = False
) -> list[Violation]:
    """What the policy pack would report for a stack whose registrations synth recorded."""
    return evaluate(from_registrations(registrations), allow_notebook=allow_notebook)
