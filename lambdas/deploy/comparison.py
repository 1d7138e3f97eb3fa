"""What the deployment compares, per task: a candidate's answers with the golden ones (smoke test), and a
shadow's captured answers with production's for the same requests (shadow comparison).

Smoke test (``golden.json``'s ``predictions``, computed by the evaluation job through the inference handler's
own request path, so only float noise may differ): binary, the probability within the tolerance and the label
equal; multiclass, the label equal and every class probability within the tolerance (no class missing or
added); regression, the value within the tolerance relatively or absolutely (``math.isclose`` with both set to
it: values of any scale pass float noise, values near zero are held to the absolute bound).

Shadow: the labels of classification answers agree (the share of paired rows with the same label), and the
values of regression answers are compared by relative error ``|shadow - production| / |production|`` (0 when
both are 0; infinite when only production's is 0), summarised by its median and 90th percentile.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdas.shared.answers import Answer, check_task, decode_answers, json_answers, number

if TYPE_CHECKING:
    from pipelines.schema import Label, Task

ROWS_SHOWN = 3  # rows named in a failure message


# ---- smoke test: golden payloads -------------------------------------------------------------------------


def golden_task(golden: Mapping[str, Any]) -> Task:
    """The task of a golden payload file (files written before tasks existed are binary)."""
    return check_task(str(golden.get("task") or "binary"))


def expected_answers(golden: Mapping[str, Any]) -> list[Answer]:
    """The golden answers: ``predictions`` (the response's list, every task), or for a binary file written
    before it existed, ``probabilities`` (and ``labels`` when present). ``ValueError`` for anything else."""
    task = golden_task(golden)
    if isinstance(golden.get("predictions"), list):
        return json_answers({"predictions": golden["predictions"]}, task).rows
    probabilities = golden.get("probabilities")
    if task == "binary" and isinstance(probabilities, list):
        labels = golden.get("labels")
        labels = (
            labels if isinstance(labels, list) and len(labels) == len(probabilities) else [None] * len(probabilities)
        )
        return [
            Answer(probability=number(p, f"golden row {row}: probability"), label=label)
            for row, (p, label) in enumerate(zip(probabilities, labels, strict=True), start=1)
        ]
    raise ValueError(f"a {task} golden payload file needs its predictions list")


@dataclass(frozen=True)
class GoldenCheck:
    rows: int
    max_abs_diff: float  # the largest absolute difference of a compared number
    problems: list[str]


def _binary(got: Answer, want: Answer, tolerance: float) -> tuple[list[str], float]:
    assert got.probability is not None and want.probability is not None
    diff = abs(got.probability - want.probability)
    found = [] if diff <= tolerance else [f"probability {got.probability:.6f} != {want.probability:.6f}"]
    if want.label is not None and got.label != want.label:
        found.append(f"label {got.label!r} != {want.label!r}")
    return found, diff


def _multiclass(got: Answer, want: Answer, tolerance: float) -> tuple[list[str], float]:
    found = [] if got.label == want.label else [f"label {got.label!r} != {want.label!r}"]
    have, expected = dict(got.probabilities or {}), dict(want.probabilities or {})
    worst = 0.0
    for name, p in expected.items():
        if name not in have:
            found.append(f"no probability for class {name!r}")
            continue
        diff = abs(have[name] - p)
        worst = max(worst, diff)
        if not diff <= tolerance:
            found.append(f"probability of {name!r} {have[name]:.6f} != {p:.6f}")
    found += [f"unexpected class {name!r}" for name in have if name not in expected]
    return found, worst


def _regression(got: Answer, want: Answer, tolerance: float) -> tuple[list[str], float]:
    assert got.value is not None and want.value is not None
    close = math.isclose(got.value, want.value, rel_tol=tolerance, abs_tol=tolerance)
    return ([] if close else [f"value {got.value:.9g} != {want.value:.9g}"]), abs(got.value - want.value)


_ROW_CHECKS = {"binary": _binary, "multiclass": _multiclass, "regression": _regression}


def compare_golden(got: Sequence[Answer], expected: Sequence[Answer], task: str, tolerance: float) -> GoldenCheck:
    """Each answered row against its golden row, by ``task``'s rule (module docstring)."""
    check = _ROW_CHECKS[check_task(task)]
    problems = []
    if len(got) != len(expected):
        problems.append(f"{len(got)} predictions for {len(expected)} golden rows")
    worst = 0.0
    off: list[str] = []
    for row, (answer, golden) in enumerate(zip(got, expected, strict=False), start=1):
        found, diff = check(answer, golden, tolerance)
        worst = max(worst, diff)
        if found:
            off.append(f"row {row}: {', '.join(found)}")
    if off:
        shown = "; ".join(off[:ROWS_SHOWN]) + ("; ..." if len(off) > ROWS_SHOWN else "")
        problems.append(f"{len(off)} of {len(expected)} {task} answers differ (tolerance {tolerance}): {shown}")
    return GoldenCheck(rows=len(got), max_abs_diff=worst, problems=problems)


# ---- shadow: paired captured answers ---------------------------------------------------------------------


def relative_error(shadow: float, production: float) -> float:
    """``|shadow - production| / |production|``: 0 when both are 0, infinite when only production's is 0."""
    if shadow == production:
        return 0.0
    return abs(shadow - production) / abs(production) if production else math.inf


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-quantile (0 < q <= 1) of non-empty ``values``: the smallest value with at least
    ``q`` of the values at or below it (``numpy.percentile(..., method="inverted_cdf")``)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class PairStatistics:
    paired_rows: int
    agreement: float | None  # classification: share of paired rows with the same label
    mean_abs_probability_diff: float | None  # binary: positive probability; multiclass: over every class
    median_relative_error: float | None  # regression
    p90_relative_error: float | None  # regression


def pair_statistics(pairs: Iterable[tuple[Answer, Answer]], task: str) -> PairStatistics:
    """Agreement (classification) or relative error (regression) of (production, shadow) answer pairs."""
    kind = check_task(task)
    agree = paired = 0
    diffs: list[float] = []
    errors: list[float] = []
    for production, shadow in pairs:
        paired += 1
        if kind == "regression":
            assert production.value is not None and shadow.value is not None
            errors.append(relative_error(shadow.value, production.value))
            continue
        agree += str(production.label) == str(shadow.label)
        if kind == "binary" and production.probability is not None and shadow.probability is not None:
            diffs.append(abs(production.probability - shadow.probability))
        elif production.probabilities and shadow.probabilities:
            diffs += [
                abs(p - shadow.probabilities[name])
                for name, p in production.probabilities.items()
                if name in shadow.probabilities
            ]
    if not paired:
        return PairStatistics(0, None, None, None, None)
    classification = kind != "regression"
    return PairStatistics(
        paired_rows=paired,
        agreement=agree / paired if classification else None,
        mean_abs_probability_diff=sum(diffs) / len(diffs) if diffs else None,
        median_relative_error=None if classification else percentile(errors, 0.5),
        p90_relative_error=None if classification else percentile(errors, 0.9),
    )


def _decode(part: Mapping[str, Any]) -> str:
    data = str(part.get("data", ""))
    if part.get("encoding") == "BASE64":
        return base64.b64decode(data).decode("utf-8", errors="replace")
    return data


def index_captures(
    records: Iterable[Mapping[str, Any]], task: str, labels: Sequence[Label] = ()
) -> dict[str, list[Answer]]:
    """Captured answers keyed by ``inferenceId`` (or, without one, by the request's content type and body);
    a record without a readable answer (an error, another shape) is left out."""
    index: dict[str, list[Answer]] = {}
    for record in records:
        capture = record.get("captureData") or {}
        metadata = record.get("eventMetadata") or {}
        request, response = capture.get("endpointInput"), capture.get("endpointOutput")
        if not request or not response:
            continue
        key = metadata.get("inferenceId") or f"{request.get('observedContentType')}|{_decode(request)}"
        try:
            index.setdefault(
                key, decode_answers(_decode(response), response.get("observedContentType"), task, labels).rows
            )
        except (ValueError, KeyError, TypeError):
            continue
    return index


def paired_answers(
    production: Mapping[str, list[Answer]], shadow: Mapping[str, list[Answer]]
) -> Iterator[tuple[Answer, Answer]]:
    """(production, shadow) answers row by row, for the requests both captured with the same number of rows."""
    for key, answers in shadow.items():
        other = production.get(key)
        if other is not None and len(other) == len(answers):
            yield from zip(other, answers, strict=True)


def answer_reasons(
    stats: PairStatistics,
    *,
    min_agreement: float,
    max_median_relative_error: float,
    max_p90_relative_error: float,
) -> list[str]:
    """Why the shadow's answers are not close enough to production's (empty: they are, or none were paired)."""
    reasons = []
    rows = stats.paired_rows
    if stats.agreement is not None and stats.agreement < min_agreement:
        reasons.append(f"labels agree on {stats.agreement:.1%} of {rows} captured rows (minimum {min_agreement:.0%})")
    for what, value, limit in (
        ("median", stats.median_relative_error, max_median_relative_error),
        ("90th percentile", stats.p90_relative_error, max_p90_relative_error),
    ):
        if value is not None and value > limit:
            reasons.append(
                f"{what} relative error of the values {value:.1%} over {rows} captured rows (maximum {limit:.0%})"
            )
    return reasons
