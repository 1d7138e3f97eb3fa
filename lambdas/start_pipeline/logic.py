"""Start one training-pipeline execution per uploaded raw object version."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol


class StepFunctionsClient(Protocol):
    def start_execution(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RawObject:
    bucket: str
    key: str
    version_id: str
    size: int
    etag: str = ""


@dataclass(frozen=True)
class Decision:
    started: bool
    reason: str
    execution_name: str | None = None
    execution_arn: str | None = None


def skip_reason(obj: RawObject, dataset_prefix: str) -> str | None:
    """Why this upload does not start the pipeline, or None when it should."""
    if not obj.key.startswith(dataset_prefix):
        return f"key {obj.key!r} is outside the dataset prefix {dataset_prefix!r}"
    if obj.key.endswith("/"):
        return f"key {obj.key!r} is a folder marker"
    if obj.size == 0:
        return f"object {obj.key!r} is empty (0 bytes)"
    if not obj.key.lower().endswith((".csv", ".parquet", ".csv.gz")):
        return f"object {obj.key!r} is neither CSV nor Parquet"
    return None


def execution_name(obj: RawObject) -> str:
    """Deterministic, <= 80 chars, Step Functions-safe: the same object version gives the same name,
    so a duplicate start fails with ExecutionAlreadyExists even without the idempotency table."""
    digest = hashlib.sha256(f"{obj.bucket}/{obj.key}?{obj.version_id}".encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", obj.key.rsplit("/", 1)[-1])[:50]
    return f"{stem}-{digest}"


def pipeline_input(obj: RawObject) -> dict[str, Any]:
    return {
        "dataset": asdict(obj),
        "trigger": {"source": "s3-upload", "reason": f"upload of s3://{obj.bucket}/{obj.key}"},
    }


def start(client: StepFunctionsClient, state_machine_arn: str, obj: RawObject, dataset_prefix: str) -> Decision:
    reason = skip_reason(obj, dataset_prefix)
    if reason:
        return Decision(started=False, reason=reason)
    name = execution_name(obj)
    try:
        response = client.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(pipeline_input(obj))
        )
    except Exception as exc:  # boto3 raises a modeled ExecutionAlreadyExists
        if type(exc).__name__ == "ExecutionAlreadyExists":
            return Decision(
                started=False, reason="execution for this object version already exists", execution_name=name
            )
        raise
    return Decision(started=True, reason="started", execution_name=name, execution_arn=response["executionArn"])
