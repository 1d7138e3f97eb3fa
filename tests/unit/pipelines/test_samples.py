"""The multiclass and regression samples through the real ETL, training job and evaluation job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipelines.data import samples
from pipelines.evaluation import MULTICLASS_METRICS, REGRESSION_METRICS
from pipelines.evaluation import evaluate as ev
from pipelines.schema import ROW_ID
from pipelines.training import train
from stacks.config import EvaluationGate
from tests.unit.pipelines.conftest import SAMPLE_DIR, SampleRun

pytestmark = pytest.mark.usefixtures("serve_on_path")  # the job's smoke test runs the image's serve


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_the_committed_sample_is_what_the_generator_makes(name: str) -> None:
    # Given / When / Then: the committed file is exactly the seeded generator's output
    assert (SAMPLE_DIR / f"{name}.csv").read_bytes() == samples.sample_csv(name)


def test_the_multiclass_sample_has_missing_values_string_labels_and_no_key() -> None:
    # Given the tickets sample and its declaration / Then it exercises what a multiclass upload may have
    frame = samples.generate_tickets(*samples.SAMPLES["tickets"][1:])
    assert frame.isna().any().sum() >= 3
    assert set(frame["team"]) == set(samples.TEAMS)
    assert not any(column.endswith("_id") for column in frame.columns)


def test_the_multiclass_sample_trains_and_passes_its_gate(sample_run: Callable[[str], SampleRun]) -> None:
    # Given the tickets sample, curated by the ETL and trained by train.main (string labels, no key)
    run = sample_run("tickets")
    assert run.training.exit_code == 0

    # When the evaluation job scores it on the test split with the declared gate
    report = ev.run(
        run.curated / "split=test", run.training.model_dir, None, run.training.base / "eval", run.schema.evaluation_gate
    )

    # Then it reports the multiclass metrics, the confusion matrix over the declared labels, and passes
    quality = report["multiclass_classification_metrics"]
    assert set(quality) == {*MULTICLASS_METRICS, "confusion_matrix"}
    assert list(quality["confusion_matrix"]) == ["billing", "technical", "account", "sales"]
    assert quality["macro_f1"]["value"] > 0.65 and quality["accuracy"]["value"] > 0.7
    assert report["decision"]["passed"], report["decision"]["reason"]
    # and the image's serving stack answered the golden rows (JSON and CSV) with the in-process labels and probabilities
    assert report["smoke"]["passed"] and report["smoke"]["requests"] == 2, report["smoke"]["reason"]
    metadata = run.training.metadata
    assert metadata["task"] == "multiclass" and metadata["labels"] == ["billing", "technical", "account", "sales"]
    assert set(metadata["metrics"]["validation"]) == set(MULTICLASS_METRICS)
    assert "validation:macro_f1=" in run.training.stdout


def test_the_regression_sample_trains_and_its_gate_is_a_ceiling(sample_run: Callable[[str], SampleRun]) -> None:
    # Given the energy sample, curated and trained
    run = sample_run("energy")
    test_dir = run.curated / "split=test"

    # When it is evaluated with its declared gate (RMSE at most 150) and with a ceiling it cannot meet
    passed = ev.run(test_dir, run.training.model_dir, None, run.training.base / "eval", run.schema.evaluation_gate)
    strict = EvaluationGate(primary_metric="rmse", min_improvement=0.0, absolute_floor=10.0)
    failed = ev.run(test_dir, run.training.model_dir, None, run.training.base / "eval-strict", strict)

    # Then the regression metrics are reported and the ceiling decides in the error's direction
    quality = passed["regression_metrics"]
    assert set(quality) == set(REGRESSION_METRICS)
    assert quality["rmse"]["value"] < 150 and quality["r2"]["value"] > 0.6
    assert passed["decision"]["passed"]
    assert passed["smoke"]["passed"] and passed["smoke"]["requests"] == 2, passed["smoke"]["reason"]  # served values
    rmse = quality["rmse"]["value"]
    assert failed["decision"]["reason"] == f"challenger rmse {rmse:.4f} is above the ceiling 10.0000"


def test_a_regression_challenger_must_lower_the_champion_s_error(sample_run: Callable[[str], SampleRun]) -> None:
    # Given the energy model as both champion and challenger (a tie), then a champion with a higher error
    run = sample_run("energy")
    gate = run.schema.evaluation_gate
    out = run.training.base / "eval-tie"

    # When the gate decides
    tie = ev.run(run.curated / "split=test", run.training.model_dir, run.training.model_dir, out, gate)
    value = tie["regression_metrics"]["rmse"]["value"]
    beaten = ev.decide({"rmse": value}, {"rmse": value + 5.0}, gate)
    slight = ev.decide({"rmse": value}, {"rmse": value + 0.5}, gate)

    # Then a tie fails, a 5 kWh lower error wins by 5, half a kWh is less than the required 1
    assert not tie["decision"]["passed"] and tie["decision"]["reason"].startswith("tie: challenger rmse")
    assert beaten.passed and beaten.improvement == pytest.approx(5.0)
    assert not slight.passed and "less than the required 1.0000" in slight.reason


def test_the_golden_payloads_of_each_task_are_the_served_answers(sample_run: Callable[[str], SampleRun]) -> None:
    for name, fields in (("tickets", {"labels", "probabilities", "classes"}), ("energy", {"values"})):
        # Given a trained sample model / When evaluated
        run = sample_run(name)
        out = run.training.base / "eval-golden"
        ev.run(run.curated / "split=test", run.training.model_dir, None, out, run.schema.evaluation_gate)
        golden = json.loads((out / ev.GOLDEN_FILE).read_text())

        # Then golden.json holds the task, the response's predictions and the task's own fields
        assert golden["task"] == run.schema.task and fields <= set(golden)
        assert len(golden["predictions"]) == len(golden["body"]["instances"]) == ev.GOLDEN_ROWS
        if name == "tickets":
            assert golden["classes"] == list(run.schema.class_labels)
            assert np.allclose(np.sum(golden["probabilities"], axis=1), 1.0)
            assert len(golden["keys"]) == ev.GOLDEN_ROWS  # the derived row ids (column row_id)
        else:
            assert golden["values"] == [p["value"] for p in golden["predictions"]]
        assert ROW_ID not in golden["body"]["instances"][0]


def test_training_a_multiclass_split_without_a_class_fails_with_the_reason(
    sample_run: Callable[[str], SampleRun],
) -> None:
    # Given the tickets train split without one class
    run = sample_run("tickets")
    frame = train.load_split(run.curated, run.schema, "train")
    validation = train.load_split(run.curated, run.schema, "validation")

    # When trained / Then the job fails saying which class the model could never predict
    with pytest.raises(train.TrainingDataError, match=r"the train split has no row of class\(es\) \['sales'\]"):
        train.train(frame[frame["team"] != "sales"], validation, run.schema, train.Hyperparameters(max_iter=5))


def test_sample_declarations_ship_with_their_files() -> None:
    # Given each committed sample / Then a declaration of the same name exists
    for name in ("churn", *samples.SAMPLES):
        assert (Path(SAMPLE_DIR.parents[2]) / "datasets" / f"{name}.yaml").is_file()
