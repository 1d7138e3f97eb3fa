"""No asynchronous event is lost without a trace (issue 21): every function EventBridge or a CloudWatch alarm invokes
(asynchronous invocation: Lambda retries twice, then discards the event unless it has a dead-letter queue, AWS
Lambda Developer Guide, "Asynchronous invocation") has a ``DeadLetterConfig`` queue, encrypted with the data key and
TLS-only, whose depth alarm publishes to the notifications topic.

The asynchronous functions are found from the template (rule targets, alarm actions), not from the construct that
adds the queues, so a new rule or alarm action on a function without a queue fails here."""

from __future__ import annotations

from typing import Any

from stacks.config import StageConfig
from tests.infrastructure.helpers import of_type
from tests.infrastructure.policies import references


def _asynchronous_functions(resources: dict[str, Any]) -> set[str]:
    functions = set(of_type(resources, "AWS::Lambda::Function"))
    invoked: set[str] = set()
    for rule in of_type(resources, "AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            invoked |= references(target["Arn"]) & functions
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        invoked |= references(alarm["Properties"].get("AlarmActions", [])) & functions
    return invoked


def _dead_letter_queue(resources: dict[str, Any], function: str) -> str:
    config = resources[function]["Properties"].get("DeadLetterConfig") or {}
    (queue,) = references(config.get("TargetArn")) or {None}
    assert queue is not None and resources[queue]["Type"] == "AWS::SQS::Queue", (function, config)
    return str(queue)


def test_the_asynchronously_invoked_functions_are_the_expected_ones(resources: dict[str, Any]) -> None:
    # Given the rule targets and alarm actions / Then they invoke these five functions (a sixth needs a queue too)
    names = sorted(name.rstrip("0123456789ABCDEF") for name in _asynchronous_functions(resources))
    assert names == [
        "MonitoringDriftMonitor",
        "MonitoringGroundTruth",
        "MonitoringRetrain",
        "PipelineStartPipeline",
        "ServingBatchInference",
    ]


def test_every_asynchronous_function_has_an_encrypted_tls_only_dead_letter_queue(resources: dict[str, Any]) -> None:
    (key,) = of_type(resources, "AWS::KMS::Key")
    policies = of_type(resources, "AWS::SQS::QueuePolicy").values()
    for function in _asynchronous_functions(resources):
        # Given the function's DeadLetterConfig
        queue = _dead_letter_queue(resources, function)
        props = resources[queue]["Properties"]
        # Then its queue is encrypted with the data key and keeps messages 14 days (time to fix and redrive)
        assert key in references(props.get("KmsMasterKeyId")), (function, props)
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
        # And its queue policy denies any request without TLS
        (policy,) = [p for p in policies if queue in references(p["Properties"]["Queues"])]
        (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and deny["Action"] == "sqs:*"
        # And the function's role may send to it
        (role,) = references(resources[function]["Properties"]["Role"])
        sends = [
            s
            for p in of_type(resources, "AWS::IAM::Policy").values()
            if role in references(p["Properties"]["Roles"])
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if "sqs:SendMessage" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]
        assert any(queue in references(s["Resource"]) for s in sends), function


def test_every_dead_letter_queue_is_alarmed_to_the_notifications_topic(
    resources: dict[str, Any], config: StageConfig
) -> None:
    (topic,) = of_type(resources, "AWS::SNS::Topic")
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    for function in _asynchronous_functions(resources):
        # Given the function's dead-letter queue
        queue = _dead_letter_queue(resources, function)
        # Then one alarm fires on its first visible message and notifies the topic
        (alarm,) = [
            a["Properties"]
            for a in alarms
            if a["Properties"].get("Namespace") == "AWS/SQS"
            and queue in references(a["Properties"].get("Dimensions", []))
        ]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == (
            "GreaterThanThreshold",
            0,
            "Maximum",
        )
        assert [topic] == [r for action in alarm["AlarmActions"] for r in references(action)], alarm
        assert alarm["AlarmName"].startswith(f"{config.prefix}-") and alarm["AlarmName"].endswith("-dlq")


def test_cloudwatch_may_publish_the_dead_letter_alarms_to_the_encrypted_topic(
    resources: dict[str, Any], config: StageConfig
) -> None:
    """An alarm's SNS action publishes as ``cloudwatch.amazonaws.com``: the topic policy allows it and the key policy
    lets it use the topic's key (Amazon SNS Developer Guide, "Configure AWS KMS permissions for AWS services")."""
    # Given the topic policy and the key policy
    (topic_policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    (key,) = of_type(resources, "AWS::KMS::Key").values()
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    # Then the topic lets CloudWatch publish, for this account's dead-letter alarms only
    (publish,) = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"] if s["Principal"] == cloudwatch]
    assert publish["Effect"] == "Allow" and publish["Action"] == "sns:Publish"
    assert set(publish["Condition"]) == {"ArnLike", "StringEquals"}
    assert "aws:SourceAccount" in publish["Condition"]["StringEquals"]
    # And the key lets CloudWatch encrypt the message
    (use,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Principal"] == cloudwatch]
    assert sorted(use["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
