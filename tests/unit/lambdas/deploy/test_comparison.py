"""The deployment's comparisons per task, at the lowest layer: percentiles, relative errors, paired answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lambdas.deploy.comparison import pair_statistics, percentile, relative_error
from lambdas.shared.answers import Answer


@pytest.mark.parametrize("size", [1, 2, 5, 10, 19, 20, 101])
@pytest.mark.parametrize("q", [0.5, 0.9])
def test_the_nearest_rank_percentile_is_numpys_inverted_cdf(size: int, q: float) -> None:
    values = np.random.default_rng(size).normal(size=size).tolist()
    assert percentile(values, q) == np.percentile(values, 100 * q, method="inverted_cdf")


def test_relative_error_is_relative_to_production_and_defined_at_zero() -> None:
    assert relative_error(110.0, 100.0) == pytest.approx(0.1)
    assert relative_error(-90.0, -100.0) == pytest.approx(0.1)
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(0.5, 0.0) == math.inf


def test_classification_pairs_agree_by_label_whatever_the_format() -> None:
    # Given pairs whose labels came as JSON ints on one side and CSV text on the other
    pairs = [(Answer(label=1, probability=0.9), Answer(label="1", probability=0.8))] * 3
    pairs += [(Answer(label=0, probability=0.2), Answer(label="1", probability=0.6))]
    # Then three of four agree, and the positive probabilities differ by 0.175 on average
    stats = pair_statistics(pairs, "binary")
    assert (stats.paired_rows, stats.agreement) == (4, 0.75)
    assert stats.mean_abs_probability_diff == pytest.approx((0.1 * 3 + 0.4) / 4)
    assert stats.median_relative_error is None


def test_regression_pairs_have_no_agreement_but_relative_errors() -> None:
    pairs = [(Answer(value=100.0), Answer(value=100.0 * (1 + e))) for e in [0.0] * 8 + [0.3, 0.5]]
    stats = pair_statistics(pairs, "regression")
    assert (stats.paired_rows, stats.agreement, stats.mean_abs_probability_diff) == (10, None, None)
    assert stats.median_relative_error == 0.0
    assert stats.p90_relative_error == pytest.approx(0.3)


def test_no_pairs_give_no_statistics() -> None:
    assert pair_statistics([], "multiclass").agreement is None
