"""EventSourcing under Pulumi's mock runtime: wiring, retention and least privilege."""

from __future__ import annotations

import json

import pytest

from infra.components.events import DLQ_RETENTION_SECONDS, EventSourcing, EventSourcingArgs
from scripts.synth import MOCK_ACCOUNT_ID, run_under_mocks

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REGION = "us-east-1"
SOURCE = "mlship.pipeline"
BUCKET = "mlship-feature-x-events-123456789012"
BUS = "mlship-feature-x-events"
ARCHIVE = "mlship-feature-x-events-archive"
RULE = "mlship-feature-x-lifecycle"
FUNCTION = "mlship-feature-x-events-fn"
ROLE = "mlship-feature-x-events-role"
DLQ = "mlship-feature-x-events-dlq"
DLQ_ALARM = "mlship-feature-x-events-dlq-not-empty"

BUS_ARN = f"arn:aws:events:{REGION}:{MOCK_ACCOUNT_ID}:event-bus/{BUS}"
RULE_ARN = f"arn:aws:events:{REGION}:{MOCK_ACCOUNT_ID}:rule/{RULE}"
DLQ_URL = f"https://sqs.{REGION}.amazonaws.com/{MOCK_ACCOUNT_ID}/{DLQ}"
DLQ_ARN = f"arn:aws:sqs:{REGION}:{MOCK_ACCOUNT_ID}:{DLQ}"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{MOCK_ACCOUNT_ID}:function:{FUNCTION}"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{MOCK_ACCOUNT_ID}:log-group:{LOG_GROUP}"

BUCKET_TYPE = "aws:s3/bucket:Bucket"
TARGET_TYPE = "aws:cloudwatch/eventTarget:EventTarget"


BOUNDARY = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:policy/mlship-boundary"


def synth(protected: bool = False, retention: int = 30, **more: object):
    args = EventSourcingArgs(
        protected=protected,
        event_source=SOURCE,
        event_store_bucket=BUCKET,
        bus=BUS,
        archive=ARCHIVE,
        archive_retention_days=retention,
        rule=RULE,
        processor_function=FUNCTION,
        processor_role=ROLE,
        processor_log_group=LOG_GROUP,
        dead_letter_queue=DLQ,
        dead_letter_alarm=DLQ_ALARM,
        memory_mb=256,
        timeout_seconds=10,
        log_retention_days=14,
        **more,  # type: ignore[arg-type]
    )
    return run_under_mocks(
        lambda: EventSourcing("events", args), project="mlship", stack="feature-x", region=REGION
    )


@pytest.fixture(scope="module")
def ephemeral():
    return synth(protected=False)


def test_event_store_is_versioned_encrypted_and_private(ephemeral):
    bucket = ephemeral.one(BUCKET_TYPE)
    assert bucket.inputs["bucket"] == BUCKET
    versioning = ephemeral.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["bucket"] == BUCKET
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    encryption = ephemeral.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert encryption.inputs["bucket"] == BUCKET
    rule = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms"
    block = ephemeral.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.inputs["bucket"] == BUCKET
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[flag] is True, flag


def test_ephemeral_stack_can_destroy_its_event_store(ephemeral):
    bucket = ephemeral.one(BUCKET_TYPE)
    assert bucket.inputs["forceDestroy"] is True
    assert not bucket.protect and not bucket.retain_on_delete
    archive = ephemeral.one("aws:cloudwatch/eventArchive:EventArchive")
    assert not archive.protect and not archive.retain_on_delete


def test_protected_stack_keeps_its_event_store_and_archive():
    protected = synth(protected=True)
    bucket = protected.one(BUCKET_TYPE)
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.protect and bucket.retain_on_delete
    archive = protected.one("aws:cloudwatch/eventArchive:EventArchive")
    assert archive.protect and archive.retain_on_delete


def test_archive_records_the_bus_for_replay(ephemeral):
    archive = ephemeral.one("aws:cloudwatch/eventArchive:EventArchive")
    assert archive.inputs["name"] == ARCHIVE
    assert archive.inputs["eventSourceArn"] == BUS_ARN
    assert archive.inputs["retentionDays"] == 30
    assert json.loads(archive.inputs["eventPattern"]) == {"source": [SOURCE]}


def test_archive_retention_follows_args():
    forever = synth(retention=0)
    assert forever.one("aws:cloudwatch/eventArchive:EventArchive").inputs["retentionDays"] == 0


def test_rule_matches_the_project_source_on_the_bus(ephemeral):
    rule = ephemeral.one("aws:cloudwatch/eventRule:EventRule")
    assert rule.inputs["name"] == RULE
    assert rule.inputs["eventBusName"] == BUS
    assert json.loads(rule.inputs["eventPattern"]) == {"source": [SOURCE]}


def test_target_delivers_to_the_processor_and_keeps_failures(ephemeral):
    target = ephemeral.one(TARGET_TYPE)
    assert target.inputs["rule"] == RULE
    assert target.inputs["eventBusName"] == BUS
    assert target.inputs["arn"] == FUNCTION_ARN
    assert target.inputs["deadLetterConfig"] == {"arn": DLQ_ARN}
    assert target.inputs["retryPolicy"] == {
        "maximumEventAgeInSeconds": 86400,
        "maximumRetryAttempts": 185,
    }


def test_only_the_rule_may_invoke_the_processor(ephemeral):
    permission = ephemeral.one("aws:lambda/permission:Permission")
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["function"] == FUNCTION
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"] == RULE_ARN
    target = ephemeral.one(TARGET_TYPE)
    assert permission.urn in target.depends_on


def test_processor_writes_to_the_store_and_fails_into_the_dlq(ephemeral):
    function = ephemeral.one("aws:lambda/function:Function")
    assert function.inputs["name"] == FUNCTION
    assert function.inputs["handler"] == "handler.handler"
    # The processor parks malformed events in the same queue, itself, with their reason.
    assert function.inputs["environment"] == {
        "variables": {"EVENT_STORE_BUCKET": BUCKET, "DEAD_LETTER_QUEUE_URL": DLQ_URL}
    }
    assert function.inputs["deadLetterConfig"] == {"targetArn": DLQ_ARN}
    # One failure mechanism only: the function's DLQ, not an invoke config too.
    assert ephemeral.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig") == []


def test_processor_policy_is_scoped_to_its_prefix_and_queue(ephemeral):
    policy = json.loads(ephemeral.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    granted = [(s["Effect"], s["Action"], s["Resource"]) for s in policy["Statement"]]
    assert granted == [
        ("Allow", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{LOG_GROUP_ARN}:*"]),
        ("Allow", ["s3:PutObject"], [f"arn:aws:s3:::{BUCKET}/events/*"]),
        ("Allow", ["sqs:SendMessage"], [DLQ_ARN]),
    ]
    assert all("Condition" not in s for s in policy["Statement"])


def test_an_event_waiting_in_the_dead_letter_queue_raises_an_alarm(ephemeral):
    alarm = ephemeral.one("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["name"] == DLQ_ALARM
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm.inputs["dimensions"] == {"QueueName": DLQ}
    # One message is enough: it fires at 1 and compares >=.
    assert alarm.inputs["threshold"] == 1
    assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # Any one five-minute look that saw a message is enough, and an idle queue (no data)
    # is a quiet one.
    assert (alarm.inputs["statistic"], alarm.inputs["period"]) == ("Maximum", 300)
    assert alarm.inputs["evaluationPeriods"] == 1
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    # Evaluated well within the queue's retention, so nothing expires unnoticed.
    window = alarm.inputs["period"] * alarm.inputs["evaluationPeriods"]
    assert window < DLQ_RETENTION_SECONDS
    assert DLQ in alarm.inputs["alarmDescription"]


def test_the_processor_runs_under_its_own_role_logs_and_boundary():
    synthesis = synth(permissions_boundary=BOUNDARY)
    role = synthesis.one("aws:iam/role:Role")
    assert role.inputs["name"] == ROLE
    assert role.inputs["permissionsBoundary"] == BOUNDARY
    function = synthesis.one("aws:lambda/function:Function")
    assert function.inputs["role"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/{ROLE}"
    assert (function.inputs["memorySize"], function.inputs["timeout"]) == (256, 10)
    logs = synthesis.one("aws:cloudwatch/logGroup:LogGroup")
    assert (logs.inputs["name"], logs.inputs["retentionInDays"]) == (LOG_GROUP, 14)


def test_dead_letter_queue_is_encrypted_and_keeps_two_weeks(ephemeral):
    queue = ephemeral.one("aws:sqs/queue:Queue")
    assert queue.inputs["name"] == DLQ
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == 1209600


def test_only_the_rule_may_send_to_the_dead_letter_queue(ephemeral):
    queue_policy = ephemeral.one("aws:sqs/queuePolicy:QueuePolicy")
    assert queue_policy.inputs["queueUrl"] == (
        f"https://sqs.{REGION}.amazonaws.com/{MOCK_ACCOUNT_ID}/{DLQ}"
    )
    document = json.loads(queue_policy.inputs["policy"])
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [DLQ_ARN],
            "Principal": {"Service": "events.amazonaws.com"},
            "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN}},
        }
    ]


def test_every_resource_is_parented_under_the_component(ephemeral):
    component = ephemeral.one("mlship:components:EventSourcing", "events")
    urns = {r.urn for r in ephemeral.resources}
    for r in ephemeral.resources:
        assert r.name == "events" or r.name.startswith("events-"), r.name
        if r is not component:
            # A parent inside this tree: the chain ends at the component, not the stack.
            assert r.parent in urns, r.name
