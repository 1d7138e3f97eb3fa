"""An operator's rollback (``mlops rollback``) through the deployment steps: the earlier version serves again by
canary, and the versions it replaced are set to Rejected and marked, so the champion of the next gate (the newest
Approved version, ``prepare_training.find_champion``) is the model that serves."""

from __future__ import annotations

from lambdas.deploy.logic import rollback_trigger
from lambdas.prepare_training.logic import find_champion
from tests.unit.lambdas.deploy.support import ENDPOINT, GROUP, Cloud, deployer, run_deployment

ROLLBACK = {
    "source": "rollback",
    "from_version": 2,
    "to_version": 1,
    "reason": "v2 misroutes annual plans",
    "requested_by": "arn:aws:iam::123456789012:user/ops",
}


def test_a_rollback_serves_the_earlier_version_and_retires_the_newer_ones(cloud: Cloud) -> None:
    # Given v1 then v2 deployed, v2 serving and the newest Approved version (the champion)
    v1 = cloud.register(1)
    assert run_deployment(deployer(cloud), v1).error is None
    v2 = cloud.register(2)
    assert run_deployment(deployer(cloud), v2).error is None
    assert find_champion(cloud.sm, GROUP)["model_package_arn"] == v2  # type: ignore[index]
    # When v1 is deployed again as a rollback
    run = run_deployment(deployer(cloud), v1, execution="rollback-v2-to-v1", trigger=ROLLBACK)
    # Then v1 serves, through the canary path (an update, not a new endpoint)
    assert run.error is None, run.error
    assert cloud.endpoint()["EndpointConfigName"] == f"{ENDPOINT}-v1"
    assert run.state["rollout"]["phase"] == "update"
    # And v2 is Rejected and marked as rolled back, so the champion is v1 again
    package = cloud.sm.describe_model_package(ModelPackageName=v2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"] == "rolled back: v1 serves again (v2 misroutes annual plans)"
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["rolled_back_by"], metadata["rolled_back_to"]) == ("rollback-v2-to-v1", "v1")
    assert metadata["model_version"] == "v2"  # the lineage keys stay
    assert find_champion(cloud.sm, GROUP)["model_package_arn"] == v1  # type: ignore[index]
    # And the notification says it was a rollback, who asked and what was retired
    verified = run.state["verified"]
    assert verified["rolled_back"] == [2]
    assert verified["subject"] == f"Rolled back endpoint {ENDPOINT} to model v1"
    assert (
        "Rollback asked by arn:aws:iam::123456789012:user/ops: v2 misroutes annual plans. "
        "Set to Rejected (rolled back): v2; v1 is the champion again."
    ) in verified["message"]


def test_an_ordinary_deployment_retires_nothing(cloud: Cloud) -> None:
    # Given v1 serving and v2 approved after it
    assert run_deployment(deployer(cloud), cloud.register(1)).error is None
    v2 = cloud.register(2)
    # When v2 deploys on its approval
    run = run_deployment(deployer(cloud), v2)
    # Then nothing is marked and v2 is the champion
    assert run.state["verified"]["rolled_back"] == []
    assert cloud.sm.describe_model_package(ModelPackageName=v2)["ModelApprovalStatus"] == "Approved"


def test_only_a_rollback_trigger_counts_as_one() -> None:
    # Given the triggers an execution input may carry
    # Then only the operator's rollback dictionary is a rollback
    assert rollback_trigger(ROLLBACK) == ROLLBACK
    assert rollback_trigger("approval") is None
    assert rollback_trigger({"source": "approval"}) is None
    assert rollback_trigger(None) is None
