"""An A/B experiment's routing on the local data plane: a request goes to a production variant with the
probability of its weight, and InvokeEndpoint's ``TargetVariant`` overrides the weights (SageMaker's "Test models
by invoking specific variants"). The containers are stubbed: this is the choice of variant, not the serving."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.clock import clock
from localcloud.runtime.endpoints import EndpointError, EndpointRuntime, Invocation
from localcloud.shims import sagemaker_endpoints as shim

REGION, ACCOUNT, ENDPOINT = "us-east-1", "123456789012", "ab-endpoint"


@pytest.fixture
def runtime() -> Iterator[EndpointRuntime]:
    shim.install()
    clock.reset()
    with shim.provisioning_times(shim.ProvisioningTimes.instant()), mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        variants = []
        for name, weight in (("AllTraffic", 0.8), ("Challenger", 0.2)):
            sm.create_model(
                ModelName=f"model-{name}",
                ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
                PrimaryContainer={"Image": "sklearn:1.9-0"},
            )
            variants.append(
                {
                    "VariantName": name,
                    "ModelName": f"model-{name}",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": weight,
                }
            )
        sm.create_endpoint_config(EndpointConfigName="ab", ProductionVariants=variants)
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="ab")
        runtime = EndpointRuntime(SimpleNamespace(account_id=ACCOUNT, region=REGION), seed=3)
        shim.set_fleet_check(None)  # no containers: every fleet is healthy
        answered: Any = lambda endpoint, variant, model, *rest: Invocation(b"1", "text/csv", variant, model, 200, 1, 0)  # noqa: E731
        runtime._call = answered  # type: ignore[method-assign]
        runtime._capture_record = lambda *args: None  # type: ignore[method-assign]
        yield runtime
    clock.reset()


def test_requests_are_split_by_variant_weight(runtime: EndpointRuntime) -> None:
    served = Counter(runtime.invoke(ENDPOINT, b"1,2", "text/csv").variant for _ in range(5000))
    # 20% of 5,000: 1,000 with a standard deviation of about 28
    assert 900 <= served["Challenger"] <= 1100 and served["AllTraffic"] + served["Challenger"] == 5000


def test_a_target_variant_pins_every_request_to_it(runtime: EndpointRuntime) -> None:
    served = Counter(
        runtime.invoke(ENDPOINT, b"1", "text/csv", target_variant="Challenger").variant for _ in range(200)
    )
    assert served == {"Challenger": 200}
    with pytest.raises(EndpointError, match="Target variant Shadow is not in endpoint ab-endpoint"):
        runtime.invoke(ENDPOINT, b"1", "text/csv", target_variant="Shadow")
