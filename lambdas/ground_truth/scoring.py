"""Model quality from joined labels, per task: rank-based ROC AUC and accuracy (binary), accuracy and macro F1
(multiclass), RMSE and MAE (regression). Standard library only: no numpy, no AWS, no scikit-learn; a label file
holds thousands of rows, not millions, and this keeps the Lambda off the AWS SDK for pandas layer."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import groupby
from typing import Any


def _score_key(score: float) -> tuple[bool, float]:
    return (math.isnan(score), 0.0 if math.isnan(score) else score)  # NaN ranks last, all NaN tie


def roc_auc(labels: Sequence[Any], scores: Sequence[Any]) -> float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic over average ranks (ties count one half).

    Equals ``sklearn.metrics.roc_auc_score``; None when only one class is present (AUC is undefined).
    """
    if len(labels) != len(scores):
        raise ValueError(f"labels and scores differ in length: {len(labels)} vs {len(scores)}")
    pairs = sorted(((float(s), bool(y)) for y, s in zip(labels, scores, strict=True)), key=lambda p: _score_key(p[0]))
    positives = sum(positive for _, positive in pairs)
    negatives = len(pairs) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = 0.0
    last_rank = 0  # 1-based rank of the last member of the previous tie group
    for _, group in groupby(pairs, key=lambda p: _score_key(p[0])):
        members = [positive for _, positive in group]
        average_rank = last_rank + len(members) - (len(members) - 1) / 2.0
        rank_sum += average_rank * sum(members)
        last_rank += len(members)
    u = rank_sum - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def accuracy(labels: Sequence[Any], predicted: Sequence[Any]) -> float | None:
    """Share of predictions equal to the label; None for no rows."""
    _same_length(labels, predicted)
    if len(labels) == 0:
        return None
    return sum(y == p for y, p in zip(labels, predicted, strict=True)) / len(labels)


def _same_length(labels: Sequence[Any], predicted: Sequence[Any]) -> None:
    if len(labels) != len(predicted):
        raise ValueError(f"labels and predictions differ in length: {len(labels)} vs {len(predicted)}")


def macro_f1(labels: Sequence[Any], predicted: Sequence[Any]) -> float | None:
    """Unweighted mean of the per-class F1 = 2 TP / (2 TP + FP + FN) over the classes that occur among the labels
    or the predictions (``sklearn.metrics.f1_score(average="macro")`` with its default label set): a class that
    a batch of labels happens not to contain is not scored 0. None for no rows."""
    _same_length(labels, predicted)
    if len(labels) == 0:
        return None
    true_positive: Counter[Any] = Counter()
    false_positive: Counter[Any] = Counter()
    false_negative: Counter[Any] = Counter()
    for y, p in zip(labels, predicted, strict=True):
        if y == p:
            true_positive[y] += 1
        else:
            false_positive[p] += 1
            false_negative[y] += 1
    classes = set(labels) | set(predicted)
    scores = [2 * true_positive[c] / (2 * true_positive[c] + false_positive[c] + false_negative[c]) for c in classes]
    return math.fsum(scores) / len(scores)


def rmse(labels: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Root mean squared error; None for no rows."""
    _same_length(labels, predicted)
    if len(labels) == 0:
        return None
    return math.sqrt(math.fsum((p - y) ** 2 for y, p in zip(labels, predicted, strict=True)) / len(labels))


def mae(labels: Sequence[float], predicted: Sequence[float]) -> float | None:
    """Mean absolute error; None for no rows."""
    _same_length(labels, predicted)
    if len(labels) == 0:
        return None
    return math.fsum(abs(p - y) for y, p in zip(labels, predicted, strict=True)) / len(labels)
