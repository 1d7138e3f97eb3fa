"""Prepare a training run: the curated dataset version, the champion, and deterministic job names.

Plain logic over injectable clients (S3, SageMaker); the handler only parses the event and calls ``prepare``.
The result is ``$.prepared`` of the training state machine (docs/contracts.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lambdas.prepare_training.compose import compose
from pipelines.etl.driver import version_label  # the ETL's own rule: the driver ships in the Lambda asset
from pipelines.schema import DatasetSchema, Tuning

SPLITS = ("train", "validation", "test")
MAX_JOB_NAME = 63  # SageMaker training/processing job names: 1-63 characters of [a-zA-Z0-9-]
MAX_TUNING_JOB_NAME = 32  # CreateHyperParameterTuningJob: 1-32 characters (the prefix of its trials' names)
DIGEST_CHARS = 10
NO_CHAMPION_FILE = "NO_CHAMPION"


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...

    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...


class SageMakerClient(Protocol):
    def list_model_packages(self, **kwargs: Any) -> dict[str, Any]: ...

    def describe_model_package(self, **kwargs: Any) -> dict[str, Any]: ...


class LineageNotFound(RuntimeError):
    """The ETL's quality report (the lineage record) of this execution does not exist."""


class LineageNotUsable(RuntimeError):
    """The lineage record is not a successful, complete dataset version."""


@dataclass(frozen=True)
class PrepareSettings:
    model_package_group: str
    curated_bucket: str
    artifacts_bucket: str
    dataset: str
    job_prefix: str
    tuning: Tuning | None = None  # the dataset's model.tuning
    objective: tuple[str, str] = ("", "")  # its objective (DatasetSchema.tuning_objective)
    static_hyperparameters: Mapping[str, str] = field(default_factory=dict)  # the training job's, but the dataset
    schema: DatasetSchema | None = None  # composes a retrain's channels from its data plan (``compose``)


def _digest(execution: str) -> str:
    return hashlib.sha256(execution.encode()).hexdigest()


def job_name(prefix: str, kind: str, execution: str) -> str:
    """``<prefix>-<kind>-<readable part of the execution>-<hash>``: at most 63 characters of
    ``[a-zA-Z0-9-]``, the same for the same execution, and distinct executions never share one (the hash
    covers the whole execution name even where the readable part is cut)."""
    head = re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9-]", "-", f"{prefix}-{kind}")).strip("-")
    tail = _digest(execution)[:DIGEST_CHARS]
    room = MAX_JOB_NAME - len(head) - len(tail) - 2
    if room < 0:
        raise ValueError(f"job prefix {prefix!r} leaves no room in a {MAX_JOB_NAME}-character job name")
    readable = re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9]", "-", execution)).strip("-")[:room].strip("-")
    return "-".join(part for part in (head, readable, tail) if part)


def tuning_job_name(prefix: str, execution: str) -> str:
    """``<prefix>-<hash>``: at most 32 characters (SageMaker's limit for a tuning job, whose trials are named
    ``<tuning job>-<NNN>-<id>``), the same for the same execution; the hash covers the prefix and the execution,
    so a prefix cut to fit still names one dataset's run."""
    tail = _digest(f"{prefix}:{execution}")[:DIGEST_CHARS]
    head = re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9-]", "-", prefix))[: MAX_TUNING_JOB_NAME - DIGEST_CHARS - 1]
    return f"{head.strip('-')}-{tail}"


def tuning_view(settings: PrepareSettings, execution: str) -> dict[str, Any] | None:
    """``$.prepared.tuning`` when the dataset declares ``model.tuning``: the tuning job's name, its
    ``HyperParameterTuningJobConfig`` and its ``StaticHyperParameters`` (the training job's without the tuned
    ones, which SageMaker passes per trial, plus the dataset as a JSON string literal)."""
    if settings.tuning is None:
        return None
    static = {
        name: value for name, value in settings.static_hyperparameters.items() if name not in settings.tuning.ranges
    }
    return {
        "job_name": tuning_job_name(settings.job_prefix, execution),
        "config": settings.tuning.job_config(settings.objective),
        "static_hyperparameters": {**static, "dataset": json.dumps(settings.dataset)},
    }


def model_version(dataset: str, execution: str) -> str:
    """The model's version label (response bodies, metric dimensions, registry metadata)."""
    return f"{dataset}-{_digest(execution)[:12]}"


def _split_uri(lineage: dict[str, Any], split: str) -> str:
    """The S3 prefix of one split (a SageMaker S3Prefix channel): the folder of its Parquet file."""
    files = lineage.get("files") or {}
    if files.get(split):
        return str(files[split]).rsplit("/", 1)[0] + "/"
    prefix = lineage.get("curated_prefix")
    if not prefix:
        raise LineageNotUsable(f"lineage record of version {lineage.get('version')!r} names no {split} data")
    return f"{str(prefix).rstrip('/')}/split={split}/"


def curated_view(lineage: dict[str, Any]) -> dict[str, Any]:
    """``$.prepared.curated``: what training, evaluation and registration need from the lineage record."""
    status = lineage.get("status")
    if status != "SUCCEEDED":
        raise LineageNotUsable(
            f"dataset version {lineage.get('version')!r} has status {status!r}; only SUCCEEDED versions train"
        )
    missing = [key for key in ("version", "report_uri", "rows") if key not in lineage]
    if missing:
        raise LineageNotUsable(f"lineage record lacks {missing}")
    return {
        "version": lineage["version"],
        **{f"{split}_uri": _split_uri(lineage, split) for split in SPLITS},
        "report_uri": lineage["report_uri"],
        "rows": lineage["rows"],
        "source": lineage.get("source"),
    }


def report_key(dataset: str, execution: str) -> str:
    return f"curated/dataset={dataset}/version={version_label(execution)}/_quality_report.json"


def read_lineage(s3: S3Client, bucket: str, dataset: str, execution: str) -> dict[str, Any]:
    """The ``output`` lineage record of this execution's ETL quality report."""
    key = report_key(dataset, execution)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # botocore ClientError (NoSuchKey, AccessDenied): the reason matters
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        raise LineageNotFound(f"no quality report at s3://{bucket}/{key} ({code}): did the ETL run?") from error
    report = json.loads(body)
    lineage = report.get("output") if isinstance(report, dict) else None
    if not isinstance(lineage, dict):
        raise LineageNotUsable(f"quality report s3://{bucket}/{key} has no 'output' lineage record")
    return lineage


def find_champion(sagemaker: SageMakerClient, group: str) -> dict[str, Any] | None:
    """The newest ``Approved`` package of ``group`` as ``{model_package_arn, model_version, model_data}``."""
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    ).get("ModelPackageSummaryList", [])
    if not summaries:
        return None
    arn = summaries[0]["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl"):
        raise LineageNotUsable(f"champion {arn} has no ModelDataUrl in its inference specification")
    metadata = package.get("CustomerMetadataProperties") or {}
    return {
        "model_package_arn": arn,
        "model_version": metadata.get("model_version") or f"{group}-v{package.get('ModelPackageVersion')}",
        "model_data": containers[0]["ModelDataUrl"],
    }


def no_champion_prefix(s3: S3Client, bucket: str, execution: str, group: str) -> str:
    """Write the placeholder object a processing input needs when there is no champion; its prefix URI.

    (A ProcessingInput must point at something; the evaluation finds no model archive there.)"""
    prefix = f"evaluations/{execution}/no-champion/"
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}{NO_CHAMPION_FILE}",
        Body=f"no Approved model package in {group} when execution {execution} started\n".encode(),
        ContentType="text/plain",
    )
    return f"s3://{bucket}/{prefix}"


def prepare(
    *,
    execution: str,
    state: dict[str, Any],
    s3: S3Client,
    sagemaker: SageMakerClient,
    settings: PrepareSettings,
) -> dict[str, Any]:
    """``$.prepared`` for this execution (see docs/contracts.md). Safe to repeat: same input, same output."""
    lineage = state.get("curated")
    if not isinstance(lineage, dict):  # an upload: this execution's own ETL output
        lineage = read_lineage(s3, settings.curated_bucket, settings.dataset, execution)
    curated = curated_view(lineage)
    if settings.schema is not None:  # a retrain's data plan: upload + labelled production rows
        curated = compose(
            s3, settings.curated_bucket, settings.schema, curated, state.get("data_plan"), version_label(execution)
        )
    champion = find_champion(sagemaker, settings.model_package_group)
    champion_model_data = (
        champion["model_data"]
        if champion
        else no_champion_prefix(s3, settings.artifacts_bucket, execution, settings.model_package_group)
    )
    prepared = {
        "model_version": model_version(settings.dataset, execution),
        "training_job_name": job_name(settings.job_prefix, "train", execution),
        "evaluation_job_name": job_name(settings.job_prefix, "eval", execution),
        "curated": curated,
        "champion": champion,
        "champion_model_data": champion_model_data,
        "evaluation_uri": f"s3://{settings.artifacts_bucket}/evaluations/{execution}",
    }
    tuning = tuning_view(settings, execution)
    if tuning is not None:  # absent otherwise: the state machine's TuneOrTrain choice tests its presence
        prepared["tuning"] = tuning
    return prepared
