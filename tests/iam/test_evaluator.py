"""The evaluator against AWS's documented evaluation logic, before any access test trusts it.

Each case is an example or a rule from the IAM User Guide: "Policy evaluation
logic", "IAM JSON policy elements: NotAction / NotResource / Condition
operators", "Permissions boundaries for IAM entities" and the KMS developer
guide's "Key policies" (the default key policy hands the key to IAM).
"""

from __future__ import annotations

import pytest

from tests.iam.evaluator import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Request,
    UnsupportedPolicy,
    can_assume_with_web_identity,
    evaluate,
    evaluate_kms,
    glob,
)

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ci"


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_nothing_allowing_is_an_implicit_deny() -> None:
    # "By default, all requests are implicitly denied."
    assert evaluate([doc(allow("s3:GetObject"))], Request("s3:PutObject", "x")) == IMPLICIT_DENY
    assert evaluate([], Request("s3:GetObject", "x")) == IMPLICIT_DENY


def test_an_explicit_deny_overrides_any_allow() -> None:
    # "An explicit deny in any policy overrides any allows."
    policies = [doc(allow("s3:*")), doc(deny("s3:DeleteObject", "arn:aws:s3:::b/*"))]
    assert evaluate(policies, Request("s3:DeleteObject", "arn:aws:s3:::b/k")) == EXPLICIT_DENY
    assert evaluate(policies, Request("s3:PutObject", "arn:aws:s3:::b/k")) == ALLOW


def test_a_star_in_a_resource_spans_slashes_and_colons() -> None:
    # The trap the issue names: a Deny on `bucket*` also hits every object of `bucket-x`.
    assert glob("arn:aws:s3:::mlship--shared*", "arn:aws:s3:::mlship--shared-state-1/.pulumi/x")
    assert glob("arn:aws:lambda:*:1:function:a*", "arn:aws:lambda:eu-west-1:1:function:ab:live")
    assert glob("arn:aws:s3:::b?", "arn:aws:s3:::b1")
    assert not glob("arn:aws:s3:::b?", "arn:aws:s3:::b12")
    assert not glob("arn:aws:s3:::b[1]", "arn:aws:s3:::b1")  # no character classes in IAM


def test_actions_match_case_insensitively_resources_do_not() -> None:
    policy = doc(allow("S3:getobject", "arn:aws:s3:::Bucket/*"))
    assert evaluate([policy], Request("s3:GetObject", "arn:aws:s3:::Bucket/k")) == ALLOW
    assert evaluate([policy], Request("s3:GetObject", "arn:aws:s3:::bucket/k")) == IMPLICIT_DENY


def test_not_action_with_allow_grants_everything_but_the_listed() -> None:
    # NotAction doc: Allow NotAction iam:* on * allows all but IAM, and IAM is
    # then implicitly (not explicitly) denied.
    policy = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate([policy], Request("s3:ListBucket", "arn:aws:s3:::b")) == ALLOW
    assert evaluate([policy], Request("iam:CreateUser", "u")) == IMPLICIT_DENY


def test_not_action_deny_with_bool_if_exists_is_the_documented_mfa_guard() -> None:
    # NotAction doc: deny everything but IAM unless MFA is present (BoolIfExists).
    guard = {
        "Effect": "Deny",
        "NotAction": "iam:*",
        "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    }
    policies = [doc(allow("*"), guard)]
    assert evaluate(policies, Request("s3:GetObject", "x")) == EXPLICIT_DENY
    mfa = {"aws:MultiFactorAuthPresent": True}
    assert evaluate(policies, Request("s3:GetObject", "x", mfa)) == ALLOW
    assert evaluate(policies, Request("iam:ListUsers", "x")) == ALLOW


def test_not_resource_deny_denies_everything_outside_the_list() -> None:
    # NotResource doc: deny s3 actions on all but one bucket.
    policy = doc(
        allow("s3:*"),
        {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
    )
    assert evaluate([policy], Request("s3:GetObject", "arn:aws:s3:::b/k")) == ALLOW
    assert evaluate([policy], Request("s3:GetObject", "arn:aws:s3:::other/k")) == EXPLICIT_DENY


def test_a_permissions_boundary_caps_what_the_identity_policy_grants() -> None:
    # Boundaries doc: boundary allows s3, cloudwatch, ec2; the identity policy
    # allows iam:CreateUser: the effective permission is none.
    boundary = doc(allow(["s3:*", "cloudwatch:*", "ec2:*"]))
    identity = [doc(allow("iam:CreateUser"), allow("s3:GetObject"))]
    assert evaluate(identity, Request("iam:CreateUser"), boundary=boundary) == IMPLICIT_DENY
    assert evaluate(identity, Request("s3:GetObject"), boundary=boundary) == ALLOW
    denying = doc(allow("*"), deny("s3:GetObject"))
    assert evaluate(identity, Request("s3:GetObject"), boundary=denying) == EXPLICIT_DENY


def test_a_missing_condition_key_fails_all_but_negated_if_exists_and_null() -> None:
    # Condition operators doc: a missing key makes the condition false, except
    # negated operators (true), ...IfExists and Null, which test presence.
    cases = {
        "StringEquals": False,
        "StringLike": False,
        "ArnLike": False,
        "Bool": False,
        "StringNotEquals": True,
        "StringNotLike": True,
        "ArnNotLike": True,
        "StringEqualsIfExists": True,
    }
    for operator, allowed in cases.items():
        policy = doc(allow("s3:GetObject", Condition={operator: {"aws:ResourceTag/k": "v"}}))
        decision = evaluate([policy], Request("s3:GetObject"))
        assert decision == (ALLOW if allowed else IMPLICIT_DENY), operator
    absent = doc(allow("s3:GetObject", Condition={"Null": {"aws:ResourceTag/k": "true"}}))
    assert evaluate([absent], Request("s3:GetObject")) == ALLOW
    assert evaluate([absent], Request("s3:GetObject", context={"aws:ResourceTag/k": "v"})) == (
        IMPLICIT_DENY
    )


def test_condition_blocks_and_together_and_values_or_together() -> None:
    policy = doc(
        allow(
            "s3:GetObject",
            Condition={
                "StringEquals": {"aws:ResourceTag/kind": ["a", "b"]},
                "Null": {"aws:ResourceTag/project": "false"},
            },
        )
    )
    ok = {"aws:ResourceTag/kind": "b", "aws:ResourceTag/project": "p"}
    assert evaluate([policy], Request("s3:GetObject", context=ok)) == ALLOW
    assert evaluate([policy], Request("s3:GetObject", context={"aws:ResourceTag/kind": "b"})) == (
        IMPLICIT_DENY
    )
    # StringNotEquals with several values: true only when the value is none of them.
    negated = doc(deny("s3:GetObject", Condition={"StringNotEquals": {"k": ["a", "b"]}}))
    assert (
        evaluate([doc(allow("*")), negated], Request("s3:GetObject", context={"k": "a"})) == ALLOW
    )
    assert evaluate([doc(allow("*")), negated], Request("s3:GetObject", context={"k": "c"})) == (
        EXPLICIT_DENY
    )


def test_condition_key_names_are_case_insensitive_values_are_not() -> None:
    policy = doc(allow("s3:GetObject", Condition={"StringEquals": {"AWS:ResourceTag/Kind": "a"}}))
    assert (
        evaluate([policy], Request("s3:GetObject", context={"aws:resourcetag/kind": "a"})) == ALLOW
    )
    assert evaluate([policy], Request("s3:GetObject", context={"aws:ResourceTag/Kind": "A"})) == (
        IMPLICIT_DENY
    )


def test_set_operators_on_multi_valued_keys() -> None:
    any_value = doc(allow("x:Y", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "kind"}}))
    all_values = doc(allow("x:Y", Condition={"ForAllValues:StringLike": {"aws:TagKeys": "k*"}}))
    tags = {"aws:TagKeys": ["kind", "other"]}
    assert evaluate([any_value], Request("x:Y", context=tags)) == ALLOW
    assert evaluate([all_values], Request("x:Y", context=tags)) == IMPLICIT_DENY
    assert evaluate([all_values], Request("x:Y", context={"aws:TagKeys": ["kind"]})) == ALLOW
    single = doc(allow("x:Y", Condition={"StringEquals": {"aws:TagKeys": "kind"}}))
    with pytest.raises(UnsupportedPolicy):
        evaluate([single], Request("x:Y", context=tags))


def test_arn_like_matches_part_by_part() -> None:
    policy = doc(
        allow("x:Y", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/a*"}})
    )
    assert evaluate([policy], Request("x:Y", context={"aws:PrincipalArn": ROLE + "x"})) == (
        IMPLICIT_DENY
    )
    assert (
        evaluate(
            [policy],
            Request("x:Y", context={"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ab"}),
        )
        == ALLOW
    )


def test_a_resource_policy_naming_the_principal_allows_in_the_same_account() -> None:
    bucket = doc(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": "*"}
    )
    assert evaluate([], Request("s3:GetObject", "x", principal=ROLE), resource=bucket) == ALLOW
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    assert evaluate([], Request("s3:GetObject", "x", principal=other), resource=bucket) == (
        IMPLICIT_DENY
    )


def test_kms_needs_the_key_policy_and_root_hands_the_key_to_iam() -> None:
    # KMS key policies doc: the default policy's `:root` statement lets IAM
    # policies grant the key; without it no IAM policy can.
    root = f"arn:aws:iam::{ACCOUNT}:root"
    default = doc(
        {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}
    )
    decrypt = Request("kms:Decrypt", "arn:aws:kms:r:1:key/k", principal=ROLE)
    granted = [doc(allow("kms:Decrypt"))]
    assert evaluate_kms(granted, default, decrypt) == ALLOW
    assert evaluate_kms([], default, decrypt) == IMPLICIT_DENY
    named = doc(
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    assert evaluate_kms([], named, decrypt) == ALLOW
    nobody = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"{root[:-4]}role/x"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert evaluate_kms(granted, nobody, decrypt) == IMPLICIT_DENY


def test_web_identity_trust_matches_sub_and_aud_exactly_or_by_pattern() -> None:
    issuer = "token.actions.githubusercontent.com"
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"
    trust = doc(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{issuer}:aud": "sts.amazonaws.com"},
                "StringLike": {f"{issuer}:sub": "repo:Acme/Models:ref:refs/heads/*"},
            },
        }
    )
    ok = {"sub": "repo:Acme/Models:ref:refs/heads/x", "aud": "sts.amazonaws.com"}
    assert can_assume_with_web_identity(trust, provider, ok, issuer)
    assert not can_assume_with_web_identity(trust, provider, {**ok, "aud": "other"}, issuer)
    # `sub` matching is case-sensitive: the repository as typed is not enough.
    lower = {**ok, "sub": "repo:acme/models:ref:refs/heads/x"}
    assert not can_assume_with_web_identity(trust, provider, lower, issuer)
    other = f"arn:aws:iam::{ACCOUNT}:oidc-provider/example.com"
    assert not can_assume_with_web_identity(trust, other, ok, issuer)
    # The provider is a federated principal: named under "AWS" it is not trusted, and a
    # principal type AWS does not know (its spelling is exact) is refused.
    as_aws = doc({**trust["Statement"][0], "Principal": {"AWS": provider}})
    assert not can_assume_with_web_identity(as_aws, provider, ok, issuer)
    for misspelt in ("federated", "FEDERATED", "aws"):
        wrong = doc({**trust["Statement"][0], "Principal": {misspelt: provider}})
        with pytest.raises(UnsupportedPolicy, match=misspelt):
            can_assume_with_web_identity(wrong, provider, ok, issuer)


def test_unknown_operators_and_elements_are_refused_not_passed() -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(
            [doc(allow("x:Y", Condition={"DateLessThan": {"aws:CurrentTime": "1"}}))],
            Request("x:Y"),
        )
    with pytest.raises(UnsupportedPolicy):
        evaluate([doc(allow("x:Y", Sidd="typo"))], Request("x:Y"))


def test_the_principal_arn_is_always_in_the_request_context() -> None:
    # aws:PrincipalArn is a global key AWS sets on every request.
    guard = deny("kms:Decrypt", Condition={"ArnLike": {"aws:PrincipalArn": ROLE}})
    request = Request("kms:Decrypt", "k", principal=ROLE)
    assert evaluate([doc(allow("kms:*"), guard)], request) == EXPLICIT_DENY
    other = Request("kms:Decrypt", "k", principal=f"arn:aws:iam::{ACCOUNT}:role/other")
    assert evaluate([doc(allow("kms:*"), guard)], other) == ALLOW


def test_a_policy_asked_again_after_a_change_is_read_as_it_now_is() -> None:
    # The evaluator remembers, per policy object, which statements name which action: a
    # change to the same dict between questions must not be answered from that memory.
    policy = doc(allow("s3:GetObject"), deny("s3:PutObject"))
    get, put = Request("s3:GetObject", "x"), Request("s3:PutObject", "x")
    for _ in range(3):
        assert evaluate([policy], get) == ALLOW
        assert evaluate([policy], put) == EXPLICIT_DENY
    policy["Statement"][0]["Action"] = "s3:PutObject"
    assert evaluate([policy], get) == IMPLICIT_DENY
    assert evaluate([policy], put) == EXPLICIT_DENY
    policy["Statement"].pop()
    assert evaluate([policy], put) == ALLOW
    policy["Statement"][0]["Sidd"] = "typo"
    with pytest.raises(UnsupportedPolicy):
        evaluate([policy], put)
