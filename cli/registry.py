"""The model registry of one dataset: its package versions, the champion and the serving version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cli.errors import BAD_INPUT, CliError
from cli.session import error_code, error_message
from cli.stack import Dataset

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
_VERSION = re.compile(r"^v?(\d+)$")


@dataclass(frozen=True)
class Package:
    arn: str
    version: int
    status: str
    created: datetime | None
    description: str
    approval_description: str
    metadata: dict[str, str]
    raw: dict[str, Any]

    @property
    def model_version(self) -> str:
        return self.metadata.get("model_version") or f"v{self.version}"

    def row(self) -> dict[str, Any]:
        m = self.metadata
        return {
            "version": self.version,
            "status": self.status,
            "model_version": self.model_version,
            "metric": m.get("primary_metric"),
            "value": _number(m.get("challenger_value")),
            "dataset_version": m.get("dataset_version"),
            "code_version": m.get("code_version"),
            "created": self.created,
            "note": self.approval_description,
            "arn": self.arn,
        }


def _number(text: str | None) -> float | None:
    try:
        return None if text in (None, "", "None") else float(str(text))
    except ValueError:
        return None


def package_of(described: dict[str, Any]) -> Package:
    return Package(
        arn=described["ModelPackageArn"],
        version=int(described.get("ModelPackageVersion") or 0),
        status=str(described.get("ModelApprovalStatus", "")),
        created=described.get("CreationTime"),
        description=str(described.get("ModelPackageDescription", "")),
        approval_description=str(described.get("ApprovalDescription", "")),
        metadata=dict(described.get("CustomerMetadataProperties") or {}),
        raw=described,
    )


def packages(sagemaker: Any, dataset: Dataset) -> list[Package]:
    """Every package version of the dataset's group, newest first."""
    paginator = sagemaker.get_paginator("list_model_packages")
    pages = paginator.paginate(
        ModelPackageGroupName=dataset.model_package_group, SortBy="CreationTime", SortOrder="Descending"
    )
    arns = [s["ModelPackageArn"] for page in pages for s in page.get("ModelPackageSummaryList", [])]
    found = [package_of(sagemaker.describe_model_package(ModelPackageName=arn)) for arn in arns]
    return sorted(found, key=lambda p: p.version, reverse=True)


def champion(found: list[Package]) -> Package | None:
    """The newest Approved version: what the next challenger is measured against
    (``lambdas.prepare_training.logic.find_champion``)."""
    return next((p for p in found if p.status == APPROVED), None)


def parse_version(text: str) -> int:
    match = _VERSION.match(text.strip())
    if not match:
        raise CliError(f"{text!r} is not a version: give its number, e.g. 3 or v3", BAD_INPUT)
    return int(match.group(1))


def find(sagemaker: Any, dataset: Dataset, version: str) -> Package:
    """Package version ``version`` (``3``, ``v3`` or its ARN) of the dataset's group."""
    if version.startswith("arn:"):
        try:
            described = sagemaker.describe_model_package(ModelPackageName=version)
        except Exception as error:
            if error_code(error) in ("ValidationException", "ResourceNotFound"):
                raise CliError(f"no model package {version}: {error_message(error)}", BAD_INPUT) from None
            raise
        package = package_of(described)
        if described.get("ModelPackageGroupName") != dataset.model_package_group:
            raise CliError(f"{version} is not in {dataset.name}'s group {dataset.model_package_group}", BAD_INPUT)
        return package
    number = parse_version(version)
    found = packages(sagemaker, dataset)
    for package in found:
        if package.version == number:
            return package
    known = ", ".join(str(p.version) for p in sorted(found, key=lambda p: p.version)) or "none yet"
    raise CliError(f"dataset {dataset.name} has no model version {number} (versions: {known})", BAD_INPUT)


def serving(sagemaker: Any, dataset: Dataset) -> dict[str, Any] | None:
    """The endpoint, its variants and the package version its main variant serves (None: no endpoint)."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=dataset.endpoint)
    except Exception as error:
        if error_code(error) == "ValidationException":
            return None
        raise
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    models = {v["VariantName"]: v["ModelName"] for v in config.get("ProductionVariants", [])}
    variants = [
        {
            "variant": v.get("VariantName"),
            "model": models.get(v.get("VariantName")),
            "weight": v.get("CurrentWeight"),
            "instances": v.get("CurrentInstanceCount"),
            "desired_instances": v.get("DesiredInstanceCount"),
        }
        for v in endpoint.get("ProductionVariants", [])
    ]
    model = variants[0]["model"] if variants else None
    match = re.search(r"-v(\d+)$", model or "")
    return {
        "endpoint": dataset.endpoint,
        "status": endpoint.get("EndpointStatus"),
        "config": endpoint["EndpointConfigName"],
        "variants": variants,
        "version": int(match.group(1)) if match else None,  # deploy names models <endpoint>-v<version>
    }
