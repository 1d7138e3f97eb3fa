"""Endpoints as SageMaker runs them, in a running local cloud: provisioning takes the table's time on the cloud
clock, the fleet's containers answer GET /ping before InService, and a model that cannot be served fails the
CreateEndpoint or UpdateEndpoint with SageMaker's FailureReason (never the first invocation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.clock import clock
from localcloud.runtime.endpoints import DOWNLOAD_FAILED, EXTRACT_FAILED, PING_FAILED
from localcloud.runtime.journal import journal
from localcloud.shims import sagemaker_endpoints
from tests.tiers import heavy_fixture
from tests.unit.localcloud.support import ROLE, running_cloud, tar_gz, unique, wait_for_endpoint

BUCKET = "provisioning-test-models"

INFERENCE = """
    import json, os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "model.json")) as handle:
            return json.load(handle)

    def input_fn(body, content_type):
        return [float(x) for x in body.strip().split(",")]

    def predict_fn(row, model):
        return model["bias"] + sum(row)

    def output_fn(prediction, accept):
        return f"{prediction:g}", "text/csv"
"""

DOES_NOT_LOAD = """
    def model_fn(model_dir):
        raise RuntimeError("model.joblib was built with another scikit-learn")

    def transform_fn(model, body, content_type, accept):
        return body, accept
"""

TIME_SCALE = 3600.0  # a 6-minute provisioning passes in 0.1 s


@heavy_fixture
def cloud() -> Iterator[Any]:
    with running_cloud(time_scale=TIME_SCALE) as local:
        local.clients.s3.create_bucket(Bucket=BUCKET)
        yield local


def model(cloud: Any, files: dict[str, str] | None = None, raw: bytes | None = None, upload: bool = True) -> str:
    """A model (and its one-variant endpoint config of the same name) whose archive holds ``files`` or ``raw``."""
    name = unique("model")
    key = f"models/{name}/model.tar.gz"
    if upload:
        body = raw if raw is not None else tar_gz(files or {})
        cloud.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    sm = cloud.clients.sagemaker
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "sklearn:1.9-0",
            "ModelDataUrl": f"s3://{BUCKET}/{key}",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    return name


def good(cloud: Any, bias: float = 0.5) -> str:
    return model(cloud, {"model.json": json.dumps({"bias": bias}), "code/inference.py": INFERENCE})


def invoke(cloud: Any, endpoint: str) -> bytes:
    response = cloud.clients.sagemaker_runtime.invoke_endpoint(
        EndpointName=endpoint, Body=b"1,2", ContentType="text/csv"
    )
    return bytes(response["Body"].read())


def statuses_until_settled(cloud: Any, endpoint: str) -> list[str]:
    """Every EndpointStatus seen (deduplicated, in order) until the endpoint is no longer in flight."""
    seen: list[str] = []
    while True:
        status = cloud.clients.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status not in sagemaker_endpoints.IN_FLIGHT_STATUSES:
            return seen
        clock.sleep(5)


def endpoint_log(cloud: Any, endpoint: str) -> str:
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    events = cloud.clients.logs.filter_log_events(logGroupName=group).get("events", [])
    return "\n".join(e["message"] for e in events)


def test_a_new_endpoint_is_creating_for_the_tables_time_then_in_service_after_its_ping(cloud: Any) -> None:
    name, endpoint = good(cloud), unique("endpoint")
    created = clock.time()
    # When the endpoint is created
    cloud.clients.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    # Then it is Creating for the provisioning time of the shared table, then InService
    assert statuses_until_settled(cloud, endpoint) == ["Creating", "InService"]
    described = cloud.clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    took = described["LastModifiedTime"].timestamp() - created
    assert took >= sagemaker_endpoints.ProvisioningTimes.from_table().create
    # And its container was started and answered its ping before that
    [fleet] = [e.detail for e in journal.of("endpoint-fleet") if e.detail["endpoint"] == endpoint]
    assert (fleet["model"], fleet["failure"]) == (name, None)
    assert invoke(cloud, endpoint) == b"3.5"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("model_fn raises", PING_FAILED.format(variant="AllTraffic")),
        ("archive missing", DOWNLOAD_FAILED),
        ("archive corrupt", EXTRACT_FAILED),
    ],
)
def test_a_model_that_cannot_be_served_fails_the_creation_with_sagemakers_reason(
    cloud: Any, case: str, reason: str
) -> None:
    # Given a model SageMaker could not serve
    name = {
        "model_fn raises": lambda: model(cloud, {"code/inference.py": DOES_NOT_LOAD}),
        "archive missing": lambda: model(cloud, upload=False),
        "archive corrupt": lambda: model(cloud, raw=b"this is not a gzip archive"),
    }[case]()
    endpoint = unique("endpoint")
    # When an endpoint is created on it
    cloud.clients.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    # Then the creation fails (Creating -> Failed) with the FailureReason SageMaker gives, naming the archive
    assert statuses_until_settled(cloud, endpoint) == ["Creating", "Failed"]
    described = cloud.clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    assert described["FailureReason"] == reason.format(url=f"s3://{BUCKET}/models/{name}/model.tar.gz")
    # And the reason in the container's log is in the endpoint's log group, as the message says
    if case == "model_fn raises":
        assert "model.joblib was built with another scikit-learn" in endpoint_log(cloud, endpoint)


def test_an_update_to_a_model_that_does_not_load_rolls_back_and_the_champion_keeps_serving(cloud: Any) -> None:
    sm = cloud.clients.sagemaker
    champion, endpoint = good(cloud, bias=1.0), unique("endpoint")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=champion)
    assert wait_for_endpoint(sm, endpoint)["EndpointStatus"] == "InService"
    broken = model(cloud, {"code/inference.py": DOES_NOT_LOAD})
    # When a blue/green update to a model whose container fails its ping starts
    sm.update_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=broken,
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
                "TerminationWaitInSeconds": 120,
            }
        },
    )
    answers = [invoke(cloud, endpoint)]
    # Then the update fails through the statuses SageMaker documents, never sending traffic to the new model
    seen = statuses_until_settled(cloud, endpoint)
    assert (seen[0], seen[-1]) == ("Updating", "InService") and set(seen) <= {"Updating", "RollingBack", "InService"}
    history = sagemaker_endpoints.history(cloud.account_id, cloud.region, endpoint)
    assert [e["event"] for e in history][-3:] == ["update-started", "rolling-back", "rolled-back"]
    answers.append(invoke(cloud, endpoint))
    assert answers == [b"4", b"4"]
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] == champion
    assert described["FailureReason"] == PING_FAILED.format(variant="AllTraffic")
