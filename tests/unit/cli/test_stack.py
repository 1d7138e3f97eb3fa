"""Stack outputs -> datasets: the multi-dataset ``DatasetResources`` output, the single-dataset fallback, unknown
datasets, a stack that is not deployed; and the stack's functions by handler package."""

from __future__ import annotations

import json

import pytest

from cli.errors import BAD_INPUT, NO_ACCESS, CliError
from cli.session import Aws
from cli.stack import Stack, datasets_from_outputs
from tests.unit.cli.conftest import STACK, Account, deploy_stack, mlops, outputs


def test_single_dataset_outputs_give_one_dataset() -> None:
    # Given the outputs a single-dataset stack has today
    found = datasets_from_outputs(outputs("t", "d"), STACK)
    # Then its one dataset is named by the upload prefix
    (churn,) = found.values()
    assert (churn.name, churn.endpoint, churn.model_package_group) == ("churn", "mlops-dev-churn", "mlops-dev-churn")


def test_dataset_resources_output_lists_every_dataset() -> None:
    # Given the multi-dataset output
    resources = {
        "churn": {
            "endpoint": "mlops-dev-churn",
            "model_package_group": "mlops-dev-churn",
            "raw_prefix": "s3://r/datasets/churn/",
        },
        "tickets": {"endpoint": "mlops-dev-tickets", "model_package_group": "mlops-dev-tickets"},
    }
    found = datasets_from_outputs({"DatasetResources": json.dumps(resources)}, STACK)
    # Then both datasets are there, with their names
    assert sorted(found) == ["churn", "tickets"]
    assert found["tickets"].model_package_group == "mlops-dev-tickets"


def test_a_malformed_dataset_resources_output_is_an_error() -> None:
    with pytest.raises(CliError, match="output DatasetResources is not JSON") as caught:
        datasets_from_outputs({"DatasetResources": "{nope"}, STACK)
    assert caught.value.code == NO_ACCESS


def test_unknown_dataset_and_missing_dataset_choice(account: Account) -> None:
    # Given a stack with two datasets
    resources = {"churn": {}, "tickets": {}}
    deploy_stack(
        "mlops-qa", outputs(account.training, account.deployment, DatasetResources=json.dumps(resources)), False
    )
    stack = Stack.load(Aws(), "mlops-qa")
    # Then an unknown name lists the declared ones, and no name asks for one
    with pytest.raises(CliError, match=r"unknown dataset 'nope': stack mlops-qa declares churn, tickets") as caught:
        stack.dataset("nope")
    assert caught.value.code == BAD_INPUT
    with pytest.raises(CliError, match="serves several datasets: pass --dataset"):
        stack.dataset(None)
    assert stack.dataset("tickets").endpoint == "mlops-qa-tickets"


def test_a_stack_that_is_not_deployed_exits_3(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = mlops(capsys, "status", "--stage", "prod")
    assert code == NO_ACCESS
    assert "mlops status: stack mlops-prod is not deployed in us-east-1" in err


def test_functions_are_found_by_handler_package_with_their_log_group(account: Account) -> None:
    stack = Stack.load(Aws(), STACK)
    functions = stack.functions()
    assert functions["retrain"]["name"] == account.retrain_function
    assert functions["retrain"]["log_group"] == f"/{STACK}/retrain"  # the LogGroup next to it in the template
    with pytest.raises(CliError, match="has no function 'nope' \\(functions: retrain\\)"):
        stack.function("nope")
