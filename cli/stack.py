"""The deployed stack as the operations commands see it: CloudFormation outputs and resources (DescribeStacks,
ListStackResources), so they work against an account and the local cloud alike.

Datasets come from the ``DatasetResources`` output (JSON ``{name: {endpoint, model_package_group, raw_prefix}}``,
the multi-dataset stack, docs/contracts.md) when the stack has it, else from the single-dataset outputs
(``EndpointName``, ``ModelPackageGroup``, ``UploadPrefix``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from cli.errors import BAD_INPUT, NO_ACCESS, CliError
from cli.session import Aws, error_code, error_message

HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")  # the hash CDK appends to a construct path's logical id


@dataclass(frozen=True)
class Dataset:
    name: str
    endpoint: str
    model_package_group: str
    raw_prefix: str  # s3://<raw bucket>/datasets/<name>/


def _pick(entry: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if entry.get(key):
            return str(entry[key])
    return ""


def datasets_from_outputs(outputs: dict[str, str], stack_name: str) -> dict[str, Dataset]:
    """Every dataset of the stack, by name."""
    raw = outputs.get("DatasetResources")
    if raw:
        try:
            resources = json.loads(raw)
        except ValueError:
            raise CliError(
                f"stack {stack_name}: output DatasetResources is not JSON: {raw[:200]!r}", NO_ACCESS
            ) from None
        found = {}
        for name, entry in resources.items():
            entry = entry if isinstance(entry, dict) else {}
            found[name] = Dataset(
                name=name,
                endpoint=_pick(entry, "endpoint", "endpoint_name", "EndpointName") or f"{stack_name}-{name}",
                model_package_group=_pick(entry, "model_package_group", "ModelPackageGroup") or f"{stack_name}-{name}",
                raw_prefix=_pick(entry, "raw_prefix", "upload_prefix", "UploadPrefix", "raw_upload_prefix"),
            )
        return found
    if "EndpointName" not in outputs or "ModelPackageGroup" not in outputs:
        raise CliError(f"stack {stack_name} has neither DatasetResources nor EndpointName/ModelPackageGroup outputs")
    upload = outputs.get("UploadPrefix", "")
    name = upload.rstrip("/").rsplit("/", 1)[-1] if upload else outputs["EndpointName"].removeprefix(f"{stack_name}-")
    return {name: Dataset(name, outputs["EndpointName"], outputs["ModelPackageGroup"], upload)}


@dataclass
class Stack:
    """One deployed stack (``mlops-<stage>``): outputs, datasets, and its resources looked up on demand."""

    aws: Aws
    name: str
    outputs: dict[str, str]
    datasets: dict[str, Dataset]
    _resources: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, aws: Aws, name: str) -> Stack:
        try:
            stacks = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except Exception as error:
            if error_code(error) == "ValidationError" and "does not exist" in error_message(error):
                raise CliError(
                    f"stack {name} is not deployed in {aws.region} (deploy it: npx cdk deploy -c stage=...; "
                    "or pick it with --stage / --stack)",
                    NO_ACCESS,
                ) from None
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return cls(aws, name, outputs, datasets_from_outputs(outputs, name))

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise CliError(
                f"stack {self.name} has no output {key!r} (outputs: {sorted(self.outputs)})", NO_ACCESS
            ) from None

    @property
    def training_machine(self) -> str:
        return self.output("TrainingStateMachine")

    @property
    def deployment_machine(self) -> str:
        return self.output("DeploymentStateMachine")

    @property
    def multi_dataset(self) -> bool:
        return "DatasetResources" in self.outputs

    def dataset(self, name: str | None) -> Dataset:
        """The dataset ``name``; without a name, the stack's only dataset. Unknown names list the declared ones."""
        if name is None:
            if len(self.datasets) == 1:
                return next(iter(self.datasets.values()))
            raise CliError(f"stack {self.name} serves several datasets: pass --dataset (one of {self._names()})")
        if name not in self.datasets:
            raise CliError(f"unknown dataset {name!r}: stack {self.name} declares {self._names()}", BAD_INPUT)
        return self.datasets[name]

    def selected(self, name: str | None) -> list[Dataset]:
        """``--dataset`` given: that one; otherwise every dataset."""
        return [self.dataset(name)] if name is not None else list(self.datasets.values())

    def _names(self) -> str:
        return ", ".join(sorted(self.datasets)) or "none"

    def resources(self) -> list[dict[str, Any]]:
        if self._resources is None:
            paginator = self.aws.client("cloudformation").get_paginator("list_stack_resources")
            self._resources = [
                s for page in paginator.paginate(StackName=self.name) for s in page["StackResourceSummaries"]
            ]
        return self._resources

    def functions(self) -> dict[str, dict[str, str]]:
        """The stack's Lambda functions by short name (``retrain``, ``deploy``...: the handler's package), each
        with its physical name and log group."""
        lam = self.aws.client("lambda")
        groups = {
            HASH_SUFFIX.sub("", r["LogicalResourceId"]): r["PhysicalResourceId"]
            for r in self.resources()
            if r["ResourceType"] == "AWS::Logs::LogGroup"
        }
        found = {}
        for resource in self.resources():
            if resource["ResourceType"] != "AWS::Lambda::Function":
                continue
            name = resource["PhysicalResourceId"]
            configuration = lam.get_function_configuration(FunctionName=name)
            handler = str(configuration.get("Handler", ""))
            parts = handler.split(".")
            if len(parts) < 3 or parts[0] != "lambdas":
                continue  # CDK's own helpers (custom resource providers, log retention)
            short = parts[1].replace("_", "-")
            log_group = (configuration.get("LoggingConfig") or {}).get("LogGroup") or groups.get(
                HASH_SUFFIX.sub("", resource["LogicalResourceId"]) + "Logs", f"/aws/lambda/{name}"
            )
            found[short] = {"name": name, "log_group": log_group, "logical_id": resource["LogicalResourceId"]}
        return found

    def function(self, short: str) -> dict[str, str]:
        functions = self.functions()
        key = short.replace("_", "-")
        if key not in functions:
            raise CliError(f"stack {self.name} has no function {short!r} (functions: {', '.join(sorted(functions))})")
        return functions[key]
