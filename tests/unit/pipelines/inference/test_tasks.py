"""The inference handler per task: response shapes (JSON and CSV), the fast path, labels as declared."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluation.evaluate import golden_records
from pipelines.features import engineered_columns, model_frame
from pipelines.inference import inference
from pipelines.training import train
from tests.samples import CHURN_SCHEMA
from tests.unit.pipelines.conftest import SampleRun

JSON, CSV = "application/json", "text/csv"


def _serve(model_dir: Path, records: list[dict[str, Any]], accept: str = JSON) -> str:
    """One request through the container's ``model_fn`` and ``transform_fn``, as the endpoint runs them."""
    model = inference.model_fn(str(model_dir))
    answer = inference.transform_fn(model, json.dumps({"instances": records}), JSON, accept)
    assert isinstance(answer, tuple), answer
    body, content_type = answer
    assert content_type == accept
    return body


def _records(run: SampleRun, rows: int = 5) -> list[dict[str, Any]]:
    return golden_records(train.load_split(run.curated, run.schema, "test"), run.schema, rows)


def test_a_multiclass_model_answers_a_label_and_one_probability_per_declared_class(
    sample_run: Callable[[str], SampleRun],
) -> None:
    # Given the tickets model and five test rows (some with missing values)
    run = sample_run("tickets")
    records = _records(run)

    # When they are served as JSON and as CSV
    answer = json.loads(_serve(run.training.model_dir, records))
    lines = _serve(run.training.model_dir, records, CSV).splitlines()

    # Then each prediction is the most probable declared label with every class's probability, in declared order
    labels = ["billing", "technical", "account", "sales"]
    for prediction, line in zip(answer["predictions"], lines, strict=True):
        assert list(prediction) == ["label", "probabilities"]
        assert list(prediction["probabilities"]) == labels
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
        assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
        label, *probabilities = line.split(",")
        assert label == prediction["label"]
        assert [float(p) for p in probabilities] == list(prediction["probabilities"].values())
    assert answer["model_version"] == run.training.metadata["model_version"]
    # and each probability is the fitted classifier's for that class (its own column order is alphabetical)
    model = inference.load_model(run.training.model_dir)
    fitted = model.pipeline.predict_proba(model_frame(pd.DataFrame(records), run.schema))
    classes = [str(c) for c in model.pipeline.classes_]
    for prediction, row in zip(answer["predictions"], fitted, strict=True):
        expected = {label: row[classes.index(label)] for label in labels}
        assert prediction["probabilities"] == pytest.approx(expected, abs=1e-9)


def test_a_regression_model_answers_the_value(sample_run: Callable[[str], SampleRun]) -> None:
    # Given the energy model and five test rows
    run = sample_run("energy")
    records = _records(run)

    # When served as JSON and CSV
    answer = json.loads(_serve(run.training.model_dir, records))
    lines = _serve(run.training.model_dir, records, CSV).splitlines()

    # Then one value per row, the same in both, equal to the fitted pipeline's prediction
    values = [prediction["value"] for prediction in answer["predictions"]]
    assert all(list(p) == ["value"] for p in answer["predictions"])
    assert [float(line) for line in lines] == values
    model = inference.load_model(run.training.model_dir)
    frame = model_frame(pd.DataFrame(records), run.schema)
    np.testing.assert_allclose(values, model.pipeline.predict(frame), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["energy", "tickets"])
def test_the_fast_path_answers_like_the_fitted_pipeline(name: str, sample_run: Callable[[str], SampleRun]) -> None:
    # Given a sample model loaded for serving (compiled preprocessing; compiled trees for the regressor)
    run = sample_run(name)
    model = inference.load_model(run.training.model_dir)
    assert model.compiled is not None
    assert (model.compiled.trees is not None) == (name == "energy")

    for rows in (1, 16, 40):  # the compiled trees below SMALL_BATCH_ROWS, the estimator above
        # When rows are predicted through the fast path and through sklearn
        columns = inference.probe_columns(run.schema, rows=rows, seed=rows)
        fast = model.predict_columns(columns, rows)
        slow = replace(model, compiled=None).predict_columns(columns, rows)

        # Then both agree to float noise
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)


def test_binary_string_labels_are_answered_as_declared(churn_splits: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    # Given a binary model trained on labels "leave"/"stay" with the first, "leave", positive
    schema = replace(CHURN_SCHEMA, labels=("leave", "stay"), positive_label="leave")
    named = {k: v.assign(churned=np.where(v["churned"] == 1, "leave", "stay")) for k, v in churn_splits.items()}
    hyperparameters = train.Hyperparameters(max_iter=20)
    result = train.train(named["train"], named["validation"], schema, hyperparameters)
    train.write_model_artifacts(tmp_path, result, schema, hyperparameters, "labels-v1")

    # When rows are served
    records = golden_records(named["test"], schema, 6)
    answer = json.loads(_serve(tmp_path, records))
    lines = _serve(tmp_path, records, CSV).splitlines()

    # Then the probability is the positive label's and the label is the declared one it implies
    for prediction, line in zip(answer["predictions"], lines, strict=True):
        assert prediction["label"] == ("leave" if prediction["probability"] >= 0.5 else "stay")
        assert line == f"{prediction['probability']!r},{prediction['label']}"
    assert result.metrics["validation"]["auc"] > 0.75


def test_a_model_trained_before_declarations_still_serves(model_dir: Path, tmp_path: Path) -> None:
    # Given the session's churn model whose metadata holds the schema in its pre-declaration shape
    legacy_dir = tmp_path / "legacy"
    shutil.copytree(model_dir, legacy_dir)
    metadata = json.loads((legacy_dir / "model_metadata.json").read_text())
    old = {k: v for k, v in metadata["schema"].items() if k not in ("task", "gate", "description")}
    old["engineered"] = [column["name"] for column in metadata["schema"]["engineered"]]
    old["positive_label"] = 1
    (legacy_dir / "model_metadata.json").write_text(json.dumps({**metadata, "schema": old}))

    # When it is loaded and asked about rows / Then it answers like the current archive
    columns = inference.probe_columns(CHURN_SCHEMA, rows=8)
    columns.update(engineered_columns(columns, CHURN_SCHEMA))
    current = inference.load_model(model_dir).predict_columns(columns, 8)
    legacy = inference.load_model(legacy_dir)
    assert legacy.schema.engineered == CHURN_SCHEMA.engineered
    np.testing.assert_array_equal(legacy.predict_columns(columns, 8), current)
