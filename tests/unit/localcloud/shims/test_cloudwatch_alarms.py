"""Contract and behaviour of the CloudWatch alarms shim (alarms are evaluated; state changes run their actions)."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch import models as cw_models

from lambdas.retrain.models import AlarmEvent
from localcloud.clock import clock
from localcloud.runtime.journal import journal
from localcloud.shims import cloudwatch_alarms as shim
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

SHIM = "cloudwatch_alarms"
NAMESPACE = "MLOps/alarm-test"


def alarm_request(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "Namespace": NAMESPACE,
        "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": "EndpointName", "Value": name}],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        **extra,
    }


def breach(cloudwatch: Any, name: str, value: float = 3.0) -> float:
    """A breaching datapoint in the last complete 5-minute period before now (alarms evaluate complete, aligned
    periods); returns that now, for the evaluation: evaluated later, a period boundary may have passed in between
    and the datapoint would no longer be in the last complete period."""
    now = clock.time()
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": [{"Name": "EndpointName", "Value": name}],
                "Value": value,
                "Timestamp": datetime.fromtimestamp(math.floor(now / 300) * 300 - 30, UTC),
            }
        ],
    )
    return now


def manual_alarm(name: str, **extra: Any) -> dict[str, Any]:
    """A metric-math alarm: the local evaluation leaves it alone, so only SetAlarmState moves it."""
    return {
        "AlarmName": name,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Metrics": [{"Id": "e", "Expression": "1", "ReturnData": True}],
        **extra,
    }


def state_of(cloudwatch: Any, name: str) -> str:
    return str(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_point_still_exists_with_the_signature_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_update).parameters) == [
        "self",
        "reason",
        "reason_data",
        "state_value",
    ], revisit(SHIM)
    init = inspect.getsource(cw_models.Alarm.__init__)
    for attribute in (
        "self.alarm_actions",
        "self.ok_actions",
        "self.insufficient_data_actions",
        "self.actions_enabled",
        "self.metric_data_queries",
        "self.state_updated_timestamp",
        "self.state_reason_data",
        "self.treat_missing_data",
        "self.datapoints_to_alarm",
        "self.extended_statistic",
    ):
        assert attribute in init, revisit(SHIM)
    backend = inspect.getsource(cw_models.CloudWatchBackend.__init__)
    assert "self.alarms" in backend and "self.metric_data" in backend, revisit(SHIM)


def test_pinned_moto_neither_evaluates_alarms_nor_runs_their_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own alarms, with an SNS action whose topic feeds a queue
    shim.install()
    monkeypatch.setattr(cw_models.Alarm, "update_state", shim._original_update)
    with mock_aws():
        cloudwatch, sns, sqs = (boto3.client(s, region_name=REGION) for s in ("cloudwatch", "sns", "sqs"))
        topic = sns.create_topic(Name="alarms")["TopicArn"]
        queue = sqs.create_queue(QueueName="alarms")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        name = unique("alarm")
        cloudwatch.put_metric_alarm(**alarm_request(name, AlarmActions=[topic]))
        # When its metric breaches, and when its state is set to ALARM through the API
        breach(cloudwatch, name)
        never_evaluated = state_of(cloudwatch, name)
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
        messages = sqs.receive_message(QueueUrl=queue).get("Messages", [])
    # Then moto never evaluated it (and starts alarms in OK, where CloudWatch starts in INSUFFICIENT_DATA),
    # and the state change published nothing
    assert never_evaluated == "OK", revisit(SHIM)
    assert messages == [], revisit(SHIM)


# ---- behaviour without a cloud (decorator mode) --------------------------------------------------------


@pytest.fixture
def cloudwatch(clean_journal: None) -> Iterator[Any]:
    shim.install()
    shim.set_cloud(None)
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def test_evaluate_all_moves_alarms_to_the_state_their_data_says(cloudwatch: Any) -> None:
    # Given a breaching alarm, a quiet alarm and a metric-math alarm
    breaching, quiet = unique("breaching"), unique("quiet")
    cloudwatch.put_metric_alarm(**alarm_request(breaching))
    cloudwatch.put_metric_alarm(**alarm_request(quiet))
    now = breach(cloudwatch, breaching)
    math = unique("math")
    cloudwatch.put_metric_alarm(**manual_alarm(math))
    # When every alarm is evaluated
    states = shim.evaluate_all(ACCOUNT, REGION, now)
    # Then the data decides, metric math is left alone, and each change is journaled
    assert (states[breaching], states[quiet]) == ("ALARM", "OK")
    assert math not in states
    [record] = [e.detail for e in journal.of("alarm") if e.detail["alarm"] == breaching]
    assert (record["previous"], record["state"]) == ("OK", "ALARM")
    assert record["reason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [3]")
    described = cloudwatch.describe_alarms(AlarmNames=[breaching])["MetricAlarms"][0]
    assert json.loads(described["StateReasonData"])["recentDatapoints"] == [3.0]
    # And evaluating again changes nothing
    shim.evaluate_all(ACCOUNT, REGION, now)
    assert len([e for e in journal.of("alarm") if e.detail["alarm"] == breaching]) == 1


# ---- actions in a running local cloud ------------------------------------------------------------------

RECORDER = {
    "app.py": """
        import json

        def handler(event, context):
            print("ALARM-EVENT " + json.dumps(event))
            return {"received": event["alarmData"]["state"]["value"]}
    """
}


class Actions:
    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        clients = cloud.clients
        self.function = clients.lambda_.create_function(
            FunctionName=unique("retrain"),
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": zip_package(RECORDER)},
        )["FunctionArn"]
        self.topic = clients.sns.create_topic(Name=unique("alarms"))["TopicArn"]
        self.queue = clients.sqs.create_queue(QueueName=unique("alarm-mail"))["QueueUrl"]
        queue_arn = clients.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        clients.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)

    def events(self) -> list[dict[str, Any]]:
        name = self.function.rsplit(":", 1)[1]
        return [
            json.loads(line.split("ALARM-EVENT ", 1)[1])
            for invocation in self.cloud.lambdas.invocations
            if invocation.function == name
            for line in invocation.logs.splitlines()
            if line.startswith("ALARM-EVENT ")
        ]

    def mail(self) -> list[dict[str, Any]]:
        messages = self.cloud.clients.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@heavy_fixture
def cloud() -> Iterator[Any]:
    # real-time cloud clock: the ticker's own evaluations cannot age the test datapoints out of their period
    with running_cloud(time_scale=1.0) as local:
        local.clients.iam.create_role(
            RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps({"Statement": []})
        )
        yield local


def test_a_breach_invokes_the_lambda_action_with_the_alarm_event_and_publishes_to_sns(cloud: Any) -> None:
    # Given an alarm with a Lambda and an SNS topic as ALARM actions
    actions = Actions(cloud)
    name = unique("endpoint-5xx")
    cloudwatch = cloud.clients.cloudwatch
    cloudwatch.put_metric_alarm(**alarm_request(name, AlarmActions=[actions.function, actions.topic]))
    # When its metric breaches and the alarm is evaluated
    now = breach(cloudwatch, name)
    shim.evaluate_all(ACCOUNT, REGION, now)
    cloud.settle()
    # Then the Lambda received the CloudWatch alarm event, which the retrain Lambda's model parses
    [event] = actions.events()
    parsed = AlarmEvent.model_validate(event)
    assert (parsed.alarm_data.alarm_name, parsed.alarm_data.state.value) == (name, "ALARM")
    assert parsed.alarm_data.previous_state is not None and parsed.alarm_data.previous_state.value == "OK"
    assert parsed.alarm_arn == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    assert json.loads(parsed.alarm_data.state.reason_data or "{}")["recentDatapoints"] == [3.0]
    # And the topic got CloudWatch's alarm message
    [notification] = actions.mail()
    assert notification["Subject"] == f'ALARM: "{name}" in {REGION}'
    message = json.loads(notification["Message"])
    assert (message["AlarmName"], message["NewStateValue"], message["OldStateValue"]) == (name, "ALARM", "OK")
    assert [e.detail["outcome"] for e in journal.of("alarm-action") if e.detail["alarm"] == name] == ["published"]


def test_set_alarm_state_runs_the_actions_of_each_new_state(cloud: Any) -> None:
    # Given an alarm with ALARM and OK actions on the Lambda (one the heartbeat's evaluation leaves alone)
    actions = Actions(cloud)
    name = unique("drift")
    cloudwatch = cloud.clients.cloudwatch
    cloudwatch.put_metric_alarm(**manual_alarm(name, AlarmActions=[actions.function], OKActions=[actions.function]))
    # When its state is set to ALARM, again to ALARM, then to OK through the API
    for state in ("ALARM", "ALARM", "OK"):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"operator says {state}")
        cloud.settle()
    # Then each change (not the repeat) ran the new state's actions, in order
    assert [(e["alarmData"]["previousState"]["value"], e["alarmData"]["state"]["value"]) for e in actions.events()] == [
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    assert actions.events()[0]["alarmData"]["state"]["reason"] == "operator says ALARM"


def test_disabled_actions_do_not_run(cloud: Any) -> None:
    actions = Actions(cloud)
    name = unique("disabled")
    cloudwatch = cloud.clients.cloudwatch
    cloudwatch.put_metric_alarm(**manual_alarm(name, AlarmActions=[actions.function], ActionsEnabled=False))
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    cloud.settle()
    assert actions.events() == []
    assert [e.detail["state"] for e in journal.of("alarm") if e.detail["alarm"] == name] == ["ALARM"]


def test_installed_again_a_state_change_still_runs_the_shim_once(cloudwatch: Any) -> None:
    # Given an alarm, and the shim installed again (every LocalCloud start and stop installs it)
    name = unique("alarm")
    cloudwatch.put_metric_alarm(**manual_alarm(name))
    support.install_again(shim)
    # When its state changes once through the API
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    # Then moto changed the state and the shim saw one transition (its actions would run once)
    assert state_of(cloudwatch, name) == "ALARM"
    assert [(e.detail["previous"], e.detail["state"]) for e in journal.of("alarm")] == [("OK", "ALARM")]
