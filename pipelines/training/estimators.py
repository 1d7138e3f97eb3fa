"""The built-in estimators of ``pipelines.schema.ESTIMATORS`` as scikit-learn objects.

``model.estimator`` in a declaration names one (histogram gradient boosting, the default; ``linear``:
LogisticRegression / Ridge; ``random_forest``); its ``model.hyperparameters`` were checked against the catalog when
the declaration loaded. The stage's ``Hyperparameters`` (``TrainingSettings``) still apply where they fit: the
boosting defaults (``max_iter``, ``learning_rate``, ``max_leaf_nodes``, ``l2_regularization``) and ``seed`` as the
``random_state`` of every estimator that has one; a declared value wins over the stage's.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

from pipelines.schema import DEFAULT_ESTIMATOR, ESTIMATORS, DatasetSchema
from pipelines.training.hyperparameters import Hyperparameters

CLASSES: dict[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        LogisticRegression,
        Ridge,
        RandomForestClassifier,
        RandomForestRegressor,
    )
}
"""The scikit-learn class of each name ``ESTIMATORS`` uses."""

STAGE_BOOSTING = ("max_iter", "learning_rate", "max_leaf_nodes", "l2_regularization")
"""The stage hyperparameters that are the boosting estimator's defaults."""


def estimator_parameters(schema: DatasetSchema, hyperparameters: Hyperparameters) -> dict[str, Any]:
    """The keyword arguments of the dataset's estimator: the stage's where they fit, the declared ones over them."""
    spec = schema.model_spec
    declared = spec.check_task(schema.task)
    stage = asdict(hyperparameters)
    if spec.name == DEFAULT_ESTIMATOR:
        # the validation split is ours (gate, metrics); max_iter is the budget
        base: dict[str, Any] = {name: stage[name] for name in STAGE_BOOSTING} | {"early_stopping": False}
    else:
        base = {}
    if spec.name != "linear" or schema.task != "regression":
        base["random_state"] = hyperparameters.seed
    if spec.name == "random_forest":
        base["n_jobs"] = 1  # a training instance's cores are the container's; serving stays single-threaded
    return base | declared


def build_estimator(schema: DatasetSchema, hyperparameters: Hyperparameters) -> BaseEstimator:
    """The unfitted estimator ``model.estimator`` names for the dataset's task."""
    spec = schema.model_spec
    if spec.entry_point is not None:
        raise ValueError(f"dataset {schema.name!r} trains with its own script ({spec.entry_point}), not a built-in")
    cls = CLASSES[ESTIMATORS[spec.name].class_name(schema.task)]
    return cls(**estimator_parameters(schema, hyperparameters))


def estimator_record(schema: DatasetSchema, hyperparameters: Hyperparameters) -> dict[str, Any]:
    """``model_metadata.json``'s ``estimator``: the built-in's name, its class and the parameters it was built with."""
    spec = schema.model_spec
    return {
        "name": spec.name,
        "class": ESTIMATORS[spec.name].class_name(schema.task),
        "parameters": estimator_parameters(schema, hyperparameters),
    }
