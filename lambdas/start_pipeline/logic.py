"""Start one training-pipeline execution per uploaded raw object version."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from lambdas.shared import s3_events
from lambdas.shared.s3_events import S3Object


class StepFunctionsClient(Protocol):
    def start_execution(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Decision:
    started: bool
    reason: str
    execution_name: str | None = None
    execution_arn: str | None = None


def skip_reason(obj: S3Object, dataset_prefix: str) -> str | None:
    """Why this upload does not start the pipeline, or None when it should."""
    return s3_events.skip_reason(
        obj,
        prefix=dataset_prefix,
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


def pipeline_input(obj: S3Object) -> dict[str, Any]:
    return {
        "dataset": asdict(obj),
        "trigger": {"source": "s3-upload", "reason": f"upload of s3://{obj.bucket}/{obj.key}"},
    }


def start(client: StepFunctionsClient, state_machine_arn: str, obj: S3Object, dataset_prefix: str) -> Decision:
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
