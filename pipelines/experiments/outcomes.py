"""The per-observation outcomes an A/B experiment may test, per task, and how one labelled row scores.

An experiment's outcome must be measured on each observation on its own (the sequential test averages it), so a
ranking metric such as AUC, which only exists over a set of rows, is not one. The rule lives here, beside the
dataset contract: the synth refuses a declaration whose ``serving.ab.outcome`` does not fit its task
(``stacks/datasets.py``), and the evaluator Lambda scores joined rows with the same table. Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipelines.schema import Task

LOG_LOSS_EPSILON = 1e-15
"""Probabilities are clipped to [eps, 1 - eps] before the log (as ``sklearn.metrics.log_loss``)."""


@dataclass(frozen=True)
class Outcome:
    name: str
    tasks: tuple[Task, ...]
    higher_is_better: bool
    description: str


OUTCOMES: dict[str, Outcome] = {
    outcome.name: outcome
    for outcome in (
        Outcome("correct", ("binary", "multiclass"), True, "1 when the predicted label is the label, else 0"),
        Outcome(
            "log_loss",
            ("binary",),
            False,
            "-log of the probability given to the label (binary: the captured answer holds the positive "
            "probability; a multiclass answer's probabilities are not kept in the joined rows)",
        ),
        Outcome("absolute_error", ("regression",), False, "|predicted value - label|"),
        Outcome("squared_error", ("regression",), False, "(predicted value - label)^2"),
    )
}

DEFAULT_OUTCOMES: dict[Task, str] = {"binary": "correct", "multiclass": "correct", "regression": "absolute_error"}
"""The outcome of an experiment whose declaration names none."""


def outcome_problem(name: str, task: Task) -> str | None:
    """Why ``name`` cannot be the outcome of an experiment on a ``task`` model (None: it can)."""
    fitting = [o.name for o in OUTCOMES.values() if task in o.tasks]
    if name not in OUTCOMES:
        return f"{name!r} is not a per-observation outcome; a {task} model's are: {', '.join(fitting)}"
    if task not in OUTCOMES[name].tasks:
        return f"{name!r} does not fit a {task} model; its outcomes are: {', '.join(fitting)}"
    return None


def score(name: str, row: dict[str, Any], positive: Any = 1) -> float | None:
    """The outcome ``name`` of one joined row (``lambdas/ground_truth``'s ``joined.jsonl`` line: ``label``,
    ``predicted_label``, ``probability``, ``predicted_value``); None when the row lacks what it needs."""
    label = row.get("label")
    if name == "correct":
        predicted = row.get("predicted_label")
        return None if predicted is None or label is None else float(predicted == label)
    if name == "log_loss":
        probability = row.get("probability")
        if probability is None or label is None:
            return None
        p = min(max(float(probability), LOG_LOSS_EPSILON), 1 - LOG_LOSS_EPSILON)
        return -math.log(p if label == positive else 1 - p)
    value = row.get("predicted_value")
    if value is None or label is None:
        return None
    error = float(value) - float(label)
    if name == "absolute_error":
        return abs(error)
    if name == "squared_error":
        return error * error
    raise ValueError(f"unknown outcome {name!r} (known: {', '.join(OUTCOMES)})")
