"""EventBridge schedule expressions: ``rate(...)`` and ``cron(...)``, as EventBridge documents them, in UTC.

Spec: "Cron expressions reference" and "Rate expressions" of the EventBridge user guide
(docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html, eb-rate-expressions.html):

- ``rate(value unit)``: a positive whole number and minute(s) / hour(s) / day(s), singular for 1 and plural
  otherwise (``rate(1 hours)`` and ``rate(5 hour)`` are not valid).
- ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``: six fields, UTC. Values and wildcards per field:

  ========== =============== ===============
  field      values          wildcards
  ========== =============== ===============
  Minutes    0-59            , - * /
  Hours      0-23            , - * /
  Day-of-mon 1-31            , - * ? / L W
  Month      1-12, JAN-DEC   , - * /
  Day-of-wk  1-7, SUN-SAT    , - * ? L #
  Year       1970-2199       , - * /
  ========== =============== ===============

  One of Day-of-month and Day-of-week must be ``?`` (they cannot both be given). ``L`` is the last day of the
  month (Day-of-month) or of the week (Day-of-week: 7 = SAT); ``3W`` the weekday nearest the 3rd, within the
  month; ``3#2`` the second Tuesday (1 = SUN), and a ``#`` field holds that one expression only; ``1/10`` every
  tenth minute from minute 1.

``parse`` refuses an invalid expression with EventBridge's message and what is wrong, and refuses loudly what
the local cloud does not implement (forms the guide does not document: ``L-3``, ``LW``, ``5L``, ranges that wrap
around such as ``FRI-MON``), so a schedule that deploys here is one that fires here. Two users: the synth checks a
declared ``retrain.schedule`` with it (``stacks.config.schedule_problem``), and the local cloud's EventBridge checks
and fires every scheduled rule with it (``localcloud/shims/events_targets.py``, ``localcloud/runtime/ticker.py``).
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

INVALID = "Parameter ScheduleExpression is not valid."
MIN_YEAR, MAX_YEAR = 1970, 2199
MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}  # JAN = 1
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """An expression EventBridge refuses (``INVALID`` + why) or the local cloud does not implement."""


def invalid(why: str) -> ScheduleError:
    return ScheduleError(f"{INVALID} {why}")


def unsupported(what: str) -> ScheduleError:
    return ScheduleError(f"{what} is not supported by the local cloud (it fires only what it implements)")


@dataclass(frozen=True)
class Rate:
    expression: str
    seconds: int

    def next_after(self, moment: float, anchor: float) -> float:
        """The first slot after ``moment`` of a rule whose period started at ``anchor``."""
        periods = math.floor((moment - anchor) / self.seconds) + 1
        return anchor + max(1, periods) * self.seconds


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    days_of_month: frozenset[int] | None  # None: Day-of-month is "?"
    last_day_of_month: bool
    nearest_weekday: int | None  # "nW"
    days_of_week: frozenset[int] | None  # 1 = SUN ... 7 = SAT; None: Day-of-week is "?"
    nth_weekday: tuple[int, int] | None  # "d#n"

    def matches_day(self, day: date) -> bool:
        if self.days_of_week is not None or self.nth_weekday is not None:
            weekday = (day.weekday() + 1) % 7 + 1  # Python: Monday 0 -> EventBridge: MON 2, SUN 1
            if self.nth_weekday is not None:
                wanted, nth = self.nth_weekday
                return weekday == wanted and (day.day - 1) // 7 + 1 == nth
            return weekday in (self.days_of_week or ())
        last = calendar.monthrange(day.year, day.month)[1]
        if self.last_day_of_month:
            return day.day == last
        if self.nearest_weekday is not None:
            return day.day == _nearest_weekday(day.year, day.month, self.nearest_weekday)
        return day.day in (self.days_of_month or ())

    def next_after(self, moment: float, anchor: float = 0.0) -> float | None:
        """The first minute after ``moment`` (UTC) that the expression names; None if there is none (past 2199)."""
        start = datetime.fromtimestamp(math.floor(moment / 60) * 60 + 60, UTC)
        day = start.date()
        first_minute = start.hour * 60 + start.minute
        times = sorted(h * 60 + m for h in self.hours for m in self.minutes)
        while day.year <= MAX_YEAR:
            if day.year not in self.years:
                day, first_minute = date(day.year + 1, 1, 1), 0
                continue
            if day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                first_minute = 0
                continue
            if self.matches_day(day):
                for minute in times:
                    if minute >= first_minute:
                        slot = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)
                        return slot.timestamp()
            day, first_minute = day + timedelta(days=1), 0
        return None


def _nearest_weekday(year: int, month: int, wanted: int) -> int | None:
    """The weekday (MON-FRI) nearest the ``wanted`` day, never leaving the month (None if the month is shorter)."""
    last = calendar.monthrange(year, month)[1]
    if wanted > last:
        return None
    weekday = date(year, month, wanted).weekday()
    if weekday == 5:  # Saturday: the Friday before, or the Monday after the 1st
        return wanted - 1 if wanted > 1 else wanted + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before the last day
        return wanted + 1 if wanted < last else wanted - 2
    return wanted


def _number(text: str, names: dict[str, int], field: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise invalid(f"{field}: {text!r} is not a value")
    return int(text)


def _plain(text: str, field: str, low: int, high: int, names: dict[str, int], steps: bool) -> frozenset[int]:
    """A field made of lists, ranges, ``*`` and (where allowed) steps."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise invalid(f"{field}: empty list item in {text!r}")
        base, slash, step_text = item.partition("/")
        if slash and not steps:
            raise invalid(f"{field} does not take the / wildcard")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise invalid(f"{field}: the increment of {item!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            left, _, right = base.partition("-")
            first, last = _number(left, names, field), _number(right, names, field)
            if first > last:
                raise unsupported(f"{field}: the range {base!r}, which wraps around,")
        else:
            first = _number(base, names, field)
            last = high if slash else first
        for value in (first, last):
            if not low <= value <= high:
                raise invalid(f"{field}: {value} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _day_of_month(text: str) -> tuple[frozenset[int] | None, bool, int | None]:
    if text == "?":
        return None, False, None
    if text == "L":
        return frozenset(), True, None
    if re.fullmatch(r"\d+W", text):
        day = int(text[:-1])
        if not 1 <= day <= 31:
            raise invalid(f"Day-of-month: {day} is outside 1-31")
        return frozenset(), False, day
    if "L" in text or "W" in text:
        raise unsupported(f"Day-of-month {text!r} (the guide documents L and nW only)")
    return _plain(text, "Day-of-month", 1, 31, {}, steps=True), False, None


def _day_of_week(text: str) -> tuple[frozenset[int] | None, tuple[int, int] | None]:
    if text == "?":
        return None, None
    if text == "L":
        return frozenset({7}), None
    if "#" in text:
        if "," in text:
            raise invalid(f"Day-of-week {text!r}: a # field holds one expression only")
        day_text, _, nth_text = text.partition("#")
        day = _number(day_text, DAYS, "Day-of-week")
        if not 1 <= day <= 7 or not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise invalid(f"Day-of-week {text!r}: expected <1-7 or SUN-SAT>#<1-5>")
        return None, (day, int(nth_text))
    if any(token.endswith("L") and token not in DAYS for token in re.split(r"[,\-]", text.upper())):
        raise unsupported(f"Day-of-week {text!r} (the guide documents L alone)")
    return _plain(text, "Day-of-week", 1, 7, DAYS, steps=False), None


def parse(expression: str) -> Rate | Cron:
    """The schedule of a rule's ``ScheduleExpression``; ``ScheduleError`` says what is wrong or unsupported."""
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        value, unit = int(rate[1]), rate[2]
        if value == 0:
            raise invalid("a rate must be a positive number")
        if (value == 1) == unit.endswith("s"):
            raise invalid(f"rate({value} {unit}): the unit is singular for 1 and plural otherwise")
        return Rate(text, value * _UNIT_SECONDS[unit.rstrip("s")])
    if not (text.startswith("cron(") and text.endswith(")")):
        raise invalid(f"{expression!r} is neither rate(value unit) nor cron(fields)")
    fields = text[5:-1].split()
    if len(fields) != 6:
        raise invalid(f"a cron expression has six fields, {expression!r} has {len(fields)}")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise invalid("exactly one of Day-of-month and Day-of-week must be ?")
    days_of_month, last_day, nearest = _day_of_month(dom)
    days_of_week, nth = _day_of_week(dow)
    return Cron(
        expression=text,
        minutes=_plain(minutes, "Minutes", 0, 59, {}, steps=True),
        hours=_plain(hours, "Hours", 0, 23, {}, steps=True),
        months=_plain(month, "Month", 1, 12, MONTHS, steps=True),
        years=_plain(year, "Year", MIN_YEAR, MAX_YEAR, {}, steps=True),
        days_of_month=days_of_month,
        last_day_of_month=last_day,
        nearest_weekday=nearest,
        days_of_week=days_of_week,
        nth_weekday=nth,
    )
