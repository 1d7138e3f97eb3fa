"""The training hyperparameters: one definition for ``train.py`` (its defaults) and the stage configuration.

Light on purpose (standard library and ``pipelines.schema`` only): ``stacks.config`` imports it to build
``TrainingSettings``, and the CDK builds the training job's ``HyperParameters`` with ``job_hyperparameters``,
so neither needs scikit-learn and ``train.py`` never imports ``stacks``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from pipelines.schema import DatasetSchema

MAX_HYPERPARAMETER_LENGTH = 2500  # CreateTrainingJob: HyperParameters values are at most 2500 characters


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


def job_hyperparameters(settings: Iterable[tuple[str, str]], schema: DatasetSchema) -> dict[str, str]:
    """``HyperParameters`` of the CreateTrainingJob request for ``settings`` and ``schema``.

    The training toolkit ``json.loads`` every value before it builds the command line, and it would turn
    a JSON object into ``k=v,...``; so the schema travels JSON-encoded twice (a JSON string literal).
    """
    values = {name: str(value) for name, value in settings}
    values["schema_json"] = json.dumps(schema.to_json())
    for name, value in values.items():
        if len(value) > MAX_HYPERPARAMETER_LENGTH:
            raise ValueError(f"hyperparameter {name!r} is {len(value)} characters; the limit is 2500")
    return values
