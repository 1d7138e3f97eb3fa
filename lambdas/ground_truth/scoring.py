"""Model quality from joined labels: rank-based ROC AUC and accuracy (numpy only, no AWS, no scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic over average ranks (ties count one half).

    Equals ``sklearn.metrics.roc_auc_score``; None when only one class is present (AUC is undefined).
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)  # 1-based rank of the last member of each tie group
    average_rank = last_rank - (counts - 1) / 2.0
    rank_sum = float(average_rank[inverse][y].sum())
    u = rank_sum - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def accuracy(labels: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float | None:
    """Share of predictions equal to the label; None for no rows."""
    y = np.asarray(labels)
    p = np.asarray(predicted)
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {y.size} vs {p.size}")
    return float(np.mean(y == p)) if y.size else None
