"""CloudWatch metric alarm evaluation of the local cloud, on moto's own alarm and datapoint objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from lambdas.retrain import logic as retrain
from lambdas.retrain.models import AlarmEvent
from localcloud.runtime import alarms
from localcloud.runtime.alarms import Datapoint
from tests.unit.localcloud.support import ACCOUNT, REGION, unique

NOW = 1_800_000_000.0  # a period boundary: evaluated periods are [NOW-60, NOW), [NOW-120, NOW-60), ...
PERIOD = 60


@pytest.fixture(scope="module")
def cloudwatch() -> Iterator[Any]:
    """moto's CloudWatch storing alarms as moto does: these tests are about the evaluation, and the shim's
    PutMetricAlarm (initial state, refusals: tests/unit/localcloud/shims/test_cloudwatch_alarms.py) stays installed
    once another test module of this process has installed it."""
    from moto.cloudwatch import models as cw_models

    from localcloud.shims import cloudwatch_alarms

    installed = cw_models.CloudWatchBackend.put_metric_alarm
    cw_models.CloudWatchBackend.put_metric_alarm = cloudwatch_alarms._original_put_metric_alarm  # type: ignore[method-assign]
    try:
        with mock_aws():
            yield boto3.client("cloudwatch", region_name=REGION)
    finally:
        cw_models.CloudWatchBackend.put_metric_alarm = installed  # type: ignore[method-assign]


def make_alarm(cloudwatch: Any, **overrides: Any) -> Any:
    """A metric alarm as moto stores it (the object the local evaluation reads)."""
    request: dict[str, Any] = {
        "AlarmName": unique("alarm"),
        "Namespace": "MLOps/test",
        "MetricName": "FeaturePSI",
        "Dimensions": [{"Name": "Endpoint", "Value": "churn"}],
        "Statistic": "Maximum",
        "Period": PERIOD,
        "EvaluationPeriods": 3,
        "Threshold": 0.2,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    request.update(overrides)
    request = {k: v for k, v in request.items() if v is not None}
    cloudwatch.put_metric_alarm(**request)
    return cloudwatch_backends[ACCOUNT][REGION].alarms[request["AlarmName"]]


def series(*values: float | list[float] | None) -> list[Datapoint]:
    """Datapoints by period, newest first: a number, several numbers, or None for no data in that period."""
    points = []
    for index, value in enumerate(values):
        if value is None:
            continue
        for offset, item in enumerate(value if isinstance(value, list) else [value]):
            points.append(Datapoint(NOW - index * PERIOD - 30 - offset, float(item)))
    return points


# ---- states --------------------------------------------------------------------------------------------


def test_three_breaching_periods_of_three_go_to_alarm_with_cloudwatchs_reason(cloudwatch: Any) -> None:
    # Given a 3-of-3 alarm on the maximum PSI, threshold 0.2
    alarm = make_alarm(cloudwatch)
    # When the last three periods all breach
    result = alarms.evaluate(alarm, series(0.5, 0.3, 0.25), NOW)
    # Then the alarm fires and says why, as CloudWatch words it
    assert result.state == "ALARM"
    assert result.values == [0.5, 0.3, 0.25]
    assert result.reason == (
        "Threshold Crossed: 3 out of the last 3 datapoints [0.5, 0.3, 0.25] were greater than or equal to the "
        "threshold (0.2) (minimum 3 datapoints for OK -> ALARM transition)."
    )


def test_one_clear_period_keeps_a_three_of_three_alarm_ok(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch)
    result = alarms.evaluate(alarm, series(0.5, 0.1, 0.25), NOW)
    assert result.state == "OK"
    assert result.reason.startswith("Threshold Crossed: 1 out of the last 3 datapoints [0.5, 0.1, 0.25] were not ")
    assert "(minimum 3 datapoints for ALARM -> OK transition)" in result.reason


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ((0.5, 0.0, 0.5), "ALARM"),  # 2 of the last 3 breach
        ((0.0, 0.5, 0.5), "ALARM"),  # not necessarily consecutive, nor the newest
        ((0.5, 0.0, 0.0), "OK"),
    ],
)
def test_m_of_n_counts_breaching_datapoints_among_the_last_n(
    cloudwatch: Any, values: tuple[float, ...], state: str
) -> None:
    # Given a 2-of-3 alarm
    alarm = make_alarm(cloudwatch, DatapointsToAlarm=2)
    # When the periods hold these maxima
    result = alarms.evaluate(alarm, series(*values), NOW)
    # Then two breaching datapoints are enough
    assert result.state == state


@pytest.mark.parametrize(
    ("treatment", "state"),
    [
        (None, "INSUFFICIENT_DATA"),  # default: missing
        ("missing", "INSUFFICIENT_DATA"),
        ("notBreaching", "OK"),
        ("breaching", "ALARM"),
    ],
)
def test_no_data_at_all_follows_treat_missing_data(cloudwatch: Any, treatment: str | None, state: str) -> None:
    # Given an alarm with this missing-data treatment
    alarm = make_alarm(cloudwatch, TreatMissingData=treatment)
    # When no datapoint exists in the evaluation range
    result = alarms.evaluate(alarm, [], NOW)
    # Then the treatment decides
    assert result.state == state
    assert result.values == [None, None, None]
    assert result.reason_data["evaluatedDatapoints"] == []


def test_no_data_with_ignore_keeps_the_current_state_and_reason(cloudwatch: Any) -> None:
    # Given an ignore-missing alarm that is in ALARM
    alarm = make_alarm(cloudwatch, TreatMissingData="ignore")
    alarm.update_state("Threshold Crossed: earlier", "{}", "ALARM")
    # When no data arrives
    result = alarms.evaluate(alarm, [], NOW)
    # Then it stays where it is, with its reason
    assert (result.state, result.reason) == ("ALARM", "Threshold Crossed: earlier")


@pytest.mark.parametrize(
    ("treatment", "state"),
    [
        ("missing", "OK"),  # only ALL datapoints missing means INSUFFICIENT_DATA
        ("ignore", "OK"),
        ("notBreaching", "OK"),
        ("breaching", "OK"),  # 2 missing-as-breaching of 3 needed
    ],
)
def test_some_data_and_no_breach_is_ok_whatever_the_treatment(cloudwatch: Any, treatment: str, state: str) -> None:
    # Given a 3-of-3 alarm and only the newest period reported, below the threshold
    alarm = make_alarm(cloudwatch, TreatMissingData=treatment)
    alarm.update_state("earlier", "{}", "INSUFFICIENT_DATA")
    # When it is evaluated
    result = alarms.evaluate(alarm, series(0.1, None, None), NOW)
    # Then it is OK: CloudWatch goes to INSUFFICIENT_DATA (missing) only when every datapoint is missing
    assert result.state == state


def test_missing_periods_treated_as_breaching_complete_an_alarm(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch, TreatMissingData="breaching")
    assert alarms.evaluate(alarm, series(0.5, None, None), NOW).state == "ALARM"
    assert alarms.evaluate(alarm, series(0.1, None, None), NOW).state == "OK"


def test_missing_periods_treated_as_not_breaching_never_fire(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch, TreatMissingData="notBreaching")
    result = alarms.evaluate(alarm, series(0.5, None, 0.9), NOW)
    assert result.state == "OK"
    assert result.values == [0.5, None, 0.9]


# ---- statistics and windows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("Sum", 16.0),
        ("Average", 4.0),
        ("Maximum", 10.0),
        ("Minimum", 1.0),
        ("SampleCount", 4.0),
        ("p50", 2.5),
        ("p99", 3.0 + 7.0 * 0.97),  # rank 0.99 * 3 = 2.97 between 3 and 10
        ("p100", 10.0),
    ],
)
def test_statistics_aggregate_the_datapoints_of_a_period(statistic: str, expected: float) -> None:
    assert alarms.statistic([3.0, 1.0, 10.0, 2.0], statistic) == pytest.approx(expected)


def test_an_unknown_statistic_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported statistic 'IQM'"):
        alarms.statistic([1.0], "IQM")


@pytest.mark.parametrize(
    ("overrides", "state", "newest"),
    [
        ({"Statistic": "Sum", "Threshold": 15.0}, "ALARM", 16.0),
        ({"Statistic": "Average", "Threshold": 5.0}, "OK", 4.0),
        ({"Statistic": "Maximum", "Threshold": 5.0}, "ALARM", 10.0),
        ({"Statistic": None, "ExtendedStatistic": "p99", "Threshold": 9.5}, "ALARM", 9.79),
        ({"Statistic": None, "ExtendedStatistic": "p99", "Threshold": 9.8}, "OK", 9.79),
    ],
)
def test_the_alarms_statistic_is_compared_with_the_threshold(
    cloudwatch: Any, overrides: dict[str, Any], state: str, newest: float
) -> None:
    # Given a 1-of-1 alarm with this statistic
    alarm = make_alarm(cloudwatch, EvaluationPeriods=1, **overrides)
    # When the period holds four datapoints
    result = alarms.evaluate(alarm, series([3.0, 1.0, 10.0, 2.0]), NOW)
    # Then the aggregate decides
    assert result.values[0] == pytest.approx(newest)
    assert result.state == state


@pytest.mark.parametrize(
    ("operator", "value", "state"),
    [
        ("GreaterThanThreshold", 0.7, "OK"),
        ("GreaterThanOrEqualToThreshold", 0.7, "ALARM"),
        ("LessThanThreshold", 0.7, "OK"),
        ("LessThanThreshold", 0.69, "ALARM"),
        ("LessThanOrEqualToThreshold", 0.7, "ALARM"),
    ],
)
def test_comparison_operators(cloudwatch: Any, operator: str, value: float, state: str) -> None:
    alarm = make_alarm(cloudwatch, EvaluationPeriods=1, Threshold=0.7, ComparisonOperator=operator)
    assert alarms.evaluate(alarm, series(value), NOW).state == state


def test_a_low_auc_alarm_reason_says_less_than(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch, EvaluationPeriods=1, Threshold=0.7, ComparisonOperator="LessThanThreshold")
    result = alarms.evaluate(alarm, series(0.61), NOW)
    assert "were less than the threshold (0.7)" in result.reason


def test_periods_are_half_open_windows_ending_now(cloudwatch: Any) -> None:
    # Given a 1-of-3 alarm
    alarm = make_alarm(cloudwatch, DatapointsToAlarm=1)
    edges = [
        Datapoint(NOW, 9.0),  # belongs to the period that has not ended yet
        Datapoint(NOW - 3 * PERIOD - 0.001, 9.0),  # before the evaluation range
        Datapoint(NOW - 3 * PERIOD, 0.1),  # first instant of the oldest evaluated period
    ]
    # When only those datapoints exist
    result = alarms.evaluate(alarm, edges, NOW)
    # Then only the in-range one counts
    assert result.values == [None, None, 0.1]
    assert result.state == "OK"


def test_matching_takes_moto_datapoints_of_exactly_the_alarms_metric(cloudwatch: Any) -> None:
    # Given datapoints of the metric with the alarm's dimensions, a superset, another name, and statistic sets
    namespace = unique("MLOps/matching")
    stamp = datetime.fromtimestamp(NOW - 30, UTC)
    exact = [{"Name": "Endpoint", "Value": "churn"}]
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "FeaturePSI", "Dimensions": exact, "Value": 0.3, "Timestamp": stamp},
            {
                "MetricName": "FeaturePSI",
                "Dimensions": exact,
                "Values": [0.1, 0.2],
                "Counts": [1, 2],
                "Timestamp": stamp,
            },
            {
                "MetricName": "FeaturePSI",
                "Dimensions": [*exact, {"Name": "Feature", "Value": "tenure"}],
                "Value": 5.0,
                "Timestamp": stamp,
            },
            {"MetricName": "FeatureKS", "Dimensions": exact, "Value": 5.0, "Timestamp": stamp},
            {
                "MetricName": "FeaturePSI",
                "Dimensions": exact,
                "StatisticValues": {"SampleCount": 1, "Sum": 7.0, "Minimum": 7.0, "Maximum": 7.0},
                "Timestamp": stamp,
            },
        ],
    )
    datums = cloudwatch_backends[ACCOUNT][REGION].metric_data
    # When the alarm's metric is matched
    points = alarms.matching(datums, namespace, "FeaturePSI", {"Endpoint": "churn"})
    # Then the full dimension set must match, Values/Counts expand, statistic sets (no single value) are skipped
    assert sorted(p.value for p in points) == [0.1, 0.2, 0.2, 0.3]
    assert {p.timestamp for p in points} == {NOW - 30}


# ---- what alarm actions receive ------------------------------------------------------------------------


def test_reason_data_has_cloudwatchs_shape(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch, DatapointsToAlarm=2)
    data = alarms.evaluate(alarm, series(0.5, None, 0.25), NOW).reason_data
    assert data == {
        "version": "1.0",
        "queryDate": "2027-01-15T08:00:00.000+0000",
        "startDate": "2027-01-15T07:57:00.000+0000",
        "statistic": "Maximum",
        "period": 60,
        "recentDatapoints": [0.5, 0.25],
        "threshold": 0.2,
        "evaluatedDatapoints": [  # newest first, each stamped with its period's start
            {"timestamp": "2027-01-15T07:59:00.000+0000", "value": 0.5},
            {"timestamp": "2027-01-15T07:57:00.000+0000", "value": 0.25},
        ],
    }
    json.dumps(data)  # it travels as the JSON string reasonData


def test_reason_data_of_a_percentile_alarm_names_the_extended_statistic(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch, Statistic=None, ExtendedStatistic="p99", EvaluationPeriods=1)
    data = alarms.evaluate(alarm, series(1.0), NOW).reason_data
    assert data["extendedStatistic"] == "p99"
    assert "statistic" not in data


def test_the_alarm_event_is_what_the_retrain_lambda_parses(cloudwatch: Any) -> None:
    # Given a 3-of-3 drift alarm that has just been evaluated into ALARM, as the local cloud does it
    alarm = make_alarm(cloudwatch, AlarmDescription="drift on churn")
    previous = {
        "value": alarm.state_value,
        "reason": alarm.state_reason,
        "reasonData": alarm.state_reason_data,
        "timestamp": alarms.iso(alarms.epoch(alarm.state_updated_timestamp)),
    }
    result = alarms.evaluate(alarm, series(0.5, 0.3, 0.25), NOW)
    alarm.update_state(result.reason, json.dumps(result.reason_data), result.state)
    # When the Lambda action's event is built
    event = alarms.alarm_event(alarm, previous, ACCOUNT, REGION, NOW)
    # Then the retrain Lambda's own model parses it, and its guard sees the three breaching periods
    parsed = AlarmEvent.model_validate(event)
    transition = retrain.Transition.from_event(parsed)
    assert (transition.alarm, transition.state, transition.previous_state) == (alarm.name, "ALARM", "OK")
    assert transition.alarm_arn == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm.name}"
    assert transition.timestamp == datetime.fromtimestamp(NOW, UTC)
    assert transition.period_seconds == PERIOD
    assert transition.reason_data == result.reason_data
    assert parsed.alarm_data.configuration["description"] == "drift on churn"
    assert parsed.alarm_data.configuration["metrics"][0]["metricStat"] == {
        "metric": {"namespace": "MLOps/test", "name": "FeaturePSI", "dimensions": {"Endpoint": "churn"}},
        "period": PERIOD,
        "stat": "Maximum",
    }
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="guard",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        update = retrain.update_breaches(dynamodb, "guard", transition, "GreaterThanOrEqualToThreshold")
    assert update.consecutive == 3
    assert update.detail == "3 of 3 evaluated periods breaching"


def test_a_metric_math_alarm_event_lists_its_queries(cloudwatch: Any) -> None:
    # Given an alarm on a metric-math expression (no single metric, no period of its own)
    name = unique("math")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[{"Id": "e1", "Expression": "SUM(METRICS())", "Label": "errors", "ReturnData": True}],
    )
    alarm = cloudwatch_backends[ACCOUNT][REGION].alarms[name]
    alarm.update_state("set by an operator", "{}", "ALARM")
    # When its action's event and SNS message are built
    event = alarms.alarm_event(alarm, {"value": "OK", "timestamp": alarms.iso(NOW)}, ACCOUNT, REGION, NOW)
    message = json.loads(alarms.sns_message(alarm, "OK", ACCOUNT, REGION, NOW))
    # Then they describe the expression, and the retrain Lambda still parses the event
    assert event["alarmData"]["configuration"]["metrics"] == [
        {"id": "e1", "returnData": True, "expression": "SUM(METRICS())", "label": "errors"}
    ]
    assert AlarmEvent.model_validate(event).alarm_data.period_seconds() is None
    assert message["Trigger"]["Period"] is None


def test_the_sns_message_has_cloudwatchs_fields(cloudwatch: Any) -> None:
    alarm = make_alarm(cloudwatch, AlarmDescription="5xx on churn")
    alarm.update_state("Threshold Crossed: test", "{}", "ALARM")
    message = json.loads(alarms.sns_message(alarm, "OK", ACCOUNT, REGION, NOW))
    assert {k: message[k] for k in ("AlarmName", "NewStateValue", "OldStateValue", "Region", "AWSAccountId")} == {
        "AlarmName": alarm.name,
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "Region": REGION,
        "AWSAccountId": ACCOUNT,
    }
    assert message["StateChangeTime"] == "2027-01-15T08:00:00.000+0000"
    assert message["Trigger"]["Dimensions"] == [{"name": "Endpoint", "value": "churn"}]
    assert message["Trigger"]["Threshold"] == 0.2


def test_timestamps_are_cloudwatchs_and_parse_back() -> None:
    assert alarms.iso(NOW + 0.25) == "2027-01-15T08:00:00.250+0000"
    assert retrain.parse_time(alarms.iso(NOW)).timestamp() == NOW
    assert alarms.epoch(datetime(2027, 1, 15, 8, 0)) == NOW  # moto stores naive UTC datetimes
    assert alarms.epoch(NOW) == NOW


# ---- metric math plans and composite rules -------------------------------------------------------------------


def math_queries(cloudwatch: Any, metrics: list[dict[str, Any]]) -> list[Any]:
    """moto's MetricDataQuery objects of a metric-math alarm with ``metrics`` (stored without the shim's check)."""
    name = unique("math")
    cloudwatch.put_metric_alarm(
        AlarmName=name, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold", Metrics=metrics
    )
    return list(cloudwatch_backends[ACCOUNT][REGION].alarms[name].metric_data_queries)


def stat(query_id: str, period: int = PERIOD) -> dict[str, Any]:
    metric = {"Namespace": "MLOps/test", "MetricName": query_id, "Dimensions": [{"Name": "Endpoint", "Value": "churn"}]}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"}, "ReturnData": False}


def test_a_math_plan_orders_expressions_after_the_ones_they_name(cloudwatch: Any) -> None:
    queries = math_queries(
        cloudwatch,
        [
            stat("errors"),
            stat("requests"),
            {"Id": "percent", "Expression": "100 * ratio", "ReturnData": True},
            {"Id": "ratio", "Expression": "errors / requests", "ReturnData": False},
        ],
    )
    plan = alarms.math_plan(queries)
    assert [name for name, _ in plan.expressions] == ["ratio", "percent"]
    assert (plan.returned, plan.period) == ("percent", PERIOD)
    datums = [
        moto_datum("errors", 3.0, NOW - 30),
        moto_datum("requests", 60.0, NOW - 30),
        moto_datum("errors", 1.0, NOW - 90),
    ]
    assert alarms.evaluate_math(plan, datums, NOW, 2) == [5.0, None]  # newest first


def moto_datum(name: str, value: float, at: float) -> Any:
    from moto.cloudwatch.models import MetricDatum

    return MetricDatum(
        "MLOps/test", name, value, [{"Name": "Endpoint", "Value": "churn"}], datetime.fromtimestamp(at, UTC)
    )


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ([stat("a"), stat("b", period=300), {"Id": "e", "Expression": "a + b"}], "share one period, not [60, 300]"),
        ([stat("a"), {"Id": "e", "Expression": "f"}, {"Id": "f", "Expression": "e", "ReturnData": False}], "cycle"),
        ([{**stat("a"), "ReturnData": True}, {"Id": "e", "Expression": "a"}], "exactly one query must have ReturnData"),
    ],
)
def test_a_math_plan_refuses_what_cannot_be_evaluated(
    cloudwatch: Any, metrics: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(alarms.metric_math.MathError, match=message.replace("[", r"\[").replace("]", r"\]")):
        alarms.math_plan(math_queries(cloudwatch, metrics))


@pytest.mark.parametrize(
    ("rule", "states", "holds"),
    [
        ("ALARM(a) AND ALARM(b)", {"a": "ALARM", "b": "ALARM"}, True),
        ("ALARM(a) AND ALARM(b)", {"a": "ALARM", "b": "OK"}, False),
        ('ALARM("a") OR OK(b)', {"a": "OK", "b": "OK"}, True),
        ("ALARM(a) AND NOT ALARM(b)", {"a": "ALARM", "b": "INSUFFICIENT_DATA"}, True),
        ("INSUFFICIENT_DATA(a)", {"a": "INSUFFICIENT_DATA"}, True),
        ("NOT (ALARM(a) OR ALARM(b)) AND TRUE", {"a": "OK", "b": "OK"}, True),
        ("ALARM(a) OR ALARM(b) AND FALSE", {"a": "ALARM", "b": "ALARM"}, True),  # AND binds tighter than OR
        ("ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:a)", {"a": "ALARM"}, True),
        ("alarm(a) and not ok(b)", {"a": "ALARM", "b": "ALARM"}, True),
    ],
)
def test_alarm_rules(rule: str, states: dict[str, str], holds: bool) -> None:
    parsed = alarms.parse_rule(rule)
    assert parsed.alarms() == set(states)
    assert parsed.holds(states) is holds


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("ALARM(a) AND", "ends too early"),
        ("(ALARM(a)", "ends too early"),
        ("ALARM(a) ALARM(b)", "unexpected 'ALARM'"),
        ("METRIC(a)", "METRIC(...) is not an AlarmRule function"),
        ("ALARM(a, b)", "takes one alarm name or ARN"),
    ],
)
def test_invalid_alarm_rules_are_refused(rule: str, message: str) -> None:
    with pytest.raises(alarms.RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        alarms.parse_rule(rule)
