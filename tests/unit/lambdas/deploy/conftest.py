"""moto + the endpoint shim for the deployment tests (helpers: support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from localcloud.clock import clock
from localcloud.shims import sagemaker_endpoints as shim
from tests.unit.lambdas.deploy.support import ALARMS, ARTIFACTS, ENDPOINT, GROUP, REGION, Cloud


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    shim.install()
    clock.reset()
    # the deployment steps' logic, not SageMaker's provisioning delays (localcloud.durations): fleets come up at once
    with shim.provisioning_times(shim.ProvisioningTimes.instant()), mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACTS)
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for name in ALARMS:
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SageMaker",
                MetricName="Invocation5XXErrors",
                Dimensions=[
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=2,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        yield Cloud(
            sm=sm,
            s3=s3,
            cloudwatch=cloudwatch,
            autoscaling=boto3.client("application-autoscaling", region_name=REGION),
        )
    clock.reset()
