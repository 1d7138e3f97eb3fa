"""The training hyperparameters: one definition for ``train.py`` (its defaults) and the stage configuration.

Light on purpose (standard library only): ``stacks.config`` imports it to build ``TrainingSettings``, and the
CDK builds the training job's ``HyperParameters`` with ``stage_hyperparameters`` (plus the execution's dataset,
``DATASET_HYPERPARAMETER``), so neither needs scikit-learn and ``train.py`` never imports ``stacks``. The dataset's
schema is not a hyperparameter: ``train.py`` reads it from the platform document in its source archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

MAX_HYPERPARAMETER_LENGTH = 2500  # CreateTrainingJob: HyperParameters values are at most 2500 characters
DATASET_HYPERPARAMETER = "dataset"
"""The declared dataset a training job trains (its name; ``pipelines.platform`` has the rest)."""


@dataclass(frozen=True)
class Hyperparameters:
    """The script's hyperparameters and their defaults (also the stage configuration's defaults)."""

    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    l2_regularization: float = 0.0
    seed: int = 42

    def items(self) -> tuple[tuple[str, str], ...]:
        """``(name, value)`` pairs as CreateTrainingJob strings (the toolkit JSON-decodes them back)."""
        return tuple((name, json.dumps(value)) for name, value in asdict(self).items())


def stage_hyperparameters(settings: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The stage's ``HyperParameters`` of every CreateTrainingJob request (``Hyperparameters.items()``)."""
    values = {name: str(value) for name, value in settings}
    for name, value in values.items():
        if len(value) > MAX_HYPERPARAMETER_LENGTH:
            raise ValueError(f"hyperparameter {name!r} is {len(value)} characters; the limit is 2500")
    return values


def job_hyperparameters(settings: Iterable[tuple[str, str]], dataset: str) -> dict[str, str]:
    """``HyperParameters`` of the CreateTrainingJob request that trains ``dataset`` with ``settings``.

    The training toolkit ``json.loads`` every value before it builds the command line: the dataset name is sent
    as a JSON string literal (``"churn"``), so that a name such as ``null`` or ``true`` stays a string (the state
    machine sends ``States.JsonToString($.dataset)``, the same text)."""
    return {**stage_hyperparameters(settings), DATASET_HYPERPARAMETER: json.dumps(dataset)}


def decode_value(text: Any) -> Any:
    """A hyperparameter value as the training toolkit hands it over: it ``json.loads`` every value and keeps the
    text when that fails (``"57"`` -> 57, ``"null"`` -> None, ``"sqrt"`` -> ``"sqrt"``)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
