"""Model-quality metrics per task, shared by the training job and the evaluation job.

``evaluate.py`` in this package is the SageMaker Processing job (champion/challenger gate).
The metric functions live here so that ``pipelines.training.train`` can report the same metrics
without importing the evaluation job (which itself imports the training data loader).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

from pipelines.schema import DatasetSchema, Label, task_metrics

BINARY_METRICS = task_metrics("binary")
MULTICLASS_METRICS = task_metrics("multiclass")
REGRESSION_METRICS = task_metrics("regression")

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
    """All ``BINARY_METRICS`` for labels ``y_true`` (0/1) and positive-class ``probabilities``.

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
    return {name: float(values[name]) for name in BINARY_METRICS}


def multiclass_metrics(y_true: ArrayLike, probabilities: ArrayLike, labels: Sequence[Label]) -> dict[str, float]:
    """``MULTICLASS_METRICS`` for labels ``y_true`` (as declared) and ``probabilities`` (one column per label, in
    ``labels`` order). The predicted label is the most probable one; F1 averages over every declared label."""
    y = label_array(y_true, labels)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.ndim != 1 or p.shape != (len(y), len(labels)):
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} do not fit {len(labels)} classes")
    choices = label_array(labels, labels)
    predicted = choices[p.argmax(axis=1)]
    values = {
        "accuracy": skm.accuracy_score(y, predicted),
        # log_loss reads the columns in sorted label order, whatever order ``labels`` lists
        "log_loss": skm.log_loss(y, p[:, np.argsort(choices)], labels=np.sort(choices)),
        "macro_f1": skm.f1_score(y, predicted, labels=choices, average="macro", zero_division=0.0),
        "weighted_f1": skm.f1_score(y, predicted, labels=choices, average="weighted", zero_division=0.0),
    }
    return {name: float(values[name]) for name in MULTICLASS_METRICS}


def regression_metrics(y_true: ArrayLike, predictions: ArrayLike) -> dict[str, float]:
    """``REGRESSION_METRICS``: RMSE, MAE and R² of ``predictions`` against ``y_true``."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or len(y) < 2:
        raise ValueError(f"targets {y.shape} and predictions {p.shape} must be 1-d, of equal length, >= 2 rows")
    values = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p),
    }
    return {name: float(values[name]) for name in REGRESSION_METRICS}


def model_metrics(schema: DatasetSchema, y_true: ArrayLike, output: np.ndarray, threshold: float) -> dict[str, float]:
    """The metrics of ``schema``'s task from a model's output (``pipelines.inference.inference.model_output``:
    binary: the positive label's probability; multiclass: one probability column per declared label;
    regression: the predicted values)."""
    if schema.task == "regression":
        return regression_metrics(y_true, output)
    if schema.task == "multiclass":
        return multiclass_metrics(y_true, output, schema.class_labels)
    return classification_metrics(positive_indicator(y_true, schema), output, threshold)


def label_array(values: ArrayLike | Sequence[Label], labels: Sequence[Label]) -> np.ndarray:
    """``values`` as int64 when the labels are integers, else as text (what sklearn's metrics can compare)."""
    if all(isinstance(label, int) for label in labels):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in np.asarray(values, dtype=object)], dtype=str)


def positive_indicator(y_true: ArrayLike, schema: DatasetSchema) -> np.ndarray:
    """1 where a binary target holds its positive label, else 0."""
    labels = label_array(y_true, schema.class_labels)
    return (labels == label_array([schema.positive], schema.class_labels)[0]).astype(np.int64)


def quality_confusion(schema: DatasetSchema, y_true: ArrayLike, output: np.ndarray, threshold: float) -> Any:
    """The confusion matrix of a classifier (``{actual: {predicted: count}}``, string keys); None for regression."""
    if schema.task == "regression":
        return None
    if schema.task == "binary":
        return confusion_matrix(positive_indicator(y_true, schema), output, threshold)
    labels = label_array(schema.class_labels, schema.class_labels)
    predicted = labels[np.asarray(output).argmax(axis=1)]
    matrix = skm.confusion_matrix(label_array(y_true, schema.class_labels), predicted, labels=labels)
    names = [str(label) for label in schema.class_labels]
    return {a: {b: int(matrix[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)}


def confusion_matrix(y_true: ArrayLike, probabilities: ArrayLike, threshold: float = 0.5) -> dict[str, dict[str, int]]:
    """``{actual: {predicted: count}}`` with string keys "0"/"1" (SageMaker model-quality layout)."""
    y = np.asarray(y_true).astype(np.int64)
    predicted = (np.asarray(probabilities, dtype=np.float64) >= threshold).astype(np.int64)
    matrix = skm.confusion_matrix(y, predicted, labels=[0, 1])
    return {str(a): {str(b): int(matrix[a, b]) for b in (0, 1)} for a in (0, 1)}
