"""Ground truth per task: labels as the dataset declares them (strings, ints, numbers), quality in the task's
metrics (binary AUC/accuracy, multiclass accuracy/macro F1, regression RMSE/MAE), published under the task's
metric names with the alarm's dimensions."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, roc_auc_score

from lambdas.ground_truth import logic
from lambdas.ground_truth.logic import LabelObject, QualityConfig
from pipelines.schema import DatasetSchema
from tests.samples import CHURN_SCHEMA, ENERGY_SCHEMA, TICKETS_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import ARTIFACTS, CAPTURE_PREFIX, ENDPOINT, capture_line, put_capture
from tests.unit.lambdas.ground_truth.conftest import RAW

NAMESPACE = "MLOps/test"
UPLOAD = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOUR = datetime(2026, 11, 27, 9, tzinfo=UTC)
CLASSES = [str(c) for c in TICKETS_SCHEMA.class_labels]
YES_NO = replace(CHURN_SCHEMA, labels=("no", "yes"), positive_label="yes")


@pytest.fixture
def s3(aws: Any) -> Any:
    return aws


def config(schema: DatasetSchema) -> QualityConfig:
    return QualityConfig(ENDPOINT, ARTIFACTS, CAPTURE_PREFIX, "monitoring/quality/", NAMESPACE, schema, 168, 50)


def answer(schema: DatasetSchema, rng: np.random.Generator) -> tuple[dict[str, Any], str, Any]:
    """A random answer of ``schema``'s task (JSON prediction, its CSV line) and a truth related to it."""
    if schema.task == "regression":
        value = float(rng.normal(400, 120))
        return {"value": value}, f"{value!r}", round(value + float(rng.normal(0, 40)), 2)
    if schema.task == "multiclass":
        probabilities = rng.dirichlet([1.0] * len(CLASSES))
        label = CLASSES[int(probabilities.argmax())]
        truth = label if rng.random() < 0.6 else CLASSES[int(rng.integers(len(CLASSES)))]
        line = ",".join([label, *map(repr, probabilities.tolist())])
        return {"label": label, "probabilities": dict(zip(CLASSES, probabilities.tolist(), strict=True))}, line, truth
    probability = float(rng.beta(2, 3))
    label = "yes" if probability >= 0.5 else "no"
    truth = "yes" if rng.random() < probability else "no"
    return {"probability": probability, "label": label}, f"{probability!r},{label}", truth


def capture(s3: Any, schema: DatasetSchema, requests: int = 120) -> dict[str, Any]:
    """Captured one-row requests of ``schema``'s task, every third answered in CSV (no model version); the truth
    to label them with, and the predictions, per id."""
    rng = np.random.default_rng(5)
    lines, truth = [], {}
    for i in range(requests):
        prediction, csv_line, label = answer(schema, rng)
        event_id = f"evt-{i:04d}"
        if i % 3 == 2:
            lines.append(capture_line("1,2", event_id=event_id, output=csv_line + "\n", output_type="text/csv"))
        else:
            body = json.dumps({"model_version": "v1", "predictions": [prediction]})
            lines.append(capture_line("1,2", event_id=event_id, output=body))
        truth[event_id] = {"label": label, "prediction": prediction}
    put_capture(s3, lines, HOUR)
    return truth


def label_file(truth: dict[str, Any]) -> str:
    """Model Monitor's merge format, the label as CSV data (the text a team would write)."""
    return "".join(
        json.dumps({"groundTruthData": {"data": str(t["label"]), "encoding": "CSV"}, "eventMetadata": {"eventId": i}})
        + "\n"
        for i, t in truth.items()
    )


def evaluate(s3: Any, schema: DatasetSchema, body: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    version = s3.put_object(Bucket=RAW, Key="ground-truth/day.jsonl", Body=body.encode())["VersionId"]
    obj = LabelObject(RAW, "ground-truth/day.jsonl", version, UPLOAD.isoformat())
    sent: list[dict[str, Any]] = []

    class Recording:
        def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
            sent.extend(kwargs["MetricData"])
            return dict(boto3.client("cloudwatch").put_metric_data(**kwargs))

    return logic.run(s3, Recording(), config(schema), obj), sent


def labelled(s3: Any, schema: DatasetSchema) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """120 captured answers of ``schema``'s task, labelled and evaluated: (truth, summary, metric data sent)."""
    truth = capture(s3, schema)
    summary, sent = evaluate(s3, schema, label_file(truth))
    return truth, summary, sent


def published(sent: list[dict[str, Any]]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(d["MetricName"], tuple(x["Value"] for x in d["Dimensions"])): d["Value"] for d in sent}


def test_multiclass_quality_is_accuracy_and_macro_f1_over_string_labels(s3: Any) -> None:
    # Given 120 captured multiclass answers (JSON, and CSV lines label,p1,...) and their string labels
    # When the labels are evaluated
    truth, summary, sent = labelled(s3, TICKETS_SCHEMA)
    # Then every label joined its answer, and the quality is sklearn's accuracy and macro F1 on the same pairs
    y = [t["label"] for t in truth.values()]
    p = [t["prediction"]["label"] for t in truth.values()]
    overall = summary["overall"]
    assert (summary["task"], overall["rows"], summary["labels"]["bad_lines"]) == ("multiclass", 120, 0)
    assert overall["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert overall["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert overall["classes"] == {c: y.count(c) for c in CLASSES}
    # And they are published as ModelAccuracy and ModelMacroF1, for the endpoint and for the known version
    assert published(sent) == {
        ("ModelAccuracy", (ENDPOINT,)): pytest.approx(overall["accuracy"]),
        ("ModelMacroF1", (ENDPOINT,)): pytest.approx(overall["macro_f1"]),
        ("ModelAccuracy", (ENDPOINT, "v1")): pytest.approx(summary["by_model_version"]["v1"]["accuracy"]),
        ("ModelMacroF1", (ENDPOINT, "v1")): pytest.approx(summary["by_model_version"]["v1"]["macro_f1"]),
    }
    assert summary["reason"] == "quality of 120 labelled rows published"


def test_regression_quality_is_rmse_and_mae_of_the_values(s3: Any) -> None:
    # Given 120 captured regression answers and their measured values
    # When the labels are evaluated
    truth, summary, sent = labelled(s3, ENERGY_SCHEMA)
    # Then RMSE and MAE are sklearn's on the same pairs
    y = [t["label"] for t in truth.values()]
    p = [t["prediction"]["value"] for t in truth.values()]
    overall = summary["overall"]
    assert overall["rows"] == 120
    assert overall["rmse"] == pytest.approx(mean_squared_error(y, p) ** 0.5)
    assert overall["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert overall["mean_label"] == pytest.approx(np.mean(y)) and overall["mean_prediction"] == pytest.approx(
        np.mean(p)
    )
    # And they are published as ModelRMSE and ModelMAE (no accuracy, no AUC: a value has no label)
    assert {name for name, _ in published(sent)} == {"ModelRMSE", "ModelMAE"}
    assert published(sent)[("ModelRMSE", (ENDPOINT,))] == pytest.approx(overall["rmse"])
    key = summary["summary_uri"].removeprefix(f"s3://{ARTIFACTS}/").replace("summary.json", "joined.jsonl")
    joined = s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read().decode().splitlines()
    first = json.loads(joined[0])
    assert (first["label"], first["predicted_value"], first["predicted_label"]) == (
        truth["evt-0000"]["label"],
        truth["evt-0000"]["prediction"]["value"],
        None,
    )


def test_binary_labels_that_are_strings_score_their_positive_label(s3: Any) -> None:
    # Given a binary dataset labelled yes/no (positive: yes) and captured answers with those labels
    # When the labels are evaluated
    truth, summary, sent = labelled(s3, YES_NO)
    # Then AUC ranks the probability of "yes" against the labels, and accuracy compares the labels
    y = [t["label"] == "yes" for t in truth.values()]
    probabilities = [t["prediction"]["probability"] for t in truth.values()]
    overall = summary["overall"]
    assert overall["positives"] == sum(y)
    assert overall["auc"] == pytest.approx(roc_auc_score(y, probabilities))
    assert overall["accuracy"] == pytest.approx(
        np.mean([t["label"] == t["prediction"]["label"] for t in truth.values()])
    )
    assert {name for name, _ in published(sent)} == {"ModelAUC", "ModelAccuracy"}


@pytest.mark.parametrize(
    ("schema", "line", "expected"),
    [
        (TICKETS_SCHEMA, {"data": "billing,sales", "encoding": "CSV"}, ["billing", "sales"]),
        (TICKETS_SCHEMA, {"data": '["account"]', "encoding": "JSON"}, ["account"]),
        (TICKETS_SCHEMA, {"data": "refunds", "encoding": "CSV"}, None),  # not a declared class
        (ENERGY_SCHEMA, {"data": "812.5 94.25", "encoding": "CSV"}, [812.5, 94.25]),
        (ENERGY_SCHEMA, {"data": "[812.5, 3]", "encoding": "JSON"}, [812.5, 3.0]),
        (ENERGY_SCHEMA, {"data": "n/a", "encoding": "CSV"}, None),
        (ENERGY_SCHEMA, {"data": "NaN", "encoding": "CSV"}, None),
        (CHURN_SCHEMA, {"data": "1,0.0", "encoding": "CSV"}, [1, 0]),
        (CHURN_SCHEMA, {"data": "yes", "encoding": "CSV"}, None),
        (YES_NO, {"data": "yes,no", "encoding": "CSV"}, ["yes", "no"]),
    ],
)
def test_labels_are_read_as_the_dataset_declares_them(
    schema: DatasetSchema, line: dict[str, str], expected: list[Any] | None
) -> None:
    body = json.dumps({"groundTruthData": line, "eventMetadata": {"eventId": "e"}}).encode()
    labels = logic.parse_labels(body, "x.jsonl", schema)
    assert labels.by_id == ({"e": expected} if expected is not None else {})
    assert labels.bad_lines == (0 if expected is not None else 1)


def test_csv_label_files_hold_string_classes_with_a_header(s3: Any) -> None:
    body = b'inference_id,label\nevt-1,billing\nevt-2,"technical"\nevt-3,refunds\n'
    labels = logic.parse_labels(body, "day.csv", TICKETS_SCHEMA)
    assert labels.by_id == {"evt-1": ["billing"], "evt-2": ["technical"]}
    assert labels.bad_lines == 1  # refunds


def test_every_published_quality_metric_has_a_direction() -> None:
    # the quality alarm fires on falling accuracy / AUC / macro F1 and on rising RMSE / MAE
    names = {name for metrics in logic.QUALITY_METRICS.values() for name, _ in metrics}
    assert names == set(logic.HIGHER_IS_BETTER)
    assert [n for n, higher in logic.HIGHER_IS_BETTER.items() if not higher] == ["ModelRMSE", "ModelMAE"]


def test_a_captured_answer_of_another_task_is_undecodable(s3: Any) -> None:
    # Given a binary answer captured where the dataset is regression (e.g. the wrong endpoint)
    put_capture(s3, [capture_line("1,2", event_id="evt-1")], HOUR)
    body = json.dumps({"groundTruthData": {"data": "3.5"}, "eventMetadata": {"eventId": "evt-1"}}) + "\n"
    # When its label is evaluated
    summary, sent = evaluate(s3, ENERGY_SCHEMA, body)
    # Then the response is counted as undecodable and nothing is published
    assert (summary["undecodable_responses"], summary["overall"]["rows"], sent) == (1, 0, [])
    assert summary["overall"]["rmse"] is None
