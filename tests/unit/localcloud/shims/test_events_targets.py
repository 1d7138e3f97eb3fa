"""Contract and behaviour of the EventBridge targets shim (Lambda and Step Functions targets, input transformer)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.events import models as events_models
from moto.events.models import events_backends
from moto.events.utils import _BASE_EVENT_MESSAGE, EventTemplateParser

from localcloud.clock import clock
from localcloud.runtime.journal import journal
from localcloud.shims import events_targets as shim
from tests.tiers import heavy_fixture
from tests.unit.localcloud import support
from tests.unit.localcloud.support import (
    ACCOUNT,
    REGION,
    ROLE,
    assert_pinned_moto,
    revisit,
    running_cloud,
    unique,
    zip_package,
)

SHIM = "events_targets"
EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": ACCOUNT,
    "time": "2027-01-15T08:00:00Z",
    "region": REGION,
    "resources": ["arn:aws:s3:::raw-bucket"],
    "detail": {
        "bucket": {"name": "raw-bucket"},
        "object": {"key": "datasets/churn/a.csv", "size": 1024, "version-id": "v1"},
        "reason": "PutObject",
        "flags": [True, False],
    },
}


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_point_still_exists_with_the_signature_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_send).parameters) == [
        "self",
        "original_event",
        "transform_input",
    ], revisit(SHIM)
    assert events_models.Rule.send_to_targets is shim.send_to_targets or not shim._installed


def test_pinned_moto_raises_for_lambda_and_state_machine_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own delivery and a rule with a Lambda target before an SQS one
    monkeypatch.setattr(events_models.Rule, "send_to_targets", shim._original_send)
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        for kind, arn in (
            ("lambda", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"),
            ("states", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sm"),
        ):
            rule = unique(kind)
            events.put_rule(Name=rule, EventPattern=json.dumps({"source": [f"test.{kind}"]}))
            events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": arn}])
            # When an event matches
            with pytest.raises(NotImplementedError) as error:
                events.put_events(Entries=[{"Source": f"test.{kind}", "DetailType": "t", "Detail": "{}"}])
            # Then moto gives up
            assert str(error.value) == "Expr not defined for <class 'moto.events.models.Rule'>", revisit(SHIM)


def test_pinned_moto_input_transformer_breaks_on_an_unquoted_string() -> None:
    # Given EventBridge's documented form for a string value outside quotes
    event = {**EVENT, "ingestion-time": 0}
    # When moto's template parser applies it
    with pytest.raises(json.JSONDecodeError):
        EventTemplateParser.parse('{"key": <key>}', {"key": "$.detail.object.key"}, event)
    # Then it produced invalid JSON: the raw text was pasted in (revisit the shim if this stops raising)


def test_pinned_moto_gives_every_s3_event_the_same_id_and_a_numeric_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own delivery: S3 -> EventBridge -> SQS (the events handed to the rules are recorded)
    handed: list[dict[str, Any]] = []

    def recording(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        handed.append(dict(original_event))
        shim._original_send(self, original_event, transform_input)

    monkeypatch.setattr(events_models.Rule, "send_to_targets", recording)
    with mock_aws():
        s3, events, sqs = (boto3.client(s, region_name=REGION) for s in ("s3", "events", "sqs"))
        s3.create_bucket(Bucket="raw-bucket")
        s3.put_bucket_notification_configuration(
            Bucket="raw-bucket", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        queue = sqs.create_queue(QueueName="events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"]}  # moto also sends "Object Tags Added"
        events.put_rule(Name="uploads", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
        # When two different objects are uploaded
        s3.put_object(Bucket="raw-bucket", Key="a.csv", Body=b"1")
        s3.put_object(Bucket="raw-bucket", Key="b.csv", Body=b"2")
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    # Then both events carry moto's one constant id, and moto stamps them with a number, not an ISO time
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["detail"]["object"]["key"] for b in bodies] == ["a.csv", "b.csv"]
    assert {b["id"] for b in bodies} == {_BASE_EVENT_MESSAGE["id"]}, revisit(SHIM)
    created = [e for e in handed if e["detail-type"] == "Object Created"]
    assert len(created) == 2 and all(isinstance(e["time"], int | float) for e in created), revisit(SHIM)


def test_pinned_moto_matches_every_event_to_a_schedule_rule() -> None:
    with mock_aws():
        boto3.client("events", region_name=REGION).put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")
        rule = events_backends[ACCOUNT][REGION].event_buses["default"].rules["hourly"]
        assert not rule.event_pattern.get_pattern()
        assert rule.event_pattern.matches_event({"source": "anything"}), revisit(SHIM)


# ---- the input transformer -----------------------------------------------------------------------------

PATHS = {
    "key": "$.detail.object.key",
    "size": "$.detail.object.size",
    "object": "$.detail.object",
    "flags": "$.detail.flags",
    "missing": "$.detail.nothing",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{"key": <key>}', {"key": "datasets/churn/a.csv"}),  # a string outside quotes: a JSON string
        ('{"size": <size>, "flags": <flags>}', {"size": 1024, "flags": [True, False]}),
        ('{"object": <object>}', {"object": EVENT["detail"]["object"]}),
        ('{"message": "object <key> (<size> bytes)"}', {"message": "object datasets/churn/a.csv (1024 bytes)"}),
        ('{"text": "<object>"}', {"text": json.dumps(EVENT["detail"]["object"])}),
        ('{"quoted": "say \\"<key>\\""}', {"quoted": 'say "datasets/churn/a.csv"'}),
        ('{"absent": <missing>, "empty": "<missing>"}', {"absent": None, "empty": ""}),
        ('{"not_a_placeholder": "<unknown>"}', {"not_a_placeholder": "<unknown>"}),
        ("<aws.events.event.json>", EVENT),
        ('{"event": <aws.events.event>}', {"event": EVENT}),
    ],
)
def test_transform_follows_eventbridge_input_transformer_semantics(template: str, expected: Any) -> None:
    assert shim.transform(template, PATHS, EVENT) == expected


def test_transform_of_a_plain_text_template_delivers_text() -> None:
    assert shim.transform('"uploaded <key>"', PATHS, EVENT) == "uploaded datasets/churn/a.csv"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"Input": '{"constant": 1}'}, {"constant": 1}),
        ({"InputPath": "$.detail.object"}, EVENT["detail"]["object"]),
        ({"InputPath": "$.detail.nothing"}, None),
        (
            {"InputTransformer": {"InputPathsMap": {"key": "$.detail.object.key"}, "InputTemplate": '{"k": <key>}'}},
            {"k": "datasets/churn/a.csv"},
        ),
        ({}, EVENT),
    ],
)
def test_target_input(target: dict[str, Any], expected: Any) -> None:
    assert shim.target_input({"Id": "t", "Arn": "arn:aws:lambda:r:1:function:f", **target}, EVENT) == expected


def test_normalise_gives_each_event_its_own_id_and_an_iso_time() -> None:
    moto_event = {**EVENT, "id": _BASE_EVENT_MESSAGE["id"], "ingestion-time": 1.0}
    first, second = shim.normalise(moto_event), shim.normalise(moto_event)
    assert first["id"] != second["id"] and _BASE_EVENT_MESSAGE["id"] not in (first["id"], second["id"])
    assert first["time"] == "2027-01-15T08:00:00Z"  # an ISO time is kept
    assert "ingestion-time" not in first
    assert shim.normalise({**EVENT, "id": "mine"})["id"] == "mine"


def test_without_a_cloud_delivery_to_lambda_fails_loudly() -> None:
    shim.install()
    shim.set_cloud(None)
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.s3"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"}])
        rule = events_backends[ACCOUNT][REGION].event_buses["default"].rules["r"]
        with pytest.raises(RuntimeError, match="needs a running LocalCloud"):
            rule.send_to_targets(EVENT)


# ---- delivery in a running local cloud -----------------------------------------------------------------

HANDLER = {
    "app.py": """
        import json, os

        def handler(event, context):
            if event.get("fail"):
                raise RuntimeError("failing on purpose")
            print("DELIVERED " + json.dumps(event))
            return {"ok": True}
    """
}


@heavy_fixture
def cloud() -> Iterator[Any]:
    with running_cloud() as local:
        # as in AWS: the target role trusts EventBridge and may start executions (the local cloud's IAM checks both)
        services = ["lambda.amazonaws.com", "events.amazonaws.com", "states.amazonaws.com"]
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": services}, "Action": "sts:AssumeRole"}]}
        name = ROLE.rsplit("/", 1)[1]
        local.clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        grant = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": "*"}],
        }
        local.clients.iam.put_role_policy(RoleName=name, PolicyName="start", PolicyDocument=json.dumps(grant))
        yield local


def function(cloud: Any) -> str:
    name = unique("target")
    arn = cloud.clients.lambda_.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_package(HANDLER)},
    )["FunctionArn"]
    # EventBridge invokes a function only if its resource-based policy allows events.amazonaws.com
    cloud.clients.lambda_.add_permission(
        FunctionName=name, StatementId="events", Action="lambda:InvokeFunction", Principal="events.amazonaws.com"
    )
    return str(arn)


def state_machine(cloud: Any) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return str(
        cloud.clients.stepfunctions.create_state_machine(
            name=unique("sm"), definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
    )


def invocations_of(cloud: Any, arn: str) -> list[dict[str, Any]]:
    name = arn.rsplit(":", 1)[1]
    return [
        json.loads(line.split("DELIVERED ", 1)[1])
        for invocation in cloud.lambdas.invocations
        if invocation.function == name
        for line in invocation.logs.splitlines()
        if line.startswith("DELIVERED ")
    ]


def test_one_event_reaches_a_lambda_a_state_machine_and_an_sqs_queue(cloud: Any) -> None:
    # Given a rule with a Lambda (input transformer), a state machine and an SQS queue as targets
    source = unique("test.source")
    lambda_arn, machine_arn = function(cloud), state_machine(cloud)
    queue = cloud.clients.sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    queue_arn = cloud.clients.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = unique("rule")
    cloud.clients.events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    transformer = {"InputPathsMap": {"key": "$.detail.key"}, "InputTemplate": '{"object_key": <key>}'}
    cloud.clients.events.put_targets(
        Rule=rule,
        Targets=[
            {"Id": "fn", "Arn": lambda_arn, "InputTransformer": transformer},
            {"Id": "sm", "Arn": machine_arn, "RoleArn": ROLE},
            {"Id": "q", "Arn": queue_arn},
        ],
    )
    # When one matching event is put
    cloud.clients.events.put_events(
        Entries=[{"Source": source, "DetailType": "Upload", "Detail": json.dumps({"key": "datasets/a.csv"})}]
    )
    cloud.settle()
    # Then the Lambda got the transformed input, the state machine ran on the event, the queue got it too
    assert invocations_of(cloud, lambda_arn) == [{"object_key": "datasets/a.csv"}]
    [execution] = cloud.clients.stepfunctions.list_executions(stateMachineArn=machine_arn)["executions"]
    described = cloud.clients.stepfunctions.describe_execution(executionArn=execution["executionArn"])
    assert described["status"] == "SUCCEEDED"
    delivered = json.loads(described["input"])
    assert (delivered["source"], delivered["detail"]) == (source, {"key": "datasets/a.csv"})
    assert delivered["time"].endswith("Z") and "ingestion-time" not in delivered
    [message] = cloud.clients.sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["detail"] == {"key": "datasets/a.csv"}
    [started] = [e.detail for e in journal.of("event-delivery") if e.detail["rule"] == rule]
    assert (started["outcome"], started["execution"]) == ("execution-started", execution["executionArn"])


def test_a_failing_lambda_target_is_retried_twice_like_an_asynchronous_invocation(cloud: Any) -> None:
    # Given a rule whose Lambda target always fails
    source = unique("test.failing")
    lambda_arn = function(cloud)
    rule = unique("rule")
    cloud.clients.events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    cloud.clients.events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": lambda_arn, "Input": '{"fail": true}'}])
    # When an event matches (cloud time sped up so the 1- and 2-minute retry delays pass at once)
    clock.set_scale(100_000.0)
    try:
        cloud.clients.events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": "{}"}])
        cloud.settle()
    finally:
        clock.set_scale(cloud.time_scale)
    # Then three attempts were made, each a function error, and the journal says so
    attempts = [e.detail for e in journal.of("invoke-async") if e.detail["target"] == lambda_arn]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [
        (1, "function-error"),
        (2, "function-error"),
        (3, "function-error"),
    ]
    assert "failing on purpose" in attempts[0]["error"]
    assert [i.ok for i in cloud.lambdas.invocations if i.function == lambda_arn.rsplit(":", 1)[1]] == [False] * 3
    # And, the function having no dead-letter queue, the event is dropped (journalled)
    (dropped,) = [e.detail for e in journal.of("dead-letter") if e.detail["target"] == lambda_arn]
    assert dropped["outcome"] == "dropped"


def test_a_schedule_rule_never_matches_put_events(cloud: Any) -> None:
    lambda_arn = function(cloud)
    rule = unique("hourly")
    cloud.clients.events.put_rule(Name=rule, ScheduleExpression="rate(1 hour)")
    cloud.clients.events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": lambda_arn}])
    cloud.clients.events.put_events(Entries=[{"Source": unique("any"), "DetailType": "t", "Detail": "{}"}])
    cloud.settle()
    assert invocations_of(cloud, lambda_arn) == []


# ---- schedule expressions are checked when the rule is created ------------------------------------------


def test_pinned_moto_takes_any_cron_and_a_loose_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own PutRule
    monkeypatch.setattr(events_models.EventsBackend, "put_rule", shim._original_put_rule)
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        # When rules with expressions EventBridge refuses are created / Then moto stores them
        for expression in ("cron(this is not cron)", "rate(1 hours)"):
            events.put_rule(Name=unique("loose"), ScheduleExpression=expression)
        assert len(events.list_rules()["Rules"]) == 2, revisit(SHIM)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "cron(0 10 * * * *)",
            "Parameter ScheduleExpression is not valid. exactly one of Day-of-month and Day-of-week",
        ),
        ("rate(1 hours)", "Parameter ScheduleExpression is not valid. rate(1 hours): the unit is singular for 1"),
        ("cron(0 10 ? * 5L *)", "Day-of-week '5L' (the guide documents L alone) is not supported by the local cloud"),
    ],
)
def test_a_schedule_eventbridge_refuses_or_the_local_cloud_cannot_fire_is_refused_at_put_rule(
    expression: str, message: str
) -> None:
    shim.install()
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        name = unique("scheduled")
        # When the rule is created / Then PutRule fails with the reason, naming the rule, and stores nothing
        with pytest.raises(ClientError) as error:
            events.put_rule(Name=name, ScheduleExpression=expression)
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert message in error.value.response["Error"]["Message"]
        assert f"(rule {name}: {expression})" in error.value.response["Error"]["Message"]
        assert events.list_rules()["Rules"] == []
        # And a valid cron rule is created as before
        events.put_rule(Name=name, ScheduleExpression="cron(0 10 ? * MON-FRI *)")
        assert [r["ScheduleExpression"] for r in events.list_rules()["Rules"]] == ["cron(0 10 ? * MON-FRI *)"]


def test_installed_again_one_event_is_delivered_once_to_each_target() -> None:
    # Given a rule with a Lambda target (the shim's) and an SQS target (moto's), and the shim installed again
    cloud = support.stand_in_cloud()
    support.install_again(shim)
    shim.set_cloud(cloud)
    try:
        with mock_aws():
            events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
            queue = sqs.create_queue(QueueName="q")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name="r", EventPattern=json.dumps({"source": ["app"]}))
            function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"
            events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": function}, {"Id": "2", "Arn": queue_arn}])
            # When one event is put on the bus
            events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}"}])
            # Then the shim handed one delivery to the cloud, and moto delivered one message to the queue
            assert cloud.dispatcher.work == ["deliver"]
            received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            assert len(received.get("Messages", [])) == 1
    finally:
        shim.set_cloud(None)
