"""PSI / KS / binning against hand-computed values and scipy (the reference; Lambda code never imports it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lambdas.drift_monitor import drift_math as dm


def test_psi_of_a_known_shift_matches_the_hand_computed_value() -> None:
    # Given a 50/50 baseline and a 90/10 current split
    # When PSI is computed
    value = dm.psi([0.5, 0.5], [0.9, 0.1])
    # Then it is (0.9-0.5)ln(0.9/0.5) + (0.1-0.5)ln(0.1/0.5)
    assert value == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5.0), rel=1e-12)
    assert value == pytest.approx(0.8788898309344878)


def test_psi_of_identical_distributions_is_zero_and_counts_work_like_proportions() -> None:
    assert dm.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-15)
    assert dm.psi([20, 30, 50], [2, 3, 5]) == pytest.approx(0.0, abs=1e-15)
    assert dm.psi([1, 1], [3, 1]) == pytest.approx(dm.psi([0.5, 0.5], [0.75, 0.25]))


def test_psi_is_the_symmetric_kl_divergence_of_scipy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        # Given random proportions, some bins empty on one side
        expected = rng.dirichlet(np.ones(10))
        actual = rng.dirichlet(np.ones(10))
        actual[rng.integers(10)] = 0.0
        # When / Then PSI equals KL(a||e) + KL(e||a) of the epsilon-adjusted proportions
        a, e = dm.adjusted(actual / actual.sum()), dm.adjusted(expected)
        reference = stats.entropy(a, e) + stats.entropy(e, a)
        assert dm.psi(expected, actual) == pytest.approx(reference, rel=1e-10)


def test_an_empty_bin_gets_epsilon_and_psi_stays_finite() -> None:
    # Given a bin that is empty now but held 10 % of the baseline
    value = dm.psi([0.1, 0.9], [0.0, 1.0])
    # Then the empty side counts as EPSILON (renormalised) and PSI is finite
    a = np.array([dm.EPSILON, 1.0]) / (1.0 + dm.EPSILON)
    e = np.array([0.1, 0.9])
    assert value == pytest.approx(float(np.sum((a - e) * np.log(a / e))), rel=1e-12)
    assert 0.69 < value < 0.71  # 0.0999 * ln(0.1 / 1e-4) + 0.1 * ln(1 / 0.9)


def test_psi_rejects_mismatched_bins_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"same length, got \(2,\) and \(3,\)"):
        dm.psi([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="positive total on both sides"):
        dm.psi([0.0, 0.0], [0.5, 0.5])


@pytest.mark.parametrize("discrete", [False, True])
def test_ks_statistic_equals_scipy_ks_2samp(discrete: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        # Given two samples (with many ties when discrete) and missing values on the current side
        if discrete:
            a = rng.poisson(2.0, rng.integers(1, 400)).astype(float)
            b = rng.poisson(2.4, rng.integers(1, 600)).astype(float)
        else:
            a = rng.normal(0, 1, rng.integers(1, 400))
            b = rng.normal(0.2, 1.3, rng.integers(1, 600))
        b_with_nan = b.copy()
        b_with_nan[rng.random(b.size) < 0.1] = np.nan
        # Then the statistic is scipy's, NaN ignored
        reference = stats.ks_2samp(a, b_with_nan[~np.isnan(b_with_nan)]).statistic
        assert dm.ks_statistic(a, b_with_nan) == pytest.approx(reference, abs=1e-12)


def test_ks_of_a_known_shift() -> None:
    # Given {1,2,3,4} vs {3,4,5,6}: the CDFs differ most at 2 (0.5 vs 0)
    assert dm.ks_statistic(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6])) == pytest.approx(0.5)
    assert dm.ks_statistic(np.array([1.0]), np.array([np.nan])) is None


def test_bin_counts_follow_the_etl_binning_rule() -> None:
    # Given edges [0, 10, 20, 30]: bins (-inf,10), [10,20), [20,+inf)
    values = np.array([-5.0, 0, 9.99, 10, 19, 20, 30, 99, np.nan])
    # Then values on an inner edge go to the upper bin, outliers to the end bins, NaN nowhere
    assert dm.bin_counts(values, [0, 10, 20, 30]).tolist() == [3, 2, 3]
    rng = np.random.default_rng(1)
    x = rng.normal(size=10_000)
    edges = np.quantile(x, np.linspace(0, 1, 11))
    expected = np.bincount(np.searchsorted(edges[1:-1], x, side="right"), minlength=10)
    assert dm.bin_counts(x, edges).tolist() == expected.tolist()


def test_numeric_drift_ks_is_ks_2samp_against_the_sketch_and_psi_uses_the_histogram() -> None:
    rng = np.random.default_rng(5)
    # Given a baseline sample summarised as the ETL does (decile edges, 100-point sketch)
    base = rng.gamma(2.0, 3.0, 5000)
    edges = np.unique(np.quantile(base, np.linspace(0, 1, 11)))
    proportions = dm.bin_counts(base, edges) / base.size
    sketch = np.quantile(base, (np.arange(100) + 0.5) / 100)
    baseline = dm.NumericBaseline(edges, proportions, np.sort(sketch), count=base.size, nulls=0)
    current = rng.gamma(2.0, 3.6, 3000)
    # When
    drift = dm.numeric_drift("x", current, baseline)
    # Then KS is exactly scipy's two-sample statistic against the sketch, PSI the histogram PSI
    assert drift.ks == pytest.approx(stats.ks_2samp(sketch, current).statistic, abs=1e-12)
    assert drift.psi == pytest.approx(dm.psi(proportions, dm.bin_counts(current, edges)), rel=1e-12)
    # and the sketch KS is within 1/100 of the KS against the full baseline sample
    assert abs(drift.ks - stats.ks_2samp(base, current).statistic) < 0.012
    assert drift.rows == 3000 and drift.missing == 0 and len(drift.bins) == len(edges) - 1
    assert drift.cdf_baseline[-1] == pytest.approx(1.0)


def test_numeric_drift_adds_a_missing_bin_when_the_null_rate_changes() -> None:
    # Given a baseline without nulls and a current sample with 30 % missing values
    edges = np.array([0.0, 1.0, 2.0])
    baseline = dm.NumericBaseline(edges, np.array([0.5, 0.5]), np.array([0.5, 1.5]), count=100, nulls=0)
    current = np.array([0.5] * 35 + [1.5] * 35 + [np.nan] * 30)
    # When
    drift = dm.numeric_drift("x", current, baseline)
    # Then the missing share is its own bin and drives PSI
    assert drift.bins[-1] == dm.MISSING
    assert drift.current == pytest.approx([0.35, 0.35, 0.30])
    assert drift.psi == pytest.approx(dm.psi([0.5, 0.5, 0.0], [0.35, 0.35, 0.30]))
    assert drift.missing == 30 and drift.ks == pytest.approx(0.0)


def test_categorical_drift_counts_unknown_values_in_an_other_bin() -> None:
    # Given a baseline over three categories and current values with an unknown category and missing values
    baseline = dm.CategoricalBaseline(("a", "b", "c"), np.array([0.5, 0.3, 0.2]), count=1000, nulls=0)
    # When
    drift = dm.categorical_drift("cat", {"a": 40, "b": 30, "c": 20, "zzz": 10}, missing=0, baseline=baseline)
    # Then
    assert drift.bins == ["a", "b", "c", dm.OTHER]
    assert drift.current == pytest.approx([0.4, 0.3, 0.2, 0.1])
    assert drift.psi == pytest.approx(dm.psi([0.5, 0.3, 0.2, 0.0], [0.4, 0.3, 0.2, 0.1]))
    assert drift.ks is None and drift.rows == 100
    same = dm.categorical_drift("cat", {"a": 500, "b": 300, "c": 200}, missing=0, baseline=baseline)
    assert same.bins == ["a", "b", "c"] and same.psi == pytest.approx(0.0, abs=1e-15)
