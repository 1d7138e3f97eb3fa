"""A dataset added, then removed, as ``cdk deploy`` updates the deployed stack (the local cloud's update_stack):
the added dataset's resources are created, the shared ones updated in place (same physical ids: the stateful
ones never replaced), and on removal its alarms and drift schedule are deleted while its model package group is
retained (DeletionPolicy Retain: its registered models are data), and the cleanup custom resource is told (Update
with the old and new dataset lists) so it retires what the pipeline created for that dataset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import provision
from localcloud.cloud import LocalCloud
from stacks.datasets import DATASETS_DIR

ADDED = "solar"
STATEFUL_TYPES = {"AWS::KMS::Key", "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SageMaker::ModelPackageGroup"}


@pytest.fixture(scope="module")
def with_solar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cdk synth`` of the dev stage declaring the three samples and one more regression dataset."""
    folder = tmp_path_factory.mktemp("declared")
    for path in DATASETS_DIR.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    energy = (DATASETS_DIR / "energy.yaml").read_text()
    (folder / f"{ADDED}.yaml").write_text(energy.replace("name: energy", f"name: {ADDED}", 1))
    return provision.synth("dev", tmp_path_factory.mktemp("assembly-4"), datasets_dir=folder)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with LocalCloud(workdir=tmp_path_factory.mktemp("cloud"), prewarm=False) as started:
        yield started


def _of_types(deployment: provision.Deployment, types: set[str]) -> dict[str, str]:
    return {k: v for k, v in deployment.resources.items() if deployment.resource_types[k] in types}


def _start_function_code(cloud: LocalCloud) -> str:
    functions = cloud.clients.lambda_.list_functions()["Functions"]
    return str(next(f["CodeSha256"] for f in functions if "StartPipeline" in f["FunctionName"]))


def _cleanup_requests(cloud: LocalCloud) -> list[dict[str, Any]]:
    """The CloudFormation requests the cleanup handler logged (Powertools logs the event)."""
    logs = cloud.clients.logs
    found = []
    for group in logs.describe_log_groups()["logGroups"]:
        if "ServingCleanupLogs" not in group["logGroupName"]:
            continue
        for event in logs.filter_log_events(logGroupName=group["logGroupName"])["events"]:
            if '"RequestType"' in event["message"]:
                found.append(json.loads(event["message"]).get("message", {}))
    return found


def test_a_dataset_added_then_removed_updates_the_stack_in_place(
    cloud: LocalCloud, assembly: Path, with_solar: Path
) -> None:
    # Given the stack deployed with the three samples
    first = cloud.deploy("dev", assembly=assembly)
    sagemaker, cloudwatch = cloud.clients.sagemaker, cloud.clients.cloudwatch
    code_before = _start_function_code(cloud)

    # When a fourth dataset is declared and deployed
    second = cloud.deploy("dev", assembly=with_solar)

    # Then its resources exist, and nothing stateful (nor anything else of the first deployment) was replaced
    assert json.loads(second.outputs["Datasets"]) == sorted(["churn", "energy", "tickets", ADDED])
    added = set(second.resources) - set(first.resources)
    assert added and all(ADDED in logical_id for logical_id in added), added
    assert {k: second.resources[k] for k in first.resources} == first.resources
    group = f"mlops-dev-{ADDED}"
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupStatus"]
    alarms = {a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"mlops-dev-{ADDED}-")["MetricAlarms"]}
    assert f"mlops-dev-{ADDED}-drift" in alarms and f"mlops-dev-{ADDED}-rollback-5xx" in alarms
    # and the shared code was redeployed in place with the new platform document (same function, new code)
    assert _start_function_code(cloud) != code_before

    # When the declaration is removed again and the stack deployed
    third = cloud.deploy("dev", assembly=assembly)

    # Then the stack is the three datasets' again: the alarms and schedule are deleted, the group is retained
    assert set(third.resources) == set(first.resources)
    assert _of_types(third, STATEFUL_TYPES) == _of_types(first, STATEFUL_TYPES)
    left = cloudwatch.describe_alarms(AlarmNamePrefix=f"mlops-dev-{ADDED}-")["MetricAlarms"]
    assert left == []
    rules = cloud.clients.events.list_rules()["Rules"]
    assert not any(ADDED in rule["Name"] or ADDED in (rule.get("Description") or "") for rule in rules)
    assert sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupName"] == group
    # and the cleanup custom resource got Update requests (never a Delete): adding, then retiring the dataset
    requests = _cleanup_requests(cloud)
    kinds = [r.get("RequestType") for r in requests]
    assert kinds == ["Create", "Update", "Update"], kinds
    assert ADDED in requests[2]["OldResourceProperties"]["Datasets"]
    assert ADDED not in requests[2]["ResourceProperties"]["Datasets"]
