"""EventBridge schedule expressions as EventBridge documents them (eb-cron-expressions.html, eb-rate-expressions.html):
the examples of the guide fire when the guide says, invalid expressions are refused with EventBridge's message, and
what the local cloud does not implement is refused loudly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.schedules import INVALID, Cron, Rate, ScheduleError, parse


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def firings(expression: str, start: str, count: int = 3) -> list[str]:
    """The next ``count`` firings after ``start`` (UTC, ISO minutes)."""
    schedule = parse(expression)
    assert isinstance(schedule, Cron)
    moments, moment = [], at(start)
    for _ in range(count):
        following = schedule.next_after(moment)
        assert following is not None
        moments.append(datetime.fromtimestamp(following, UTC).strftime("%Y-%m-%dT%H:%M"))
        moment = following
    return moments


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # the guide's examples (2026-12-07 is a Monday)
        ("cron(0 10 * * ? *)", "2026-12-07T09:59:30", ["2026-12-07T10:00", "2026-12-08T10:00", "2026-12-09T10:00"]),
        ("cron(15 12 * * ? *)", "2026-12-07T12:15:00", ["2026-12-08T12:15", "2026-12-09T12:15", "2026-12-10T12:15"]),
        (
            "cron(0 18 ? * MON-FRI *)",
            "2026-12-10T19:00:00",
            ["2026-12-11T18:00", "2026-12-14T18:00", "2026-12-15T18:00"],
        ),
        ("cron(0 8 1 * ? *)", "2026-12-07T00:00:00", ["2027-01-01T08:00", "2027-02-01T08:00", "2027-03-01T08:00"]),
        ("cron(0/15 * * * ? *)", "2026-12-07T10:07:30", ["2026-12-07T10:15", "2026-12-07T10:30", "2026-12-07T10:45"]),
        (
            "cron(0/5 8-17 ? * MON-FRI *)",
            "2026-12-11T17:52:00",
            ["2026-12-11T17:55", "2026-12-14T08:00", "2026-12-14T08:05"],
        ),
        ("cron(0 9 ? * 2#1 *)", "2026-12-07T12:00:00", ["2027-01-04T09:00", "2027-02-01T09:00", "2027-03-01T09:00"]),
        # ranges, lists, steps and names
        ("cron(1/10 * * * ? *)", "2026-12-07T10:00:00", ["2026-12-07T10:01", "2026-12-07T10:11", "2026-12-07T10:21"]),
        (
            "cron(0 6,18 * JAN,JUL ? *)",
            "2026-12-07T00:00:00",
            ["2027-01-01T06:00", "2027-01-01T18:00", "2027-01-02T06:00"],
        ),
        (
            "cron(30 23 10-12 * ? 2027)",
            "2026-12-07T00:00:00",
            ["2027-01-10T23:30", "2027-01-11T23:30", "2027-01-12T23:30"],
        ),
        ("cron(0 0 ? * sun *)", "2026-12-07T00:00:00", ["2026-12-13T00:00", "2026-12-20T00:00", "2026-12-27T00:00"]),
        # L, W, #
        ("cron(0 0 L * ? *)", "2027-01-31T00:00:00", ["2027-02-28T00:00", "2027-03-31T00:00", "2027-04-30T00:00"]),
        ("cron(0 0 ? * L *)", "2026-12-07T00:00:00", ["2026-12-12T00:00", "2026-12-19T00:00", "2026-12-26T00:00"]),
        # 2026-08-01 is a Saturday: the weekday nearest the 1st is Monday the 3rd (the month is never left);
        # 2026-05-31 is a Sunday and the month's last day: Friday the 29th
        ("cron(0 0 1W * ? *)", "2026-07-31T00:00:00", ["2026-08-03T00:00", "2026-09-01T00:00", "2026-10-01T00:00"]),
        ("cron(0 0 31W * ? *)", "2026-05-01T00:00:00", ["2026-05-29T00:00", "2026-07-31T00:00", "2026-08-31T00:00"]),
        ("cron(0 12 ? * 3#2 *)", "2026-12-01T00:00:00", ["2026-12-08T12:00", "2027-01-12T12:00", "2027-02-09T12:00"]),
    ],
)
def test_cron_fires_at_the_minutes_it_names_in_utc(expression: str, start: str, expected: list[str]) -> None:
    assert firings(expression, start) == expected


def test_a_cron_that_names_no_later_minute_never_fires() -> None:
    schedule = parse("cron(0 0 1 1 ? 2020)")
    assert isinstance(schedule, Cron)
    assert schedule.next_after(at("2026-12-07T00:00:00")) is None


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172_800)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    schedule = parse(expression)
    assert isinstance(schedule, Rate) and schedule.seconds == seconds
    # a rate rule's slots are whole periods after its anchor (when the rule was first seen)
    assert schedule.next_after(1000.0, anchor=1000.0) == 1000.0 + seconds
    assert schedule.next_after(1000.0 + seconds, anchor=1000.0) == 1000.0 + 2 * seconds


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("cron(0 10 * * * *)", "exactly one of Day-of-month and Day-of-week must be ?"),
        ("cron(0 10 ? * ? *)", "exactly one of Day-of-month and Day-of-week must be ?"),
        ("cron(0 10 * * ?)", "six fields"),
        ("cron(60 10 * * ? *)", "Minutes: 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "Hours: 24 is outside 0-23"),
        ("cron(0 10 ? * 8 *)", "Day-of-week: 8 is outside 1-7"),
        ("cron(0 10 * 13 ? *)", "Month: 13 is outside 1-12"),
        ("cron(0 10 * * ? 2200)", "Year: 2200 is outside 1970-2199"),
        ("cron(0 10 ? * */2 *)", "Day-of-week does not take the / wildcard"),
        ("cron(0 10 ? * 3#1,6#3 *)", "a # field holds one expression only"),
        ("cron(0 10 ? * 3#6 *)", "expected <1-7 or SUN-SAT>#<1-5>"),
        ("cron(0/0 10 * * ? *)", "must be a positive number"),
        ("cron(0 10 * BOGUS ? *)", "'BOGUS' is not a value"),
        ("rate(1 hours)", "the unit is singular for 1 and plural otherwise"),
        ("rate(5 hour)", "the unit is singular for 1 and plural otherwise"),
        ("rate(0 minutes)", "a rate must be a positive number"),
        ("rate(2 weeks)", "neither rate(value unit) nor cron(fields)"),
        ("at(2026-12-07T10:00:00)", "neither rate(value unit) nor cron(fields)"),
    ],
)
def test_invalid_expressions_are_refused_with_eventbridges_message(expression: str, why: str) -> None:
    with pytest.raises(ScheduleError) as error:
        parse(expression)
    assert str(error.value).startswith(INVALID)
    assert why in str(error.value)


@pytest.mark.parametrize(
    ("expression", "what"),
    [
        ("cron(0 10 L-3 * ? *)", "Day-of-month 'L-3'"),
        ("cron(0 10 LW * ? *)", "Day-of-month 'LW'"),
        ("cron(0 10 1,L * ? *)", "Day-of-month '1,L'"),
        ("cron(0 10 ? * 5L *)", "Day-of-week '5L'"),
        ("cron(0 10 ? * FRI-MON *)", "the range 'FRI-MON', which wraps around,"),
    ],
)
def test_what_the_local_cloud_does_not_implement_is_refused_loudly(expression: str, what: str) -> None:
    with pytest.raises(ScheduleError) as error:
        parse(expression)
    assert what in str(error.value)
    assert str(error.value).endswith("is not supported by the local cloud (it fires only what it implements)")
