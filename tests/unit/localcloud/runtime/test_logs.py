"""Lambda output -> CloudWatch Logs, and Powertools' Embedded Metric Format lines -> CloudWatch metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from localcloud.runtime.logs import LogSink, emf_metric_data
from tests.unit.localcloud.support import ACCOUNT, REGION, unique


def a_window_start() -> datetime:
    """An hour boundary of the last hour (Powertools warns about timestamps > 14 days old or > 2 h ahead)."""
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def emitted(capsys: pytest.CaptureFixture[str]) -> str:
    """The one EMF line Powertools printed."""
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1, lines
    return lines[0]


def test_powertools_metrics_become_put_metric_data_entries(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a handler that records a decision and two latencies with Powertools (service dimension added)
    metrics = EphemeralMetrics(namespace="MLOps/test", service="retrain")
    window = a_window_start()

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> None:
        metrics.add_dimension(name="decision", value="started")
        metrics.add_metric(name="RetrainDecision", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=12)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=15)
        metrics.set_timestamp(window)

    handler({}, None)
    # When its log line is read as CloudWatch reads EMF
    [(namespace, entries)] = emf_metric_data(emitted(capsys))
    # Then each metric becomes an entry with the line's dimension set, unit, values and timestamp
    assert namespace == "MLOps/test"
    dimensions = [{"Name": "decision", "Value": "started"}, {"Name": "service", "Value": "retrain"}]
    assert entries == [
        {
            "MetricName": "RetrainDecision",
            "Dimensions": dimensions,
            "Timestamp": window,
            "Values": [1.0],
            "Unit": "Count",
        },
        {
            "MetricName": "Latency",
            "Dimensions": dimensions,
            "Timestamp": window,
            "Values": [12.0, 15.0],
            "Unit": "Milliseconds",
        },
    ]


def test_a_single_metric_with_explicit_dimensions_keeps_exactly_those(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a drift metric emitted with single_metric (no service dimension: the alarm's dimensions exactly)
    window = a_window_start()
    with single_metric(
        name="FeaturePSI",
        unit=MetricUnit.Count,
        value=0.31,
        namespace="MLOps/drift",
        default_dimensions={"EndpointName": "churn", "Feature": "tenure"},
    ) as metric:
        metric.set_timestamp(window)
    # When it is read
    [(namespace, [entry])] = emf_metric_data(emitted(capsys))
    # Then it carries the window's timestamp and only the two dimensions
    assert namespace == "MLOps/drift"
    assert entry["Dimensions"] == [{"Name": "EndpointName", "Value": "churn"}, {"Name": "Feature", "Value": "tenure"}]
    assert (entry["Values"], entry["Timestamp"]) == ([0.31], window)


def test_each_dimension_set_gives_its_own_entry() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1_800_000_000_000,
                "CloudWatchMetrics": [
                    {"Namespace": "N", "Dimensions": [["a"], ["a", "b"], []], "Metrics": [{"Name": "m"}]}
                ],
            },
            "a": "1",
            "b": 2,
            "m": 7,
        }
    )
    [(_, entries)] = emf_metric_data(line)
    assert [e["Dimensions"] for e in entries] == [
        [{"Name": "a", "Value": "1"}],
        [{"Name": "a", "Value": "1"}, {"Name": "b", "Value": "2"}],
        [],
    ]
    assert all("Unit" not in e for e in entries)  # no unit declared: none sent
    assert entries[0]["Timestamp"] == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: 1 Version: $LATEST",
        '{"level": "INFO", "message": "no metrics here"}',
        '{"_aws": "not a directive"}',
        '{"_aws": {"CloudWatchMetrics": [ broken',
        "",
    ],
)
def test_other_lines_are_not_metrics(line: str) -> None:
    assert emf_metric_data(line) == []


def test_a_declared_metric_without_a_value_is_skipped() -> None:
    line = json.dumps(
        {"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "N", "Metrics": [{"Name": "absent"}]}]}}
    )
    assert emf_metric_data(line) == []


@pytest.fixture
def sink() -> Iterator[LogSink]:
    with mock_aws():
        yield LogSink(boto3.client("logs", region_name=REGION), boto3.client("cloudwatch", region_name=REGION))


def test_the_sink_writes_log_events_and_publishes_emf_metrics(
    sink: LogSink, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a Lambda's output: plain lines and one EMF line of a past window
    window = a_window_start()
    namespace = unique("MLOps/sink")
    with single_metric(
        name="Accuracy", unit=MetricUnit.Count, value=0.83, namespace=namespace, default_dimensions={"Model": "v3"}
    ) as metric:
        metric.set_timestamp(window)
    line = emitted(capsys)
    output = f"START RequestId: r1\n{line}\n\nEND RequestId: r1\n"
    group = unique("/aws/lambda/fn")
    # When it is written twice to the function's log group (the group and stream exist the second time)
    sink.write(group, "2027/01/15/[$LATEST]abc", output)
    sink.write(group, "2027/01/15/[$LATEST]abc", output)
    # Then every non-empty line is a log event, and each EMF line a datapoint at the window's time
    events = sink.logs.get_log_events(logGroupName=group, logStreamName="2027/01/15/[$LATEST]abc")["events"]
    assert [e["message"] for e in events] == ["START RequestId: r1", line, "END RequestId: r1"] * 2
    datums = [d for d in cloudwatch_backends[ACCOUNT][REGION].metric_data if d.namespace == namespace]
    assert [(d.name, d.value, {x.name: x.value for x in d.dimensions}) for d in datums] == [
        ("Accuracy", 0.83, {"Model": "v3"}),
        ("Accuracy", 0.83, {"Model": "v3"}),
    ]
    assert {d.timestamp.replace(tzinfo=UTC) for d in datums} == {window}
    assert sink.metrics_published == 2


def test_blank_output_writes_nothing(sink: LogSink) -> None:
    group = unique("/aws/lambda/quiet")
    sink.write(group, "stream", "\n  \n")
    assert sink.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
