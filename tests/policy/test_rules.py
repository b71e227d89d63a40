"""The policy rules: each with a compliant and a violating case, over hand-built views, tiny
programs under Pulumi's mocks, the real program, and the pack's own pulumi_policy plumbing."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.deserialize import serialize_properties
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from infra import naming
from infra.components.storage import SecureBucket, SecureBucketArgs
from policy import rules
from scripts.synth import Registration, Synthesis, run_under_mocks, synthesize

pack = importlib.import_module("policy.__main__")

STACK = "feature-x"
BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"
ALL_FLAGS = dict.fromkeys(rules.PUBLIC_ACCESS_FLAGS, True)


def tags(kind: str | None = "ephemeral") -> dict[str, str | None]:
    return {"project": "mlship", "stack": STACK, "kind": kind, "branch": "feature/x"}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::mlship::{type_}::{name}"


def provider(kind: str | None = "ephemeral", **tag_overrides: str | None) -> rules.Resource:
    chosen = {k: v for k, v in {**tags(kind), **tag_overrides}.items() if v is not None}
    return rules.Resource(
        urn=urn(rules.AWS_PROVIDER, "aws"),
        type=rules.AWS_PROVIDER,
        name="aws",
        props={"region": "us-east-1", "defaultTags": json.dumps({"tags": chosen})},
    )


PROVIDER = provider()


def resource(
    type_: str, name: str, *, depends_on: Sequence[str] = (), via: str = PROVIDER.urn, **props: Any
) -> rules.Resource:
    return rules.Resource(
        urn=urn(type_, name),
        type=type_,
        name=name,
        props=props,
        provider=via,
        depends_on=tuple(depends_on),
    )


def check(resources: Iterable[rules.Resource], rule: str, **options: Any) -> list[rules.Violation]:
    return rules.evaluate([PROVIDER, *resources], rules=[rule], **options)


def document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# --- the rule table ---------------------------------------------------------------------------


def test_every_rule_is_named_described_and_mandatory() -> None:
    assert list(rules.RULES) == [
        "bucket-encrypted",
        "bucket-public-access-blocked",
        "iam-no-star-on-star",
        "required-tags",
        "lambda-timeout",
        "no-ephemeral-notebook",
    ]
    for name, rule in rules.RULES.items():
        assert rule.name == name
        assert rule.description.endswith(".")
        assert rule.level == rules.MANDATORY
        assert rule.scope in {"resource", "stack"}


def test_required_tags_are_the_ones_naming_writes() -> None:
    stack = naming.branch_stack("feature/x", ["main"])
    assert set(naming.tags("mlship", stack, "0123abc")) - {"git-sha"} == set(rules.REQUIRED_TAGS)


def test_an_unknown_rule_name_is_refused() -> None:
    with pytest.raises(rules.UnknownRule, match="no-such-rule"):
        rules.evaluate([], rules=["no-such-rule"])


def test_a_violation_names_its_rule_level_and_resource() -> None:
    violation = rules.Violation(rules.LAMBDA_TIMEOUT, urn(FUNCTION, "model"), "too long")
    assert violation.level == "mandatory"
    assert violation.resource_name == "model"
    assert str(violation) == "[lambda-timeout] model: too long"
    # What `synth --format json` and the pack report: every field, by name.
    assert violation.as_dict() == {
        "rule": "lambda-timeout",
        "level": "mandatory",
        "resource": "model",
        "urn": urn(FUNCTION, "model"),
        "message": "too long",
    }


def test_a_stack_wide_violation_names_no_resource() -> None:
    violation = rules.Violation(rules.BUCKET_ENCRYPTED, "", "no buckets")
    assert violation.resource_name == ""
    assert str(violation) == "[bucket-encrypted] <stack>: no buckets"
    assert violation.as_dict()["resource"] == ""


# --- bucket-encrypted -------------------------------------------------------------------------


def bucket(name: str = "artifacts", physical: str = "mlship-x-artifacts") -> rules.Resource:
    return resource(BUCKET, name, bucket=physical)


def encryption(target: Any, *, depends_on: Sequence[str] = (), algorithm: Any = "aws:kms"):
    return resource(
        ENCRYPTION,
        "artifacts-encryption",
        depends_on=depends_on,
        bucket=target,
        rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}}],
    )


def test_an_encrypted_bucket_passes() -> None:
    assert check([bucket(), encryption("mlship-x-artifacts")], rules.BUCKET_ENCRYPTED) == []


def test_a_bucket_without_encryption_is_reported_by_urn() -> None:
    other = encryption("someone-elses-bucket")
    found = check([bucket(), other], rules.BUCKET_ENCRYPTED)
    assert [(v.rule, v.urn) for v in found] == [(rules.BUCKET_ENCRYPTED, bucket().urn)]
    assert "SecureBucket" in found[0].message


def test_an_encryption_configuration_without_an_algorithm_does_not_count() -> None:
    config = encryption("mlship-x-artifacts", algorithm=None)
    assert len(check([bucket(), config], rules.BUCKET_ENCRYPTED)) == 1


def test_in_preview_an_unknown_bucket_id_is_matched_by_dependency() -> None:
    # A new bucket's id is unknown during preview; the setting depends on it instead.
    linked = encryption(rules.UNKNOWN, depends_on=[bucket().urn])
    assert check([bucket(), linked], rules.BUCKET_ENCRYPTED) == []
    unlinked = encryption(rules.UNKNOWN, depends_on=[urn(BUCKET, "other")])
    assert len(check([bucket(), unlinked], rules.BUCKET_ENCRYPTED)) == 1


# --- bucket-public-access-blocked -------------------------------------------------------------


def block(**flags: Any) -> rules.Resource:
    return resource(PUBLIC_ACCESS, "artifacts-public-access", bucket="mlship-x-artifacts", **flags)


def test_a_fully_blocked_bucket_passes() -> None:
    assert check([bucket(), block(**ALL_FLAGS)], rules.BUCKET_PUBLIC_ACCESS_BLOCKED) == []


def test_a_bucket_without_a_public_access_block_is_reported() -> None:
    found = check([bucket()], rules.BUCKET_PUBLIC_ACCESS_BLOCKED)
    assert [(v.rule, v.urn) for v in found] == [(rules.BUCKET_PUBLIC_ACCESS_BLOCKED, bucket().urn)]


@pytest.mark.parametrize("flag", rules.PUBLIC_ACCESS_FLAGS)
def test_each_of_the_four_flags_is_required(flag: str) -> None:
    found = check(
        [bucket(), block(**{**ALL_FLAGS, flag: False})], rules.BUCKET_PUBLIC_ACCESS_BLOCKED
    )
    assert len(found) == 1
    assert f"{flag}=true" in found[0].message


# --- iam-no-star-on-star ----------------------------------------------------------------------

COMPLIANT_DOCUMENTS = {
    "scoped-actions": document(allow(["s3:GetObject"], ["arn:aws:s3:::b/*"])),
    "service-wide-on-scoped-resources": document(allow("iam:*", "arn:aws:iam::1:role/mlship-*")),
    "unscopable-read-on-star": document(allow(["cloudwatch:DescribeAlarms"], ["*"])),
    "deny-everything": document({"Effect": "Deny", "Action": "*", "Resource": "*"}),
    "trust-policy": document(
        {"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRole"}
    ),
}
VIOLATING_DOCUMENTS = {
    "star-on-star": document(allow("*", "*")),
    "star-in-lists": document(allow(["s3:GetObject", "*"], ["arn:aws:s3:::b", "*"])),
    "service-wide-on-star": document(allow("s3:*", "*")),
    "not-action-on-star": document({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    "star-on-not-resource": document({"Effect": "Allow", "Action": "*", "NotResource": "arn:x"}),
    "single-statement-object": json.dumps({"Statement": allow("*", "*")}),
}


@pytest.mark.parametrize("policy", COMPLIANT_DOCUMENTS.values(), ids=list(COMPLIANT_DOCUMENTS))
def test_compliant_policies_pass(policy: str) -> None:
    assert (
        check([resource(ROLE_POLICY, "p", role="r", policy=policy)], rules.IAM_NO_STAR_ON_STAR)
        == []
    )


@pytest.mark.parametrize("policy", VIOLATING_DOCUMENTS.values(), ids=list(VIOLATING_DOCUMENTS))
def test_star_on_star_policies_are_reported(policy: str) -> None:
    found = check([resource(ROLE_POLICY, "p", role="r", policy=policy)], rules.IAM_NO_STAR_ON_STAR)
    assert [(v.rule, v.urn) for v in found] == [(rules.IAM_NO_STAR_ON_STAR, urn(ROLE_POLICY, "p"))]


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        ("aws:iam/policy:Policy", {"policy": document(allow("*", "*"))}),
        ("aws:iam/role:Role", {"inlinePolicies": [{"name": "x", "policy": document(allow("*"))}]}),
        (
            "aws:iam/role:Role",
            {"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        (
            "aws:codeartifact/repositoryPermissionsPolicy:RepositoryPermissionsPolicy",
            {"policyDocument": document(allow("codeartifact:*", "*", Principal={"AWS": "*"}))},
        ),
        ("aws:s3/bucketPolicy:BucketPolicy", {"policy": {"Statement": [allow("*", "*")]}}),
        ("aws:kms/key:Key", {"policy": document(allow("*", "*", Principal={"AWS": "*"}))}),
    ],
    ids=["managed", "inline", "admin-role", "admin-attachment", "codeartifact", "object", "kms"],
)
def test_every_kind_of_policy_document_is_checked(type_: str, props: dict[str, Any]) -> None:
    found = check([resource(type_, "x", **props)], rules.IAM_NO_STAR_ON_STAR)
    assert [v.urn for v in found] == [urn(type_, "x")]


def test_a_key_policy_may_give_its_own_key_kms_star() -> None:
    # In a key policy Resource "*" is the key itself: the default key policy is this.
    default = document(allow("kms:*", "*", Principal={"AWS": "arn:aws:iam::1:root"}))
    assert (
        check([resource("aws:kms/key:Key", "k", policy=default)], rules.IAM_NO_STAR_ON_STAR) == []
    )


def test_an_unknown_policy_is_left_for_up_to_judge() -> None:
    unknown = resource(ROLE_POLICY, "p", role="r", policy=rules.UNKNOWN)
    assert check([unknown], rules.IAM_NO_STAR_ON_STAR) == []


SPECIFIC_ACTIONS = st.sampled_from(
    ["s3:GetObject", "logs:PutLogEvents", "sqs:SendMessage", "cloudwatch:DescribeAlarms"]
)
RESOURCES = st.lists(
    st.sampled_from(["*", "arn:aws:s3:::b", "arn:aws:sqs:us-east-1:1:q"]), min_size=1
)
STATEMENTS = st.lists(
    st.builds(allow, st.lists(SPECIFIC_ACTIONS, min_size=1), RESOURCES), max_size=5
)


@given(statements=STATEMENTS, position=st.integers(min_value=0, max_value=5))
def test_one_star_on_star_statement_anywhere_is_one_violation(
    statements: list[dict[str, Any]], position: int
) -> None:
    clean = resource(ROLE_POLICY, "p", role="r", policy=document(*statements))
    assert check([clean], rules.IAM_NO_STAR_ON_STAR) == []
    statements.insert(position, allow("*", "*"))
    dirty = resource(ROLE_POLICY, "p", role="r", policy=document(*statements))
    assert len(check([dirty], rules.IAM_NO_STAR_ON_STAR)) == 1


# --- required-tags ----------------------------------------------------------------------------


def test_a_resource_of_the_tagged_provider_passes() -> None:
    assert check([resource("aws:sqs/queue:Queue", "q")], rules.REQUIRED_TAGS_RULE) == []


def test_a_provider_missing_a_tag_fails_its_resources() -> None:
    untagged = provider(branch=None)
    queue = resource("aws:sqs/queue:Queue", "q", via=untagged.urn)
    found = rules.evaluate([untagged, queue], rules=[rules.REQUIRED_TAGS_RULE])
    assert [(v.rule, v.urn) for v in found] == [(rules.REQUIRED_TAGS_RULE, queue.urn)]
    assert "lacks tags branch" in found[0].message


def test_own_tags_stand_in_for_the_provider_s() -> None:
    tagged = resource("aws:sqs/queue:Queue", "q", via="", tags=tags())
    assert check([tagged], rules.REQUIRED_TAGS_RULE) == []
    partly = resource("aws:sqs/queue:Queue", "q", via="", tags={"project": "mlship"})
    found = check([partly], rules.REQUIRED_TAGS_RULE)
    assert len(found) == 1
    assert "stack, kind, branch" in found[0].message


def test_components_and_providers_need_no_tags() -> None:
    component = resource("mlship:components:SecureBucket", "b", via="")
    assert check([component], rules.REQUIRED_TAGS_RULE) == []


def test_required_tags_can_be_configured() -> None:
    found = check(
        [resource("aws:sqs/queue:Queue", "q")],
        rules.REQUIRED_TAGS_RULE,
        required_tags=("project", "owner"),
    )
    assert "lacks tags owner" in found[0].message


# --- lambda-timeout ---------------------------------------------------------------------------


@pytest.mark.parametrize(("timeout", "memory"), [(10, 256), (10.0, 256.0), (1, 128), (900, 10240)])
def test_a_function_with_explicit_limits_passes(timeout: float, memory: float) -> None:
    function = resource(FUNCTION, "f", timeout=timeout, memorySize=memory)
    assert check([function], rules.LAMBDA_TIMEOUT) == []


@pytest.mark.parametrize(
    ("props", "wrong"),
    [
        ({"memorySize": 256}, "timeout is unset"),
        ({"timeout": 0, "memorySize": 256}, "timeout is 0"),
        ({"timeout": 901, "memorySize": 256}, "timeout is 901"),
        ({"timeout": 2.5, "memorySize": 256}, "timeout is 2.5"),
        ({"timeout": True, "memorySize": 256}, "timeout is True"),
        ({"timeout": 10}, "memorySize is unset"),
        ({"timeout": 10, "memorySize": 64}, "memorySize is 64"),
    ],
)
def test_a_function_without_explicit_limits_is_reported(props: dict[str, Any], wrong: str) -> None:
    found = check([resource(FUNCTION, "f", **props)], rules.LAMBDA_TIMEOUT)
    assert [v.urn for v in found] == [urn(FUNCTION, "f")]
    assert wrong in found[0].message


# --- no-ephemeral-notebook --------------------------------------------------------------------


def notebook() -> rules.Resource:
    return resource(NOTEBOOK, "notebook", instanceType="ml.t3.medium")


def test_a_notebook_in_an_ephemeral_stack_is_reported() -> None:
    found = check([notebook()], rules.NO_EPHEMERAL_NOTEBOOK)
    assert [(v.rule, v.urn) for v in found] == [(rules.NO_EPHEMERAL_NOTEBOOK, notebook().urn)]
    assert "an ephemeral stack" in found[0].message


def test_a_notebook_may_be_allowed_explicitly() -> None:
    assert check([notebook()], rules.NO_EPHEMERAL_NOTEBOOK, allow_notebook=True) == []


def test_a_protected_stack_may_keep_a_notebook() -> None:
    protected = provider("protected")
    found = rules.evaluate([protected, notebook()], rules=[rules.NO_EPHEMERAL_NOTEBOOK])
    assert found == []
    assert rules.stack_kind_of([protected]) == "protected"


def test_without_a_kind_tag_a_notebook_counts_as_ephemeral() -> None:
    kindless = provider(kind=None)
    found = rules.evaluate([kindless, notebook()], rules=[rules.NO_EPHEMERAL_NOTEBOOK])
    assert len(found) == 1
    assert "kind tag is missing" in found[0].message


def test_an_explicit_stack_kind_wins_over_the_tags() -> None:
    found = check([notebook()], rules.NO_EPHEMERAL_NOTEBOOK, stack_kind="protected")
    assert found == []


# --- tiny programs under Pulumi's mocks: the wire form, as synth records it -------------------


def under_mocks(build: Callable[[pulumi.ResourceOptions], object], kind: str = "ephemeral"):
    def program() -> None:
        tagged = aws.Provider("aws", region="us-east-1", default_tags={"tags": tags(kind)})
        build(pulumi.ResourceOptions(provider=tagged))

    synthesis = run_under_mocks(program, project="mlship", stack=STACK)
    return synthesis, rules.check_registrations(synthesis.resources)


def found(violations: Iterable[rules.Violation]) -> list[tuple[str, str]]:
    return [(v.rule, v.resource_name) for v in violations]


def test_wire_secure_bucket_passes() -> None:
    _, violations = under_mocks(
        lambda opts: SecureBucket(
            "store",
            SecureBucketArgs(bucket_name="mlship-x-store", protected=False, versioned=True),
            opts,
        )
    )
    assert violations == []


def test_wire_bare_bucket_fails_both_bucket_rules() -> None:
    _, violations = under_mocks(lambda opts: aws.s3.Bucket("raw", bucket="mlship-x-raw", opts=opts))
    assert found(violations) == [
        (rules.BUCKET_ENCRYPTED, "raw"),
        (rules.BUCKET_PUBLIC_ACCESS_BLOCKED, "raw"),
    ]


def test_wire_role_policies() -> None:
    def build(opts: pulumi.ResourceOptions) -> None:
        role = aws.iam.Role("role", assume_role_policy=document(), opts=opts)
        aws.iam.RolePolicy(
            "scoped",
            role=role.id,
            policy=document(allow("s3:GetObject", "arn:aws:s3:::b/*")),
            opts=opts,
        )
        aws.iam.RolePolicy("admin", role=role.id, policy=document(allow("*", "*")), opts=opts)

    _, violations = under_mocks(build)
    assert found(violations) == [(rules.IAM_NO_STAR_ON_STAR, "admin")]


def test_wire_lambda_limits() -> None:
    def build(opts: pulumi.ResourceOptions) -> None:
        common = dict(
            role="arn:aws:iam::123456789012:role/r",
            runtime="python3.12",
            handler="handler.handler",
            code=pulumi.AssetArchive({}),
            opts=opts,
        )
        aws.lambda_.Function("explicit", timeout=10, memory_size=256, **common)
        aws.lambda_.Function("defaults", **common)

    _, violations = under_mocks(build)
    assert found(violations) == [(rules.LAMBDA_TIMEOUT, "defaults")] * 2


def test_wire_resource_outside_the_tagged_provider_fails_required_tags() -> None:
    def build(opts: pulumi.ResourceOptions) -> None:
        aws.sqs.Queue("tagged", opts=opts)
        aws.sqs.Queue("default-provider")

    _, violations = under_mocks(build)
    assert found(violations) == [(rules.REQUIRED_TAGS_RULE, "default-provider")]


@pytest.mark.parametrize(("kind", "expected"), [("ephemeral", 1), ("protected", 0)])
def test_wire_notebook_by_stack_kind(kind: str, expected: int) -> None:
    def build(opts: pulumi.ResourceOptions) -> None:
        aws.sagemaker.NotebookInstance(
            "nb", role_arn="arn:aws:iam::1:role/r", instance_type="ml.t3.medium", opts=opts
        )

    _, violations = under_mocks(build, kind)
    assert found(violations) == [(rules.NO_EPHEMERAL_NOTEBOOK, "nb")] * expected


def test_provider_references_resolve_to_the_provider_s_urn() -> None:
    synthesis, _ = under_mocks(lambda opts: aws.sqs.Queue("q", opts=opts))
    queue = synthesis.one("aws:sqs/queue:Queue")
    the_provider = synthesis.one(rules.AWS_PROVIDER)
    assert rules.provider_urn(queue.provider) == the_provider.urn
    assert rules.provider_urn(the_provider.urn) == the_provider.urn


# --- the real program -------------------------------------------------------------------------


def branch(name: str, **overrides: object) -> Synthesis:
    return synthesize(naming.slugify(name), overrides={"branch": name, **overrides})


@pytest.fixture(scope="module")
def feature(programs) -> Synthesis:
    return programs.branch("feature/x")


@pytest.fixture(scope="module")
def feature_with_notebook(programs) -> Synthesis:
    return programs.branch("feature/x", notebookEnabled=True)


def test_a_branch_stack_has_no_violations(feature: Synthesis) -> None:
    assert rules.check_registrations(feature.resources) == []


def test_every_aws_resource_of_a_branch_uses_the_tagged_provider(feature: Synthesis) -> None:
    view = rules.from_registrations(feature.resources)
    providers = [r for r in view if r.type == rules.AWS_PROVIDER]
    assert len(providers) == 1
    assert rules.default_tags(providers[0])["kind"] == "ephemeral"
    assert {r.provider for r in view if rules.is_aws_resource(r)} == {providers[0].urn}


def test_a_notebook_on_a_feature_branch_is_the_one_violation(
    feature_with_notebook: Synthesis,
) -> None:
    notebook_urn = feature_with_notebook.one(NOTEBOOK).urn
    violations = rules.check_registrations(feature_with_notebook.resources)
    assert [(v.rule, v.urn) for v in violations] == [(rules.NO_EPHEMERAL_NOTEBOOK, notebook_urn)]
    assert rules.check_registrations(feature_with_notebook.resources, allow_notebook=True) == []


def test_a_notebook_on_main_is_allowed() -> None:
    main = branch("main", notebookEnabled=True)
    assert main.kind == "protected"
    assert main.of_type(NOTEBOOK)
    assert rules.check_registrations(main.resources) == []


def test_the_shared_stack_has_no_violations(programs) -> None:
    shared = programs.stack(naming.SHARED_STACK, githubRepository="acme/models")
    assert rules.check_registrations(shared.resources) == []


# --- the pack: the same rules through pulumi_policy's own analyzer ----------------------------


def test_the_pack_has_one_policy_per_rule_at_its_level() -> None:
    policies = pack.policies()
    assert [p.name for p in policies] == list(rules.RULES)
    for policy in policies:
        rule = rules.RULES[policy.name]
        expected = StackValidationPolicy if rule.scope == "stack" else ResourceValidationPolicy
        assert isinstance(policy, expected)
        assert policy.enforcement_level is EnforcementLevel.MANDATORY


def analyzer() -> _PolicyAnalyzerServicer:
    """The servicer PolicyPack() would serve to the engine (PolicyPack itself blocks serving)."""
    return _PolicyAnalyzerServicer(
        pack.PACK_NAME, "0.1.0", pack.policies(), EnforcementLevel.MANDATORY
    )


def test_the_analyzer_describes_the_policies_and_their_config() -> None:
    info = analyzer().GetAnalyzerInfo(None, None)
    assert info.name == "mlship"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels == dict.fromkeys(rules.RULES, proto.MANDATORY)
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    assert schemas["no-ephemeral-notebook"]["properties"]["allowEphemeralNotebook"]["type"] == (
        "boolean"
    )


def struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(serialize_properties(props))
    return message


def providers_by_urn(resources: Iterable[Registration]) -> dict[str, Registration]:
    return {r.urn: r for r in resources if r.type.startswith("pulumi:providers:")}


def provider_message(
    registration: Registration, providers: Mapping[str, Registration]
) -> proto.AnalyzerProviderResource | None:
    found_provider = providers.get(rules.provider_urn(registration.provider))
    if found_provider is None:
        return None
    return proto.AnalyzerProviderResource(
        type=found_provider.type,
        urn=found_provider.urn,
        name=found_provider.name,
        properties=struct(found_provider.inputs),
    )


def analyze_each(
    service: _PolicyAnalyzerServicer, resources: Sequence[Registration]
) -> list[tuple[str, str, int]]:
    """Analyze every custom resource as the engine does during preview and up."""
    providers = providers_by_urn(resources)
    diagnostics = []
    for r in resources:
        if not r.custom:
            continue
        request = proto.AnalyzeRequest(
            type=r.type,
            urn=r.urn,
            name=r.name,
            properties=struct(r.inputs),
            provider=provider_message(r, providers),
        )
        response = service.Analyze(request, None)
        diagnostics += [(d.policyName, d.urn, d.enforcementLevel) for d in response.diagnostics]
    return diagnostics


def analyze_stack(
    resources: Sequence[Registration], *, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> list[tuple[str, str]]:
    """Analyze the stack as a whole; `overrides` replaces props by resource name."""
    providers = providers_by_urn(resources)
    messages = []
    for r in resources:
        props = {**r.inputs, **(overrides or {}).get(r.name, {})}
        messages.append(
            proto.AnalyzerResource(
                type=r.type,
                urn=r.urn,
                name=r.name,
                properties=struct(props),
                provider=provider_message(r, providers),
                parent=r.parent,
                dependencies=r.depends_on,
            )
        )
    response = analyzer().AnalyzeStack(proto.AnalyzeStackRequest(resources=messages), None)
    return [(d.policyName, d.urn) for d in response.diagnostics]


def test_the_pack_passes_a_branch_resource_by_resource(feature: Synthesis) -> None:
    assert analyze_each(analyzer(), feature.resources) == []


def test_the_pack_stops_the_notebook_of_a_feature_branch(feature_with_notebook: Synthesis) -> None:
    notebook_urn = feature_with_notebook.one(NOTEBOOK).urn
    assert analyze_each(analyzer(), feature_with_notebook.resources) == [
        ("no-ephemeral-notebook", notebook_urn, proto.MANDATORY)
    ]


def test_policy_config_allows_the_notebook(feature_with_notebook: Synthesis) -> None:
    service = analyzer()
    allowed = proto.PolicyConfig(
        enforcementLevel=proto.MANDATORY, properties=struct({"allowEphemeralNotebook": True})
    )
    service.Configure(
        proto.ConfigureAnalyzerRequest(policyConfig={"no-ephemeral-notebook": allowed}), None
    )
    assert analyze_each(service, feature_with_notebook.resources) == []


def test_the_pack_reports_star_on_star_from_engine_props(feature: Synthesis) -> None:
    policy = feature.one(ROLE_POLICY, "canary-model-policy")
    admin = Registration(
        **{**vars(policy), "inputs": {**policy.inputs, "policy": document(allow("*"))}}
    )
    diagnostics = analyze_each(analyzer(), [*feature.of_type(rules.AWS_PROVIDER), admin])
    assert diagnostics == [("iam-no-star-on-star", policy.urn, proto.MANDATORY)]


def test_the_pack_leaves_preview_unknowns_alone(feature: Synthesis) -> None:
    policy = feature.one(ROLE_POLICY, "canary-model-policy")
    unknown = Registration(
        **{**vars(policy), "inputs": {**policy.inputs, "policy": UNKNOWN_STRING_VALUE}}
    )
    assert analyze_each(analyzer(), [*feature.of_type(rules.AWS_PROVIDER), unknown]) == []


def test_the_pack_passes_a_branch_as_a_stack(feature: Synthesis) -> None:
    assert analyze_stack(feature.resources) == []


def test_the_pack_links_bucket_settings_by_dependency_in_preview(feature: Synthesis) -> None:
    unknown_bucket = {"bucket": UNKNOWN_STRING_VALUE}
    settings = {
        r.name: unknown_bucket for r in feature.resources if r.type in {ENCRYPTION, PUBLIC_ACCESS}
    }
    assert len(settings) == 4
    assert analyze_stack(feature.resources, overrides=settings) == []


def test_the_pack_reports_an_unencrypted_bucket_by_urn(feature: Synthesis) -> None:
    artifacts = feature.one(BUCKET, "model-testing-artifacts")
    without = [r for r in feature.resources if r.name != "model-testing-artifacts-encryption"]
    assert analyze_stack(without) == [("bucket-encrypted", artifacts.urn)]


def test_preview_s_unknown_tags_all_does_not_hide_the_provider_s_tags() -> None:
    unknown = resource("aws:sqs/queue:Queue", "q", tagsAll=rules.UNKNOWN)
    assert check([unknown], rules.REQUIRED_TAGS_RULE) == []
    untagged = provider(branch=None)
    queue = resource("aws:sqs/queue:Queue", "q", via=untagged.urn, tagsAll=rules.UNKNOWN)
    # The computed tagsAll may still hold the tag: left for `up`, where it is known.
    assert rules.evaluate([untagged, queue], rules=[rules.REQUIRED_TAGS_RULE]) == []
    queue = resource("aws:sqs/queue:Queue", "q", via=untagged.urn, tagsAll={"project": "mlship"})
    assert len(rules.evaluate([untagged, queue], rules=[rules.REQUIRED_TAGS_RULE])) == 1


# --- what each report says, and the cases between the rules' main paths ------------------------


def test_a_setting_covers_a_bucket_known_by_its_id() -> None:
    by_id = resource(BUCKET, "artifacts", id="mlship-x-artifacts")
    assert check([by_id, encryption("mlship-x-artifacts")], rules.BUCKET_ENCRYPTED) == []
    # An empty name matches nothing, not even a setting for "".
    unnamed = resource(BUCKET, "artifacts", bucket="")
    assert len(check([unnamed, encryption("")], rules.BUCKET_ENCRYPTED)) == 1


def test_a_policy_statement_is_named_by_its_sid_else_its_position() -> None:
    policy = document(
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
        allow("s3:GetObject", "*"),
        allow("*", "*", Sid="Everything"),
        allow("iam:*", "*"),
        allow("ec2:*", "*", Sid=7),
    )
    found = check([resource(ROLE_POLICY, "p", role="r", policy=policy)], rules.IAM_NO_STAR_ON_STAR)
    assert [v.message for v in found] == [
        f"'p' policy statement {label}: Allow {action} on Resource *; name the actions and "
        "scope the resources (only actions without resource-level permissions may use *)"
        for label, action in (("Everything", "*"), (3, "iam:*"), (4, "ec2:*"))
    ]


def test_an_inline_policy_is_named_by_its_name_else_its_position() -> None:
    role = resource(
        "aws:iam/role:Role",
        "r",
        inlinePolicies=[
            {"name": "ok", "policy": document(allow("s3:GetObject", "arn:aws:s3:::b"))},
            {"name": "wide", "policy": document(allow(["s3:*", "sqs:*"]))},
            {"policy": document(allow("*"))},
        ],
    )
    found = check([role], rules.IAM_NO_STAR_ON_STAR)
    assert [v.message.split(";")[0] for v in found] == [
        "'r' inlinePolicies[wide] statement 0: Allow s3:*, sqs:* on Resource *",
        "'r' inlinePolicies[2] statement 0: Allow * on Resource *",
    ]
    unknown = resource("aws:iam/role:Role", "u", inlinePolicies=rules.UNKNOWN)
    assert check([unknown], rules.IAM_NO_STAR_ON_STAR) == []


def test_outside_a_key_policy_a_whole_service_on_everything_is_reported() -> None:
    assert list(rules.star_on_star_statements({"Statement": [allow("kms:*")]})) == [
        "statement 0: Allow kms:* on Resource *"
    ]
    assert (
        list(rules.star_on_star_statements({"Statement": [allow("kms:*")]}, key_policy=True)) == []
    )


def test_each_resource_is_judged_for_its_tags_on_its_own() -> None:
    tagged = resource(FUNCTION, "tagged")
    stray = resource(FUNCTION, "stray", via="")
    assert [v.urn for v in check([tagged, stray], rules.REQUIRED_TAGS_RULE)] == [stray.urn]


@pytest.mark.parametrize(
    ("via", "source"),
    [
        ("", "it names no provider (the default one carries no default tags)"),
        ("urn:elsewhere", "its provider 'urn:elsewhere' is not in view"),
    ],
)
def test_missing_tags_say_where_they_should_have_come_from(via: str, source: str) -> None:
    (found,) = check([resource(FUNCTION, "f", via=via)], rules.REQUIRED_TAGS_RULE)
    assert found.message == (
        f"'f' lacks tags project, stack, kind, branch: {source} and it does not set them "
        "itself; create it with the stack's aws.Provider (parent it to a component)"
    )


def test_a_provider_without_a_tag_is_named_and_empty_values_do_not_count() -> None:
    untagged = provider(branch="")
    (found,) = rules.evaluate([untagged, resource(FUNCTION, "f")], rules=[rules.REQUIRED_TAGS_RULE])
    assert found.message.startswith(
        "'f' lacks tags branch: provider 'aws' has no default tags for them and"
    )
    # A value still unknown in preview may well be set: judged at `up`.
    later = provider(branch=None)
    pending = resource(FUNCTION, "g", via=later.urn, tags={"branch": rules.UNKNOWN})
    assert rules.evaluate([later, pending], rules=[rules.REQUIRED_TAGS_RULE]) == []


def test_a_lambda_report_says_the_default_it_falls_back_on_and_the_range() -> None:
    found = check([resource(FUNCTION, "model", timeout=None, memorySize=64)], rules.LAMBDA_TIMEOUT)
    assert [v.message for v in found] == [
        "function 'model' timeout is unset (Lambda's default 3 s): set it explicitly, 1-900 s",
        "function 'model' memorySize is 64: set it explicitly, 128-10240 MB",
    ]
    found = check([resource(FUNCTION, "model", timeout=10)], rules.LAMBDA_TIMEOUT)
    assert [v.message for v in found] == [
        "function 'model' memorySize is unset (Lambda's default 128 MB): set it explicitly, "
        "128-10240 MB"
    ]
    pending = resource(FUNCTION, "model", timeout=rules.UNKNOWN, memorySize=rules.UNKNOWN)
    assert check([pending], rules.LAMBDA_TIMEOUT) == []


def test_a_notebook_report_says_how_to_turn_it_off_or_allow_it() -> None:
    (found,) = check([notebook()], rules.NO_EPHEMERAL_NOTEBOOK)
    assert found.message == (
        f"notebook instance {notebook().name!r} in an ephemeral stack bills every hour until "
        "the branch is deleted: set notebookEnabled=false, or allow it explicitly (offline: "
        "synth --allow-notebook; under pulumi: the policy pack's config "
        "allowEphemeralNotebook=true)"
    )
    (found,) = rules.evaluate([notebook()], rules=[rules.NO_EPHEMERAL_NOTEBOOK])
    assert " in a stack whose kind tag is missing bills" in found.message


def test_registrations_keep_their_names_and_dependencies() -> None:
    @dataclass
    class Registered:
        urn: str
        type: str
        name: str
        custom: bool
        provider: str
        depends_on: list[str]
        inputs: dict[str, Any]

    bucket_urn = urn(BUCKET, "b")
    # Components are not AWS resources: only custom ones are judged.
    (view,) = rules.from_registrations(
        [
            Registered(bucket_urn, BUCKET, "b", True, PROVIDER.urn + "::id", [], {}),
            Registered("c", "mlship:components:X", "c", False, "", [], {}),
        ]
    )
    assert (view.name, view.provider, view.depends_on) == ("b", PROVIDER.urn, ())
    (setting,) = rules.from_registrations(
        [Registered("s", ENCRYPTION, "s", True, "", [bucket_urn], {"bucket": rules.UNKNOWN})]
    )
    assert setting.depends_on == (bucket_urn,)


# --- each resource on its own -----------------------------------------------------------------


def _bucket_with_settings(kind: str, i: int) -> list[rules.Resource]:
    """A bucket named after its position, as one of the ways a stack may (not) protect it."""
    physical = f"mlship-x-bucket-{i}"
    sse = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}
    if kind == "inline":
        return [
            resource(BUCKET, f"bucket-{i}", bucket=physical, serverSideEncryptionConfiguration=sse)
        ]
    own = resource(BUCKET, f"bucket-{i}", bucket=physical)
    if kind == "secure":
        return [
            own,
            resource(ENCRYPTION, f"enc-{i}", bucket=physical, **sse),
            resource(PUBLIC_ACCESS, f"block-{i}", bucket=physical, **ALL_FLAGS),
        ]
    if kind == "half-blocked":
        flags = {**ALL_FLAGS, "blockPublicAcls": False}
        return [own, resource(PUBLIC_ACCESS, f"block-{i}", bucket=physical, **flags)]
    encryption_rules = {"bare": None, "no-algorithm": [{}], "unknown-rules": rules.UNKNOWN}[kind]
    if encryption_rules is None:
        return [own]
    return [own, resource(ENCRYPTION, f"enc-{i}", bucket=physical, rules=encryption_rules)]


BUCKET_KINDS = ["secure", "inline", "bare", "no-algorithm", "unknown-rules", "half-blocked"]


@given(st.lists(st.sampled_from(BUCKET_KINDS), min_size=1, max_size=6))
def test_every_bucket_is_judged_whatever_the_others_are(kinds: list[str]) -> None:
    # A stack's violations are those of each of its buckets judged alone: a compliant
    # bucket before another must not end or change its check.
    groups = [_bucket_with_settings(kind, i) for i, kind in enumerate(kinds)]
    for rule in (rules.BUCKET_ENCRYPTED, rules.BUCKET_PUBLIC_ACCESS_BLOCKED):
        alone = [str(v) for group in groups for v in check(group, rule)]
        together = [str(v) for v in check([r for group in groups for r in group], rule)]
        assert sorted(together) == sorted(alone), rule


@given(st.permutations([*COMPLIANT_DOCUMENTS.values(), *VIOLATING_DOCUMENTS.values()]))
def test_every_policy_is_judged_whatever_the_others_are(documents: list[str]) -> None:
    policies = [resource(ROLE_POLICY, f"p{i}", role="r", policy=d) for i, d in enumerate(documents)]
    alone = [str(v) for p in policies for v in check([p], rules.IAM_NO_STAR_ON_STAR)]
    assert sorted(str(v) for v in check(policies, rules.IAM_NO_STAR_ON_STAR)) == sorted(alone)
    assert len(alone) >= len(VIOLATING_DOCUMENTS)
