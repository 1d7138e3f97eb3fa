"""Drift of the model's output: the answers captured in the window against the answers the same model gave on its
held-out test split.

What is compared, per task (``OUTPUTS``): binary, the positive label's probability (numeric: PSI over the baseline's
decile bins and KS against its sketch, as a numeric feature); multiclass, the shares of the predicted labels
(categorical: PSI over the declared labels); regression, the value (numeric).

The baseline is ``output_baseline`` of the model's evaluation report (``evaluation.json``, written by the
evaluation job: ``pipelines/evaluation/evaluate.py`` ``output_baseline``), not the target's distribution in the ETL
quality report. Without drift, a model's answers look like its answers on held-out rows of the training
distribution; they do not look like the target: a regressor's values are narrower than the target's (shrinkage
toward the mean: with R² 0.3, values against the target's deciles give a PSI of about 0.6 with no drift at all,
0.2 with R² 0.5; against the model's own test answers, 0.002), and a probability is not a 0/1 label.

The model is found in the registry among the newest ``Approved`` packages of the group (``MAX_PACKAGES``, newest
first): the one whose ``CustomerMetadataProperties.model_version`` is the version most captured answers name
(among the versions an Approved package names; the newest package when no answer names one: CSV answers carry no
version). Its ``ModelMetrics.ModelQuality.Statistics`` (else ``<evaluation_uri>/evaluation.json``) is the report.
Only answers of that version, and answers without a version, are compared (a window that spans a deployment holds
two models' answers).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lambdas.drift_monitor.capture import CaptureRecord, S3Client, decode_predictions
from lambdas.drift_monitor.drift_math import (
    CategoricalBaseline,
    FeatureDrift,
    NumericBaseline,
    categorical_drift,
    numeric_drift,
)
from lambdas.shared.answers import Answer
from pipelines.schema import DatasetSchema, Task

OUTPUT_PSI_METRIC = "OutputDriftPSI"
OUTPUTS: dict[Task, str] = {"binary": "probability", "multiclass": "label", "regression": "value"}
MAX_PACKAGES = 10
EVALUATION_FILE = "evaluation.json"


class RegistryClient(Protocol):
    def list_model_packages(self, **kwargs: Any) -> dict[str, Any]: ...
    def describe_model_package(self, **kwargs: Any) -> dict[str, Any]: ...


class OutputBaselineMissing(Exception):
    """No evaluation report with an output baseline for the model that answered."""


@dataclass(frozen=True)
class OutputBaseline:
    model_version: str | None
    package_arn: str
    evaluation_uri: str
    output: str  # probability | label | value
    statistics: Mapping[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "evaluation_uri": self.evaluation_uri,
            "model_version": self.model_version,
            "model_package_arn": self.package_arn,
        }


@dataclass
class CapturedOutputs:
    """The captured answers, row by row, with the model version their response names (None: a CSV answer)."""

    rows: list[tuple[str | None, Answer]] = field(default_factory=list)
    undecodable: int = 0  # responses that are not the task's answer (errors, another shape)

    def versions(self) -> list[str]:
        """The model versions the answers name, the most frequent first."""
        counts = Counter(version for version, _ in self.rows if version is not None)
        return [version for version, _ in counts.most_common()]


def captured_outputs(records: Iterable[CaptureRecord], schema: DatasetSchema) -> CapturedOutputs:
    outputs = CapturedOutputs()
    for record in records:
        try:
            answers = decode_predictions(record, schema.task, schema.class_labels)
        except (ValueError, KeyError, TypeError):
            outputs.undecodable += 1
            continue
        outputs.rows += [(answers.model_version, answer) for answer in answers.rows]
    return outputs


def _split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise OutputBaselineMissing(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _evaluation_uri(package: Mapping[str, Any]) -> str | None:
    statistics = ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
    if statistics.get("S3Uri"):
        return str(statistics["S3Uri"])
    folder = (package.get("CustomerMetadataProperties") or {}).get("evaluation_uri")
    if not folder:
        return None
    return folder if folder.endswith(".json") else f"{folder.rstrip('/')}/{EVALUATION_FILE}"


def find_baseline(registry: RegistryClient, s3: S3Client, group: str, versions: Sequence[str]) -> OutputBaseline:
    """The output baseline of the Approved package of ``group`` whose model answered most: the first of ``versions``
    (most frequent first) that an Approved package names; the newest package when no answer named a version."""
    summaries = registry.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=MAX_PACKAGES,
    ).get("ModelPackageSummaryList", [])
    if not summaries:
        raise OutputBaselineMissing(f"no Approved model package in {group}")
    by_version: dict[str, dict[str, Any]] = {}
    package: dict[str, Any] | None = None
    for summary in summaries:
        described = registry.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if not versions:
            package = described
            break
        named = (described.get("CustomerMetadataProperties") or {}).get("model_version")
        by_version.setdefault(str(named), described)
        if named == versions[0]:
            break
    package = package or next((by_version[v] for v in versions if v in by_version), None)
    if package is None:
        shown = ", ".join(versions[:3]) + (", ..." if len(versions) > 3 else "")
        raise OutputBaselineMissing(
            f"the captured answers come from model {shown}, none among the {len(summaries)} newest Approved packages "
            f"of {group}"
        )
    uri = _evaluation_uri(package)
    if uri is None:
        raise OutputBaselineMissing(f"model package {package['ModelPackageArn']} names no evaluation report")
    bucket, key = _split_uri(uri)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    baseline = report.get("output_baseline") if isinstance(report, dict) else None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("statistics"), dict):
        raise OutputBaselineMissing(
            f"{uri} has no output_baseline (a model evaluated before the evaluation job wrote one)"
        )
    named = (package.get("CustomerMetadataProperties") or {}).get("model_version")
    return OutputBaseline(
        model_version=str(named) if named else baseline.get("model_version"),
        package_arn=str(package["ModelPackageArn"]),
        evaluation_uri=uri,
        output=str(baseline.get("output")),
        statistics=baseline["statistics"],
    )


def compare_outputs(
    outputs: CapturedOutputs, baseline: OutputBaseline, schema: DatasetSchema
) -> tuple[FeatureDrift, int]:
    """PSI (and, for a number, KS) of the captured answers of the baseline's model against the baseline; also
    the number of rows answered by another model version (left out)."""
    what = OUTPUTS[schema.task]
    if baseline.output != what:
        raise OutputBaselineMissing(
            f"the baseline describes the {baseline.output}, a {schema.task} model answers a {what}"
        )
    ours = [a for v, a in outputs.rows if v is None or baseline.model_version is None or v == baseline.model_version]
    others = len(outputs.rows) - len(ours)
    name = f"output:{what}"
    if what == "label":
        categorical = CategoricalBaseline.from_report(baseline.statistics)
        if categorical is None:
            raise OutputBaselineMissing(f"the output baseline in {baseline.evaluation_uri} has no values")
        counts = Counter(str(a.label) for a in ours)
        return categorical_drift(name, counts, 0, categorical), others
    numeric = NumericBaseline.from_report(baseline.statistics)
    if numeric is None:
        raise OutputBaselineMissing(f"the output baseline in {baseline.evaluation_uri} has no values")
    values = np.asarray([a.probability if what == "probability" else a.value for a in ours], dtype=np.float64)
    return numeric_drift(name, values, numeric), others


@dataclass(frozen=True)
class OutputResult:
    """``report.json``'s ``output`` section, and the comparison when there was one (its PSI is published)."""

    section: dict[str, Any]
    drift: FeatureDrift | None = None


def evaluate_output(
    records: Iterable[CaptureRecord],
    schema: DatasetSchema,
    *,
    registry: RegistryClient | None,
    s3: S3Client,
    group: str | None,
    min_rows: int,
    psi_threshold: float,
    ks_threshold: float,
) -> OutputResult:
    """The output drift of one window: the captured answers against the answering model's output baseline.

    Skipped, with the reason in the section, when no registry is configured, when no baseline can be found, and
    when fewer than ``min_rows`` answers of the baseline's model were captured (no verdict on a handful)."""
    what = OUTPUTS[schema.task]
    outputs = captured_outputs(records, schema)
    section: dict[str, Any] = {
        "output": what,
        "rows": 0,
        "answers": len(outputs.rows),
        "other_versions": 0,
        "undecodable": outputs.undecodable,
        "min_rows": min_rows,
        "baseline": None,
        "psi": None,
        "ks": None,
        "drifted": False,
    }

    def skipped(status: str, reason: str) -> OutputResult:
        return OutputResult({"status": status, "reason": reason, **section})

    if registry is None or not group:
        return skipped("skipped", "no model package group configured: the output baseline cannot be found")
    try:
        baseline = find_baseline(registry, s3, group, outputs.versions())
        section["baseline"] = baseline.describe()
        drift, others = compare_outputs(outputs, baseline, schema)
    except OutputBaselineMissing as missing:
        return skipped("skipped", str(missing))
    section.update(rows=drift.rows, other_versions=others)
    if drift.rows < min_rows:
        return skipped(
            "insufficient_data",
            f"{drift.rows} captured answers of model {baseline.model_version} < minimum {min_rows}: no output "
            "drift verdict",
        )
    drifted = drift.psi > psi_threshold
    section.update(
        psi=drift.psi,
        ks=drift.ks,
        drifted=drifted,
        comparison={**drift.to_dict(), "ks_breach": drift.ks is not None and drift.ks > ks_threshold},
    )
    verb = "above" if drifted else "at most"
    reason = f"PSI of the {what} {drift.psi:.4f} is {verb} {psi_threshold} (model {baseline.model_version})"
    return OutputResult({"status": "drift" if drifted else "no_drift", "reason": reason, **section}, drift)
