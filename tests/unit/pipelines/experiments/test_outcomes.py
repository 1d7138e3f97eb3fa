from __future__ import annotations

import math

import pytest

from pipelines.experiments.outcomes import OUTCOMES, outcome_problem, score


@pytest.mark.parametrize(
    ("name", "row", "expected"),
    [
        ("correct", {"label": "billing", "predicted_label": "billing"}, 1.0),
        ("correct", {"label": 1, "predicted_label": 0}, 0.0),
        ("log_loss", {"label": 1, "probability": 0.8}, -math.log(0.8)),
        ("log_loss", {"label": 0, "probability": 0.8}, -math.log(0.2)),
        ("log_loss", {"label": 1, "probability": 0.0}, -math.log(1e-15)),
        ("absolute_error", {"label": 10.0, "predicted_value": 7.5}, 2.5),
        ("squared_error", {"label": 10.0, "predicted_value": 7.5}, 6.25),
    ],
)
def test_one_joined_row_scores_its_outcome(name: str, row: dict[str, object], expected: float) -> None:
    assert score(name, row) == pytest.approx(expected)


def test_a_row_without_what_the_outcome_needs_scores_none() -> None:
    assert score("correct", {"label": 1, "predicted_label": None}) is None
    assert score("absolute_error", {"label": 3.0}) is None
    with pytest.raises(ValueError, match="unknown outcome 'auc'"):
        score("auc", {"label": 1, "predicted_value": 1.0})


def test_an_outcome_must_fit_the_task_and_auc_is_not_one() -> None:
    assert outcome_problem("correct", "multiclass") is None
    assert outcome_problem("squared_error", "regression") is None
    auc = outcome_problem("auc", "binary")
    assert auc is not None and "not a per-observation outcome" in auc and "correct, log_loss" in auc
    wrong = outcome_problem("absolute_error", "binary")
    assert wrong is not None and "does not fit a binary model" in wrong
    assert outcome_problem("log_loss", "multiclass") is not None
    assert {o.higher_is_better for o in OUTCOMES.values()} == {True, False}
