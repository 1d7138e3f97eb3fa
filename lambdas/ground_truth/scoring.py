"""Model quality from joined labels: rank-based ROC AUC and accuracy (standard library only: no numpy, no AWS,
no scikit-learn; a label file holds thousands of rows, not millions, and this keeps the Lambda off the
AWS SDK for pandas layer)."""

from __future__ import annotations

import math
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
    if len(labels) != len(predicted):
        raise ValueError(f"labels and predictions differ in length: {len(labels)} vs {len(predicted)}")
    if len(labels) == 0:
        return None
    return sum(int(y) == int(p) for y, p in zip(labels, predicted, strict=True)) / len(labels)
