"""ApiGatewayLogging: the account's role through which API Gateway writes execution logs."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime.sync_await import _sync_await

from infra.components import type_token
from infra.components.api_logging import (
    PUSH_TO_CLOUDWATCH,
    ApiGatewayLogging,
    ApiGatewayLoggingArgs,
)
from scripts.synth import MOCK_ACCOUNT_ID, run_under_mocks
from tests.project import PROJECT, REGION

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROLE_NAME = f"{PROJECT}-apigateway-logs"


@pytest.fixture(scope="module")
def synthesis():
    built: list[ApiGatewayLogging] = []

    def build() -> None:
        built.append(
            ApiGatewayLogging(
                "logging", ApiGatewayLoggingArgs(role_name=ROLE_NAME, account_id=MOCK_ACCOUNT_ID)
            )
        )

    result = run_under_mocks(build, project=PROJECT, stack="shared", region=REGION)
    result.component = built[0]
    return result


def test_the_role_is_for_api_gateway_acting_for_this_account_only(synthesis) -> None:
    role = synthesis.one("aws:iam/role:Role", "logging-role")
    assert role.inputs["name"] == ROLE_NAME
    assert json.loads(role.inputs["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}},
            }
        ],
    }
    # AWS's own policy for exactly this: create log groups and streams, put events.
    assert role.inputs["managedPolicyArns"] == [PUSH_TO_CLOUDWATCH]


def test_the_account_settings_name_the_role(synthesis) -> None:
    account = synthesis.one("aws:apigateway/account:Account", "logging-account")
    role_arn = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{ROLE_NAME}"
    assert account.inputs["cloudwatchRoleArn"] == role_arn
    assert _sync_await(synthesis.component.role.arn.future()) == role_arn


def test_both_resources_are_the_component_s(synthesis) -> None:
    component = synthesis.one(type_token("ApiGatewayLogging"), "logging")
    children = [r for r in synthesis.resources if r is not component]
    assert {r.type for r in children} == {
        "aws:iam/role:Role",
        "aws:apigateway/account:Account",
    }
    assert all(r.parent == component.urn for r in children)
