"""Teardown: deleting the stack removes what the pipeline created on SageMaker and keeps the data (issue 5)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.e2e.conftest import SAMPLE, Cloud

pytestmark = pytest.mark.slow


def test_destroying_the_stack_removes_endpoints_configs_and_models_and_keeps_the_data(fresh: Cloud) -> None:
    lc, sm, s3 = fresh.lc, fresh.cloud.clients.sagemaker, fresh.cloud.clients.s3
    # Given a stack that trained and deployed a model (the pipeline created an endpoint, configs and models)
    key, version = lc.upload(pd.read_csv(SAMPLE), "customers.csv")
    assert lc.wait_for_new_execution(lc.training_machine, []).status == "SUCCEEDED"
    assert lc.wait_for_new_execution(lc.deployment_machine, []).status == "SUCCEEDED"
    fresh.cloud.settle()
    assert sm.list_endpoints()["Endpoints"] and sm.list_models()["Models"]
    # When the stack is destroyed
    fresh.cloud.destroy(lc.deployment.stack_name)
    # Then the custom resource removed the pipeline's endpoints, endpoint configs and models
    prefix = lc.endpoint_name.rsplit("-", 1)[0]
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith(prefix)] == []
    assert [
        c for c in sm.list_endpoint_configs()["EndpointConfigs"] if c["EndpointConfigName"].startswith(prefix)
    ] == []
    assert [m for m in sm.list_models()["Models"] if m["ModelName"].startswith(prefix)] == []
    # And the retained data buckets and their objects are still there (raw object version included)
    for bucket in (lc.raw_bucket, lc.curated_bucket, lc.artifacts_bucket):
        s3.head_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=lc.raw_bucket, Key=key, VersionId=version)["VersionId"] == version
    # And the stack itself is gone
    stacks = fresh.cloud.clients.cloudformation.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == lc.deployment.stack_name] == ["DELETE_COMPLETE"]
