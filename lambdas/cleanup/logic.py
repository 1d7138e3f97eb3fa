"""Teardown: delete the endpoints, endpoint configs and models the pipeline created under the stage prefix.

They are created at run time by the deployment state machine and the batch Lambda, not by CloudFormation, so
the stack's deletion would leave them running (and billing). Order: deregister autoscaling and delete each
endpoint, wait until the endpoints are gone (an endpoint being deleted still uses its role and key), then delete
the endpoint configs and models. Everything already gone is fine; anything left after the deadline fails the
custom resource with the names, so the stack deletion can be retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

POLL_SECONDS = 15
BUSY_STATUSES = ("Creating", "Updating", "SystemUpdating", "RollingBack")
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class CleanupTimeout(Exception):
    """Endpoints still exist when the time is up."""


@dataclass
class CleanupReport:
    endpoints: list[str] = field(default_factory=list)
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    scalable_targets: list[str] = field(default_factory=list)


def _code(error: Exception) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


def _gone(error: Exception) -> bool:
    message = str(error)
    if _code(error) == "ObjectNotFoundException":  # application-autoscaling: no such scalable target
        return True
    return _code(error) in ("ValidationException", "ResourceNotFound") and any(
        marker in message for marker in ("Could not find", "does not exist", "not found", "No scalable target")
    )


def owned(names: Iterable[str], prefix: str) -> list[str]:
    """Names the stage created: ``<prefix>-...`` (``mlops-dev`` never matches ``mlops-devtest-x``)."""
    return sorted(name for name in names if name.startswith(f"{prefix}-"))


def _names(client: Any, operation: str, key: str, name_key: str, prefix: str) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator(operation).paginate(NameContains=prefix):
        names.extend(item[name_key] for item in page.get(key, []))
    return owned(names, prefix)


class Cleanup:
    def __init__(
        self,
        sagemaker: Any,
        autoscaling: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sm = sagemaker
        self.autoscaling = autoscaling
        self.sleep = sleep
        self.monotonic = monotonic

    def delete_all(self, prefix: str, deadline_seconds: float) -> CleanupReport:
        if not prefix:
            raise ValueError("refusing to clean up with an empty prefix")
        deadline = self.monotonic() + deadline_seconds
        report = CleanupReport()
        endpoints = _names(self.sm, "list_endpoints", "Endpoints", "EndpointName", prefix)
        for name in endpoints:
            report.scalable_targets += self._deregister(name)
        pending = set(endpoints)
        while pending:
            for name in sorted(pending):
                status = self._status(name)
                if status is not None and status not in BUSY_STATUSES and status != "Deleting":
                    self._delete_endpoint(name)
                    status = self._status(name)
                if status is None:
                    pending.discard(name)
                    report.endpoints.append(name)
            if not pending:
                break
            if self.monotonic() + POLL_SECONDS > deadline:
                raise CleanupTimeout(f"endpoints still being deleted when the time ran out: {sorted(pending)}")
            self.sleep(POLL_SECONDS)
        for name in _names(self.sm, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", prefix):
            if self._delete(self.sm.delete_endpoint_config, EndpointConfigName=name):
                report.endpoint_configs.append(name)
        for name in _names(self.sm, "list_models", "Models", "ModelName", prefix):
            if self._delete(self.sm.delete_model, ModelName=name):
                report.models.append(name)
        report.endpoints.sort()
        logger.info("cleaned up %s", report)
        return report

    def _status(self, name: str) -> str | None:
        try:
            return str(self.sm.describe_endpoint(EndpointName=name)["EndpointStatus"])
        except Exception as error:
            if _gone(error):
                return None
            raise

    def _delete_endpoint(self, name: str) -> None:
        try:
            self.sm.delete_endpoint(EndpointName=name)
        except Exception as error:
            if _gone(error):
                return
            if _code(error) == "ValidationException":  # e.g. still updating: try again after the next poll
                logger.info("endpoint %s not deletable yet: %s", name, error)
                return
            raise

    def _deregister(self, endpoint: str) -> list[str]:
        """Autoscaling targets of the endpoint's variants (registered by the deploy Lambda as
        ``endpoint/<name>/variant/<variant>``); deleting the endpoint would otherwise need AWS to do it."""
        try:
            described = self.sm.describe_endpoint(EndpointName=endpoint)
        except Exception as error:
            if _gone(error):
                return []
            raise
        removed = []
        for variant in described.get("ProductionVariants", []):
            resource = f"endpoint/{endpoint}/variant/{variant['VariantName']}"
            if self._delete(
                self.autoscaling.deregister_scalable_target,
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=SCALABLE_DIMENSION,
            ):
                removed.append(resource)
        return removed

    @staticmethod
    def _delete(call: Callable[..., Any], **kwargs: Any) -> bool:
        """True if this call deleted it, False if it was already gone."""
        try:
            call(**kwargs)
        except Exception as error:
            if _gone(error):
                logger.info("already gone: %s", kwargs)
                return False
            raise
        return True
