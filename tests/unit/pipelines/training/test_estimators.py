"""The built-in estimators (``model.estimator``): each trains on every task's sample and serves through the
inference handler's own functions (``model_fn`` / ``transform_fn``) with the task's response contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from pipelines.evaluation.evaluate import golden_records
from pipelines.features import model_frame, model_output
from pipelines.inference import inference
from pipelines.schema import ESTIMATORS, DatasetSchema, ModelSpec
from pipelines.training import train
from pipelines.training.estimators import build_estimator, estimator_parameters
from pipelines.training.hyperparameters import Hyperparameters
from tests.unit.pipelines.conftest import SampleRun

SMALL: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"max_iter": 30, "max_depth": 4},
    "linear": {"max_iter": 500},
    "random_forest": {"n_estimators": 15, "min_samples_leaf": 3},
}
EXPECTED_CLASS = {
    ("hist_gradient_boosting", "binary"): "HistGradientBoostingClassifier",
    ("hist_gradient_boosting", "multiclass"): "HistGradientBoostingClassifier",
    ("hist_gradient_boosting", "regression"): "HistGradientBoostingRegressor",
    ("linear", "binary"): "LogisticRegression",
    ("linear", "multiclass"): "LogisticRegression",
    ("linear", "regression"): "Ridge",
    ("random_forest", "binary"): "RandomForestClassifier",
    ("random_forest", "multiclass"): "RandomForestClassifier",
    ("random_forest", "regression"): "RandomForestRegressor",
}
SAMPLES = {"binary": "churn", "multiclass": "tickets", "regression": "energy"}


def _train(run: SampleRun, schema: DatasetSchema, model_dir: Path) -> dict[str, Any]:
    train_df = train.load_split(run.curated, schema, "train")
    validation_df = train.load_split(run.curated, schema, "validation")
    with threadpool_limits(limits=1, user_api="openmp"):
        result = train.train(train_df, validation_df, schema, Hyperparameters())
    return train.write_model_artifacts(model_dir, result, schema, Hyperparameters())


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_each_built_in_estimator_trains_and_serves_every_task(
    estimator: str, task: str, sample_run: Callable[[str], SampleRun], tmp_path: Path
) -> None:
    # Given a sample dataset of the task declaring the built-in estimator with a few hyperparameters
    run = sample_run(SAMPLES[task])
    schema = replace(run.schema, model=ModelSpec(estimator=estimator, hyperparameters=SMALL[estimator]))

    # When it trains (the training job's own functions) and the archive is served by the handler
    metadata = _train(run, schema, tmp_path)
    model = inference.model_fn(str(tmp_path))
    test_df = train.load_split(run.curated, schema, "test")
    records = golden_records(test_df, schema, 20)
    answer = inference.transform_fn(model, json.dumps({"instances": records}), "application/json", None)

    # Then the archive holds the declared estimator with the declared hyperparameters, recorded in its metadata
    fitted = model.pipeline.named_steps["model"]
    assert type(fitted).__name__ == EXPECTED_CLASS[(estimator, task)]
    assert metadata["estimator"]["name"] == estimator
    assert metadata["estimator"]["class"] == EXPECTED_CLASS[(estimator, task)]
    for name, value in SMALL[estimator].items():
        assert fitted.get_params()[name] == value
        assert metadata["estimator"]["parameters"][name] == value
    assert json.loads((tmp_path / train.METADATA_FILE).read_text())["schema"]["model"]["estimator"] == estimator
    # and the answer follows the task's contract with the fitted pipeline's values, through the compiled path
    assert model.compiled is not None
    assert isinstance(answer, tuple), answer
    body = json.loads(answer[0])
    assert body["model_version"] == metadata["model_version"]
    expected = model_output(model.pipeline, model_frame(pd.DataFrame(records), schema), schema)
    predictions = body["predictions"]
    assert len(predictions) == 20
    if task == "regression":
        np.testing.assert_allclose([p["value"] for p in predictions], expected, rtol=0, atol=1e-9)
    elif task == "binary":
        np.testing.assert_allclose([p["probability"] for p in predictions], expected, rtol=0, atol=1e-9)
        assert {p["label"] for p in predictions} <= set(schema.class_labels)
    else:
        labels = [str(label) for label in schema.class_labels]
        got = [[p["probabilities"][label] for label in labels] for p in predictions]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        assert [p["label"] for p in predictions] == [labels[i] for i in np.argmax(expected, axis=1)]
    # and a bad request keeps its error code whatever the estimator
    refused = inference.transform_fn(model, json.dumps({"instances": [[1]]}), "application/json", None)
    assert isinstance(refused, inference.ClientErrorResponse)
    assert refused.status == 400
    assert "expected" in refused.message


def test_the_default_estimator_is_unchanged_when_no_model_is_declared(
    sample_run: Callable[[str], SampleRun],
) -> None:
    # Given the churn declaration without a model section, and the stage's hyperparameters
    schema = sample_run("churn").schema
    assert schema.model is None
    stage = Hyperparameters(max_iter=77, learning_rate=0.2, max_leaf_nodes=9, l2_regularization=0.5, seed=3)

    # When its estimator is built
    estimator = build_estimator(schema, stage)

    # Then it is today's boosted trees with the stage's values and no early stopping
    assert type(estimator).__name__ == "HistGradientBoostingClassifier"
    params = estimator.get_params()
    assert (params["max_iter"], params["learning_rate"], params["max_leaf_nodes"]) == (77, 0.2, 9)
    assert (params["l2_regularization"], params["random_state"], params["early_stopping"]) == (0.5, 3, False)


def test_declared_boosting_hyperparameters_win_over_the_stage(sample_run: Callable[[str], SampleRun]) -> None:
    # Given a declaration overriding one boosting hyperparameter
    schema = replace(sample_run("energy").schema, model=ModelSpec("hist_gradient_boosting", {"learning_rate": 0.05}))

    # When the parameters are resolved against the stage's
    params = estimator_parameters(schema, Hyperparameters(max_iter=50))

    # Then the declared value wins and the others come from the stage
    assert params["learning_rate"] == 0.05
    assert params["max_iter"] == 50


def test_an_entry_point_model_has_no_built_in_estimator(sample_run: Callable[[str], SampleRun]) -> None:
    # Given a declaration whose model is the user's script
    schema = replace(sample_run("churn").schema, model=ModelSpec(entry_point="models/churn"))

    # When a built-in estimator is asked for, Then it refuses naming the script's directory
    with pytest.raises(ValueError, match="models/churn"):
        build_estimator(schema, Hyperparameters())
