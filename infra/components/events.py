"""Event-sourced training workflow: bus, replay archive, rule, processor, DLQ, event store."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components import type_token
from infra.components.base import child, policy_document, retained, statement
from infra.components.function import PythonFunction, PythonFunctionArgs
from infra.components.storage import SecureBucket, SecureBucketArgs

# SQS's maximum: a failed event waits two weeks for someone to look at it.
DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60
# EventBridge's maxima: keep retrying a throttled or failing processor for a day.
MAX_EVENT_AGE_SECONDS = 24 * 60 * 60
MAX_RETRY_ATTEMPTS = 185
EVENT_PREFIX = "events/"


@dataclass(frozen=True)
class EventSourcingArgs:
    protected: bool
    event_source: str
    event_store_bucket: str
    bus: str
    archive: str
    archive_retention_days: int  # 0 keeps events forever
    rule: str
    processor_function: str
    processor_role: str
    processor_log_group: str
    dead_letter_queue: str
    dead_letter_alarm: str
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    # The shared stack's role boundary; every role the component makes carries it.
    permissions_boundary: pulumi.Input[str] | None = None


class EventSourcing(pulumi.ComponentResource):
    bus: aws.cloudwatch.EventBus
    archive: aws.cloudwatch.EventArchive
    rule: aws.cloudwatch.EventRule
    bucket: aws.s3.Bucket
    dead_letter_queue: aws.sqs.Queue
    dead_letter_alarm: aws.cloudwatch.MetricAlarm
    processor: PythonFunction

    def __init__(
        self, name: str, args: EventSourcingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(type_token("EventSourcing"), name, None, opts)
        pattern = json.dumps({"source": [args.event_source]})

        # The append-only record of every lifecycle event; versioning keeps even
        # an overwritten or deleted object recoverable.
        store = SecureBucket(
            f"{name}-store",
            SecureBucketArgs(
                bucket_name=args.event_store_bucket, protected=args.protected, versioned=True
            ),
            opts=child(self),
        )
        self.bucket = store.bucket

        self.bus = aws.cloudwatch.EventBus(f"{name}-bus", name=args.bus, opts=child(self))
        # Replay source for rebuilding state; a protected stack keeps its history.
        self.archive = aws.cloudwatch.EventArchive(
            f"{name}-archive",
            name=args.archive,
            event_source_arn=self.bus.arn,
            event_pattern=pattern,
            retention_days=args.archive_retention_days,
            opts=retained(self, args.protected),
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=args.rule,
            event_bus_name=self.bus.name,
            event_pattern=pattern,
            opts=child(self),
        )

        # SSE-SQS rather than a KMS key: EventBridge and Lambda can write to it
        # without a key policy granting them kms:GenerateDataKey.
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.dead_letter_queue,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            opts=child(self),
        )
        # Only this rule's failed deliveries may land here; the processor's own
        # failures arrive through its role, which needs no queue policy.
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dead_letter_queue.url,
            policy=policy_document(
                [
                    statement(
                        ["sqs:SendMessage"],
                        [self.dead_letter_queue.arn],
                        Principal={"Service": "events.amazonaws.com"},
                        Condition={"ArnEquals": {"aws:SourceArn": self.rule.arn}},
                    )
                ]
            ),
            opts=child(self),
        )

        objects = self.bucket.arn.apply(lambda arn: f"{arn}/{EVENT_PREFIX}*")
        # The handler's idempotency is a conditional PutObject (If-None-Match),
        # which needs only s3:PutObject. s3:GetObject lets it read back (or
        # HeadObject) what it stored under its own prefix. No s3:ListBucket:
        # it would only turn HeadObject's 403 for a missing key into a 404, and
        # the handler never relies on that distinction.
        self.processor = PythonFunction(
            f"{name}-processor",
            PythonFunctionArgs(
                function_name=args.processor_function,
                role_name=args.processor_role,
                log_group_name=args.processor_log_group,
                source_dir="event_processor",
                description="Appends lifecycle events to the event store",
                memory_mb=args.memory_mb,
                timeout_seconds=args.timeout_seconds,
                log_retention_days=args.log_retention_days,
                # The processor parks a malformed event in the queue itself, with the
                # reason, rather than raising through Lambda's retries first.
                environment={
                    "EVENT_STORE_BUCKET": self.bucket.bucket,
                    "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue.url,
                },
                statements=(
                    statement(["s3:PutObject"], [objects]),
                    statement(["sqs:SendMessage"], [self.dead_letter_queue.arn]),
                ),
                # One failure path into one queue: EventBridge delivers
                # asynchronously, so events the processor fails after Lambda's
                # retries go to the function's DLQ, the same queue the target
                # uses for undeliverable events. A FunctionEventInvokeConfig
                # on-failure destination would be the other mechanism; using
                # both would split (or duplicate) where failures are found.
                dead_letter_arn=self.dead_letter_queue.arn,
                permissions_boundary=args.permissions_boundary,
            ),
            opts=child(self),
        )
        function = self.processor.function

        # A parked event expires after DLQ_RETENTION_SECONDS: someone must hear of it
        # well before (`nox -s events -- dlq` lists and redrives it).
        self.dead_letter_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-dlq-alarm",
            name=args.dead_letter_alarm,
            alarm_description=f"Lifecycle events wait in {args.dead_letter_queue}; inspect "
            "and redrive them with `nox -s events -- dlq --redrive` before they expire",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            dimensions={"QueueName": self.dead_letter_queue.name},
            opts=child(self),
        )

        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            event_bus_name=self.bus.name,
            arn=function.arn,
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            retry_policy={
                "maximum_event_age_in_seconds": MAX_EVENT_AGE_SECONDS,
                "maximum_retry_attempts": MAX_RETRY_ATTEMPTS,
            },
            opts=child(self, depends_on=[permission]),
        )

        self.register_outputs(
            {
                "bus": self.bus.name,
                "archive": self.archive.name,
                "rule": self.rule.name,
                "bucket": self.bucket.bucket,
                "dead_letter_queue": self.dead_letter_queue.url,
                "dead_letter_alarm": self.dead_letter_alarm.name,
                "processor": function.name,
            }
        )
