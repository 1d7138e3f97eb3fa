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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localcloud.runtime import metric_math

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


def windows(now: float, period: int, periods: int) -> list[tuple[float, float]]:
    """The last ``periods`` complete periods before ``now``, newest first, aligned like CloudWatch's."""
    boundary = math.floor(now / period) * period
    return [(boundary - (index + 1) * period, boundary - index * period) for index in range(periods)]


def period_values(points: Sequence[Datapoint], stat: str, spans: Sequence[tuple[float, float]]) -> tuple[list, bool]:
    """The statistic of each period (None: no data) and whether a percentile had too few samples in one."""
    values: list[float | None] = []
    low_sample = False
    for start, end in spans:
        window = [p.value for p in points if start <= p.timestamp < end]
        values.append(statistic(window, stat) if window else None)
        if window and len(window) < significant_samples(stat):
            low_sample = True
    return values, low_sample


def evaluate(alarm: Any, points: Sequence[Datapoint], now: float) -> Evaluation:
    period = int(alarm.period)
    stat = alarm.extended_statistic or alarm.statistic
    values, low_sample = period_values(points, stat, windows(now, period, int(alarm.evaluation_periods)))
    return judge(alarm, values, now, period, stat, low_sample)


def judge(
    alarm: Any, values: list[float | None], now: float, period: int, stat: str | None, low_sample: bool = False
) -> Evaluation:
    """The alarm's state for its periods' values (newest first, None: missing), by CloudWatch's rules: M of N
    breaching -> ALARM; otherwise OK once any datapoint (or missing data treated as one) exists; all missing:
    ``missing`` -> INSUFFICIENT_DATA, ``ignore`` -> the current state (docs: "Configuring how CloudWatch alarms
    treat missing data"). Alarms on ``AWS/DynamoDB`` metrics always ignore missing data (PutMetricAlarm API)."""
    periods = int(alarm.evaluation_periods)
    needed = int(alarm.datapoints_to_alarm or periods)
    threshold = float(alarm.threshold)
    compare = COMPARE[alarm.comparison_operator]
    boundary = math.floor(now / period) * period
    missing = (alarm.treat_missing_data or "missing").lower()
    if alarm.namespace == "AWS/DynamoDB":
        missing = "ignore"
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
        **({"statistic" if not alarm.extended_statistic else "extendedStatistic": stat} if stat else {}),
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
            "configuration": (
                {"description": alarm.description or "", "alarmRule": alarm.rule}
                if getattr(alarm, "rule", None)
                else {"description": alarm.description or "", "metrics": configured_metrics(alarm)}
            ),
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
    """The JSON message a CloudWatch alarm's SNS action publishes (a composite alarm's has its rule, no trigger)."""
    if getattr(alarm, "rule", None):
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
                "AlarmRule": alarm.rule,
            }
        )
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


# ---- metric math alarms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MathPlan:
    """A metric-math alarm, checked: its metrics (id -> namespace, name, dimensions, statistic), its expressions
    (id -> parsed, in an order where each comes after those it names), the returned id and the period."""

    metrics: dict[str, tuple[str, str, dict[str, str], str]]
    expressions: list[tuple[str, metric_math.Node]]
    returned: str
    period: int


def math_plan(queries: Sequence[Any], threshold_metric_id: str | None = None) -> MathPlan:
    """Check a metric-math alarm's queries (moto ``MetricDataQuery`` objects); ``MathError`` says what the local
    cloud refuses and why."""
    if threshold_metric_id:
        raise metric_math.MathError(
            "alarms on an anomaly detection band (ThresholdMetricId) are not supported by the local cloud"
        )
    metrics: dict[str, tuple[str, str, dict[str, str], str]] = {}
    parsed: dict[str, metric_math.Node] = {}
    periods: set[int] = set()
    returned = [q.id for q in queries if str(q.return_data).lower() != "false"]
    if len(returned) != 1:
        raise metric_math.MathError(f"exactly one query must have ReturnData true, not {len(returned)}")
    for query in queries:
        if query.metric_stat is not None:
            stat = query.metric_stat
            metric = stat.metric
            dimensions = {str(d.name): str(d.value) for d in metric.dimensions}
            metrics[query.id] = (metric.namespace, metric.metric_name, dimensions, str(stat.stat))
            periods.add(int(stat.period))
        elif query.expression:
            parsed[query.id] = metric_math.parse(query.expression)
        else:
            raise metric_math.MathError(f"query {query.id} has neither MetricStat nor Expression")
    if len(periods) != 1:
        raise metric_math.MathError(
            f"the local cloud evaluates metric-math alarms whose metrics share one period, not {sorted(periods)}"
        )
    order: list[tuple[str, metric_math.Node]] = []
    done: set[str] = set(metrics)

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise metric_math.MathError(f"the expressions refer to each other in a cycle: {' -> '.join(path)}")
        if name not in parsed:
            raise metric_math.MathError(f"the expression names {name!r}, which is not a query of the alarm")
        for other in sorted(metric_math.ids(parsed[name])):
            visit(other, (*path, name))
        done.add(name)
        order.append((name, parsed[name]))

    for name in sorted(parsed):
        visit(name, ())
    plan = MathPlan(metrics, order, returned[0], periods.pop())
    evaluate_math(plan, [], 0.0, 1)  # types check on no data: an array as the result is refused here
    return plan


def evaluate_math(plan: MathPlan, datums: Iterable[Any], now: float, periods: int) -> list[float | None]:
    """The returned query's value in each of the last ``periods`` periods, newest first (None: no value)."""
    spans = windows(now, plan.period, periods)
    data = list(datums)
    series: dict[str, metric_math.Series] = {}
    for name, (namespace, metric, dimensions, stat) in plan.metrics.items():
        values, _ = period_values(matching(data, namespace, metric, dimensions), stat, spans)
        series[name] = list(reversed(values))
    context = metric_math.Context(series, plan.period, periods)
    for name, node in plan.expressions:
        context.named[name] = metric_math.series_of(node, context)
    result = context.named.get(plan.returned, series.get(plan.returned))
    assert result is not None
    return list(reversed(result))


# ---- composite alarms ----------------------------------------------------------------------------------------

_RULE_TOKEN = re.compile(r'\s*(?:(?P<quoted>"[^"]*")|(?P<word>[A-Za-z_]+)\s*(?=\()|(?P<paren>[()])|(?P<bare>[^\s()]+))')


class RuleError(ValueError):
    """An AlarmRule the local cloud refuses."""


@dataclass(frozen=True)
class Rule:
    kind: str  # state, const, not, and, or
    value: Any = None  # state: (STATE, alarm name or ARN); const: bool
    children: tuple[Rule, ...] = ()

    def alarms(self) -> set[str]:
        found = {alarm_name(self.value[1])} if self.kind == "state" else set()
        for child in self.children:
            found |= child.alarms()
        return found

    def holds(self, states: dict[str, str]) -> bool:
        if self.kind == "const":
            return bool(self.value)
        if self.kind == "state":
            return states.get(alarm_name(self.value[1])) == self.value[0]
        if self.kind == "not":
            return not self.children[0].holds(states)
        results = [child.holds(states) for child in self.children]
        return all(results) if self.kind == "and" else any(results)


def alarm_name(reference: str) -> str:
    """An alarm's name from its name or ARN (arn:aws:cloudwatch:<region>:<account>:alarm:<name>)."""
    return reference.split(":alarm:", 1)[1] if reference.startswith("arn:") and ":alarm:" in reference else reference


def parse_rule(text: str) -> Rule:
    """An ``AlarmRule``: ALARM(x) / OK(x) / INSUFFICIENT_DATA(x) (x a name or ARN, quoted or not), TRUE, FALSE,
    NOT, AND, OR and parentheses (PutCompositeAlarm API reference). NOT binds tighter than AND, AND than OR."""
    items = []
    position = 0
    while position < len(text.rstrip()):
        match = _RULE_TOKEN.match(text, position)
        if match is None:
            raise RuleError(f"cannot read the AlarmRule {text!r} at {text[position:]!r}")
        items.append((match.lastgroup, match.group(match.lastgroup or "")))
        position = match.end()
    at = 0

    def peek() -> str | None:
        return items[at][1].upper() if at < len(items) else None

    def take() -> tuple[str | None, str]:
        nonlocal at
        if at >= len(items):
            raise RuleError(f"the AlarmRule {text!r} ends too early")
        at += 1
        return items[at - 1]

    def disjunction() -> Rule:
        parts = [conjunction()]
        while peek() == "OR":
            take()
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else Rule("or", children=tuple(parts))

    def conjunction() -> Rule:
        parts = [negation()]
        while peek() == "AND":
            take()
            parts.append(negation())
        return parts[0] if len(parts) == 1 else Rule("and", children=tuple(parts))

    def negation() -> Rule:
        if peek() == "NOT":
            take()
            return Rule("not", children=(negation(),))
        return atom()

    def atom() -> Rule:
        kind, word = take()
        upper = word.upper()
        if upper in ("TRUE", "FALSE"):
            return Rule("const", upper == "TRUE")
        if word == "(":
            inner = disjunction()
            if take()[1] != ")":
                raise RuleError(f"a parenthesis is not closed in {text!r}")
            return inner
        if kind == "word" and upper in ("ALARM", "OK", "INSUFFICIENT_DATA"):
            take()  # (
            _, reference = take()
            if take()[1] != ")":
                raise RuleError(f"{upper}(...) takes one alarm name or ARN in {text!r}")
            return Rule("state", (upper, reference.strip('"')))
        if kind == "word":
            raise RuleError(f"{word}(...) is not an AlarmRule function (ALARM, OK, INSUFFICIENT_DATA)")
        raise RuleError(f"unexpected {word!r} in the AlarmRule {text!r}")

    rule = disjunction()
    if at != len(items):
        raise RuleError(f"unexpected {items[at][1]!r} in the AlarmRule {text!r}")
    return rule


def composite_evaluation(alarm: Any, rule: Rule, alarms: dict[str, Any], now: float) -> Evaluation:
    """A composite alarm is ALARM while its rule holds, else OK (it is INSUFFICIENT_DATA only when created)."""
    states = {name: alarms[name].state_value for name in rule.alarms() if name in alarms}
    holds = rule.holds(states)
    described = ", ".join(f"{name} is {state}" for name, state in sorted(states.items())) or "no alarm"
    reason = f"The alarm rule {alarm.rule} is {'TRUE' if holds else 'FALSE'}: {described}."
    triggering = [
        {
            "arn": alarms[name].alarm_arn,
            "state": {"value": state, "timestamp": iso(epoch(alarms[name].state_updated_timestamp))},
        }
        for name, state in sorted(states.items())
    ]
    return Evaluation("ALARM" if holds else "OK", reason, {"triggeringAlarms": triggering}, [])
