"""What the deployment compares: a shadow's captured answers with production's for the same requests, per task
(the golden-payload smoke test compares served answers in the evaluation job: ``pipelines/evaluation/smoke.py``).

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

from lambdas.shared.answers import Answer, check_task, decode_answers

if TYPE_CHECKING:
    from pipelines.schema import Label, Task


# ---- golden payloads: the dataset's task ------------------------------------------------------------------


def golden_task(golden: Mapping[str, Any]) -> Task:
    """The task of a golden payload file (files written before tasks existed are binary)."""
    return check_task(str(golden.get("task") or "binary"))


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
