"""Record every challenger in the model registry with its metrics, gate decision and lineage.

Idempotent on the execution: the registry itself is the record. Before creating a package the logic looks
for one whose ``CustomerMetadataProperties.execution_id`` is this execution, so a Step Functions retry
(even after a crash between the create call and the return) completes that package instead of adding a
second version. Plain logic over injectable clients; the handler parses the event, calls ``register`` and
emits the metric.
"""

from __future__ import annotations

import io
import json
import tarfile
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
EVALUATION_FILE = "evaluation.json"
GOLDEN_FILE = "golden.json"
PUBLISHED_FILES = (EVALUATION_FILE, GOLDEN_FILE)
"""What an in-job evaluation leaves in the training job's output archive for the registry, the deployment's smoke
check and the drift monitor (``pipelines.evaluation.evaluate``'s two files)."""
CONTENT_TYPES = ["text/csv", "application/json"]
RESPONSE_TYPES = ["application/json", "text/csv"]
# The sklearn serving container runs code/inference.py of the model archive (pipelines/training/train.py).
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}
METADATA_VALUE_CHARS = 256  # CustomerMetadataProperties: values 1-256 characters of [\p{L}\p{Z}\p{N}_.:/=+\-@]
DESCRIPTION_CHARS = 1024
SUBJECT_CHARS = 100  # SNS subjects: at most 100 printable ASCII characters
NAMESPACE = uuid.UUID("6f1f4f0e-4b8e-4a52-9a47-6d5b2f8a9c11")  # ClientToken = uuid5(NAMESPACE, execution)

Approval = Literal["auto", "manual"]


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...

    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...


class SageMakerClient(Protocol):
    def create_model_package(self, **kwargs: Any) -> dict[str, Any]: ...

    def update_model_package(self, **kwargs: Any) -> dict[str, Any]: ...

    def describe_model_package(self, **kwargs: Any) -> dict[str, Any]: ...

    def list_model_packages(self, **kwargs: Any) -> dict[str, Any]: ...


class EvaluationNotFound(RuntimeError):
    """The evaluation's report (the evaluation job's, or the training job's output archive) is missing or
    unreadable."""


class SmokeTestFailed(RuntimeError):
    """The evaluation job's smoke test (the image's serving stack on the new archive, golden payloads) failed or
    is not in the report: the candidate is not registered at all (never deployable, not even as Rejected)."""


def check_smoke(uri: str, report: Mapping[str, Any]) -> None:
    """``SmokeTestFailed`` unless ``report`` records a passed smoke test (``pipelines/evaluation/smoke.py``)."""
    smoke = report.get("smoke")
    if not isinstance(smoke, dict):
        raise SmokeTestFailed(
            f"{uri} records no smoke test: the golden payloads were not answered by the serving stack; "
            "nothing is registered"
        )
    if smoke.get("passed") is not True:
        raise SmokeTestFailed(
            f"smoke test failed: {smoke.get('reason') or 'no reason recorded'}; nothing is registered"
        )


@dataclass(frozen=True)
class RegisterSettings:
    model_package_group: str
    approval_mode: Approval
    inference_image: str
    code_version: str
    hyperparameters: Mapping[str, Any]
    dataset: str
    stage: str
    model: str = "estimator=hist_gradient_boosting"  # ModelSpec.lineage: the built-in estimator or the script


@dataclass(frozen=True)
class Registration:
    """``$.registration`` (``as_state()``) plus whether this call created or completed the package (a replay
    of a finished registration did not)."""

    passed: bool
    model_package_arn: str
    model_version: str
    approval_status: str
    subject: str
    message: str
    decision: dict[str, Any]
    recorded: bool

    def as_state(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "model_package_arn": self.model_package_arn,
            "model_version": self.model_version,
            "approval_status": self.approval_status,
            "subject": self.subject,
            "message": self.message,
            "decision": self.decision,
        }


# ---- small pure helpers ----------------------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def evaluation_object_uri(evaluation_uri: str) -> str:
    return f"{evaluation_uri.rstrip('/')}/{EVALUATION_FILE}"


def approval_status(passed: bool, mode: Approval) -> str:
    """Approved (gate passed, auto), PendingManualApproval (gate passed, manual), Rejected (gate failed)."""
    if not passed:
        return REJECTED
    return APPROVED if mode == "auto" else PENDING


def _allowed(char: str) -> bool:
    return unicodedata.category(char)[0] in "LZN" or char in "_.:/=+-@"


def metadata_value(value: Any) -> str:
    """A CustomerMetadataProperties value: 1-256 characters from the allowed set (others become ``-``)."""
    text = "none" if value is None else str(value)
    cleaned = "".join(c if _allowed(c) else "-" for c in text.replace("'", "").replace(",", " "))
    return (cleaned.strip() or "none")[:METADATA_VALUE_CHARS]


def _printable(text: str, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join("".join(c if c.isprintable() else " " for c in ascii_text).split())[:limit]


def client_token(execution: str) -> str:
    """CreateModelPackage's idempotency token (<= 36 characters of [a-zA-Z0-9-]) for this execution."""
    return str(uuid.uuid5(NAMESPACE, execution))


def description_marker(execution: str) -> str:
    return f"execution {execution}:"


def metric_values(section: Mapping[str, Any] | None) -> dict[str, float]:
    """``{"auc": {"value": 0.8}, ...}`` -> ``{"auc": 0.8, ...}`` (the confusion matrix is left out)."""
    if not section:
        return {}
    return {
        name: float(entry["value"])
        for name, entry in section.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("value"), (int, float))
    }


# ---- S3 and the registry ---------------------------------------------------------------------------


def _client_error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__))


def publish_evaluation(s3: S3Client, archive_uri: str, evaluation_uri: str) -> list[str]:
    """Copy ``PUBLISHED_FILES`` out of the training job's ``output.tar.gz`` (an evaluation that ran inside the
    training job, ``pipelines/training/held_out.py``) into the execution's ``evaluation_uri`` folder, where an
    evaluation job writes them; their URIs. ``EvaluationNotFound`` names what is missing. Safe to repeat."""
    bucket, key = split_s3_uri(archive_uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # botocore ClientError: keep the code in the message
        raise EvaluationNotFound(
            f"no evaluation output at {archive_uri} ({_client_error_code(error)}): the training job did not evaluate"
        ) from error
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            members = {member.name.removeprefix("./"): member for member in archive.getmembers() if member.isfile()}
            files = {}
            for name in PUBLISHED_FILES:
                if name not in members:
                    raise EvaluationNotFound(f"{archive_uri} holds no {name}: the training job did not evaluate")
                handle = archive.extractfile(members[name])
                if handle is None:  # not reached: members holds regular files only
                    raise EvaluationNotFound(f"{archive_uri}: {name} is not a regular file")
                files[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise EvaluationNotFound(f"{archive_uri} is not a readable tar.gz: {error}") from error
    published = []
    for name, content in files.items():
        target = f"{evaluation_uri.rstrip('/')}/{name}"
        target_bucket, target_key = split_s3_uri(target)
        s3.put_object(Bucket=target_bucket, Key=target_key, Body=content, ContentType="application/json")
        published.append(target)
    return published


def read_evaluation(s3: S3Client, evaluation_uri: str) -> tuple[str, dict[str, Any]]:
    """(object URI, report) of the evaluation job's ``evaluation.json``."""
    uri = evaluation_object_uri(evaluation_uri)
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # botocore ClientError: keep the code in the message
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        raise EvaluationNotFound(f"no evaluation report at {uri} ({code})") from error
    report = json.loads(body)
    if not isinstance(report, dict) or not isinstance(report.get("decision"), dict):
        raise EvaluationNotFound(f"{uri} has no gate decision")
    return uri, report


def _packages_newest_first(sagemaker: SageMakerClient, group: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    while True:
        page = sagemaker.list_model_packages(**request)
        yield from page.get("ModelPackageSummaryList", [])
        if not page.get("NextToken"):
            return
        request["NextToken"] = page["NextToken"]


def find_registered(sagemaker: SageMakerClient, group: str, execution: str) -> dict[str, Any] | None:
    """The package this execution already registered (described), or None.

    Summaries carry the description, whose marker narrows the search; the execution_id metadata confirms."""
    marker = description_marker(execution)
    for summary in _packages_newest_first(sagemaker, group):
        if marker not in (summary.get("ModelPackageDescription") or ""):
            continue
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if (package.get("CustomerMetadataProperties") or {}).get("execution_id") == execution:
            return package
    return None


def tuning_lineage(state: Mapping[str, Any]) -> dict[str, str] | None:
    """What the registry records of a tuning run (``$.training.tuning``, the TuneModel task's selection of
    DescribeHyperParameterTuningJob): the tuning job, its trials (completed of all it ran, by
    ``TrainingJobStatusCounters``), the best trial's tuned values and its objective. None without tuning."""
    tuning = (state.get("training") or {}).get("tuning")
    if not isinstance(tuning, Mapping):
        return None
    counters = tuning.get("trials") or {}
    total = sum(int(value) for value in counters.values() if isinstance(value, int | float))
    objective = tuning.get("objective") or {}
    chosen = tuning.get("hyperparameters") or {}
    return {
        "tuning_job": str(tuning.get("job_name")),
        "tuning_trials": f"{int(counters.get('Completed', 0))}/{total} completed",
        "tuned_hyperparameters": " ".join(f"{name}={value}" for name, value in sorted(chosen.items())),
        "tuning_objective": f"{objective.get('MetricName')}={objective.get('Value')} {objective.get('Type')}",
    }


# ---- the registration ------------------------------------------------------------------------------


def customer_metadata(
    *,
    execution: str,
    state: Mapping[str, Any],
    report: Mapping[str, Any],
    evaluation_uri: str,
    settings: RegisterSettings,
) -> dict[str, str]:
    """The lineage keys of docs/contracts.md, as registry-safe strings."""
    prepared = state["prepared"]
    curated = prepared.get("curated") or {}
    source = curated.get("source") or {}
    champion = prepared.get("champion") or {}
    decision = report["decision"]
    raw_source = (
        f"s3://{source.get('bucket')}/{source.get('key')} version {source.get('version_id')}" if source else None
    )
    tuning = tuning_lineage(state)
    chosen = state["training"]["tuning"].get("hyperparameters") or {} if tuning else {}
    hyperparameters = " ".join(f"{name}={value}" for name, value in {**settings.hyperparameters, **chosen}.items())
    values = {
        "execution_id": execution,
        "dataset_version": curated.get("version"),
        "raw_source": raw_source,
        "report_uri": curated.get("report_uri"),
        "evaluation_uri": evaluation_uri,
        "code_version": settings.code_version,
        "model": settings.model,
        "hyperparameters": hyperparameters,
        "training_job": (state.get("training") or {}).get("job_name") or prepared.get("training_job_name"),
        "primary_metric": decision.get("primary_metric"),
        "challenger_value": decision.get("challenger_value"),
        "champion_value": decision.get("champion_value"),
        "champion_package_arn": champion.get("model_package_arn"),
        "gate_reason": decision.get("reason"),
        "model_version": report.get("model_version") or prepared.get("model_version"),
        **(tuning or {}),
        **data_lineage(curated.get("data")),
    }
    return {key: metadata_value(value) for key, value in values.items()}


def data_lineage(data: Mapping[str, Any] | None) -> dict[str, str]:
    """A retrain's data plan as two registry values (issue 17): what trained (the upload version and rows, the
    production window and rows) and what decided (the test set); nothing for an upload's own run."""
    if not data:
        return {}
    upload = data.get("upload") or {}
    production = data.get("production")
    if data.get("mode") != "with_production" or not production:
        return {
            "training_data": f"upload {upload.get('version')} only: {data.get('reason')}",
            "test_data": f"upload {upload.get('version')} test split",
        }
    window = f"{production.get('window_start')}..{production.get('window_end')}"
    test = (
        f"production: the {production.get('test_rows')} most recent labelled rows"
        if data.get("test_from") == "production"
        else f"upload {upload.get('version')} test split"
    )
    return {
        "training_data": f"upload {upload.get('version')} {upload.get('train_rows')} rows + production "
        f"{production.get('train_rows')} labelled rows inferred {window}",
        "test_data": test,
    }


def create_request(
    *,
    execution: str,
    state: Mapping[str, Any],
    report: Mapping[str, Any],
    evaluation_uri: str,
    initial_status: str,
    settings: RegisterSettings,
) -> dict[str, Any]:
    """The CreateModelPackage request (without ApprovalDescription, which only UpdateModelPackage takes)."""
    decision = report["decision"]
    model_version = report.get("model_version") or state["prepared"]["model_version"]
    description = f"{settings.dataset} model {model_version}, {description_marker(execution)} {decision['reason']}"
    return {
        "ModelPackageGroupName": settings.model_package_group,
        "ModelPackageDescription": _printable(description, DESCRIPTION_CHARS),
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": settings.inference_image,
                    "ModelDataUrl": state["training"]["model_data"],
                    "Environment": dict(SERVING_ENVIRONMENT),
                }
            ],
            "SupportedContentTypes": list(CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
        },
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}},
        "MetadataProperties": {"CommitId": settings.code_version, "GeneratedBy": execution},
        "CustomerMetadataProperties": customer_metadata(
            execution=execution, state=state, report=report, evaluation_uri=evaluation_uri, settings=settings
        ),
        "ModelApprovalStatus": initial_status,
        "ClientToken": client_token(execution),
    }


def register(
    *,
    execution: str,
    state: Mapping[str, Any],
    s3: S3Client,
    sagemaker: SageMakerClient,
    settings: RegisterSettings,
) -> Registration:
    """Create (or complete, on a retry) this execution's model package and describe the outcome.

    The package is created as PendingManualApproval (Rejected when the gate failed) and then updated to
    its final status with the gate reason as ApprovalDescription (CreateModelPackage has no
    ApprovalDescription). So an auto-approved package sends exactly one Approved state-change event,
    the one that starts the deployment.
    """
    archive = (state.get("training") or {}).get("evaluation_archive")
    if archive:  # evaluated inside the training job (an upload's run); a tuned run's evaluation job wrote them
        publish_evaluation(s3, str(archive), state["prepared"]["evaluation_uri"])
    evaluation_uri, report = read_evaluation(s3, state["prepared"]["evaluation_uri"])
    check_smoke(evaluation_uri, report)
    decision = dict(report["decision"])
    passed = bool(decision["passed"])
    final_status = approval_status(passed, settings.approval_mode)
    reason = str(decision["reason"])[:DESCRIPTION_CHARS]

    package = find_registered(sagemaker, settings.model_package_group, execution)
    if package is None:
        request = create_request(
            execution=execution,
            state=state,
            report=report,
            evaluation_uri=evaluation_uri,
            initial_status=PENDING if passed else REJECTED,
            settings=settings,
        )
        arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
        metadata = request["CustomerMetadataProperties"]
        needs_update = True
    else:
        arn = package["ModelPackageArn"]
        metadata = package.get("CustomerMetadataProperties") or {}
        needs_update = (package.get("ModelApprovalStatus"), package.get("ApprovalDescription")) != (
            final_status,
            reason,
        )
    if needs_update:
        sagemaker.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus=final_status,
            ApprovalDescription=reason,
            # repeated unchanged: some registry implementations (moto) replace the map on every update
            CustomerMetadataProperties=metadata,
        )
    model_version = str(metadata.get("model_version") or state["prepared"]["model_version"])
    subject, message = notification(
        execution=execution,
        state=state,
        report=report,
        evaluation_uri=evaluation_uri,
        package_arn=arn,
        status=final_status,
        model_version=model_version,
        settings=settings,
    )
    return Registration(
        passed=passed,
        model_package_arn=arn,
        model_version=model_version,
        approval_status=final_status,
        subject=subject,
        message=message,
        decision=decision,
        recorded=needs_update,
    )


# ---- the notification ------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def metrics_table(report: Mapping[str, Any]) -> str:
    """Challenger vs champion on every metric of the report; ``*`` marks the gate's metric."""
    challenger = metric_values(report.get("binary_classification_metrics"))
    champion_section = report.get("champion") or {}
    champion = metric_values(champion_section.get("binary_classification_metrics"))
    primary = (report.get("decision") or {}).get("primary_metric")
    names = list(challenger) + [name for name in champion if name not in challenger]
    width = max([len("metric"), *(len(n) + 2 for n in names)])
    lines = [f"{'metric':<{width}}  {'challenger':>10}  {'champion':>10}  {'change':>8}"]
    for name in names:
        ours, theirs = challenger.get(name), champion.get(name)
        change = "-" if ours is None or theirs is None else f"{ours - theirs:+.4f}"
        label = f"{name} *" if name == primary else name
        lines.append(f"{label:<{width}}  {_fmt(ours):>10}  {_fmt(theirs):>10}  {change:>8}")
    return "\n".join(lines)


def _region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else "us-east-1"


def s3_console_link(uri: str, region: str) -> str:
    bucket, key = split_s3_uri(uri)
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={quote(key)}"


def notification(
    *,
    execution: str,
    state: Mapping[str, Any],
    report: Mapping[str, Any],
    evaluation_uri: str,
    package_arn: str,
    status: str,
    model_version: str,
    settings: RegisterSettings,
) -> tuple[str, str]:
    """(SNS subject, message) for people: outcome, metrics table, dataset version and rows, links."""
    decision = report["decision"]
    outcome = {
        APPROVED: "approved",
        PENDING: "registered, awaiting manual approval",
        REJECTED: "rejected",
    }[status]
    subject = _printable(f"MLOps {settings.stage}: {settings.dataset} model {model_version} {outcome}", SUBJECT_CHARS)
    prepared = state["prepared"]
    curated = prepared.get("curated") or {}
    rows = curated.get("rows") or {}
    source = curated.get("source") or {}
    champion = report.get("champion")
    champion_line = (
        f"{champion.get('model_version')} ({(prepared.get('champion') or {}).get('model_package_arn', 'unknown')})"
        if champion
        else "none (first model: the absolute floor alone decides)"
    )
    region = _region(package_arn)
    training_job = (state.get("training") or {}).get("job_name") or prepared.get("training_job_name")
    trigger = (state.get("trigger") or {}).get("reason") or "unknown"
    lines = [
        f"Model {model_version} of {settings.dataset} ({settings.stage}) is {outcome}.",
        f"Gate: {decision.get('reason')}",
        "",
        metrics_table(report),
        f"(* the gate's metric; {report.get('test_rows', '?')} held-out test rows)",
        "",
        f"Champion: {champion_line}",
        f"Dataset version: {curated.get('version')} - {rows.get('valid', '?')} valid rows of "
        f"{rows.get('input', '?')} ({rows.get('rejected', '?')} rejected)",
        f"Raw source: s3://{source.get('bucket')}/{source.get('key')} (version {source.get('version_id')})"
        if source
        else "Raw source: (retrain on an existing dataset version)",
        f"Trigger: {trigger}",
        "",
        f"Model package: {package_arn} ({status})",
        f"Evaluation report: {evaluation_uri}",
        f"  {s3_console_link(evaluation_uri, region)}",
        f"Quality report: {curated.get('report_uri')}",
        f"Training job: https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{training_job}",
        f"Execution: {execution} (code {settings.code_version})",
    ]
    tuning = tuning_lineage(state)
    if tuning:
        lines[-2:-2] = [
            f"Tuning job: {tuning['tuning_job']} ({tuning['tuning_trials']} trials); best trial "
            f"{tuning['tuning_objective']} with {tuning['tuned_hyperparameters']}",
        ]
    if status == PENDING:
        lines += [
            "",
            "Approve to deploy: aws sagemaker update-model-package "
            f"--model-package-arn {package_arn} --model-approval-status Approved",
        ]
    return subject, "\n".join(lines)
