"""S3 "Object Created" (EventBridge) under batch-input/<dataset>/ -> one batch transform per object version with the
dataset's champion, idempotently."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.batch_inference.logic import BatchDecision, BatchInference, BatchSettings, skip_reason
from lambdas.shared.aws import client
from lambdas.shared.idempotency import once_per
from lambdas.shared.network import ids
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.s3_events import IDEMPOTENCY_KEY, S3Object, object_version
from lambdas.shared.settings import from_environment
from pipelines.platform import BATCH_INPUT_PREFIX, Dataset, dataset_in_key, platform


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name (the dataset's group, instance type and
    names come from the platform document)."""

    OUTPUT_URI: str
    ENDPOINT_ROLE_ARN: str
    KMS_KEY_ARN: str
    MODEL_SUBNETS: str = ""  # a private stage: the VPC of the models it creates (lambdas/shared/network.py)
    MODEL_SECURITY_GROUPS: str = ""
    IDEMPOTENCY_TABLE: str

    def logic(self, dataset: Dataset) -> BatchSettings:
        return BatchSettings(
            model_package_group=dataset.names.model_package_group,
            output_uri=self.OUTPUT_URI,
            input_prefix=dataset.names.batch_input_prefix,
            role_arn=self.ENDPOINT_ROLE_ARN,
            kms_key_arn=self.KMS_KEY_ARN,
            model_subnets=ids(self.MODEL_SUBNETS),
            model_security_groups=ids(self.MODEL_SECURITY_GROUPS),
            instance_type=str(dataset.serving["instance_type"]),
            resource_prefix=dataset.names.resource_prefix,
        )


settings = from_environment(Settings)


@cache
def batch(name: str) -> BatchInference:
    """The batch inference of the declared dataset ``name``."""
    return BatchInference(client("sagemaker"), settings().logic(platform().dataset(name)))


@once_per(IDEMPOTENCY_KEY, argument="obj", table=lambda: settings().IDEMPOTENCY_TABLE)
def start_once(obj: dict[str, Any]) -> dict[str, Any]:
    upload = S3Object(**obj)
    if upload.key.endswith("/"):  # a folder marker, wherever it is
        return asdict(BatchDecision(started=False, reason=skip_reason(upload, BATCH_INPUT_PREFIX) or "a folder"))
    name = dataset_in_key(upload.key, BATCH_INPUT_PREFIX)
    if name is None or name not in platform().datasets:
        where = f"{name!r} is not a declared dataset" if name else "the key is not under a dataset folder"
        reason = (
            f"{where}: batch inputs go to {BATCH_INPUT_PREFIX}<dataset>/<file>.csv "
            f"(declared: {', '.join(platform().names)})"
        )
        return asdict(BatchDecision(started=False, reason=reason))
    return asdict(batch(name).start(upload))


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    obj = object_version(event)
    decision = start_once(asdict(obj), context)
    if decision["started"]:
        logger.info("batch transform started", extra=decision)
        metrics.add_metric(name="BatchTransformStarted", unit=MetricUnit.Count, value=1)
    else:
        logger.info("batch input ignored", extra={**decision, "key": obj.key})
        metrics.add_metric(name="BatchInputIgnored", unit=MetricUnit.Count, value=1)
    return decision
