"""CloudWatch metric alarm evaluation (moto 5.2.5 stores alarms but never evaluates them).

For an alarm with period P, N evaluation periods and M datapoints to alarm, the last N complete periods before
``now`` (aligned to multiples of P, as CloudWatch's are) are aggregated with the alarm's statistic over the
datapoints whose namespace, name and exact
dimension set match. Missing periods follow ``TreatMissingData`` (missing / notBreaching / breaching /
ignore). M breaching datapoints among the evaluated ones -> ALARM; otherwise OK when any datapoint (or a
missing period treated as one) exists; when every datapoint is missing, ``missing`` -> INSUFFICIENT_DATA and
``ignore`` keeps the current state (CloudWatch's rules). The reason and reason data have CloudWatch's
shape, so alarm actions receive real-looking events.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Datapoint:
    timestamp: float
    value: float


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    reason_data: dict[str, Any]
    values: list[float | None]  # newest first, None = no data in that period


def epoch(value: Any) -> float:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(value)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def statistic(values: Sequence[float], stat: str) -> float:
    if stat == "Sum":
        return float(sum(values))
    if stat == "Average":
        return float(sum(values) / len(values))
    if stat == "Minimum":
        return float(min(values))
    if stat == "Maximum":
        return float(max(values))
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):
        ordered = sorted(values)
        rank = float(stat[1:]) / 100 * (len(ordered) - 1)
        low, high = math.floor(rank), math.ceil(rank)
        return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))
    raise ValueError(f"unsupported statistic {stat!r}")


def significant_samples(stat: str) -> float:
    """Samples a percentile needs to be statistically significant in a period (CloudWatch: 10/(1-p) for
    p >= 0.5, 10/p below); other statistics need one."""
    if not stat.startswith("p"):
        return 1.0
    p = float(stat[1:]) / 100
    return 10 / (1 - p) if p >= 0.5 else 10 / p


def matching(datums: Iterable[Any], namespace: str, name: str, dimensions: dict[str, str]) -> list[Datapoint]:
    """Datapoints of moto MetricDatum objects for exactly this metric (CloudWatch matches the full dimension set)."""
    points = []
    for datum in datums:
        if datum.namespace != namespace or datum.name != name:
            continue
        if {d.name: d.value for d in datum.dimensions} != dimensions:
            continue
        value = getattr(datum, "value", None)
        if value is None:
            continue
        points.append(Datapoint(epoch(datum.timestamp), float(value)))
    return points


def evaluate(alarm: Any, points: Sequence[Datapoint], now: float) -> Evaluation:
    period = int(alarm.period)
    periods = int(alarm.evaluation_periods)
    needed = int(alarm.datapoints_to_alarm or periods)
    stat = alarm.extended_statistic or alarm.statistic
    threshold = float(alarm.threshold)
    compare = COMPARE[alarm.comparison_operator]
    values: list[float | None] = []
    low_sample = False
    boundary = math.floor(now / period) * period  # periods are aligned like CloudWatch's; only complete ones count
    for index in range(periods):
        end = boundary - index * period
        start = end - period
        window = [p.value for p in points if start <= p.timestamp < end]
        values.append(statistic(window, stat) if window else None)
        if window and len(window) < significant_samples(stat):
            low_sample = True
    missing = (alarm.treat_missing_data or "missing").lower()
    breaching = 0
    counted = 0
    for value in values:
        if value is None:
            if missing == "breaching":
                breaching += 1
                counted += 1
            elif missing == "notbreaching":
                counted += 1
            continue
        counted += 1
        breaching += bool(compare(value, threshold))
    recent = [round(v, 6) for v in values if v is not None]
    reason_data = {
        "version": "1.0",
        "queryDate": iso(now),
        "startDate": iso(boundary - periods * period),
        "statistic" if not alarm.extended_statistic else "extendedStatistic": stat,
        "period": period,
        "recentDatapoints": recent,
        "threshold": threshold,
        "evaluatedDatapoints": [
            {"timestamp": iso(boundary - (i + 1) * period), "value": round(v, 6)}
            for i, v in enumerate(values)
            if v is not None
        ],
    }
    if low_sample and str(getattr(alarm, "evaluate_low_sample_count_percentile", "") or "").lower() == "ignore":
        # CloudWatch: "the alarm state does not change during periods with too few data points"
        return Evaluation(alarm.state_value, alarm.state_reason, reason_data, values)
    described = f"[{', '.join(f'{v:g}' for v in recent)}]"
    operator = alarm.comparison_operator.replace("Threshold", "").replace("OrEqualTo", " or equal to ")
    if breaching >= needed:
        state = "ALARM"
        reason = (
            f"Threshold Crossed: {breaching} out of the last {periods} datapoints {described} were "
            f"{_words(operator)} the threshold ({threshold:g}) "
            f"(minimum {needed} datapoints for OK -> ALARM transition)."
        )
    elif counted:  # some data (or missing data treated as data): only an all-missing range is not OK
        state = "OK"
        reason = (
            f"Threshold Crossed: {periods - breaching} out of the last {periods} datapoints {described} were not "
            f"{_words(operator)} the threshold ({threshold:g}) "
            f"(minimum {needed} datapoints for ALARM -> OK transition)."
        )
    elif missing == "ignore":
        state = alarm.state_value
        reason = alarm.state_reason
    else:
        state = "INSUFFICIENT_DATA"
        reason = f"Insufficient Data: {counted} datapoints were unknown."
    return Evaluation(state, reason, reason_data, values)


def _words(operator: str) -> str:
    text = operator.replace("GreaterThan", "greater than").replace("LessThan", "less than")
    return " ".join(text.split())


def alarm_event(alarm: Any, previous: dict[str, Any], account_id: str, region: str, now: float) -> dict[str, Any]:
    """The event a CloudWatch alarm's Lambda action receives."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": alarm.alarm_arn,
        "accountId": account_id,
        "time": iso(now),
        "region": region,
        "alarmData": {
            "alarmName": alarm.name,
            "state": {
                "value": alarm.state_value,
                "reason": alarm.state_reason,
                "reasonData": alarm.state_reason_data,
                "timestamp": iso(now),
            },
            "previousState": previous,
            "configuration": {
                "description": alarm.description or "",
                "metrics": configured_metrics(alarm),
            },
        },
    }


def configured_metrics(alarm: Any) -> list[dict[str, Any]]:
    """``configuration.metrics`` of the alarm event: the alarm's metric, or its metric-math queries."""
    if alarm.metric_name:
        metric = {
            "namespace": alarm.namespace,
            "name": alarm.metric_name,
            "dimensions": {d.name: d.value for d in alarm.dimensions},
        }
        stat = {"metric": metric, "period": int(alarm.period), "stat": alarm.extended_statistic or alarm.statistic}
        return [{"id": "m1", "metricStat": stat, "returnData": True}]
    queries = []
    for query in alarm.metric_data_queries or []:
        entry: dict[str, Any] = {"id": query.id, "returnData": str(query.return_data).lower() != "false"}
        if query.expression:
            entry["expression"] = query.expression
        if query.label:
            entry["label"] = query.label
        queries.append(entry)
    return queries


def sns_message(alarm: Any, previous_state: str, account_id: str, region: str, now: float) -> str:
    """The JSON message a CloudWatch alarm's SNS action publishes."""
    return json.dumps(
        {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.description,
            "AWSAccountId": account_id,
            "NewStateValue": alarm.state_value,
            "NewStateReason": alarm.state_reason,
            "StateChangeTime": iso(now),
            "Region": region,
            "AlarmArn": alarm.alarm_arn,
            "OldStateValue": previous_state,
            "Trigger": {
                "MetricName": alarm.metric_name,
                "Namespace": alarm.namespace,
                "Statistic": alarm.statistic,
                "ExtendedStatistic": alarm.extended_statistic,
                "Period": int(alarm.period) if alarm.period else None,  # none for metric math
                "EvaluationPeriods": int(alarm.evaluation_periods),
                "ComparisonOperator": alarm.comparison_operator,
                "Threshold": float(alarm.threshold),
                "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
            },
        }
    )
