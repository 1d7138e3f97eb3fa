"""Champion/challenger evaluation: metrics, the gate, and the Processing job's evaluation.json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from pipelines.data.generator import generate
from pipelines.evaluation import (
    BINARY_METRICS,
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    multiclass_metrics,
    regression_metrics,
)
from pipelines.evaluation import evaluate as ev
from pipelines.features import model_frame
from pipelines.inference import inference
from pipelines.inference.inference import load_model
from pipelines.training import train
from stacks.config import EvaluationGate
from tests.samples import CHURN_SCHEMA

pytestmark = pytest.mark.usefixtures("serve_on_path")  # the job's smoke test runs the image's serve

GATE = EvaluationGate(primary_metric="auc", min_improvement=0.005, absolute_floor=0.70)


# ---- the gate --------------------------------------------------------------------------------------


def test_challenger_that_beats_the_champion_by_the_margin_passes() -> None:
    # Given a challenger 0.02 AUC better than the champion
    # When the gate decides
    decision = ev.decide({"auc": 0.84}, {"auc": 0.82}, GATE)

    # Then it passes and reports both values and the improvement
    assert decision.passed
    assert decision.primary_metric == "auc"
    assert (decision.challenger_value, decision.champion_value) == (0.84, 0.82)
    assert decision.improvement == pytest.approx(0.02)
    assert decision.reason == "challenger auc 0.8400 beats the champion's 0.8200 by 0.0200 (required 0.0050)"


def test_champion_wins_when_the_challenger_is_worse() -> None:
    # Given a challenger worse than the champion
    # When the gate decides
    decision = ev.decide({"auc": 0.80}, {"auc": 0.83}, GATE)

    # Then it fails and says the champion wins
    assert not decision.passed
    assert decision.improvement == pytest.approx(-0.03)
    assert decision.reason == "champion wins: challenger auc 0.8000 is below the champion's 0.8300 (by 0.0300)"


def test_a_small_improvement_below_the_margin_fails() -> None:
    # Given a challenger better by less than min_improvement
    # When the gate decides
    decision = ev.decide({"auc": 0.823}, {"auc": 0.82}, GATE)

    # Then it fails and names the required margin
    assert not decision.passed
    assert decision.reason == (
        "challenger auc 0.8230 improves on the champion's 0.8200 by 0.0030, less than the required 0.0050"
    )


@pytest.mark.parametrize("min_improvement", [0.005, 0.0])
def test_a_tie_fails_even_without_a_required_margin(min_improvement: float) -> None:
    # Given a challenger exactly as good as the champion
    gate = EvaluationGate(primary_metric="auc", min_improvement=min_improvement, absolute_floor=0.7)

    # When the gate decides
    decision = ev.decide({"auc": 0.83}, {"auc": 0.83}, gate)

    # Then it fails as a tie
    assert not decision.passed
    assert decision.improvement == 0.0
    assert decision.reason.startswith("tie: challenger auc 0.8300 equals the champion's")


def test_an_improvement_of_exactly_the_margin_passes_despite_float_noise() -> None:
    # Given 0.815 - 0.81, which is 0.00499999... in floating point
    assert 0.815 - 0.81 < 0.005

    # When the gate decides / Then the challenger passes: it improved by the required margin
    assert ev.decide({"auc": 0.815}, {"auc": 0.81}, GATE).passed


def test_without_a_champion_only_the_floor_applies() -> None:
    # Given the first model of a project
    # When the gate decides
    decision = ev.decide({"auc": 0.71}, None, GATE)

    # Then it passes on the floor alone
    assert decision.passed
    assert decision.champion_value is None and decision.improvement is None
    assert decision.reason == "no champion; challenger auc 0.7100 clears the floor 0.7000"


@pytest.mark.parametrize("champion", [None, {"auc": 0.60}])
def test_a_challenger_below_the_floor_fails_champion_or_not(champion: dict[str, float] | None) -> None:
    # Given a challenger under the absolute floor (even if it beats a weak champion)
    # When the gate decides
    decision = ev.decide({"auc": 0.69}, champion, GATE)

    # Then it fails on the floor
    assert not decision.passed
    assert decision.reason == "challenger auc 0.6900 is below the absolute floor 0.7000"


def test_the_gate_uses_the_configured_primary_metric() -> None:
    # Given a gate on F1 and a challenger better in AUC but worse in F1
    gate = EvaluationGate(primary_metric="f1", min_improvement=0.01, absolute_floor=0.5)

    # When the gate decides
    decision = ev.decide({"auc": 0.90, "f1": 0.60}, {"auc": 0.80, "f1": 0.65}, gate)

    # Then F1 decides
    assert not decision.passed
    assert decision.primary_metric == "f1"
    assert decision.reason.startswith("champion wins: challenger f1 0.6000")


def test_an_unknown_metric_cannot_be_the_gate_metric() -> None:
    # Given a gate on a metric no job computes
    gate = ev.Gate(primary_metric="gini", min_improvement=0.0, absolute_floor=0.0)

    # When the gate decides / Then it refuses, listing the usable metrics
    with pytest.raises(ValueError, match=r"primary metric 'gini' is not one of \['auc', 'accuracy'"):
        ev.decide({"gini": 0.4}, None, gate)


# ---- metrics ---------------------------------------------------------------------------------------


def test_multiclass_metrics_read_the_probabilities_in_declared_label_order() -> None:
    # Given labels declared out of alphabetical order and probabilities in that order
    labels = ["zebra", "ant", "moth"]
    y = np.array(["zebra", "ant", "moth", "ant", "zebra", "moth"])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]])

    # When the multiclass metrics are computed
    values = multiclass_metrics(y, p, labels)

    # Then they equal an independent computation: log loss from each row's probability of its own label,
    # the predicted label the most probable one
    own = p[np.arange(len(y)), [labels.index(label) for label in y]]
    predicted = np.array(labels)[p.argmax(axis=1)]
    assert values["log_loss"] == pytest.approx(float(-np.mean(np.log(own))))
    assert values["accuracy"] == pytest.approx(float(np.mean(predicted == y)))
    assert values["macro_f1"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    assert list(values) == ["accuracy", "log_loss", "macro_f1", "weighted_f1"]


def test_regression_metrics_match_their_definitions() -> None:
    # Given targets and predictions / When the regression metrics are computed / Then by their formulas
    y, pred = np.array([3.0, 5.0, 2.0, 8.0]), np.array([2.5, 5.0, 4.0, 7.0])
    values = regression_metrics(y, pred)
    assert values["rmse"] == pytest.approx(float(np.sqrt(np.mean((y - pred) ** 2))))
    assert values["mae"] == pytest.approx(float(np.mean(np.abs(y - pred))))
    assert values["r2"] == pytest.approx(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def test_the_gate_compares_an_error_metric_downwards() -> None:
    # Given a gate on RMSE (lower is better): a ceiling of 3 and a required decrease of 0.1
    gate = EvaluationGate(primary_metric="rmse", min_improvement=0.1, absolute_floor=3.0)

    # When challengers are judged alone and against a champion with RMSE 2.5
    over = ev.decide({"rmse": 3.2}, None, gate)
    lower = ev.decide({"rmse": 2.3}, {"rmse": 2.5}, gate)
    higher = ev.decide({"rmse": 2.6}, {"rmse": 2.5}, gate)

    # Then the ceiling and the improvement go the error's way
    assert not over.passed and over.reason == "challenger rmse 3.2000 is above the ceiling 3.0000"
    assert lower.passed and lower.improvement == pytest.approx(0.2)
    assert lower.reason == "challenger rmse 2.3000 beats the champion's 2.5000 by 0.2000 (required 0.1000)"
    assert not higher.passed and higher.reason == (
        "champion wins: challenger rmse 2.6000 is above the champion's 2.5000 (by 0.1000)"
    )


def _scores(rows: int = 2000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probabilities = rng.uniform(0, 1, rows)
    labels = (rng.uniform(0, 1, rows) < probabilities**1.5).astype(int)
    return labels, probabilities


def _ece_by_hand(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ECE with (lo, hi] bins (0.0 in the first), an independent loop."""
    total = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        inside = (probabilities > lo) & (probabilities <= hi) if b else (probabilities <= hi)
        if inside.any():
            total += inside.sum() * abs(labels[inside].mean() - probabilities[inside].mean())
    return total / len(labels)


def test_metrics_match_sklearn_computed_independently() -> None:
    # Given labels and scores
    labels, probabilities = _scores()
    predicted = (probabilities >= 0.5).astype(int)

    # When the metrics are computed
    values = classification_metrics(labels, probabilities)

    # Then each equals its sklearn / by-hand definition
    assert list(values) == list(BINARY_METRICS)
    assert values["auc"] == pytest.approx(skm.roc_auc_score(labels, probabilities))
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert values["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    assert values["precision"] == pytest.approx(skm.precision_score(labels, predicted))
    assert values["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert values["log_loss"] == pytest.approx(skm.log_loss(labels, probabilities))
    assert values["brier_score"] == pytest.approx(skm.brier_score_loss(labels, probabilities))
    assert values["expected_calibration_error"] == pytest.approx(_ece_by_hand(labels, probabilities))


def test_ece_agrees_with_sklearn_calibration_curve() -> None:
    # Given labels and scores, and sklearn's reliability curve on 10 uniform bins
    labels, probabilities = _scores(seed=11)
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], probabilities), minlength=10)
    weights = counts[counts > 0] / len(labels)

    # When the ECE is computed / Then it is the count-weighted gap of that curve
    assert expected_calibration_error(labels, probabilities) == pytest.approx(
        float(np.sum(weights * np.abs(observed - predicted)))
    )


def test_ece_of_known_cases() -> None:
    # Given a model that always says 0.8 for a population with a 50% positive rate
    labels = np.array([0, 1] * 50)
    # When / Then the ECE is the 0.3 gap; a perfectly calibrated bin has none
    assert expected_calibration_error(labels, np.full(100, 0.8)) == pytest.approx(0.3)
    assert expected_calibration_error(labels, np.full(100, 0.5)) == pytest.approx(0.0)


def test_threshold_metrics_use_the_decision_threshold() -> None:
    # Given scores around 0.3
    labels = np.array([0, 1, 1, 0])
    probabilities = np.array([0.2, 0.35, 0.3, 0.1])

    # When the threshold is 0.5 or 0.3
    # Then the positive predictions change accordingly
    assert classification_metrics(labels, probabilities, 0.5)["recall"] == 0.0
    assert classification_metrics(labels, probabilities, 0.3)["recall"] == 1.0
    assert confusion_matrix(labels, probabilities, 0.3) == {"0": {"0": 2, "1": 0}, "1": {"0": 0, "1": 2}}


def test_metrics_refuse_a_single_class_test_set() -> None:
    # Given a test split with only non-churners
    # When the metrics are computed / Then the error says why AUC is undefined
    with pytest.raises(ValueError, match=r"labels hold only class \[0\]; AUC is undefined"):
        classification_metrics(np.zeros(10), np.linspace(0, 1, 10))


# ---- the Processing job ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def job_dirs(
    tmp_path_factory: pytest.TempPathFactory,
    trained: Any,
    curated_dir: Path,
    job_hyperparameters: dict[str, str],
    training_runner: Callable[..., Any],
) -> dict[str, Path]:
    """/opt/ml/processing inputs: the test split, the session model as challenger, a weak champion."""
    base = tmp_path_factory.mktemp("processing")
    challenger = train.package_model(trained.model_dir, base / "challenger" / "model.tar.gz").parent
    weak = training_runner(
        tmp_path_factory.mktemp("weak"),
        curated_dir,
        {**job_hyperparameters, "max_iter": "2", "max_leaf_nodes": "2", "learning_rate": "0.05"},
    )
    champion = train.package_model(weak.model_dir, base / "champion" / "model.tar.gz").parent
    return {
        "test": curated_dir / "split=test",
        "challenger": challenger,
        "champion": champion,
        "challenger_model": trained.model_dir,
        "champion_model": weak.model_dir,
        "output": base / "evaluation",
    }


def _independent_metrics(model_dir: Path, test: pd.DataFrame) -> dict[str, float]:
    model = load_model(model_dir)
    probabilities = model.pipeline.predict_proba(model_frame(test, CHURN_SCHEMA))[:, 1]
    predicted = (probabilities >= 0.5).astype(int)
    labels = test["churned"].to_numpy()
    return {
        "auc": skm.roc_auc_score(labels, probabilities),
        "accuracy": skm.accuracy_score(labels, predicted),
        "log_loss": skm.log_loss(labels, probabilities),
    }


def test_job_writes_evaluation_json_with_both_models_and_the_decision(
    job_dirs: dict[str, Path], churn_splits: dict[str, pd.DataFrame], trained: Any
) -> None:
    # Given the processing inputs: test split, challenger archive, a weak champion archive
    # When the job runs
    exit_code = ev.main(
        [
            "--dataset",
            "churn",
            *ev.processing_arguments(),
            "--test_dir",
            str(job_dirs["test"]),
            "--challenger_dir",
            str(job_dirs["challenger"]),
            "--champion_dir",
            str(job_dirs["champion"]),
            "--output_dir",
            str(job_dirs["output"]),
        ]
    )
    report = json.loads((job_dirs["output"] / ev.EVALUATION_FILE).read_text())

    # Then the top level is the challenger's model-quality statistics
    assert exit_code == 0
    assert report["model_version"] == trained.metadata["model_version"]
    quality = report["binary_classification_metrics"]
    assert set(quality) == {*BINARY_METRICS, "confusion_matrix"}
    assert all(set(quality[name]) == {"value"} for name in BINARY_METRICS)
    matrix = quality["confusion_matrix"]
    assert sum(matrix[a][b] for a in "01" for b in "01") == report["test_rows"] == 1000
    assert matrix["1"]["0"] + matrix["1"]["1"] == churn_splits["test"]["churned"].sum()
    # and the values are the sklearn metrics of each model's own predictions on the test split
    for section, model in (
        (quality, "challenger_model"),
        (report["champion"]["binary_classification_metrics"], "champion_model"),
    ):
        expected = _independent_metrics(job_dirs[model], churn_splits["test"])
        for name, value in expected.items():
            assert section[name]["value"] == pytest.approx(value)
    # and the decision is the gate's on those values (the strong challenger beats the weak champion)
    decision = ev.decide(
        {n: v["value"] for n, v in quality.items() if n in BINARY_METRICS},
        {n: v["value"] for n, v in report["champion"]["binary_classification_metrics"].items() if n in BINARY_METRICS},
        GATE,
    )
    assert report["decision"] == asdict(decision)
    assert report["decision"]["passed"] is True
    assert report["gate"] == {"primary_metric": "auc", "min_improvement": 0.005, "absolute_floor": 0.7}
    # and the challenger's archive was served by the image's serve command, answering the golden rows (JSON, CSV)
    smoke = report["smoke"]
    assert (smoke["passed"], smoke["requests"], smoke["rows"], smoke["command"]) == (True, 2, 8, "serve")
    assert smoke["tolerance"] == 1e-4  # the dataset's serving.smoke_tolerance, above the golden float noise


def test_job_without_a_champion_applies_the_floor_only(job_dirs: dict[str, Path], tmp_path: Path) -> None:
    # Given an empty champion input (first model of the project)
    (tmp_path / "champion").mkdir()

    # When the job runs
    report = ev.run(job_dirs["test"], job_dirs["challenger"], tmp_path / "champion", tmp_path / "out", GATE)

    # Then there is no champion section and the challenger passes on the floor
    assert report["champion"] is None
    assert report["decision"]["passed"] is True
    assert report["decision"]["reason"].startswith("no champion; challenger auc")
    assert json.loads((tmp_path / "out" / ev.EVALUATION_FILE).read_text()) == report


def test_job_where_the_champion_wins_reports_a_failed_gate(job_dirs: dict[str, Path], tmp_path: Path) -> None:
    # Given the strong model as champion, the weak one as challenger, and a low floor
    gate = EvaluationGate(primary_metric="auc", min_improvement=0.005, absolute_floor=0.5)

    # When the job runs
    report = ev.run(job_dirs["test"], job_dirs["champion"], job_dirs["challenger"], tmp_path, gate)

    # Then the gate fails (the job itself succeeds; the state machine branches on the decision)
    assert report["decision"]["passed"] is False
    assert report["decision"]["reason"].startswith("champion wins: challenger auc")
    assert report["decision"]["improvement"] < 0


def test_job_accepts_an_already_unpacked_model_dir(job_dirs: dict[str, Path], tmp_path: Path) -> None:
    # Given the challenger input as an unpacked model directory
    # When the job runs without a champion input at all
    report = ev.run(job_dirs["test"], job_dirs["challenger_model"], None, tmp_path, GATE)

    # Then it evaluates it like the archive
    assert report["champion"] is None
    assert report["test_rows"] == 1000


def test_job_without_a_challenger_fails_naming_the_input(tmp_path: Path, job_dirs: dict[str, Path]) -> None:
    # Given an empty challenger input
    (tmp_path / "challenger").mkdir()

    # When the job runs / Then it fails naming the directory
    with pytest.raises(FileNotFoundError, match=rf"no challenger model under {re.escape(str(tmp_path))}"):
        ev.run(job_dirs["test"], tmp_path / "challenger", None, tmp_path / "out", GATE)


def test_an_input_with_several_archives_is_ambiguous(tmp_path: Path) -> None:
    # Given two archives in one input
    (tmp_path / "a.tar.gz").write_bytes(b"")
    (tmp_path / "b.tar.gz").write_bytes(b"")

    # When the model is looked up / Then the error lists them
    with pytest.raises(ValueError, match=r"expected one model archive, found \["):
        ev.find_model(tmp_path)


def test_processing_arguments_round_trip_through_the_job_parser() -> None:
    # Given the container arguments the state machine sends for an execution of churn
    arguments = ["--dataset", "churn", *ev.processing_arguments()]

    # When the job parses them
    args = ev.parse_args(arguments)

    # Then it evaluates churn with churn's gate from the platform document, at the /opt/ml/processing paths
    assert args.dataset == "churn"
    gate = ev.dataset_gate(args.dataset)
    assert (gate.primary_metric, gate.min_improvement, gate.absolute_floor) == (
        CHURN_SCHEMA.evaluation_gate.metric,
        CHURN_SCHEMA.evaluation_gate.min_improvement,
        CHURN_SCHEMA.evaluation_gate.floor,
    )
    assert args.test_dir == Path("/opt/ml/processing/test")
    assert args.output_dir == Path("/opt/ml/processing/evaluation")


def test_the_dataset_argument_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a job started without its dataset
    # When it parses its arguments / Then it stops and names the argument
    with pytest.raises(SystemExit) as exit_info:
        ev.parse_args([])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --dataset" in capsys.readouterr().err


def test_a_challenger_of_another_dataset_is_refused(job_dirs: dict[str, Path], tmp_path: Path) -> None:
    # Given churn's challenger archive / When the job evaluates it as a model of tickets
    with pytest.raises(ValueError) as raised:
        ev.run(job_dirs["test"], job_dirs["challenger"], None, tmp_path, GATE, dataset="tickets")

    # Then it refuses, naming both datasets
    assert "is a model of 'churn', not of 'tickets'" in str(raised.value)


# ---- golden payloads for the deployment's smoke test -----------------------------------------------


def test_job_writes_golden_payloads_that_the_challenger_answers(
    job_dirs: dict[str, Path], churn_splits: dict[str, pd.DataFrame], trained: Any, tmp_path: Path
) -> None:
    # Given the processing inputs
    # When the job runs
    ev.run(job_dirs["test"], job_dirs["challenger"], job_dirs["champion"], tmp_path, GATE)
    golden = json.loads((tmp_path / ev.GOLDEN_FILE).read_text())

    # Then it holds 8 test rows as a records-form JSON request body, features only
    assert golden["model_version"] == trained.metadata["model_version"]
    assert (golden["content_type"], golden["accept"]) == ("application/json", "application/json")
    instances = golden["body"]["instances"]
    assert len(instances) == ev.GOLDEN_ROWS == 8
    assert all(list(record) == CHURN_SCHEMA.feature_names for record in instances)
    test = ev.load_split(job_dirs["test"], CHURN_SCHEMA, "test").head(8)
    assert golden["keys"] == test["customer_id"].astype(str).tolist()
    assert [record["contract"] for record in instances] == test["contract"].tolist()
    # and the expected answer is the challenger's own (sklearn) prediction on those rows
    expected = load_model(job_dirs["challenger_model"]).pipeline.predict_proba(model_frame(test, CHURN_SCHEMA))[:, 1]
    assert golden["probabilities"] == pytest.approx(expected.tolist(), abs=golden["tolerance"])
    assert golden["labels"] == [int(p >= 0.5) for p in golden["probabilities"]]


def test_golden_body_is_served_by_the_inference_handler_as_expected(job_dirs: dict[str, Path], tmp_path: Path) -> None:
    # Given a golden payload written by the job
    ev.run(job_dirs["test"], job_dirs["challenger"], None, tmp_path, GATE)
    golden = json.loads((tmp_path / ev.GOLDEN_FILE).read_text())

    # When the endpoint's handler answers the body (as the smoke test will send it)
    model = inference.model_fn(str(job_dirs["challenger_model"]))
    answered = inference.transform_fn(model, json.dumps(golden["body"]), golden["content_type"], golden["accept"])
    assert isinstance(answered, tuple), answered
    body, content_type = answered

    # Then the answer matches the golden probabilities, labels and model version
    answer = json.loads(body)
    assert content_type == "application/json"
    assert answer["model_version"] == golden["model_version"]
    assert [p["probability"] for p in answer["predictions"]] == pytest.approx(
        golden["probabilities"], abs=golden["tolerance"]
    )
    assert [p["label"] for p in answer["predictions"]] == golden["labels"]


def test_golden_records_write_missing_values_as_null_and_take_fewer_rows_when_short(model_dir: Path) -> None:
    # Given a 3-row test split whose second row lacks total_charges (a nullable feature)
    frame = generate(3, seed=5)
    frame.loc[1, "total_charges"] = np.nan
    model = load_model(model_dir)

    # When the golden payload is built
    golden = ev.golden_payload(model, frame)

    # Then all 3 rows are there, the missing value is null, and the model still answers every row
    instances = golden["body"]["instances"]
    assert len(instances) == 3 == len(golden["probabilities"])
    assert instances[1]["total_charges"] is None
    assert isinstance(instances[0]["total_charges"], float)
    assert json.loads(json.dumps(golden, allow_nan=False)) == golden


def test_golden_payload_of_an_empty_test_split_is_an_error(model_dir: Path) -> None:
    # Given no test rows
    empty = generate(3, seed=5).head(0)

    # When / Then the job refuses to write an empty smoke test
    with pytest.raises(ValueError, match="the test split has no rows for the golden payload"):
        ev.golden_payload(load_model(model_dir), empty)
