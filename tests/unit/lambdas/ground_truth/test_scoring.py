"""Ground-truth scores against scikit-learn (the reference; Lambda code never imports it): rank-based AUC,
accuracy, macro F1, RMSE and MAE."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, roc_auc_score

from lambdas.ground_truth.scoring import accuracy, macro_f1, mae, rmse, roc_auc


@pytest.mark.parametrize("tied", [False, True])
def test_auc_equals_sklearn_roc_auc_score(tied: bool) -> None:
    rng = np.random.default_rng(11)
    for _ in range(60):
        # Given labels and scores related to them (many tied scores when ``tied``)
        n = int(rng.integers(2, 400))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        scores = np.clip(0.3 * y + rng.normal(0.4, 0.25, n), 0, 1)
        if tied:
            scores = np.round(scores * 4) / 4
        # Then the Mann-Whitney AUC is sklearn's
        assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_auc_of_known_rankings() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts one half
    assert roc_auc([0, 1, 0, 1], [0.1, 0.4, 0.5, 0.8]) == 0.75  # 3 of 4 positive-negative pairs ordered


def test_auc_is_undefined_with_one_class_and_lengths_must_match() -> None:
    assert roc_auc([1, 1, 1], [0.2, 0.4, 0.9]) is None
    with pytest.raises(ValueError, match="labels and scores differ in length: 2 vs 3"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])


def test_accuracy_equals_sklearn() -> None:
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    assert accuracy(y, p) == pytest.approx(accuracy_score(y, p))
    assert accuracy([], []) is None
    with pytest.raises(ValueError, match="labels and predictions differ in length: 1 vs 2"):
        accuracy([1], [1, 0])


def test_macro_f1_equals_sklearn_over_the_classes_present() -> None:
    rng = np.random.default_rng(4)
    classes = np.array(["billing", "technical", "account", "sales"])
    for _ in range(40):
        # Given string labels and predictions where a class may be absent from either side
        n = int(rng.integers(1, 300))
        y = classes[rng.integers(0, 4, n)].tolist()
        p = [label if rng.random() < 0.6 else str(classes[rng.integers(0, 3)]) for label in y]
        # Then the macro F1 is sklearn's with its default label set (the classes in y or p)
        assert macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro"), abs=1e-12)
    assert macro_f1([], []) is None
    assert macro_f1([1, 2], [1, 2]) == 1.0


def test_rmse_and_mae_equal_sklearn() -> None:
    rng = np.random.default_rng(8)
    y, p = rng.normal(300, 80, 400), rng.normal(300, 80, 400)
    assert rmse(y.tolist(), p.tolist()) == pytest.approx(mean_squared_error(y, p) ** 0.5)
    assert mae(y.tolist(), p.tolist()) == pytest.approx(mean_absolute_error(y, p))
    assert rmse([], []) is None and mae([], []) is None
    with pytest.raises(ValueError, match="labels and predictions differ in length: 1 vs 2"):
        mae([1.0], [1.0, 2.0])


def test_accuracy_compares_string_labels() -> None:
    assert accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 0.75
