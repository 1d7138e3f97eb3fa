"""Contract and behaviour of the S3 bucket-policy shim (conditions evaluated like IAM, aws:SecureTransport)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.iam import access_control, policy_conditions
from moto.s3 import models as s3_models

from localcloud.shims import s3_policy as shim
from tests.unit.localcloud import support
from tests.unit.localcloud.support import REGION, assert_pinned_moto, revisit, unique

PermissionResult = access_control.PermissionResult
SHIM = "s3_policy"


def enforce_ssl(bucket: str) -> dict[str, Any]:
    """The statement CDK's ``enforce_ssl=True`` adds to a bucket policy."""
    return {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


ALLOW_FROM_VPC = {
    "Action": "s3:GetObject",
    "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}},
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Resource": "arn:aws:s3:::b/*",
}


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto as pinned, for the duration of one test (the shim is installed process-wide otherwise)."""
    shim.install()
    monkeypatch.setattr(access_control.IAMPolicyStatement, "is_action_permitted", shim._original_statement)
    monkeypatch.setattr(s3_models.FakeBucket, "get_permission", shim._original_get_permission)


@pytest.fixture
def s3() -> Iterator[Any]:
    shim.install()
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)


def bucket_with(s3: Any, *statements: dict[str, Any]) -> str:
    name = unique("policy-bucket")
    s3.create_bucket(Bucket=name)
    if statements:
        body = {
            "Version": "2012-10-17",
            "Statement": [json.loads(json.dumps(s).replace("{b}", name)) for s in statements],
        }
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(body))
    return name


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist_with_the_signatures_the_shim_implements() -> None:
    from moto.s3.responses import S3Response

    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_statement).parameters) == [
        "self",
        "action",
        "resource",
        "principal",
        "incoming_condition_values",
    ], revisit(SHIM)
    assert list(inspect.signature(shim._original_setup).parameters) == ["self", "request", "full_url", "headers"]
    assert list(inspect.signature(shim._original_get_permission).parameters) == ["self", "action", "resource"]
    assert callable(access_control.IAMPolicyStatement._check_conditions)
    assert "_statement" in vars(access_control.IAMPolicyStatement({"Effect": "Allow"}))
    # moto evaluates a condition with the function registered under its operator in CONDITION_OPERATIONS, where
    # the shim registers Bool (an operator missing there is ignored: the condition matches whatever the request)
    shim.install()
    secure_only = access_control.IAMPolicyStatement(
        {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    )
    assert secure_only._check_conditions({"aws:SecureTransport": "false"}) is True, revisit(SHIM)
    assert secure_only._check_conditions({"aws:SecureTransport": "true"}) is False, revisit(SHIM)
    # moto's S3 still checks the bucket policy of object requests with (action, resource) only: no request context
    source = inspect.getsource(S3Response._key_response)
    assert "bucket.get_permission(action, resource)" in source, revisit(SHIM)


def test_pinned_moto_has_no_bool_condition_operator() -> None:
    assert policy_conditions.CONDITION_OPERATIONS.get("Bool") in (None, shim.bool_operation), revisit(SHIM)
    assert set(policy_conditions.CONDITION_OPERATIONS) <= {"StringEquals", "Bool"}, revisit(SHIM)


def test_pinned_moto_denies_on_an_unmatched_condition_whatever_the_effect(unpatched: None) -> None:
    # Given an Allow statement whose condition does not match the request
    statement = access_control.IAMPolicyStatement(ALLOW_FROM_VPC)
    # When moto evaluates it
    result = statement.is_action_permitted("s3:GetObject", "arn:aws:s3:::b/k", None, {"aws:SourceVpc": "vpc-2"})
    # Then it DENIES (IAM: the statement does not apply)
    assert result == PermissionResult.DENIED, revisit(SHIM)


def test_pinned_moto_refuses_https_object_requests_to_an_ssl_only_bucket(unpatched: None, s3: Any) -> None:
    # Given a bucket whose policy denies non-TLS requests (every stack bucket)
    bucket = bucket_with(s3, enforce_ssl("{b}"))
    # When an HTTPS request writes an object
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    # Then moto refuses it: no request context, and the conditional Deny always applies
    assert error.value.response["Error"] == {"Code": "403", "Message": "Forbidden"}, revisit(SHIM)


# ---- behaviour -----------------------------------------------------------------------------------------


def test_https_requests_to_an_ssl_only_bucket_are_allowed(s3: Any) -> None:
    # Given an SSL-only bucket
    bucket = bucket_with(s3, enforce_ssl("{b}"))
    # When HTTPS requests write and read an object
    s3.put_object(Bucket=bucket, Key="datasets/churn/a.csv", Body=b"1,2")
    # Then both succeed
    assert s3.get_object(Bucket=bucket, Key="datasets/churn/a.csv")["Body"].read() == b"1,2"


@pytest.mark.parametrize("operation", ["put", "get"])
def test_plain_http_object_requests_are_still_denied(s3: Any, operation: str) -> None:
    # Given an SSL-only bucket with an object
    bucket = bucket_with(s3, enforce_ssl("{b}"))
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    http = boto3.client("s3", region_name=REGION, endpoint_url="http://s3.amazonaws.com")
    # When a plain-HTTP request touches an object
    with pytest.raises(ClientError) as error:
        if operation == "put":
            http.put_object(Bucket=bucket, Key="k2", Body=b"x")
        else:
            http.get_object(Bucket=bucket, Key="k")
    # Then the Deny applies
    assert error.value.response["Error"] == {"Code": "403", "Message": "Forbidden"}
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_bucket_without_policy_takes_plain_http_too(s3: Any) -> None:
    bucket = bucket_with(s3)
    http = boto3.client("s3", region_name=REGION, endpoint_url="http://s3.amazonaws.com")
    http.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert http.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


@pytest.mark.parametrize(
    ("statement", "context", "expected"),
    [
        (ALLOW_FROM_VPC, {"aws:SourceVpc": "vpc-2"}, PermissionResult.NEUTRAL),  # not applicable
        (ALLOW_FROM_VPC, {"aws:SourceVpc": "vpc-1"}, PermissionResult.PERMITTED),
        (enforce_ssl("b"), {"aws:SecureTransport": "true"}, PermissionResult.NEUTRAL),
        (enforce_ssl("b"), {"aws:SecureTransport": "false"}, PermissionResult.DENIED),
        ({**ALLOW_FROM_VPC, "Condition": {}}, {}, PermissionResult.PERMITTED),  # no condition: moto's answer
    ],
)
def test_a_statement_applies_only_when_its_condition_matches(
    s3: Any, statement: dict[str, Any], context: dict[str, str], expected: PermissionResult
) -> None:
    result = access_control.IAMPolicyStatement(statement).is_action_permitted(
        "s3:GetObject", "arn:aws:s3:::b/k", None, context
    )
    assert result == expected


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("false", "false", True),
        ("false", "FALSE", True),
        (["true", "false"], "True", True),
        (True, "true", True),
        ("true", "false", False),
    ],
)
def test_bool_operation(expected: Any, actual: str, matches: bool) -> None:
    assert shim.bool_operation(expected, actual) is matches


def test_installed_again_an_ssl_only_bucket_still_takes_https_and_refuses_plain_http(s3: Any) -> None:
    # Given the shim installed again (every LocalCloud start and stop installs it) and an SSL-only bucket
    support.install_again(shim)
    bucket = bucket_with(s3, enforce_ssl("{b}"))
    # When an object is written over HTTPS and read over plain HTTP
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    http = boto3.client("s3", region_name=REGION, endpoint_url="http://s3.amazonaws.com")
    with pytest.raises(ClientError) as error:
        http.get_object(Bucket=bucket, Key="k")
    # Then HTTPS was allowed (moto alone refuses it) and the Deny applied to plain HTTP
    assert error.value.response["Error"] == {"Code": "403", "Message": "Forbidden"}
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
