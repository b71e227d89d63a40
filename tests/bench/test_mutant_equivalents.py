"""Which surviving mutants the stated rules call equivalent, judged from their diffs."""

from __future__ import annotations

import pytest

from bench.mutant_equivalents import CASE_OF_IAM_NAME, SID, rule_for


def diff(before: str, after: str, path: str = "infra/components/ci_denies.py") -> str:
    return "\n".join(
        [
            f"--- {path}",
            f"+++ {path}",
            "@@ -1,3 +1,3 @@",
            " def shared_denies(args):",
            f"-{before}",
            f"+{after}",
            "     return statements",
        ]
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            '            "Action": ["iam:DeleteRolePermissionsBoundary"],',
            '            "Action": ["IAM:DELETEROLEPERMISSIONSBOUNDARY"],',
        ),
        (
            '        statement(["s3:ListBucket"], [bucket_arn]),',
            '        statement(["s3:listbucket"], [bucket_arn]),',
        ),
        ('            "Action": "apigateway:*",', '            "Action": "APIGATEWAY:*",'),
        (
            '    "Condition": {"StringEquals": {"aws:ResourceTag/kind": "protected"}},',
            '    "Condition": {"StringEquals": {"aws:resourcetag/kind": "protected"}},',
        ),
    ],
)
def test_a_case_change_of_an_action_or_condition_key_is_equivalent(before, after) -> None:
    assert rule_for(diff(before, after)) == CASE_OF_IAM_NAME


def test_a_sid_s_text_is_equivalent() -> None:
    before = '            "Sid": "CiRolesOfThisKindUseIt",'
    assert rule_for(diff(before, '            "Sid": "XXCiRolesOfThisKindUseItXX",')) == SID
    assert rule_for(diff(before, '            "Sid": "cirolesofthiskinduseit",')) == SID


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Not a case change: a different action.
        ('            "Action": ["iam:*"],', '            "Action": ["XXiam:*XX"],'),
        # ARNs and resource patterns are case-sensitive.
        (
            '    arn("logs", "log-group:/aws/sagemaker/*"),',
            '    arn("logs", "LOG-GROUP:/AWS/SAGEMAKER/*"),',
        ),
        ('    "Resource": "arn:aws:s3:::bucket/*",', '    "Resource": "ARN:AWS:S3:::BUCKET/*",'),
        # The principal's type is spelled exactly, and a condition's value is compared as is.
        ('    "Principal": {"AWS": root},', '    "Principal": {"aws": root},'),
        (
            '    {"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},',
            '    {"StringEquals": {"sts:AWSServiceName": "CODEARTIFACT.AMAZONAWS.COM"}},',
        ),
        # Not a string change at all, or a change beside it.
        ('    if stack == "*":', '    if stack != "*":'),
        (
            '        statement(["s3:ListBucket"], [bucket_arn]),',
            '        statement(["s3:listbucket"], None),',
        ),
        # A Sid's key itself is not a label.
        (
            '            "Sid": "CiRolesOfThisKindUseIt",',
            '            "XXSidXX": "CiRolesOfThisKindUseIt",',
        ),
    ],
)
def test_everything_else_counts(before, after) -> None:
    assert rule_for(diff(before, after)) is None


def test_the_rules_hold_only_where_the_policy_documents_are_written() -> None:
    before, after = '    action = "lambda:InvokeFunction"', '    action = "LAMBDA:INVOKEFUNCTION"'
    assert rule_for(diff(before, after, "infra/components/ci_access.py")) == CASE_OF_IAM_NAME
    assert rule_for(diff(before, after, "scripts/lib/promotion.py")) is None


def test_a_mutant_of_several_lines_counts() -> None:
    two = diff('    "Action": "kms:*",', '    "Action": "KMS:*",').replace(
        "     return statements", '-    "Effect": "Deny",\n+    "Effect": "Deny",'
    )
    assert rule_for(two) is None
