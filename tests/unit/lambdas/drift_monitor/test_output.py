"""Drift of the model's output per task: the captured answers (binary probability, multiclass predicted label,
regression value) against the answering model's answers on its test split, found in the registry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import numpy as np
import pytest

from lambdas.drift_monitor import logic, output
from lambdas.drift_monitor.drift_math import NumericBaseline, numeric_drift
from lambdas.drift_monitor.logic import DriftConfig
from pipelines.data.generator import generate
from pipelines.etl.transforms import numeric_stats
from pipelines.evaluation.evaluate import output_baseline
from pipelines.schema import DatasetSchema
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.conftest import NAMESPACE
from tests.unit.lambdas.drift_monitor.helpers import (
    ARTIFACTS,
    END,
    ENDPOINT,
    FEATURES,
    HOUR,
    baseline_report,
    capture_line,
    csv_body,
    put_baseline,
    put_capture,
)

GROUP = "mlops-test-churn"
CLASSES = ("billing", "technical", "account")
# the churn features with each task's target: the feature baseline stays the churn ETL report's
SCHEMAS: dict[str, DatasetSchema] = {
    "binary": CHURN_SCHEMA,
    "multiclass": replace(CHURN_SCHEMA, task="multiclass", labels=CLASSES, gate=None),
    "regression": replace(CHURN_SCHEMA, task="regression", gate=None),
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return baseline_report(rows=5000, seed=1)


def model_output(task: str, rows: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """What a model of ``task`` answers for ``rows`` rows (``shift`` moves the answers: drift of the output)."""
    rng = np.random.default_rng(seed)
    if task == "regression":
        return rng.normal(400 + shift, 60, rows)
    if task == "multiclass":
        return rng.dirichlet([4.0 - 3 * shift, 2.0, 1.0 + 3 * shift], rows)
    return rng.beta(2 + 4 * shift, 5, rows)


def predictions(task: str, answers: np.ndarray) -> list[dict[str, Any]]:
    """The inference handler's JSON predictions for the model output ``answers``."""
    if task == "regression":
        return [{"value": float(v)} for v in answers]
    if task == "multiclass":
        return [
            {"label": CLASSES[int(row.argmax())], "probabilities": dict(zip(CLASSES, row.tolist(), strict=True))}
            for row in answers
        ]
    return [{"probability": float(p), "label": int(p >= 0.5)} for p in answers]


def register(sm: Any, s3: Any, task: str, version: str, *, baseline: bool = True, status: str = "Approved") -> str:
    """A package of model ``version`` whose evaluation report holds the output baseline of 1,000 test rows."""
    key = f"evaluations/exec-{version}/evaluation.json"
    evaluation: dict[str, Any] = {"model_version": version}
    if baseline:
        model = SimpleNamespace(schema=SCHEMAS[task], version=version)
        evaluation["output_baseline"] = output_baseline(model, model_output(task, 1000, seed=1))  # type: ignore[arg-type]
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=json.dumps(evaluation).encode())
    return str(
        sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "sklearn-image", "ModelDataUrl": f"s3://{ARTIFACTS}/models/{version}.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics={
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{ARTIFACTS}/{key}"}}
            },
            CustomerMetadataProperties={"model_version": version, "evaluation_uri": f"s3://{ARTIFACTS}/{key}"},
        )["ModelPackageArn"]
    )


def traffic(s3: Any, task: str, version: str | None, *, rows: int = 400, seed: int = 7, shift: float = 0.0) -> None:
    """Captured requests of undrifted churn features, 10 rows each, answered by model ``version`` (None: CSV)."""
    frame = generate(rows, seed=seed)[FEATURES]
    answers = predictions(task, model_output(task, rows, seed=seed, shift=shift))
    lines = []
    for start in range(0, rows, 10):
        chunk = answers[start : start + 10]
        if version is None:  # CSV answers: no model version
            body = "".join(
                f"{a['value']!r}\n" if task == "regression" else f"{a['probability']!r},{a['label']}\n" for a in chunk
            )
            lines.append(capture_line(csv_body(frame.iloc[start : start + 10]), output=body, output_type="text/csv"))
        else:
            body = json.dumps({"model_version": version, "predictions": chunk})
            lines.append(capture_line(csv_body(frame.iloc[start : start + 10]), output=body))
    put_capture(s3, lines, HOUR)


@pytest.fixture
def sm(s3: Any) -> Any:
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    return client


def drift_config(config: DriftConfig, task: str) -> DriftConfig:
    return replace(config, schema=SCHEMAS[task], model_package_group=GROUP)


def output_psi() -> list[float]:
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName="OutputDriftPSI",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        StartTime=END - timedelta(days=1),
        EndTime=END + timedelta(days=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert all(p["Timestamp"] == END for p in points)
    return [p["Maximum"] for p in points]


def read_report(s3: Any) -> dict[str, Any]:
    key = "monitoring/drift/2026-11-27T10-00/report.json"
    return dict(json.loads(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()))


@pytest.mark.parametrize(
    ("task", "what"), [("binary", "probability"), ("multiclass", "label"), ("regression", "value")]
)
def test_answers_like_the_test_splits_show_no_output_drift(
    s3: Any, sm: Any, config: DriftConfig, report: Any, task: str, what: str
) -> None:
    # Given the feature baseline, model m-1's output baseline, and 400 captured answers of m-1 like its test split's
    put_baseline(s3, report)
    arn = register(sm, s3, task, "m-1")
    traffic(s3, task, "m-1", seed=7)
    # When the monitor runs
    summary = logic.run(s3, boto3.client("cloudwatch"), drift_config(config, task), END, registry=sm)
    # Then the output was compared with m-1's baseline, shows no drift, and its PSI is published
    section = read_report(s3)["output"]
    assert (section["status"], section["output"], section["rows"], section["drifted"]) == ("no_drift", what, 400, False)
    assert section["baseline"] == {
        "evaluation_uri": f"s3://{ARTIFACTS}/evaluations/exec-m-1/evaluation.json",
        "model_version": "m-1",
        "model_package_arn": arn,
    }
    assert section["psi"] < 0.1
    assert (section["comparison"]["ks"] is None) == (task == "multiclass")  # KS for a number only
    assert output_psi() == [pytest.approx(section["psi"])]
    assert summary["status"] == "no_drift" and summary["output"]["status"] == "no_drift"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_shifted_answers_are_output_drift_even_when_no_feature_moved(
    s3: Any, sm: Any, config: DriftConfig, report: Any, task: str
) -> None:
    # Given undrifted features but answers that moved (the model sees something the features do not show)
    put_baseline(s3, report)
    register(sm, s3, task, "m-1")
    traffic(s3, task, "m-1", shift=1.0 if task != "regression" else 150.0)
    # When the monitor runs
    summary = logic.run(s3, boto3.client("cloudwatch"), drift_config(config, task), END, registry=sm)
    # Then the verdict is drift because of the output, said in the reason, and the output PSI is published
    assert summary["drifted_features"] == []
    assert summary["status"] == "drift"
    section = read_report(s3)["output"]
    assert section["drifted"] is True and section["psi"] > 0.2
    assert f"output: PSI of the {output.OUTPUTS[task]} " in summary["reason"]  # type: ignore[index]
    assert output_psi() == [pytest.approx(section["psi"])]
    # And the HTML page shows the output's row and charts
    html = s3.get_object(Bucket=ARTIFACTS, Key="monitoring/drift/2026-11-27T10-00/report.html")["Body"].read()
    page = html.decode()
    assert f"Model output ({output.OUTPUTS[task]})" in page  # type: ignore[index]
    assert "model output" in page and '<span class="verdict drift">drift</span>' in page


def test_only_the_answers_of_the_baseline_model_are_compared(
    s3: Any, sm: Any, config: DriftConfig, report: Any
) -> None:
    # Given m-1 and m-2 approved, and a window where most answers come from m-2 and some from m-1 (a rollout)
    put_baseline(s3, report)
    register(sm, s3, "regression", "m-1")
    register(sm, s3, "regression", "m-2")
    traffic(s3, "regression", "m-2", rows=400, seed=7)
    traffic(s3, "regression", "m-1", rows=100, seed=8, shift=300.0)
    traffic(s3, "regression", None, rows=200, seed=9)  # CSV answers: no version, counted with the others
    # When the monitor runs
    logic.run(s3, boto3.client("cloudwatch"), drift_config(config, "regression"), END, registry=sm)
    # Then m-2's baseline is used for m-2's answers (and the unversioned ones); m-1's are left out
    section = read_report(s3)["output"]
    assert section["baseline"]["model_version"] == "m-2"
    assert (section["rows"], section["other_versions"], section["status"]) == (600, 100, "no_drift")


def test_an_older_approved_model_that_still_answers_is_compared_with_its_own_baseline(
    s3: Any, sm: Any, config: DriftConfig, report: Any
) -> None:
    # Given m-1 and a newer m-2 approved, and every answer of the window from m-1 (m-2's rollout has not happened
    # or was rolled back)
    put_baseline(s3, report)
    register(sm, s3, "multiclass", "m-1")
    register(sm, s3, "multiclass", "m-2")
    traffic(s3, "multiclass", "m-1", rows=400, seed=7)
    # When the monitor runs
    logic.run(s3, boto3.client("cloudwatch"), drift_config(config, "multiclass"), END, registry=sm)
    # Then the baseline is m-1's, found past the newest package, and its answers are compared
    section = read_report(s3)["output"]
    assert section["baseline"]["model_version"] == "m-1"
    assert (section["rows"], section["other_versions"], section["status"]) == (400, 0, "no_drift")


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("no-group", "no model package group configured: the output baseline cannot be found"),
        ("no-package", f"no Approved model package in {GROUP}"),
        ("old-report", "has no output_baseline (a model evaluated before the evaluation job wrote one)"),
        ("unknown-version", "the captured answers come from model m-9, none among the 1 newest Approved packages"),
        ("few-answers", "captured answers of model m-1 < minimum 200: no output drift verdict"),
    ],
)
def test_without_a_baseline_or_enough_answers_the_output_is_skipped_and_features_still_count(
    s3: Any, sm: Any, config: DriftConfig, report: Any, setup: str, reason: str
) -> None:
    # Given the feature baseline and 400 captured rows, but no usable output baseline (or too few answers)
    put_baseline(s3, report)
    if setup != "no-package":
        register(sm, s3, "binary", "m-1", baseline=setup != "old-report")
    if setup == "few-answers":
        traffic(s3, "binary", "m-1", rows=100)
        traffic(s3, "binary", "m-8", rows=300, seed=8)
    else:
        traffic(s3, "binary", "m-9" if setup == "unknown-version" else "m-1")
    settings = replace(drift_config(config, "binary"), model_package_group=None if setup == "no-group" else GROUP)
    # When the monitor runs
    summary = logic.run(s3, boto3.client("cloudwatch"), settings, END, registry=sm)
    # Then the output is skipped with the reason, nothing is published for it, and the features are judged
    section = read_report(s3)["output"]
    assert reason in section["reason"]
    assert section["status"] in ("skipped", "insufficient_data") and section["psi"] is None
    assert output_psi() == []
    assert summary["metrics_published"] is True and summary["status"] == "no_drift"


def test_the_targets_distribution_would_be_an_unsound_baseline_for_a_regressors_values() -> None:
    # Given a regression target and a model with R^2 = 0.3 (its values are the target's shrunk toward the mean)
    rng = np.random.default_rng(3)
    signal, noise = rng.normal(0, np.sqrt(0.3), 20_000), rng.normal(0, np.sqrt(0.7), 20_000)
    target, values = 400 + 100 * (signal + noise), 400 + 100 * signal
    held_out, served = values[:10_000], values[10_000:]  # no drift at all between test split and traffic
    # When the served values are compared with the target's baseline and with the model's own test answers
    against_target = numeric_drift("v", served, NumericBaseline.from_report(numeric_stats(target[:10_000])))  # type: ignore[arg-type]
    against_model = numeric_drift("v", served, NumericBaseline.from_report(numeric_stats(held_out)))  # type: ignore[arg-type]
    # Then the target baseline reports drift that is not there (PSI over the 0.2 alarm threshold); the model's does not
    assert against_target.psi > 0.5
    assert against_model.psi < 0.01


def test_a_schema_of_another_task_than_the_baseline_is_refused() -> None:
    baseline = output.OutputBaseline("m-1", "arn", "s3://a/e.json", "label", {"count": 1, "proportions": {"a": 1.0}})
    with pytest.raises(output.OutputBaselineMissing, match="the baseline describes the label, a regression model"):
        output.compare_outputs(output.CapturedOutputs(), baseline, SCHEMAS["regression"])
