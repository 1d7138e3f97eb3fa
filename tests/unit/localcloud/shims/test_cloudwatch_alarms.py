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
from botocore.exceptions import ClientError
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
    """An alarm on a metric that never gets data and ignores missing data: its evaluation keeps whatever state it
    is in, so only SetAlarmState moves it."""
    return alarm_request(name, MetricName="NeverReported", TreatMissingData="ignore", **extra)


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
    monkeypatch.setattr(cw_models.CloudWatchBackend, "put_metric_alarm", shim._original_put_metric_alarm)
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
    # Given a breaching alarm and a quiet alarm (missing data not breaching), both new: INSUFFICIENT_DATA
    breaching, quiet = unique("breaching"), unique("quiet")
    cloudwatch.put_metric_alarm(**alarm_request(breaching))
    cloudwatch.put_metric_alarm(**alarm_request(quiet))
    now = breach(cloudwatch, breaching)
    assert state_of(cloudwatch, breaching) == state_of(cloudwatch, quiet) == "INSUFFICIENT_DATA"
    # When every alarm is evaluated
    states = shim.evaluate_all(ACCOUNT, REGION, now)
    # Then the data decides, and each change is journaled
    assert (states[breaching], states[quiet]) == ("ALARM", "OK")
    [record] = [e.detail for e in journal.of("alarm") if e.detail["alarm"] == breaching]
    assert (record["previous"], record["state"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert record["reason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [3]")
    described = cloudwatch.describe_alarms(AlarmNames=[breaching])["MetricAlarms"][0]
    assert json.loads(described["StateReasonData"])["recentDatapoints"] == [3.0]
    # And evaluating again changes nothing
    shim.evaluate_all(ACCOUNT, REGION, now)
    assert len([e for e in journal.of("alarm") if e.detail["alarm"] == breaching]) == 1


# ---- initial state, metric math and composite alarms (decorator mode) ---------------------------------------


def test_pinned_moto_starts_alarms_in_ok_replaces_them_on_update_and_has_no_composite_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shim.install()
    monkeypatch.setattr(cw_models.CloudWatchBackend, "put_metric_alarm", shim._original_put_metric_alarm)
    monkeypatch.delattr(shim_response(), "put_composite_alarm")
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        name = unique("moto")
        cloudwatch.put_metric_alarm(**alarm_request(name))
        created = state_of(cloudwatch, name)
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
        cloudwatch.put_metric_alarm(**alarm_request(name, Threshold=5.0))
        updated = state_of(cloudwatch, name)
        with pytest.raises(NotImplementedError, match="put_composite_alarm"):
            cloudwatch.put_composite_alarm(AlarmName=unique("composite"), AlarmRule=f"ALARM({name})")
    assert (created, updated) == ("OK", "OK"), revisit(SHIM)


def shim_response() -> Any:
    from moto.cloudwatch.responses import CloudWatchResponse

    return CloudWatchResponse


def test_a_new_alarm_is_insufficient_data_and_an_update_keeps_its_state(cloudwatch: Any) -> None:
    # Given a new alarm: CloudWatch sets it to INSUFFICIENT_DATA until it is evaluated (PutMetricAlarm reference)
    name = unique("new")
    cloudwatch.put_metric_alarm(**alarm_request(name))
    [described] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert (described["StateValue"], described["StateReason"]) == (
        "INSUFFICIENT_DATA",
        "Unchecked: Initial alarm creation",
    )
    # When it is in ALARM and its configuration is updated / Then its state is left unchanged
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="operator")
    cloudwatch.put_metric_alarm(**alarm_request(name, Threshold=5.0))
    [described] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert (described["StateValue"], described["StateReason"], described["Threshold"]) == ("ALARM", "operator", 5.0)


@pytest.mark.parametrize(
    ("treat_missing", "state"),
    [("missing", "INSUFFICIENT_DATA"), ("ignore", "INSUFFICIENT_DATA"), ("notBreaching", "OK"), ("breaching", "ALARM")],
)
def test_from_insufficient_data_without_any_data_the_treatment_of_missing_data_decides(
    cloudwatch: Any, treat_missing: str, state: str
) -> None:
    name = unique("quiet")
    cloudwatch.put_metric_alarm(**alarm_request(name, TreatMissingData=treat_missing))
    assert shim.evaluate_all(ACCOUNT, REGION)[name] == state


def math_alarm(name: str, expression: str, **extra: Any) -> dict[str, Any]:
    """An error-rate alarm: 5XX errors / invocations, in percent, over the alarm test namespace."""

    def stat(query_id: str, metric: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "EndpointName", "Value": name}],
                },
                "Period": 300,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    return {
        "AlarmName": name,
        "EvaluationPeriods": 1,
        "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "Metrics": [
            stat("errors", "Invocation5XXErrors"),
            stat("requests", "Invocations"),
            {"Id": "rate", "Expression": expression, "ReturnData": True},
        ],
        **extra,
    }


def put(cloudwatch: Any, name: str, metric: str, value: float) -> None:
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "EndpointName", "Value": name}],
                "Value": value,
                "Timestamp": datetime.fromtimestamp(math.floor(clock.time() / 300) * 300 - 30, UTC),
            }
        ],
    )


def test_a_metric_math_alarm_is_evaluated_on_its_expression(cloudwatch: Any) -> None:
    # Given an error-rate alarm (100 * errors / requests > 5%) and, in the last period, 3 errors in 40 requests
    name = unique("error-rate")
    cloudwatch.put_metric_alarm(**math_alarm(name, "IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)"))
    put(cloudwatch, name, "Invocation5XXErrors", 3)
    put(cloudwatch, name, "Invocations", 40)
    # When the alarms are evaluated
    states = shim.evaluate_all(ACCOUNT, REGION)
    # Then the expression decides: 7.5% > 5%
    assert states[name] == "ALARM"
    [described] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert described["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [7.5]")
    assert json.loads(described["StateReasonData"])["period"] == 300


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("SEARCH('{AWS/SageMaker} Invocations', 'Sum', 300)", "the metric math function SEARCH is not supported"),
        ("errors / nope", "the expression names 'nope', which is not a query of the alarm"),
        ("METRICS()", "must return a single time series, not an array"),
        ("100 * (errors", "expected ) in"),
    ],
)
def test_a_metric_math_alarm_the_local_cloud_cannot_evaluate_is_refused_with_the_reason(
    cloudwatch: Any, expression: str, message: str
) -> None:
    name = unique("refused")
    with pytest.raises(ClientError) as error:
        cloudwatch.put_metric_alarm(**math_alarm(name, expression))
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"].startswith(f"alarm {name}: ")
    assert message in error.value.response["Error"]["Message"]
    assert cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_a_composite_alarm_follows_its_rule(cloudwatch: Any) -> None:
    # Given two metric alarms and a composite: errors in ALARM while no deployment is in progress
    errors, deploying = unique("errors"), unique("deploying")
    for name in (errors, deploying):
        cloudwatch.put_metric_alarm(**manual_alarm(name))
    composite = unique("page-oncall")
    cloudwatch.put_composite_alarm(
        AlarmName=composite, AlarmRule=f'ALARM("{errors}") AND NOT ALARM({deploying})', AlarmDescription="page"
    )
    [described] = cloudwatch.describe_alarms(AlarmNames=[composite], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert (described["StateValue"], described["AlarmRule"]) == (
        "INSUFFICIENT_DATA",
        f'ALARM("{errors}") AND NOT ALARM({deploying})',
    )
    # When the errors alarm goes to ALARM / Then the composite does too
    cloudwatch.set_alarm_state(AlarmName=errors, StateValue="ALARM", StateReason="test")
    assert shim.evaluate_all(ACCOUNT, REGION)[composite] == "ALARM"
    reason = cloudwatch.describe_alarms(AlarmNames=[composite], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"][0]
    assert f"{errors} is ALARM" in reason["StateReason"]
    # When a deployment is in progress / Then the composite is OK again
    cloudwatch.set_alarm_state(AlarmName=deploying, StateValue="ALARM", StateReason="test")
    assert shim.evaluate_all(ACCOUNT, REGION)[composite] == "OK"
    transitions = [
        (e.detail["previous"], e.detail["state"]) for e in journal.of("alarm") if e.detail["alarm"] == composite
    ]
    assert transitions == [("INSUFFICIENT_DATA", "ALARM"), ("ALARM", "OK")]


def test_a_composite_of_composites_is_evaluated_after_the_ones_it_names(cloudwatch: Any) -> None:
    base = unique("base")
    cloudwatch.put_metric_alarm(**manual_alarm(base))
    inner, outer = unique("inner"), unique("outer")
    cloudwatch.put_composite_alarm(AlarmName=inner, AlarmRule=f"ALARM({base})")
    cloudwatch.put_composite_alarm(AlarmName=outer, AlarmRule=f"ALARM({inner}) OR FALSE")
    cloudwatch.set_alarm_state(AlarmName=base, StateValue="ALARM", StateReason="test")
    states = shim.evaluate_all(ACCOUNT, REGION)
    assert (states[inner], states[outer]) == ("ALARM", "ALARM")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "ALARM(does-not-exist)",
            "Could not save the composite alarm as alarms ['does-not-exist'] in the alarm rule do not exist",
        ),
        ("ALARM({base}) AND", "ends too early"),
        ("ANOMALY({base})", "ANOMALY(...) is not an AlarmRule function"),
        ("ALARM({self})", "would make a cycle"),
    ],
)
def test_an_alarm_rule_cloudwatch_would_refuse_is_refused(cloudwatch: Any, rule: str, message: str) -> None:
    base, name = unique("base"), unique("composite")
    cloudwatch.put_metric_alarm(**manual_alarm(base))
    with pytest.raises(ClientError) as error:
        cloudwatch.put_composite_alarm(AlarmName=name, AlarmRule=rule.format(base=base, self=name))
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert message in error.value.response["Error"]["Message"]


def test_a_composite_alarm_deploys_from_a_template(cloudwatch: Any) -> None:
    from localcloud.shims import cloudformation

    cloudformation.install()
    base = unique("base")
    template = {
        "Resources": {
            "Base": {"Type": "AWS::CloudWatch::Alarm", "Properties": manual_alarm(base)},
            "Composite": {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "Properties": {"AlarmName": f"{base}-composite", "AlarmRule": {"Fn::Sub": "ALARM(${Base})"}},
            },
        }
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName=unique("stack"), TemplateBody=json.dumps(template))
    [described] = cloudwatch.describe_alarms(AlarmNames=[f"{base}-composite"], AlarmTypes=["CompositeAlarm"])[
        "CompositeAlarms"
    ]
    assert described["AlarmRule"] == f"ALARM({base})"


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
        # CloudWatch invokes a Lambda action only if the function policy allows it (as the stack's permission does)
        clients.lambda_.add_permission(
            FunctionName=self.function,
            StatementId="alarms",
            Action="lambda:InvokeFunction",
            Principal="lambda.alarms.cloudwatch.amazonaws.com",
            SourceAccount=ACCOUNT,
        )
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


# the function's role must trust Lambda, or Lambda cannot assume it (the local cloud's IAM checks it)
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@heavy_fixture
def cloud() -> Iterator[Any]:
    # real-time cloud clock: the ticker's own evaluations cannot age the test datapoints out of their period
    with running_cloud(time_scale=1.0) as local:
        local.clients.iam.create_role(
            RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
        )
        yield local


def test_a_breach_invokes_the_lambda_action_with_the_alarm_event_and_publishes_to_sns(cloud: Any) -> None:
    # Given an alarm with a Lambda and an SNS topic as ALARM actions
    actions = Actions(cloud)
    name = unique("endpoint-5xx")
    cloudwatch = cloud.clients.cloudwatch
    # When its metric has breached (before the alarm exists: its first evaluation, by the heartbeat or here, sees it)
    now = breach(cloudwatch, name)
    cloudwatch.put_metric_alarm(**alarm_request(name, AlarmActions=[actions.function, actions.topic]))
    shim.evaluate_all(ACCOUNT, REGION, now)
    cloud.settle()
    # Then the Lambda received the CloudWatch alarm event, which the retrain Lambda's model parses
    [event] = actions.events()
    parsed = AlarmEvent.model_validate(event)
    assert (parsed.alarm_data.alarm_name, parsed.alarm_data.state.value) == (name, "ALARM")
    assert parsed.alarm_data.previous_state is not None
    assert parsed.alarm_data.previous_state.value == "INSUFFICIENT_DATA"
    assert parsed.alarm_arn == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    assert json.loads(parsed.alarm_data.state.reason_data or "{}")["recentDatapoints"] == [3.0]
    # And the topic got CloudWatch's alarm message
    [notification] = actions.mail()
    assert notification["Subject"] == f'ALARM: "{name}" in {REGION}'
    message = json.loads(notification["Message"])
    assert (message["AlarmName"], message["NewStateValue"], message["OldStateValue"]) == (
        name,
        "ALARM",
        "INSUFFICIENT_DATA",
    )
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
        ("INSUFFICIENT_DATA", "ALARM"),
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
    # Then moto changed the state and the shim saw one transition (its actions would run once), from the state a
    # new alarm starts in (INSUFFICIENT_DATA, as PutMetricAlarm leaves it)
    assert state_of(cloudwatch, name) == "ALARM"
    assert [(e.detail["previous"], e.detail["state"]) for e in journal.of("alarm")] == [
        ("INSUFFICIENT_DATA", "ALARM")
    ]  # a new alarm starts INSUFFICIENT_DATA
