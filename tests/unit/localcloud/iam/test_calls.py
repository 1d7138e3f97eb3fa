"""API calls mapped to the authorization requests AWS makes for them, implied ones included (each rule cites its
AWS page in ``localcloud.iam.calls``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from localcloud.iam.calls import Call, UnmappedCall, requests_for, scalable_target_arn
from localcloud.iam.policy import Caller

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
CALLER = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/s", ACCOUNT, role_arn=ROLE)
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:notifications"


@dataclass
class FakeWorld:
    """Cloud state for the mapping: which buckets, objects and topics are KMS-encrypted, which roles exist."""

    account: str = ACCOUNT
    region: str = REGION
    buckets: dict[str, str] = field(default_factory=lambda: {"curated": KEY})
    objects: dict[tuple[str, str], str] = field(default_factory=lambda: {("curated", "a.parquet"): KEY})
    topics: dict[str, str] = field(default_factory=lambda: {TOPIC: KEY})
    roles: set[str] = field(default_factory=set)

    def key_arn(self, key_id: str) -> str | None:
        return KEY if key_id in (KEY, "k1", "alias/data") else None

    def bucket_key(self, bucket: str) -> str | None:
        return self.buckets.get(bucket)

    def object_key(self, bucket: str, key: str) -> str | None:
        return self.objects.get((bucket, key))

    def topic_key(self, topic_arn: str) -> str | None:
        return self.topics.get(topic_arn)

    def role_exists(self, role_arn: str) -> bool:
        return role_arn in self.roles


def mapped(
    service: str, operation: str, params: dict[str, Any], world: FakeWorld | None = None
) -> list[tuple[str, str]]:
    return [
        (r.action, r.resource) for r in requests_for(Call(service, operation, params), CALLER, world or FakeWorld())
    ]


def test_put_object_on_a_kms_bucket_needs_generate_data_key() -> None:
    assert mapped("s3", "PutObject", {"Bucket": "curated", "Key": "x/y.parquet"}) == [
        ("s3:PutObject", "arn:aws:s3:::curated/x/y.parquet"),
        ("kms:GenerateDataKey", KEY),
    ]
    assert mapped("s3", "PutObject", {"Bucket": "plain", "Key": "a"}) == [("s3:PutObject", "arn:aws:s3:::plain/a")]


def test_an_explicit_sse_kms_key_is_the_one_checked() -> None:
    params = {"Bucket": "plain", "Key": "m.tar.gz", "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/data"}
    requests = requests_for(Call("s3", "PutObject", params), CALLER, FakeWorld())
    assert [(r.action, r.resource) for r in requests] == [
        ("s3:PutObject", "arn:aws:s3:::plain/m.tar.gz"),
        ("kms:GenerateDataKey", KEY),
    ]
    assert requests[0].context["s3:x-amz-server-side-encryption"] == ["aws:kms"]
    assert requests[1].context["kms:viaservice"] == ["s3.us-east-1.amazonaws.com"]
    assert requests[1].context["kms:encryptioncontext:aws:s3:arn"] == ["arn:aws:s3:::plain"]


def test_multipart_upload_also_needs_decrypt_and_get_object_needs_decrypt() -> None:
    assert mapped("s3", "CreateMultipartUpload", {"Bucket": "curated", "Key": "big"})[1:] == [
        ("kms:GenerateDataKey", KEY),
        ("kms:Decrypt", KEY),
    ]
    assert mapped("s3", "GetObject", {"Bucket": "curated", "Key": "a.parquet"}) == [
        ("s3:GetObject", "arn:aws:s3:::curated/a.parquet"),
        ("kms:Decrypt", KEY),
    ]


def test_bucket_operations_and_batch_deletes() -> None:
    assert mapped("s3", "ListObjectsV2", {"Bucket": "curated", "Prefix": "p/"}) == [
        ("s3:ListBucket", "arn:aws:s3:::curated")
    ]
    assert mapped("s3", "HeadObject", {"Bucket": "curated", "Key": "k", "VersionId": "v"}) == [
        ("s3:GetObjectVersion", "arn:aws:s3:::curated/k")
    ]
    assert mapped("s3", "DeleteObjects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b"}]}}) == [
        ("s3:DeleteObject", "arn:aws:s3:::b/a"),
        ("s3:DeleteObject", "arn:aws:s3:::b/b"),
    ]


def test_publishing_to_an_encrypted_topic_needs_the_topics_key() -> None:
    assert mapped("sns", "Publish", {"TopicArn": TOPIC, "Message": "m"}) == [
        ("sns:Publish", TOPIC),
        ("kms:GenerateDataKey", KEY),
        ("kms:Decrypt", KEY),
    ]


@pytest.mark.parametrize(
    ("operation", "params", "resource"),
    [
        ("CreateTrainingJob", {"TrainingJobName": "Job-1", "RoleArn": ROLE}, "training-job/job-1"),
        ("CreateProcessingJob", {"ProcessingJobName": "eval-1", "RoleArn": ROLE}, "processing-job/eval-1"),
        ("CreateModel", {"ModelName": "m-1", "ExecutionRoleArn": ROLE}, "model/m-1"),
    ],
)
def test_a_call_that_passes_a_role_needs_pass_role_to_sagemaker(
    operation: str, params: dict[str, Any], resource: str
) -> None:
    requests = requests_for(Call("sagemaker", operation, params), CALLER, FakeWorld())
    assert [(r.action, r.resource) for r in requests] == [
        (f"sagemaker:{operation}", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}"),
        ("iam:PassRole", ROLE),
    ]
    assert requests[1].context["iam:passedtoservice"] == ["sagemaker.amazonaws.com"]


def test_tags_on_a_create_need_add_tags() -> None:
    actions = mapped(
        "sagemaker", "CreateModel", {"ModelName": "m", "ExecutionRoleArn": ROLE, "Tags": [{"Key": "a", "Value": "b"}]}
    )
    assert ("sagemaker:AddTags", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m") in actions


def test_update_endpoint_is_authorized_on_the_endpoint_and_the_config() -> None:
    assert mapped("sagemaker", "UpdateEndpoint", {"EndpointName": "churn", "EndpointConfigName": "churn-v2"}) == [
        ("sagemaker:UpdateEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/churn-v2"),
        ("sagemaker:UpdateEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/churn"),
    ]


def test_target_tracking_needs_the_callers_cloudwatch_alarm_permissions() -> None:
    params = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/churn/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "PolicyName": "p",
        "PolicyType": "TargetTrackingScaling",
    }
    actions = [a for a, _ in mapped("application-autoscaling", "PutScalingPolicy", params)]
    assert actions[0] == "application-autoscaling:PutScalingPolicy"
    assert sorted(actions[1:]) == sorted(
        ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"] * 2
    )
    assert mapped("application-autoscaling", "PutScalingPolicy", params)[0][1] == scalable_target_arn(
        params, FakeWorld()
    )


def test_registering_a_sagemaker_target_creates_the_service_linked_role_once() -> None:
    params = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/churn/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    role = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
    assert ("iam:CreateServiceLinkedRole", role) in mapped("application-autoscaling", "RegisterScalableTarget", params)
    exists = FakeWorld(roles={role})
    assert [a for a, _ in mapped("application-autoscaling", "RegisterScalableTarget", params, exists)] == [
        "application-autoscaling:RegisterScalableTarget"
    ]


def test_glue_catalog_calls_are_authorized_on_catalog_database_and_table() -> None:
    assert [r for _, r in mapped("glue", "GetTable", {"DatabaseName": "mlops_dev", "Name": "churn"})] == [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/mlops_dev",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:table/mlops_dev/churn",
    ]


def test_a_dynamodb_transaction_is_authorized_item_by_item() -> None:
    params = {
        "TransactItems": [{"Put": {"TableName": "guard", "Item": {}}}, {"Update": {"TableName": "guard", "Key": {}}}]
    }
    assert mapped("dynamodb", "TransactWriteItems", params) == [
        ("dynamodb:PutItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/guard"),
        ("dynamodb:UpdateItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/guard"),
    ]


def test_lambda_invoke_and_step_functions_use_their_iam_action_names() -> None:
    assert mapped("lambda", "Invoke", {"FunctionName": "start"}) == [
        ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:start")
    ]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pipeline"
    assert mapped("stepfunctions", "StartExecution", {"stateMachineArn": machine}) == [
        ("states:StartExecution", machine)
    ]
    assert mapped("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "Churn"}) == [
        ("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/churn")
    ]


def test_an_operation_without_a_mapping_is_refused() -> None:
    with pytest.raises(UnmappedCall, match="s3:PutBucketPolicy is not mapped"):
        mapped("s3", "PutBucketPolicy", {"Bucket": "b"})
    with pytest.raises(UnmappedCall, match="dynamodb:DescribeLimitz is not an IAM action"):
        mapped("dynamodb", "DescribeLimitz", {})
