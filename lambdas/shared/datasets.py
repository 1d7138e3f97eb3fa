"""Which declared dataset an event is about: the platform document shipped with the Lambda code
(``pipelines/datasets.json``, ``pipelines.platform``) knows every dataset of the stage and its settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.platform import Dataset, platform


class DatasetNotNamed(ValueError):
    """A state machine execution whose input carries no ``"dataset"``."""


def dataset_of_state(state: Mapping[str, Any]) -> Dataset:
    """The dataset of a training-pipeline execution (``$.dataset``, from the start or the retrain Lambda);
    ``UnknownDataset`` names the declared ones when it is no longer declared."""
    name = state.get("dataset")
    if not isinstance(name, str) or not name:
        raise DatasetNotNamed(
            f"the execution's input names no dataset ('dataset': '<name>', got {name!r}): it was not started by "
            "this stack's start or retrain Lambda"
        )
    return platform().dataset(name)
