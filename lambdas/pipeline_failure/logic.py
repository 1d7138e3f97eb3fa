"""Explain a failed training-pipeline execution: the underlying reason and the stage, for a person.

Step Functions hands a Catch ``{"Error", "Cause"}``; the useful text is inside ``Cause`` and its shape
depends on the integration that failed:

- ``glue:startJobRun.sync``: ``Cause`` is the GetJobRun ``JobRun`` as JSON; the reason is ``ErrorMessage``.
- ``sagemaker:create{Training,Processing,HyperParameterTuning}Job.sync``: ``Cause`` is the Describe*Job response
  as JSON; the reason is ``FailureReason`` (processing jobs may only have ``ExitMessage``).
- Lambda (the function ARN as the resource): ``Error`` is the exception type and ``Cause`` the runtime's
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` JSON; the reason is ``errorMessage``.
- ``States.*`` errors (timeouts, runtime errors) and synchronous service errors: plain text.

The stage comes from the Cause's shape when it names a job, else from how far the state got (which of
``etl``, ``prepared``, ``training``, ``evaluation_job``, ``registration`` it holds).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MAX_REASON = 4096  # the Fail state's Cause may hold 32 KiB; a notification reason needs far less
SUBJECT_CHARS = 100
# (state key written by a stage on success, the stage that writes it), in pipeline order
PROGRESS: tuple[tuple[str, str], ...] = (
    ("etl", "etl"),
    ("prepared", "prepare"),
    ("training", "training"),
    ("evaluation_job", "evaluation"),
    ("registration", "registration"),
)
STAGE_BY_ERROR_PREFIX = {"Glue.": "etl", "SNS.": "notification"}


@dataclass(frozen=True)
class Failure:
    """``$.failure``."""

    subject: str
    message: str
    reason: str
    stage: str


@dataclass(frozen=True)
class Diagnosis:
    reason: str
    stage: str | None
    details: tuple[str, ...] = ()


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _printable(text: str, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join("".join(c if c.isprintable() else " " for c in ascii_text).split())[:limit]


def stage_from_state(state: Mapping[str, Any] | None) -> str | None:
    """The first stage whose output the state lacks (the one that was running); None without a state."""
    if not state:
        return None
    for key, stage in PROGRESS:
        if key == "etl" and "upload" not in state:
            continue  # a retrain skips the ETL
        if key == "evaluation_job" and "evaluation_archive" in (state.get("training") or {}):
            continue  # the training job evaluated (an untuned run): no evaluation job
        if key not in state:
            return stage
    return "notification"


def _glue(run: dict[str, Any], region: str) -> Diagnosis:
    state = run.get("JobRunState", "?")
    reason = run.get("ErrorMessage") or f"Glue job run {run.get('Id')} ended in state {state}"
    job, run_id = run.get("JobName"), run.get("Id")
    return Diagnosis(
        reason,
        "etl",
        (
            f"Glue job {job}, run {run_id}: {state} after {run.get('ExecutionTime', '?')} s",
            f"Run: https://{region}.console.aws.amazon.com/gluestudio/home?region={region}#/job/{job}/run/{run_id}",
        ),
    )


# Describe*Job kind -> (what a person calls it, its console page)
_SAGEMAKER_KINDS = {
    "Training": ("training", "jobs"),
    "Processing": ("processing", "processing-jobs"),
    "HyperParameterTuning": ("tuning", "hyper-tuning-jobs"),
}


def _sagemaker(job: dict[str, Any], kind: str, region: str) -> Diagnosis:
    name = job.get(f"{kind}JobName")
    status = job.get(f"{kind}JobStatus", "?")
    label, page = _SAGEMAKER_KINDS[kind]
    reason = job.get("FailureReason") or job.get("ExitMessage") or f"{label} job {name} ended {status}"
    details = [f"SageMaker {label} job {name}: {status} ({job.get('SecondaryStatus', status)})"]
    if job.get("ExitMessage") and job.get("ExitMessage") != reason:
        details.append(f"Exit message: {job['ExitMessage']}")
    details.append(f"Job: https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{page}/{name}")
    return Diagnosis(reason, "evaluation" if kind == "Processing" else "training", tuple(details))


def _lambda(error: str, cause: dict[str, Any]) -> Diagnosis:
    error_type = cause.get("errorType") or error
    trace = cause.get("stackTrace") or []
    where = str(trace[-1]).strip().splitlines()[0] if trace else None
    details = [f"Lambda error {error_type}"] + ([f"Raised at: {where}"] if where else [])
    return Diagnosis(str(cause.get("errorMessage") or error_type), None, tuple(details))


def diagnose(error: str, cause: str | None, region: str) -> Diagnosis:
    """The underlying reason (and the stage, when the Cause names a job) of one Catch."""
    document = _json_object(cause)
    if document is not None:
        if "JobRunState" in document:
            return _glue(document, region)
        if "HyperParameterTuningJobName" in document:  # createHyperParameterTuningJob.sync (TuneModel)
            return _sagemaker(document, "HyperParameterTuning", region)
        if "TrainingJobName" in document:
            return _sagemaker(document, "Training", region)
        if "ProcessingJobName" in document:
            return _sagemaker(document, "Processing", region)
        if "errorMessage" in document or "errorType" in document:
            return _lambda(error, document)
    stage = next((s for prefix, s in STAGE_BY_ERROR_PREFIX.items() if error.startswith(prefix)), None)
    if cause and cause.strip():
        return Diagnosis(cause.strip(), stage)
    return Diagnosis(error, stage)


def dataset_of(execution_input: Mapping[str, Any] | None) -> str | None:
    """The dataset the execution trains (``$.dataset`` of its input)."""
    name = (execution_input or {}).get("dataset")
    return name if isinstance(name, str) and name else None


def _input_line(execution_input: Mapping[str, Any] | None) -> str:
    if not execution_input:
        return "Input: unknown"
    upload = execution_input.get("upload")
    if isinstance(upload, Mapping):
        return f"Input: upload s3://{upload.get('bucket')}/{upload.get('key')} (version {upload.get('version_id')})"
    trigger = execution_input.get("trigger")
    curated = execution_input.get("curated")
    version = curated.get("version") if isinstance(curated, Mapping) else None
    if isinstance(trigger, Mapping):
        source = trigger.get("source", "unknown")
        return f"Input: {source} retrain on dataset version {version}: {trigger.get('reason')}"
    return f"Input: dataset version {version}"


def explain(
    *,
    execution: str,
    error: Mapping[str, Any],
    execution_input: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
    stage_label: str,
    region: str,
) -> dict[str, Any]:
    """``$.failure`` = ``{subject, message, reason, stage}`` for a Catch's ``error``."""
    error_name = str(error.get("Error") or "States.Unknown")
    cause = error.get("Cause")
    diagnosis = diagnose(error_name, None if cause is None else str(cause), region)
    stage = diagnosis.stage or stage_from_state(state) or "unknown"
    reason = diagnosis.reason.strip()[:MAX_REASON] or error_name
    dataset = dataset_of(execution_input) or "unknown dataset"
    subject = _printable(
        f"MLOps {stage_label}: {dataset} training pipeline failed in {stage} ({execution})", SUBJECT_CHARS
    )
    registry = (
        "No model package was registered by this execution."
        if stage in ("etl", "prepare", "training", "evaluation")
        else "Check the model package group for this execution's record (execution_id metadata)."
    )
    lines = [
        f"The training pipeline of dataset {dataset} ({stage_label}) failed in stage '{stage}', execution {execution}.",
        "",
        f"Reason: {reason}",
        "",
        f"Error: {error_name}",
        *diagnosis.details,
        _input_line(execution_input),
        registry,
    ]
    return asdict(Failure(subject=subject, message="\n".join(lines), reason=reason, stage=stage))
