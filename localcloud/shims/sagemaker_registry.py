"""The model registry behaves like SageMaker's for the approval flow.

moto 5.2.5 gaps closed here (patch points ``SageMakerResponse.create_model_package`` and
``SageMakerModelBackend.update_model_package``):

- ``CreateModelPackage`` drops ``ApprovalDescription`` (a rejected challenger's reason would be lost);
- ``UpdateModelPackage`` erases ``CustomerMetadataProperties`` and ``ApprovalDescription`` when the request
  does not carry them (approving a package in prod would wipe its lineage), and fails on
  ``CustomerMetadataPropertiesToRemove`` without ``CustomerMetadataProperties``; the shim merges the given
  properties into the kept ones, then removes the listed keys, as SageMaker does;
- SageMaker emits a "SageMaker Model Package State Change" EventBridge event (source ``aws.sagemaker``)
  when a versioned package is created or its approval status changes; moto emits none, so an approval
  would never start the deployment. The event goes to the default bus, where the stack's rule matches it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses

from localcloud.runtime.journal import journal

_installed = False
_original_create = sm_responses.SageMakerResponse.create_model_package
_original_update = sm_models.SageMakerModelBackend.update_model_package


def state_change_detail(package: Any) -> dict[str, Any]:
    """The ``detail`` of SageMaker's "SageMaker Model Package State Change" event."""
    created = getattr(package, "creation_time", None)
    return {
        "ModelPackageGroupName": package.model_package_group_name,
        "ModelPackageVersion": package.model_package_version,
        "ModelPackageArn": package.arn,
        "ModelPackageName": package.model_package_name,
        "CreationTime": created.isoformat() if isinstance(created, datetime) else str(created),
        "InferenceSpecification": package.inference_specification,
        "ModelApprovalStatus": package.model_approval_status,
        "ApprovalDescription": package.approval_description,
        "CustomerMetadataProperties": package.customer_metadata_properties,
        "ModelPackageStatus": "Completed",
    }


def emit(backend: Any, package: Any) -> None:
    if not package.model_package_group_name:
        return  # unversioned packages have no approval workflow
    detail = state_change_detail(package)
    events_backends[backend.account_id][backend.region_name].put_events(
        [
            {
                "Source": "aws.sagemaker",
                "DetailType": "SageMaker Model Package State Change",
                "Detail": json.dumps(detail, default=str),
                "Resources": [package.arn],
                "Time": datetime.now(UTC).timestamp(),
            }
        ]
    )
    journal.record(
        "model-package",
        arn=package.arn,
        group=package.model_package_group_name,
        version=package.model_package_version,
        status=package.model_approval_status,
        description=package.approval_description,
    )


def create_model_package(self: Any) -> Any:
    result = _original_create(self)
    backend = self.sagemaker_backend
    arn = result.result["ModelPackageArn"]  # type: ignore[index]
    package = backend.model_packages[arn]
    description = self._get_param("ApprovalDescription")
    if description is not None:
        package.approval_description = description
    emit(backend, package)
    return result


def update_model_package(
    self: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str],
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    before = None if package is None else (package.model_approval_status, package.approval_description)
    kept_properties = None if package is None else dict(package.customer_metadata_properties or {})
    arn = _original_update(
        self,
        model_package_arn,
        model_approval_status or (package.model_approval_status if package else None),
        approval_description,
        customer_metadata_properties,
        [],  # removed below: moto pops them from the properties it has just erased (AttributeError on None)
        additional_inference_specifications_to_add,
    )
    package = self.model_packages[name]
    merged = {**(kept_properties or {}), **(customer_metadata_properties or {})}
    for key in customer_metadata_properties_to_remove or []:
        merged.pop(key, None)
    package.customer_metadata_properties = merged
    if approval_description is None and before is not None:
        package.approval_description = before[1]
    if before is None or before[0] != package.model_approval_status:
        emit(self, package)
    return str(arn)


def install() -> None:
    global _installed
    if _installed:
        return
    sm_responses.SageMakerResponse.create_model_package = create_model_package  # type: ignore[method-assign]
    sm_models.SageMakerModelBackend.update_model_package = update_model_package  # type: ignore[method-assign]
    _installed = True
