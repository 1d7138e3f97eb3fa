"""The deploy handler: typed environment, typed event, one call into the steps, the Deployment metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lambdas.deploy import handler as deploy_handler
from lambdas.deploy.models import DeploymentState
from pipelines.platform import UnknownDataset
from stacks.datasets import dataset_schema
from tests.samples import CHURN_SCHEMA, platform_for, use_platform
from tests.unit.lambdas.deploy.support import ACCOUNT, ARTIFACTS, ENDPOINT, GROUP, REGION, Cloud
from tests.unit.lambdas.support import FakeContext


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, cloud: Cloud) -> Iterator[Cloud]:
    for name, value in {
        "ENDPOINT_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/endpoint",
        "DATA_CAPTURE_URI": f"s3://{ARTIFACTS}/data-capture",
        "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1",
        "POWERTOOLS_SERVICE_NAME": "deploy",
    }.items():
        monkeypatch.setenv(name, value)
    deploy_handler.settings.cache_clear()
    deploy_handler.deployer.cache_clear()
    yield cloud
    deploy_handler.settings.cache_clear()
    deploy_handler.deployer.cache_clear()


def emitted(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_prepare_through_the_handler(environment: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an approved package
    arn = environment.register(1)
    event = {"action": "prepare", "execution": "exec-1", "state": {"model_package_arn": arn, "trigger": "approval"}}
    # When the state machine calls the handler
    result = deploy_handler.handler(event, FakeContext())
    # Then the step's result is plain JSON for $.deploy, and no Deployment metric is emitted yet
    assert result["model_name"] == f"{ENDPOINT}-v1"
    assert result["golden_uri"] == f"s3://{ARTIFACTS}/evaluations/exec-1/golden.json"
    assert json.loads(json.dumps(result)) == result
    assert not any("Deployment" in m for m in emitted(capsys.readouterr().out))


def test_a_finished_deployment_emits_the_deployment_metric_with_its_outcome(
    environment: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployment that failed with a silent rollback
    cause = {"errorMessage": f"endpoint {ENDPOINT} rolled back", "errorType": "SilentRollback"}
    state = {
        "model_package_arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/2",
        "error": {"Error": "SilentRollback", "Cause": json.dumps(cause)},
    }
    # When the failure is explained
    result = deploy_handler.handler({"action": "explain_failure", "execution": "exec-2", "state": state}, FakeContext())
    # Then the Deployment metric carries outcome=rolled_back (Powertools adds `service` from POWERTOOLS_SERVICE_NAME,
    # which the Lambda has at import time; here the shared singleton was built before the test set it)
    assert result["outcome"] == "rolled_back"
    (metric,) = [m for m in emitted(capsys.readouterr().out) if "Deployment" in m]
    assert metric["outcome"] == "rolled_back"
    assert metric["Deployment"] in (1, 1.0, [1.0])
    (directive,) = metric["_aws"]["CloudWatchMetrics"]
    assert "outcome" in directive["Dimensions"][0]
    assert directive["Metrics"] == [{"Name": "Deployment", "Unit": "Count"}]


def test_unknown_action_is_refused(environment: Cloud) -> None:
    with pytest.raises(Exception, match="action"):
        event = {"action": "drop_table", "execution": "x", "state": {"model_package_arn": "a"}}
        deploy_handler.handler(event, FakeContext())


def test_the_package_group_routes_the_deployment_to_its_dataset(environment: Cloud) -> None:
    # Given an approved package of energy, announced by the approval rule with its group
    environment.sm.create_model_package_group(ModelPackageGroupName="mlops-dev-energy")
    arn = environment.register(1, group="mlops-dev-energy")
    state = {"model_package_arn": arn, "model_package_group": "mlops-dev-energy", "trigger": "approval"}
    # When the one deployment state machine prepares it
    result = deploy_handler.handler({"action": "prepare", "execution": "e-1", "state": state}, FakeContext())
    # Then energy's endpoint and names are used (the platform document), not churn's
    assert result["endpoint_name"] == "mlops-dev-energy"
    assert result["model_name"] == "mlops-dev-energy-v1"
    assert result["endpoint_config_name"] == "mlops-dev-energy-v1"
    # And without the group in the input (a later step's state), the ARN names it
    assert DeploymentState.model_validate({"model_package_arn": arn}).group == "mlops-dev-energy"


def test_a_package_of_no_declared_dataset_is_refused_with_the_declared_names(environment: Cloud) -> None:
    # Given a package of a group no declaration gives (a retired dataset's retained group)
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-dev-sales/3"
    event = {"action": "prepare", "execution": "e-2", "state": {"model_package_arn": arn}}
    # When / Then the step fails naming the group and the declared datasets
    with pytest.raises(UnknownDataset) as refused:
        deploy_handler.handler(event, FakeContext())
    assert str(refused.value) == (
        "model package group 'mlops-dev-sales' is not declared in this stage "
        "(declared datasets: churn, energy, tickets)"
    )


def test_a_low_traffic_dataset_deploys_all_at_once_on_one_instance(
    environment: Cloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a dataset declaring ALL_AT_ONCE on one instance (no canary: a canary needs two)
    single = {"strategy": "ALL_AT_ONCE", "initial_instance_count": 1, "min_capacity": 1, "max_capacity": 1}
    tickets = replace(dataset_schema("tickets"), serving=single)
    use_platform(monkeypatch, tmp_path, platform_for([CHURN_SCHEMA, tickets]))
    environment.sm.create_model_package_group(ModelPackageGroupName="mlops-dev-tickets")
    arn = environment.register(1, group="mlops-dev-tickets")
    state = {"model_package_arn": arn, "model_package_group": "mlops-dev-tickets"}
    # When the deploy Lambda prepares it
    prepared = deploy_handler.handler({"action": "prepare", "execution": "t-1", "state": state}, FakeContext())
    # Then it accepts the settings: a one-instance production config, an all-at-once update plan
    assert prepared["strategy"] == "ALL_AT_ONCE"
    config = environment.sm.describe_endpoint_config(EndpointConfigName=prepared["endpoint_config_name"])
    assert [v["InitialInstanceCount"] for v in config["ProductionVariants"]] == [1]
    deployer = deploy_handler.deployer("mlops-dev-tickets")
    assert deployer.traffic_plan("ALL_AT_ONCE", 1) == "all at once on 1 instance(s)"
    routing = deployer.deployment_config("ALL_AT_ONCE")["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE"
