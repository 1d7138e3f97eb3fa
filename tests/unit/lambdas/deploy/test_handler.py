"""The deploy handler: typed environment, typed event, one call into the steps, the Deployment metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest

from lambdas.deploy import handler as deploy_handler
from stacks.config import ServingSettings
from tests.unit.lambdas.deploy.support import ACCOUNT, ALARMS, ARTIFACTS, ENDPOINT, GROUP, PREFIX, REGION, Cloud
from tests.unit.lambdas.support import FakeContext


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, cloud: Cloud) -> Iterator[Cloud]:
    for name, value in {
        "ENDPOINT_NAME": ENDPOINT,
        "ENDPOINT_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/endpoint",
        "RESOURCE_PREFIX": PREFIX,
        "MODEL_PACKAGE_GROUP": GROUP,
        "DATA_CAPTURE_URI": f"s3://{ARTIFACTS}/data-capture",
        "KMS_KEY_ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1",
        "SERVING": json.dumps(asdict(ServingSettings())),
        "ROLLBACK_ALARMS": json.dumps(list(ALARMS)),
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
