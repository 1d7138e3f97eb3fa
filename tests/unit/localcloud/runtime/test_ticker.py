"""The local cloud's heartbeat: scheduled rules fire on cloud time, in slot order; alarms are evaluated."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.events.models import events_backends

from localcloud.clock import clock
from localcloud.runtime import ticker
from localcloud.runtime.journal import journal
from localcloud.runtime.ticker import Ticker, rate_seconds
from localcloud.shims import events_targets
from tests.unit.localcloud.support import ACCOUNT, REGION, unique

STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:drift-monitor"


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86_400),
        ("  rate(10 minutes) ", 600),
        ("cron(0 * * * ? *)", None),  # not a rate
        ("rate(1 minutes)", None),  # EventBridge: singular for 1
        ("rate(0.5 minutes)", None),
        ("rate(2 weeks)", None),
    ],
)
def test_rate_seconds(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds


class Recorder:
    """A dispatcher that keeps the submitted work instead of running it."""

    def __init__(self) -> None:
        self.work: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, work: Callable[..., Any], *args: Any) -> None:
        self.work.append((work, args))


@pytest.fixture
def cloud() -> Iterator[SimpleNamespace]:
    clock.reset()
    journal.clear()
    with mock_aws():
        yield SimpleNamespace(account_id=ACCOUNT, region=REGION, dispatcher=Recorder(), endpoints=None)
    clock.reset()
    journal.clear()


def schedule(expression: str = "rate(5 minutes)", state: str = "ENABLED", targets: bool = True) -> str:
    events = boto3.client("events", region_name=REGION)
    name = unique("schedule")
    events.put_rule(Name=name, ScheduleExpression=expression, State=state)
    if targets:
        events.put_targets(
            Rule=name,
            Targets=[
                {
                    "Id": "monitor",
                    "Arn": STATE_MACHINE,
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/events",
                    "InputTransformer": {
                        "InputPathsMap": {"time": "$.time"},
                        "InputTemplate": '{"window_end": <time>}',
                    },
                }
            ],
        )
    return name


def test_a_rule_first_fires_one_rate_after_it_is_seen(cloud: SimpleNamespace) -> None:
    # Given a rate(5 minutes) rule the ticker has just seen
    schedule()
    beat = Ticker(cloud)
    assert beat.fire_schedules() == 0
    # When 4 cloud minutes pass, nothing is due; at 5 minutes the first slot fires
    clock.advance(240)
    assert beat.fire_schedules() == 0
    clock.advance(60)
    assert beat.fire_schedules() == 1
    assert beat.fire_schedules() == 0  # a slot fires once


def test_slots_skipped_by_an_advance_fire_in_order_with_their_own_time(
    cloud: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rate(5 minutes) rule with a state machine target and an input transformer
    name = schedule()
    beat = Ticker(cloud)
    seen = clock.time()
    beat.fire_schedules()
    # When the clock jumps 16 minutes
    clock.advance(16 * 60)
    fired = beat.fire_schedules()
    # Then three slots are due, delivered by ONE piece of work, oldest first, each event stamped with its slot
    assert fired == 3
    [(work, args)] = cloud.dispatcher.work
    delivered: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(
        events_targets, "deliver", lambda rule, target, payload: delivered.append((rule, target["Arn"], payload))
    )
    work(*args)
    slots = [datetime.fromtimestamp(seen + 300 * k, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for k in (1, 2, 3)]
    assert delivered == [(name, STATE_MACHINE, {"window_end": slot}) for slot in slots]
    assert [e.detail["slot"] for e in journal.of("schedule") if e.detail["rule"] == name] == slots


def test_the_scheduled_event_has_eventbridges_shape(cloud: SimpleNamespace) -> None:
    name = schedule()
    beat = Ticker(cloud)
    beat.fire_schedules()
    clock.advance(300)
    beat.fire_schedules()
    [(_, (rule_name, targets, [event]))] = cloud.dispatcher.work
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"
    assert rule_name == name and [t["Id"] for t in targets] == ["monitor"]
    assert {k: v for k, v in event.items() if k not in ("id", "time")} == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }
    assert abs(datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - clock.now()) < timedelta(
        seconds=2
    )


def test_catch_up_is_bounded_per_tick_and_resumes(cloud: SimpleNamespace) -> None:
    # Given a per-minute rule and the clock jumping 100 minutes
    schedule("rate(1 minute)")
    beat = Ticker(cloud)
    beat.fire_schedules()
    clock.advance(100 * 60)
    # When the ticker runs four times
    counts = [beat.fire_schedules() for _ in range(4)]
    # Then at most MAX_CATCH_UP slots go per tick, none is lost, none fires twice
    assert counts == [ticker.MAX_CATCH_UP, ticker.MAX_CATCH_UP, 100 - 2 * ticker.MAX_CATCH_UP, 0]
    times = [event["time"] for _, (_, _, slots) in cloud.dispatcher.work for event in slots]
    assert times == sorted(times) and len(set(times)) == 100


@pytest.mark.parametrize(
    ("expression", "state", "targets"),
    [
        ("rate(5 minutes)", "DISABLED", True),
        ("rate(5 minutes)", "ENABLED", False),
        ("cron(0/5 * * * ? *)", "DISABLED", True),
    ],
)
def test_disabled_and_targetless_rules_do_not_fire(
    cloud: SimpleNamespace, expression: str, state: str, targets: bool
) -> None:
    schedule(expression, state, targets)
    beat = Ticker(cloud)
    beat.fire_schedules()
    clock.advance(3600)
    assert beat.fire_schedules() == 0
    assert cloud.dispatcher.work == []


def test_a_cron_rule_fires_at_each_utc_minute_it_names_with_that_slot_as_its_time(
    cloud: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rule for minutes 0, 20 and 40 of every hour, seen by the ticker at 10:05 UTC
    start = datetime(2027, 3, 1, 10, 5, tzinfo=UTC).timestamp()
    clock.advance(start - clock.time())
    name = schedule("cron(0/20 * * * ? *)")
    beat = Ticker(cloud)
    assert beat.fire_schedules() == 0
    # When 14 cloud minutes pass, nothing is due; at 10:20 the first slot fires
    clock.advance(14 * 60)
    assert beat.fire_schedules() == 0
    clock.advance(60)
    assert beat.fire_schedules() == 1
    # When the clock jumps past 11:00, the slots in between fire in order, each with its own time
    clock.advance(45 * 60)
    assert beat.fire_schedules() == 2
    delivered: list[Any] = []
    monkeypatch.setattr(events_targets, "deliver", lambda rule, target, payload: delivered.append(payload))
    for work, args in cloud.dispatcher.work:
        work(*args)
    assert delivered == [
        {"window_end": "2027-03-01T10:20:00Z"},
        {"window_end": "2027-03-01T10:40:00Z"},
        {"window_end": "2027-03-01T11:00:00Z"},
    ]
    assert [e.detail["slot"] for e in journal.of("schedule") if e.detail["rule"] == name] == [
        "2027-03-01T10:20:00Z",
        "2027-03-01T10:40:00Z",
        "2027-03-01T11:00:00Z",
    ]


def test_align_restarts_a_cron_rule_at_its_next_minute(cloud: SimpleNamespace) -> None:
    # Given an hourly cron rule whose earlier slots were skipped by a jump of the clock
    clock.advance(datetime(2027, 3, 1, 10, 30, tzinfo=UTC).timestamp() - clock.time())
    schedule("cron(0 * * * ? *)")
    beat = Ticker(cloud)
    beat.fire_schedules()
    clock.advance(3 * 3600)
    # When the schedules are aligned before the ticker fires them / Then only the next top of the hour is due
    beat.align()
    assert beat.fire_schedules() == 0
    clock.advance(30 * 60)
    assert beat.fire_schedules() == 1


def test_a_rule_whose_expression_slipped_past_put_rule_never_fires_and_is_journaled(
    cloud: SimpleNamespace,
) -> None:
    # Given a rule stored without the shim's check (moto's own PutRule takes any cron(...))
    _put_unchecked("cron(0 10 L-3 * ? *)")
    beat = Ticker(cloud)
    clock.advance(40 * 86_400)
    # When the ticker runs twice / Then nothing fires and the refusal is journaled once, with the reason
    assert beat.fire_schedules() == 0 and beat.fire_schedules() == 0
    [refused] = [e.detail for e in journal.of("schedule-refused")]
    assert "Day-of-month 'L-3'" in refused["error"] and "not supported by the local cloud" in refused["error"]


def _put_unchecked(expression: str) -> str:
    name = unique("unchecked")
    rule = events_targets._original_put_rule(
        events_backends[ACCOUNT][REGION], name, scheduled_expression=expression, state="ENABLED"
    )
    rule.targets.append({"Id": "monitor", "Arn": STATE_MACHINE})
    return name


def test_a_tick_evaluates_the_alarms_on_cloud_time(cloud: SimpleNamespace) -> None:
    # Given an alarm on a metric that breached in the last complete minute of cloud time
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    name = unique("alarm")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="MLOps/test",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=2,  # the datapoint stays in range if a minute ends between put and tick
        DatapointsToAlarm=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.put_metric_data(
        Namespace="MLOps/test",
        MetricData=[
            {
                "MetricName": "Errors",
                "Value": 3,
                "Timestamp": datetime.fromtimestamp(math.floor(clock.time() / 60) * 60 - 30, UTC),
            }
        ],
    )
    # When the heartbeat ticks
    Ticker(cloud).tick()
    # Then the alarm went to ALARM with CloudWatch's reason data
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [3.0]
