import json

import pulumi
import pytest

from infra.components.function import HANDLERS, RUNTIME, PythonFunction, PythonFunctionArgs
from scripts.synth import MOCK_ACCOUNT_ID, SynthError, run_under_mocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FUNCTION_NAME = "mlship-feature-x-model"
ROLE_NAME = "mlship-feature-x-model"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
LOG_GROUP_ARN = f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT_ID}:log-group:{LOG_GROUP}"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{MOCK_ACCOUNT_ID}:mlship-feature-x-dlq"
EXTRA = {
    "Sid": "ReadArtifacts",
    "Effect": "Allow",
    "Action": ["s3:GetObject"],
    "Resource": ["arn:aws:s3:::mlship-feature-x-artifacts/*"],
}

COMPONENT = "mlship:components:PythonFunction"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP_TYPE = "aws:cloudwatch/logGroup:LogGroup"


def args(**overrides):
    values = dict(
        function_name=FUNCTION_NAME,
        role_name=ROLE_NAME,
        log_group_name=LOG_GROUP,
        source_dir="model",
        description="Scores a feature vector",
        memory_mb=512,
        timeout_seconds=20,
        log_retention_days=14,
    )
    values.update(overrides)
    return PythonFunctionArgs(**values)


def synth(**overrides):
    return run_under_mocks(
        lambda: PythonFunction("model", args(**overrides)), project="mlship", stack="feature-x"
    )


def role_policy(synthesis):
    return json.loads(synthesis.one(ROLE_POLICY, "model-policy").inputs["policy"])


def test_role_trusts_lambda_only():
    role = synth().one(ROLE, "model-role")
    assert role.inputs["name"] == ROLE_NAME
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_log_group_name_and_retention_come_from_args():
    logs = synth(log_retention_days=30).one(LOG_GROUP_TYPE, "model-logs").inputs
    assert logs["name"] == LOG_GROUP
    assert logs["retentionInDays"] == 30


def test_logging_is_scoped_to_the_own_log_group():
    s = synth()
    document = role_policy(s)
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{LOG_GROUP_ARN}:*"],
        }
    ]
    assert s.one(ROLE_POLICY, "model-policy").inputs["role"] == ROLE_NAME


def test_extra_statements_are_appended_verbatim():
    def build():
        # Resources may still be Outputs (a queue's ARN, say).
        queue = pulumi.Output.from_input(QUEUE_ARN)
        send = {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue]}
        PythonFunction("model", args(statements=(EXTRA, send)))

    s = run_under_mocks(build, project="mlship", stack="feature-x")
    statements = role_policy(s)["Statement"]
    assert len(statements) == 3
    assert statements[0]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements[1] == EXTRA
    assert statements[2] == {
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": [QUEUE_ARN],
    }


def test_function_settings_propagate():
    s = synth(
        memory_mb=1024,
        timeout_seconds=45,
        publish=True,
        environment={"MODEL_STAGE": "candidate"},
        dead_letter_arn=QUEUE_ARN,
    )
    fn = s.one(FUNCTION, "model").inputs
    assert fn["name"] == FUNCTION_NAME
    assert fn["description"] == "Scores a feature vector"
    assert fn["memorySize"] == 1024
    assert fn["timeout"] == 45
    assert fn["publish"] is True
    assert fn["environment"] == {"variables": {"MODEL_STAGE": "candidate"}}
    assert fn["deadLetterConfig"] == {"targetArn": QUEUE_ARN}
    assert fn["runtime"] == RUNTIME
    assert fn["handler"] == "handler.handler"
    assert fn["role"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{ROLE_NAME}"
    assert fn["loggingConfig"] == {"logFormat": "JSON", "logGroup": LOG_GROUP}


def test_code_is_the_source_folder():
    code = synth().one(FUNCTION, "model").inputs["code"]
    assert isinstance(code, pulumi.AssetArchive)
    assert sorted(code.assets) == sorted(
        p.name for p in (HANDLERS / "model").iterdir() if p.is_file() and p.suffix != ".pyc"
    )
    assert code.assets["handler.py"].path == str(HANDLERS / "model" / "handler.py")


def test_defaults_leave_out_optional_settings():
    fn = synth().one(FUNCTION, "model").inputs
    assert fn["publish"] is False
    assert "deadLetterConfig" not in fn
    assert "environment" not in fn


def test_function_waits_for_its_permissions():
    s = synth()
    fn = s.one(FUNCTION, "model")
    # The role policy is no input of the function: only depends_on orders them,
    # so the first invocation cannot run before it may write its logs.
    assert s.one(ROLE_POLICY, "model-policy").urn in fn.depends_on
    assert s.one(LOG_GROUP_TYPE, "model-logs").urn in fn.depends_on


def test_every_child_is_parented_to_the_component():
    s = synth()
    component = s.one(COMPONENT, "model")
    children = [r for r in s.resources if r is not component]
    assert {r.type for r in children} == {FUNCTION, ROLE, ROLE_POLICY, LOG_GROUP_TYPE}
    assert len(children) == 4
    assert all(r.parent == component.urn for r in children)


@pytest.mark.parametrize("source_dir", [".", "no_such_handler", "../components", "/tmp"])
def test_source_outside_handlers_or_without_handler_is_refused(source_dir):
    with pytest.raises(SynthError, match=r"holding handler\.py") as raised:
        synth(source_dir=source_dir)
    assert repr(source_dir) in str(raised.value)
    assert "ValueError" in str(raised.value)
