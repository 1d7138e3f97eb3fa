"""CloudWatch metric math as the local cloud evaluates it for alarms (using-metric-math.html): point-by-point
arithmetic with missing points, comparisons, IF, FILL, METRICS() and the aggregates; what is not implemented is
refused by name."""

from __future__ import annotations

import pytest

from localcloud.runtime.metric_math import Array, Context, MathError, evaluate, parse, series_of

# three periods, oldest first; None: no datapoint in that period
ERRORS = [1.0, None, 4.0]
REQUESTS = [10.0, 20.0, 0.0]
LATENCY = [None, 300.0, None]


def run(expression: str) -> object:
    context = Context({"errors": list(ERRORS), "requests": list(REQUESTS), "latency": list(LATENCY)}, 60, 3)
    return evaluate(parse(expression), context)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3 ^ 2", 19.0),
        ("-(4 - 10) / 2", 3.0),
        ("errors * 2", [2.0, None, 8.0]),
        ("100 * errors / requests", [10.0, None, None]),  # a missing point, a division by zero: no point
        ("errors + latency", [None, None, None]),
        ("FILL(errors, 0)", [1.0, 0.0, 4.0]),
        ("FILL(latency, REPEAT)", [None, 300.0, 300.0]),
        ("FILL(errors, LINEAR)", [1.0, 2.5, 4.0]),
        ("errors > 2", [0.0, None, 1.0]),
        ("requests >= 10 AND requests != 20", [1.0, 0.0, 0.0]),
        ("requests == 0 || requests > 15", [0.0, 1.0, 1.0]),
        ("NOT requests", [0.0, 0.0, 1.0]),
        ("IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)", [10.0, 0.0, 0.0]),
        ("IF(requests > 15, requests)", [None, 20.0, None]),
        ("SUM(requests)", [30.0, 30.0, 30.0]),  # one series: a single number over its points
        ("MAX(errors)", [4.0, 4.0, 4.0]),
        ("SUM(METRICS())", [11.0, 320.0, 4.0]),  # an array: point by point over the series that have the point
        ("AVG([errors, requests])", [5.5, 20.0, 2.0]),
        ("MIN(METRICS('req'))", [10.0, 20.0, 0.0]),
        ("ABS(errors - 3)", [2.0, None, 1.0]),
        ("CEIL(requests / 3)", [4.0, 7.0, 0.0]),
        ("FLOOR(requests / 3)", [3.0, 6.0, 0.0]),
        ("PERIOD(errors)", 60.0),
    ],
)
def test_expressions(expression: str, expected: object) -> None:
    assert run(expression) == expected


def test_metrics_returns_every_metric_query() -> None:
    value = run("METRICS()")
    assert isinstance(value, Array) and len(value.series) == 3


def test_a_number_holds_for_every_period_and_an_array_is_no_alarm_result() -> None:
    context = Context({"m1": [1.0, 2.0]}, 60, 2)
    assert series_of(parse("42"), context) == [42.0, 42.0]
    with pytest.raises(MathError, match="must return a single time series, not an array"):
        series_of(parse("METRICS()"), context)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("ANOMALY_DETECTION_BAND(m1, 2)", "the metric math function ANOMALY_DETECTION_BAND is not supported"),
        ("RATE(m1)", "the metric math function RATE is not supported"),
        ("DIFF(m1)", "the metric math function DIFF is not supported"),
        ("m1 +", "expected more"),
        ("m1 $ 2", "cannot read the expression"),
        ("Unknown", "unexpected 'Unknown'"),
    ],
)
def test_what_is_not_implemented_or_not_valid_is_refused_by_name(expression: str, message: str) -> None:
    with pytest.raises(MathError, match=message.replace("(", r"\(").replace("$", r"\$")):
        parse(expression)


def test_an_unknown_id_is_refused() -> None:
    with pytest.raises(MathError, match="the expression names 'nope', which is not a query of the alarm"):
        evaluate(parse("nope * 2"), Context({}, 60, 1))
