"""Start one training-pipeline execution per uploaded raw object version of a declared dataset.

An upload under ``datasets/<name>/`` for a ``<name>`` that no declaration of the stage gives is refused: the object
is left untouched, no execution starts, and the refusal is returned (the handler logs and counts it) and published
to the notifications topic with the declared names, so the uploader learns why nothing happened.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from lambdas.shared import s3_events
from lambdas.shared.s3_events import S3Object
from pipelines.platform import RAW_DATASETS_PREFIX, Platform, dataset_in_key

SUBJECT_CHARS = 100  # SNS subjects: at most 100 printable ASCII characters


class StepFunctionsClient(Protocol):
    def start_execution(self, **kwargs: Any) -> dict[str, Any]: ...


class SnsClient(Protocol):
    def publish(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Decision:
    started: bool
    reason: str
    execution_name: str | None = None
    execution_arn: str | None = None
    dataset: str | None = None
    refused: bool = False  # an upload under a folder no declaration names (notified)


def skip_reason(obj: S3Object) -> str | None:
    """Why this upload does not start the pipeline, or None when it should (the dataset is checked apart)."""
    return s3_events.skip_reason(
        obj,
        prefix=RAW_DATASETS_PREFIX,
        area="dataset prefix",
        suffixes=(".csv", ".parquet", ".csv.gz"),
        wrong_type="is neither CSV nor Parquet",
    )


def execution_name(obj: S3Object) -> str:
    """Deterministic, <= 80 chars, Step Functions-safe: the same object version gives the same name,
    so a duplicate start fails with ExecutionAlreadyExists even without the idempotency table."""
    digest = hashlib.sha256(f"{obj.bucket}/{obj.key}?{obj.version_id}".encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", obj.key.rsplit("/", 1)[-1])[:50]
    return f"{stem}-{digest}"


def pipeline_input(dataset: str, obj: S3Object) -> dict[str, Any]:
    """The execution input (docs/contracts.md): the dataset, the uploaded object version and the trigger."""
    return {
        "dataset": dataset,
        "upload": asdict(obj),
        "trigger": {"source": "s3-upload", "reason": f"upload of s3://{obj.bucket}/{obj.key}"},
    }


def _printable(text: str, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join("".join(c if c.isprintable() else " " for c in ascii_text).split())[:limit]


def refusal(obj: S3Object, name: str | None, platform: Platform) -> tuple[Decision, str, str]:
    """(the decision, the notification's subject, its message) for an upload outside every declared dataset."""
    declared = ", ".join(platform.names)
    folder = f"{RAW_DATASETS_PREFIX}<name>/"
    what = f"{name!r} is not a declared dataset" if name else f"the key is not under a dataset folder ({folder})"
    reason = f"upload refused: {what} of {platform.prefix} (declared: {declared})"
    title = f"Upload refused: undeclared dataset {name}" if name else "Upload refused: no dataset folder"
    subject = _printable(title, SUBJECT_CHARS)
    lines = [
        f"The upload s3://{obj.bucket}/{obj.key} (version {obj.version_id}) started nothing: {what} of stage "
        f"{platform.stage}.",
        f"Declared datasets: {declared} (upload to {RAW_DATASETS_PREFIX}<dataset>/<file>).",
        "The object is untouched. To train on it, declare the dataset (datasets/<name>.yaml, drafted by "
        "`mlops dataset init <file> --name <name> --target <column>`), deploy, then upload the file again; or copy "
        "it under a declared dataset's folder.",
    ]
    return Decision(started=False, reason=reason, dataset=name, refused=True), subject, "\n".join(lines)


def start(
    client: StepFunctionsClient,
    sns: SnsClient,
    state_machine_arn: str,
    topic_arn: str,
    obj: S3Object,
    platform: Platform,
) -> Decision:
    """Start the execution of ``obj``'s dataset, skip a non-data upload, or refuse (and notify) an undeclared one."""
    if not obj.key.startswith(RAW_DATASETS_PREFIX) or obj.key.endswith("/"):
        return Decision(started=False, reason=skip_reason(obj) or "not an upload of a dataset file")
    name = dataset_in_key(obj.key, RAW_DATASETS_PREFIX)
    if name is None or name not in platform.datasets:
        decision, subject, message = refusal(obj, name, platform)
        sns.publish(
            TopicArn=topic_arn,
            Subject=subject,
            Message=message,
            MessageAttributes={"outcome": {"DataType": "String", "StringValue": "upload-refused"}},
        )
        return decision
    reason = skip_reason(obj)
    if reason:
        return Decision(started=False, reason=reason, dataset=name)
    execution = execution_name(obj)
    try:
        response = client.start_execution(
            stateMachineArn=state_machine_arn, name=execution, input=json.dumps(pipeline_input(name, obj))
        )
    except Exception as exc:  # boto3 raises a modeled ExecutionAlreadyExists
        if type(exc).__name__ == "ExecutionAlreadyExists":
            return Decision(
                started=False,
                reason="execution for this object version already exists",
                execution_name=execution,
                dataset=name,
            )
        raise
    return Decision(
        started=True,
        reason="started",
        execution_name=execution,
        execution_arn=response["executionArn"],
        dataset=name,
    )
