"""The Lambda tests' strict request check (conftest.py ``strict_requests``): a request the service would refuse
raises, and is remembered so the test fails even when the code under test swallows the error."""

from __future__ import annotations

import contextlib

import boto3
import pytest
from moto import mock_aws

from localcloud import shapes


def test_a_request_the_service_would_refuse_raises_and_is_recorded(strict_requests: list[str]) -> None:
    # Given a client created during the test
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        # When it is asked for an endpoint whose name SageMaker's pattern refuses (moto would accept it)
        with pytest.raises(shapes.ShapeError) as raised:
            sagemaker.create_endpoint(EndpointName="churn_v2", EndpointConfigName="churn-v2")
    # Then the error names the member and the rule, and the fixture holds it to fail the test at teardown
    assert "EndpointName: pattern: 'churn_v2' does not match EndpointName's pattern" in str(raised.value)
    assert strict_requests == [str(raised.value)]
    strict_requests.clear()  # refused on purpose here


def test_a_swallowed_refusal_still_fails_the_test(strict_requests: list[str]) -> None:
    # Given code under test that catches every error of its call
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        with contextlib.suppress(Exception):  # the code under test hides the refusal
            sagemaker.describe_endpoint(EndpointName="e" * 64)
    # Then the refusal was recorded anyway: the fixture fails the test at teardown
    assert (
        strict_requests
        and "EndpointName: length: 64 characters is above EndpointName's maximum 63" in strict_requests[0]
    )
    strict_requests.clear()  # refused on purpose here
