"""A deployed principal's call over HTTP is decided before moto sees it, and a denied one fails as the service's
AccessDenied does (S3: 403 AccessDenied; SNS: 403 AuthorizationError; JSON APIs: AccessDeniedException), naming
principal, action and resource. The account's own keys (harness, tests, CLI) are not evaluated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.tiers import heavy_fixture
from tests.unit.localcloud.support import running_cloud, unique

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@heavy_fixture
def cloud() -> Iterator[Any]:
    with running_cloud(prewarm=False) as started:
        yield started


def role(cloud: Any, *statements: dict[str, Any]) -> str:
    name = unique("role")
    arn = cloud.clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    cloud.clients.iam.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=json.dumps(policy))
    return str(arn)


def error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return dict(raised.value.response)


def test_an_s3_call_outside_the_roles_grants_gets_s3s_access_denied(cloud: Any) -> None:
    # Given a bucket and a role that may only read it
    bucket = unique("bucket")
    cloud.clients.s3.create_bucket(Bucket=bucket)
    arn = role(cloud, {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3 = cloud.clients_for(arn, "lambda.amazonaws.com", "fn").s3
    # When the role writes, Then S3 answers 403 AccessDenied naming principal, action and resource
    response = error(lambda: s3.put_object(Bucket=bucket, Key="a.txt", Body=b"x"))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"]["Code"] == "AccessDenied"
    assert response["Error"]["Message"] == (
        f"User: arn:aws:sts::123456789012:assumed-role/{arn.rsplit('/', 1)[-1]}/fn is not authorized to perform: "
        f"s3:PutObject on resource: arn:aws:s3:::{bucket}/a.txt because no identity-based policy allows the "
        "s3:PutObject action"
    )
    # and nothing was written; the account's own keys are not evaluated; the granted read works
    cloud.clients.s3.put_object(Bucket=bucket, Key="a.txt", Body=b"admin")
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"admin"


def test_sns_and_json_apis_answer_in_their_own_error_format(cloud: Any) -> None:
    topic = cloud.clients.sns.create_topic(Name=unique("topic"))["TopicArn"]
    arn = role(cloud, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"})
    clients = cloud.clients_for(arn, "lambda.amazonaws.com", "fn")
    sns = error(lambda: clients.sns.publish(TopicArn=topic, Message="m"))
    assert (sns["ResponseMetadata"]["HTTPStatusCode"], sns["Error"]["Code"]) == (403, "AuthorizationError")
    assert f"is not authorized to perform: sns:Publish on resource: {topic}" in sns["Error"]["Message"]
    sagemaker = error(lambda: clients.sagemaker.describe_endpoint(EndpointName="churn"))
    assert (sagemaker["ResponseMetadata"]["HTTPStatusCode"], sagemaker["Error"]["Code"]) == (
        400,
        "AccessDeniedException",
    )
    assert (
        "sagemaker:DescribeEndpoint on resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn"
        in sagemaker["Error"]["Message"]
    )
    function = error(lambda: clients.lambda_.invoke(FunctionName="start"))
    assert (function["ResponseMetadata"]["HTTPStatusCode"], function["Error"]["Code"]) == (403, "AccessDeniedException")


def test_every_decision_is_journaled_with_the_statement_that_decided(cloud: Any) -> None:
    bucket = unique("bucket")
    cloud.clients.s3.create_bucket(Bucket=bucket)
    arn = role(
        cloud, {"Sid": "ReadRaw", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    )
    cloud.clients_for(arn, "lambda.amazonaws.com", "fn").s3.list_objects_v2(Bucket=bucket)
    entry = [e for e in cloud.iam.entries if e.resource == f"arn:aws:s3:::{bucket}"][-1]
    assert (entry.role, entry.action, entry.allowed, entry.call) == (arn, "s3:ListBucket", True, "s3:ListObjectsV2")
    assert entry.statement.endswith("grants statement 1 (ReadRaw)")


def test_a_role_that_does_not_trust_the_service_cannot_be_assumed(cloud: Any) -> None:
    from localcloud.iam.enforcer import AccessDenied

    arn = role(cloud, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"})
    with pytest.raises(
        AccessDenied, match=r"User: states\.amazonaws\.com is not authorized to perform: sts:AssumeRole"
    ):
        cloud.credentials(arn, "states.amazonaws.com", "StepFunctions")


def test_the_switch_off_lets_calls_through_and_still_lists_the_denials(cloud: Any) -> None:
    # Given enforcement off (LOCALCLOUD_IAM=0 at start), When a role makes a call it is not granted
    bucket = unique("bucket")
    cloud.clients.s3.create_bucket(Bucket=bucket)
    arn = role(cloud, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"})
    s3 = cloud.clients_for(arn, "lambda.amazonaws.com", "fn").s3
    cloud.iam.enforce = False
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    finally:
        cloud.iam.enforce = True
    # Then the call went through, and the denial is still reported
    assert cloud.clients.s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert any(d.resource == f"arn:aws:s3:::{bucket}/k" and d.action == "s3:PutObject" for d in cloud.iam.denials())
