"""Pure drift math: binning, PSI and KS of current values against the ETL baseline. numpy only, no AWS.

Baseline (the ``features`` section of the ETL quality report, ``pipelines/etl/transforms.py``):

* numeric: ``histogram.edges`` / ``histogram.proportions`` (quantile bins; bin i holds
  ``edges[i] <= x < edges[i+1]``, the first bin open below and the last open above) and ``sketch.values``
  (the ``(i + 0.5) / size`` quantiles: a pseudo-sample whose empirical CDF is within about 1/size of the
  training data's CDF), ``count`` and ``nulls``.
* categorical: ``proportions`` per allowed category, ``count`` and ``nulls``.

PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over the bins, with e the baseline and a the current proportions.
Bins: the baseline histogram bins (numeric) or the categories plus ``__other__`` for values outside the
schema's categories (categorical); a ``__missing__`` bin joins when either side has missing values, so a
change in the null rate is drift too. Empty bins: every proportion below ``EPSILON`` (1e-4) is raised to
``EPSILON`` and each side is renormalised to sum to 1, which keeps PSI finite (an empty bin facing 10 % on the
other side adds about 0.69). With that, PSI equals the symmetric KL divergence
``scipy.stats.entropy(a, e) + scipy.stats.entropy(e, a)`` of the adjusted proportions.

KS = sup_x |F_current(x) - F_baseline(x)| over the non-missing values, F_baseline being the empirical CDF of
the sketch: exactly ``scipy.stats.ks_2samp(sketch, current).statistic``. The baseline CDF is constant
between consecutive sketch values, so the supremum is reached at a sketch value or just left of one: only
the counts of current values below / at each sketch value are needed. One blockwise sort of the data gives
those together with the PSI bin counts (``tally``), at the cost of one ``np.histogram``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPSILON = 1e-4
OTHER = "__other__"
MISSING = "__missing__"


# ---- PSI -------------------------------------------------------------------------------------------------


def adjusted(proportions: Sequence[float] | np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    """Proportions with every value below ``epsilon`` raised to it, renormalised to sum to 1."""
    p = np.maximum(np.asarray(proportions, dtype=np.float64), epsilon)
    return np.asarray(p / p.sum())


def psi(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, epsilon: float = EPSILON
) -> float:
    """Population stability index of ``actual`` against ``expected`` (same bins, proportions or counts)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise ValueError(f"psi needs two non-empty vectors of the same length, got {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        raise ValueError("psi needs a positive total on both sides")
    e = adjusted(e / e.sum(), epsilon)
    a = adjusted(a / a.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


# ---- one pass over the data: counts below / at sorted knots --- ----------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Counts of the non-missing values below (``<``) and at-or-below (``<=``) each of the sorted ``knots``."""

    knots: np.ndarray
    below: np.ndarray
    at_or_below: np.ndarray
    total: int
    missing: int


BLOCK = 65_536  # values sorted per block (cache-sized, as np.histogram does for uneven bins)


def tally(values: np.ndarray, knots: np.ndarray | Sequence[float]) -> Tally:
    """Counts of ``values`` below / at-or-below each unique sorted knot (NaN = missing).

    The values are sorted block by block (SIMD sort of a cache-sized block) and each knot is located in
    each block with ``np.searchsorted`` from both sides: O(n log BLOCK) like ``np.histogram`` itself, and
    NaN, which sorts last, never counts below a knot.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    k = np.unique(np.asarray(knots, dtype=np.float64))
    k = k[~np.isnan(k)]
    missing = int(np.count_nonzero(np.isnan(x)))
    below = np.zeros(k.size, np.int64)
    at_or_below = np.zeros(k.size, np.int64)
    if k.size:
        for start in range(0, x.size, BLOCK):
            block = np.sort(x[start : start + BLOCK])
            below += np.searchsorted(block, k, side="left")
            at_or_below += np.searchsorted(block, k, side="right")
    return Tally(knots=k, below=below, at_or_below=at_or_below, total=int(x.size) - missing, missing=missing)


def bin_counts(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Counts per bin of ``edges`` (bin i holds edges[i] <= x < edges[i+1], end bins open); NaN ignored."""
    return _bins_from_tally(tally(values, edges[1:-1]), edges)


def _bins_from_tally(t: Tally, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    less = t.below[np.searchsorted(t.knots, inner)]  # every inner edge is a knot
    return np.diff(np.concatenate(([0], less, [t.total]))).astype(np.int64)


def _ks_from_tally(t: Tally, reference_sorted: np.ndarray) -> float | None:
    """sup |F_current - F_reference|; every value of ``reference_sorted`` must be one of ``t.knots``.

    F_reference is constant between consecutive knots and F_current is non-decreasing, so the supremum is
    reached at a knot (right-continuous values) or just left of one (left limits).
    """
    if reference_sorted.size == 0 or t.total == 0:
        return None
    ref_at = np.searchsorted(reference_sorted, t.knots, side="right") / reference_sorted.size
    ref_left = np.concatenate(([0.0], ref_at[:-1]))
    gap_at = np.abs(t.at_or_below / t.total - ref_at)
    gap_left = np.abs(t.below / t.total - ref_left)
    return float(max(gap_at.max(), gap_left.max()))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float | None:
    """Two-sample KS statistic sup |F_current - F_reference| (NaN ignored), as ``scipy.stats.ks_2samp``.

    None when either side has no values.
    """
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    ref = ref[~np.isnan(ref)]
    return _ks_from_tally(tally(current, ref), ref)


# ---- per-feature drift against the quality-report baseline -----------------------------------------------


@dataclass(frozen=True)
class NumericBaseline:
    edges: np.ndarray
    proportions: np.ndarray  # per histogram bin, over the non-missing values
    sketch: np.ndarray  # sorted pseudo-sample for KS
    count: int
    nulls: int

    @classmethod
    def from_report(cls, stats: Mapping[str, Any]) -> NumericBaseline | None:
        """From a report's numeric feature entry; None when the baseline has no values."""
        histogram = stats.get("histogram")
        if not histogram or not stats.get("count"):
            return None
        sketch = stats.get("sketch") or {}
        values = sketch.get("values") or []
        return cls(
            edges=np.asarray(histogram["edges"], dtype=np.float64),
            proportions=np.asarray(histogram["proportions"], dtype=np.float64),
            sketch=np.sort(np.asarray(values, dtype=np.float64)),
            count=int(stats["count"]),
            nulls=int(stats.get("nulls") or 0),
        )


@dataclass(frozen=True)
class CategoricalBaseline:
    categories: tuple[str, ...]
    proportions: np.ndarray  # per category, over the non-missing values
    count: int
    nulls: int

    @classmethod
    def from_report(cls, stats: Mapping[str, Any]) -> CategoricalBaseline | None:
        if not stats.get("count"):
            return None
        proportions = stats["proportions"]
        return cls(
            categories=tuple(proportions),
            proportions=np.asarray([proportions[c] for c in proportions], dtype=np.float64),
            count=int(stats["count"]),
            nulls=int(stats.get("nulls") or 0),
        )


@dataclass
class FeatureDrift:
    """The comparison of one feature: bins with both sides' proportions, PSI and (numeric) KS."""

    name: str
    kind: str
    rows: int  # current values, missing included
    missing: int
    psi: float
    ks: float | None
    bins: list[str]
    baseline: list[float]
    current: list[float]
    # numeric only: both CDFs at the knots (for the report's plot)
    cdf_x: list[float] = field(default_factory=list)
    cdf_baseline: list[float] = field(default_factory=list)
    cdf_current: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "psi": self.psi,
            "ks": self.ks,
            "bins": self.bins,
            "baseline": self.baseline,
            "current": self.current,
        }
        if self.cdf_x:
            doc["cdf"] = {"x": self.cdf_x, "baseline": self.cdf_baseline, "current": self.cdf_current}
        return doc


def _with_missing(
    labels: list[str],
    expected: np.ndarray,
    actual: np.ndarray,
    base_count: int,
    base_nulls: int,
    missing: int,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Add the ``__missing__`` bin when either side has missing values (proportions over all rows)."""
    if not base_nulls and not missing:
        return labels, expected, actual
    base_total = base_count + base_nulls
    expected = np.append(expected * (base_count / base_total), base_nulls / base_total)
    return [*labels, MISSING], expected, np.append(actual, missing)


def _normalised(expected: np.ndarray) -> np.ndarray:
    total = expected.sum()
    return expected / total if total else expected


def _proportions(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return list((counts / total).tolist()) if total else [0.0] * len(counts)


def numeric_drift(name: str, values: np.ndarray, baseline: NumericBaseline) -> FeatureDrift:
    """PSI over the baseline's histogram bins (+ missing) and KS against its sketch, in one data pass."""
    edges = baseline.edges
    t = tally(values, np.concatenate((edges[1:-1], baseline.sketch)))
    counts = _bins_from_tally(t, edges)
    labels = _bin_labels(edges)
    labels, expected, actual = _with_missing(
        labels, baseline.proportions, counts.astype(np.float64), baseline.count, baseline.nulls, t.missing
    )
    ks = _ks_from_tally(t, baseline.sketch)
    drift = FeatureDrift(
        name=name,
        kind="numeric",
        rows=t.total + t.missing,
        missing=t.missing,
        psi=psi(expected, actual),
        ks=ks,
        bins=labels,
        baseline=_normalised(expected).tolist(),
        current=_proportions(actual),
    )
    if ks is not None:
        drift.cdf_x = t.knots.tolist()
        drift.cdf_baseline = (np.searchsorted(baseline.sketch, t.knots, "right") / baseline.sketch.size).tolist()
        drift.cdf_current = (t.at_or_below / t.total).tolist()
    return drift


def categorical_drift(
    name: str, counts: Mapping[str, int], missing: int, baseline: CategoricalBaseline
) -> FeatureDrift:
    """PSI over the categories (+ ``__other__`` for unknown values, + missing); no KS."""
    known = np.asarray([counts.get(c, 0) for c in baseline.categories], dtype=np.float64)
    other = sum(v for k, v in counts.items() if k not in set(baseline.categories))
    labels = list(baseline.categories)
    expected = baseline.proportions.copy()
    if other:
        labels.append(OTHER)
        expected = np.append(expected, 0.0)
        known = np.append(known, other)
    labels, expected, actual = _with_missing(labels, expected, known, baseline.count, baseline.nulls, missing)
    return FeatureDrift(
        name=name,
        kind="categorical",
        rows=int(known.sum()) + missing,
        missing=missing,
        psi=psi(expected, actual),
        ks=None,
        bins=labels,
        baseline=_normalised(expected).tolist(),
        current=_proportions(actual),
    )


def _bin_labels(edges: np.ndarray) -> list[str]:
    if edges.size <= 2:
        return [f"all ({_fmt(edges[0])})"] if edges.size else []
    inner = [_fmt(e) for e in edges[1:-1]]
    labels = [f"< {inner[0]}"]
    labels += [f"[{lo}, {hi})" for lo, hi in itertools.pairwise(inner)]
    labels.append(f">= {inner[-1]}")
    return labels


def _fmt(value: float) -> str:
    return f"{value:.4g}"
