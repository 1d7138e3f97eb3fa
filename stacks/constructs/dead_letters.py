"""Dead-letter queues of the asynchronously invoked functions, and the alarm that says one holds a message.

EventBridge rules (uploads, labels, batch input, drift schedules) and CloudWatch alarm actions (retrain) invoke
their functions asynchronously: Lambda retries a failing event twice, then, with no dead-letter queue, drops it
("Lambda discards the event" after the retries, AWS Lambda Developer Guide, "Asynchronous invocation",
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq). Each such function
gets its own queue (``DeadLetterConfig``): the message body is the event itself, its attributes the request id and
the error (``RequestID``, ``ErrorCode``, ``ErrorMessage``), which is what a redrive needs (docs/operations.md,
"Redriving a dead-letter queue"). Queues are encrypted with the data key and refuse plain HTTP (a queue policy
denying ``aws:SecureTransport`` false); messages are kept 14 days, SQS's maximum.

One alarm per queue, ``<prefix>-<function>-dlq``, fires when a message is visible and publishes to the
notifications topic. CloudWatch publishes as ``cloudwatch.amazonaws.com``: the topic policy must allow it
``sns:Publish`` and, the topic being encrypted, the key policy ``kms:Decrypt`` and ``kms:GenerateDataKey*``
(Amazon SNS Developer Guide, "Configure AWS KMS permissions for AWS services",
https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import StageConfig

RETENTION = cdk.Duration.days(14)
DLQ_SUFFIX = "-dlq"


def dead_letter_name(config: StageConfig, construct_id: str) -> str:
    """``<prefix>-<construct id>-dlq``: the queue's and its alarm's name (SQS: at most 80 characters)."""
    return f"{config.prefix}-{construct_id}{DLQ_SUFFIX}"


class DeadLetters(Construct):
    """Makes the dead-letter queue and its alarm of each asynchronously invoked function (``queue_for``)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey, topic: sns.Topic
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._key = key
        self._topic = topic
        self.queues: dict[str, sqs.Queue] = {}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        stack = cdk.Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{config.prefix}-*{DLQ_SUFFIX}",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DeadLetterAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": alarms}, "StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

    def queue_for(self, scope: Construct, construct_id: str) -> sqs.Queue:
        """The dead-letter queue of the function ``construct_id`` (built in ``scope``), with its depth alarm."""
        name = dead_letter_name(self._config, construct_id)
        queue = sqs.Queue(
            scope,
            f"{construct_id}DeadLetters",
            queue_name=name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self._key,
            data_key_reuse=cdk.Duration.hours(1),
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        alarm = cloudwatch.Alarm(
            scope,
            f"{construct_id}DeadLettersAlarm",
            alarm_name=name,
            alarm_description=f"{construct_id} failed an event after Lambda's retries: it waits in {name} "
            "(docs/operations.md, Redriving a dead-letter queue)",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self._topic))
        self.queues[construct_id] = queue
        self.alarms[construct_id] = alarm
        return queue
