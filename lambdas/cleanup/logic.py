"""Teardown: delete the endpoints, endpoint configs and models the pipeline created under the stage prefix.

They are created at run time by the deployment state machine and the batch Lambda, not by CloudFormation, so
the stack's deletion would leave them running (and billing). Order: deregister autoscaling and delete each
endpoint, wait until the endpoints are gone (an endpoint being deleted still uses its role and key), then delete
the endpoint configs and models. Everything already gone is fine; anything left after the deadline fails the
custom resource with the names, so the stack deletion can be retried.

``retire`` does the same for the datasets a stack update no longer declares: only the names that belong to one of
them (``owner``: the dataset's endpoint ``<prefix>-<dataset>``, its endpoint configs
``<prefix>-<dataset>-v<n>[-shadow]`` and models ``<prefix>-<dataset>-[batch-]v<n>``; and the ``-smoke`` endpoint
and configs that deployments left before the smoke test moved into the evaluation job: a stack upgraded in place
still removes them), never a name another dataset could own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

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


Kind = Literal["endpoint", "endpoint-config", "model"]
NAME_TAILS: dict[str, str] = {
    "endpoint": r"(-smoke)?",
    "endpoint-config": r"-v\d+(-smoke|-shadow)?",
    "model": r"-(batch-)?v\d+",
}
"""What the deploy and batch Lambdas append to ``<prefix>-<dataset>`` for each kind of resource (``-smoke``: what
earlier deployments created, kept so that an upgraded stack still cleans them up)."""


def owner(name: str, prefix: str, kind: Kind, datasets: Iterable[str]) -> str | None:
    """The one dataset among ``datasets`` that ``name`` (a resource of ``kind``) belongs to; None when none does,
    or when the name fits more than one (``a-batch-v1`` could be model v1 of ``a-batch`` or batch model v1 of
    ``a``): an ambiguous name is kept."""
    tail = NAME_TAILS[kind]
    owners = [d for d in datasets if re.fullmatch(re.escape(f"{prefix}-{d}") + tail, name)]
    return owners[0] if len(owners) == 1 else None


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
        """Everything the pipeline created under ``prefix`` (the stack's deletion)."""
        return self._delete(prefix, deadline_seconds, lambda kind, name: True)

    def retire(
        self, prefix: str, removed: Collection[str], declared: Collection[str], deadline_seconds: float
    ) -> CleanupReport:
        """What belongs to the ``removed`` datasets (a stack update dropped their declarations); names that could
        belong to a still ``declared`` dataset are judged among both (``owner``)."""
        known = {*removed, *declared}
        return self._delete(prefix, deadline_seconds, lambda kind, name: owner(name, prefix, kind, known) in removed)

    def _delete(self, prefix: str, deadline_seconds: float, chosen: Callable[[Kind, str], bool]) -> CleanupReport:
        if not prefix:
            raise ValueError("refusing to clean up with an empty prefix")
        deadline = self.monotonic() + deadline_seconds
        report = CleanupReport()
        endpoints = [
            n for n in _names(self.sm, "list_endpoints", "Endpoints", "EndpointName", prefix) if chosen("endpoint", n)
        ]
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
            if not chosen("endpoint-config", name):
                continue
            if self._gone_after(self.sm.delete_endpoint_config, EndpointConfigName=name):
                report.endpoint_configs.append(name)
        for name in _names(self.sm, "list_models", "Models", "ModelName", prefix):
            if chosen("model", name) and self._gone_after(self.sm.delete_model, ModelName=name):
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
            if self._gone_after(
                self.autoscaling.deregister_scalable_target,
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=SCALABLE_DIMENSION,
            ):
                removed.append(resource)
        return removed

    @staticmethod
    def _gone_after(call: Callable[..., Any], **kwargs: Any) -> bool:
        """True if this call deleted it, False if it was already gone."""
        try:
            call(**kwargs)
        except Exception as error:
            if _gone(error):
                logger.info("already gone: %s", kwargs)
                return False
            raise
        return True
