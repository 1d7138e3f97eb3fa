"""Model-quality metrics of a binary classifier, shared by the training job and the evaluation job.

``evaluate.py`` in this package is the SageMaker Processing job (champion/challenger gate).
The metric functions live here so that ``pipelines.training.train`` can report the same metrics
without importing the evaluation job (which itself imports the training data loader).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

from pipelines.training.metric_definitions import METRIC_NAMES

CALIBRATION_BINS = 10


def expected_calibration_error(y_true: ArrayLike, probabilities: ArrayLike, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins.

    ECE = sum over bins of (rows in bin / rows) * |observed positive rate - mean predicted probability|.
    Bins are ``(lo, hi]`` with 0.0 in the first bin, as in ``sklearn.calibration.calibration_curve``.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("expected_calibration_error needs at least one row")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(index, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    filled = counts > 0
    gaps = np.abs(observed[filled] - predicted[filled]) / counts[filled]
    return float(np.sum(gaps * counts[filled]) / len(y))


def classification_metrics(y_true: ArrayLike, probabilities: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """All ``METRIC_NAMES`` for labels ``y_true`` (0/1) and positive-class ``probabilities``.

    Threshold metrics (accuracy, F1, precision, recall) predict 1 when probability >= ``threshold``.
    Raises ``ValueError`` when ``y_true`` holds a single class (AUC is undefined).
    """
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} must be 1-d and of equal length")
    classes = np.unique(y)
    if not np.isin(classes, (0, 1)).all():
        raise ValueError(f"labels must be 0/1, got {classes.tolist()}")
    if len(classes) < 2:
        raise ValueError(f"labels hold only class {classes.tolist()}; AUC is undefined")
    predicted = (p >= threshold).astype(np.int64)
    values = {
        "auc": skm.roc_auc_score(y, p),
        "accuracy": skm.accuracy_score(y, predicted),
        "f1": skm.f1_score(y, predicted, zero_division=0.0),
        "precision": skm.precision_score(y, predicted, zero_division=0.0),
        "recall": skm.recall_score(y, predicted, zero_division=0.0),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier_score": skm.brier_score_loss(y, p),
        "expected_calibration_error": expected_calibration_error(y, p),
    }
    return {name: float(values[name]) for name in METRIC_NAMES}


def confusion_matrix(y_true: ArrayLike, probabilities: ArrayLike, threshold: float = 0.5) -> dict[str, dict[str, int]]:
    """``{actual: {predicted: count}}`` with string keys "0"/"1" (SageMaker model-quality layout)."""
    y = np.asarray(y_true).astype(np.int64)
    predicted = (np.asarray(probabilities, dtype=np.float64) >= threshold).astype(np.int64)
    matrix = skm.confusion_matrix(y, predicted, labels=[0, 1])
    return {str(a): {str(b): int(matrix[a, b]) for b in (0, 1)} for a in (0, 1)}
