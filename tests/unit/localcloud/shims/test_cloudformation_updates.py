"""Stack updates in the local cloud (``localcloud.shims.cloudformation._update_in_place``): what ``cdk deploy`` does
to a deployed stack when a dataset is added or removed. New resources are created, changed ones updated in place,
removed ones deleted in the cleanup phase unless their DeletionPolicy retains them, unchanged ones untouched
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud.runtime.lambdas import LambdaRuntime
from localcloud.shims import cloudformation as shim
from localcloud.shims import cloudwatch_alarms
from tests.unit.localcloud.shims.test_cloudformation import (
    FUNCTION,
    alarm_properties,
    aws,  # noqa: F401 - the fixture, used by name
    cfn_events,
    provider_stack,
    runtime,  # noqa: F401 - the fixture, used by name
)
from tests.unit.localcloud.support import REGION, unique, zip_package

CAPABILITIES = ["CAPABILITY_IAM"]


def deploy(name: str, template: dict[str, Any], update: bool = False) -> dict[str, str]:
    """Create (or update) ``name`` from ``template``; returns its resources (logical id -> physical id)."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    operation = cloudformation.update_stack if update else cloudformation.create_stack
    operation(StackName=name, TemplateBody=json.dumps(template), Capabilities=CAPABILITIES)
    status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == ("UPDATE_COMPLETE" if update else "CREATE_COMPLETE")
    listed = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}


def group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::SageMaker::ModelPackageGroup",
        "Properties": {"ModelPackageGroupName": name},
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    }


def alarm(name: str, **extra: Any) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm_properties(name, **extra)}


@pytest.fixture
def alarms(aws: None) -> Iterator[None]:  # noqa: F811 - the imported fixture
    cloudwatch_alarms.install()  # PutMetricAlarm as CloudWatch answers it (an update keeps the alarm's state)
    yield


def test_an_update_adds_updates_and_removes_as_cloudformation_does(alarms: None) -> None:
    # Given a deployed stack: a shared topic, two datasets' groups (retained) and alarms, one alarm in ALARM
    n = {k: unique(k) for k in ("kept", "gone", "new", "changed", "stays", "leaves", "joins")}
    before = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "StaysGroup": group(n["stays"]),
            "LeavesGroup": group(n["leaves"]),
            "KeptAlarm": alarm(n["kept"]),
            "GoneAlarm": alarm(n["gone"]),
            "ChangedAlarm": alarm(n["changed"]),
        }
    }
    stack = unique("stack")
    first = deploy(stack, before)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.set_alarm_state(AlarmName=n["changed"], StateValue="ALARM", StateReason="breaching")

    # When the template drops a dataset (its group and alarm), adds one, and changes an alarm's threshold
    after = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "StaysGroup": group(n["stays"]),
            "JoinsGroup": group(n["joins"]),
            "KeptAlarm": alarm(n["kept"]),
            "NewAlarm": alarm(n["new"]),
            "ChangedAlarm": alarm(n["changed"], Threshold="5"),
        }
    }
    second = deploy(stack, after, update=True)

    # Then the stack lists exactly the new template's resources, the unchanged ones with their physical ids
    assert set(second) == set(after["Resources"])
    assert {k: second[k] for k in ("Topic", "StaysGroup", "KeptAlarm")} == {
        k: first[k] for k in ("Topic", "StaysGroup", "KeptAlarm")
    }
    # and the added resources exist, the removed alarm is deleted, the removed group is retained (its models stay)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert {n["stays"], n["leaves"], n["joins"]} <= groups
    names = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert n["gone"] not in names and {n["kept"], n["new"], n["changed"]} <= set(names)
    # and the changed alarm was updated in place: the new threshold, the state it had
    assert (names[n["changed"]]["Threshold"], names[n["changed"]]["StateValue"]) == (5.0, "ALARM")


def test_a_removed_resource_that_depends_on_another_removed_one_goes_first(alarms: None) -> None:
    # Given a topic and an alarm that notifies it, both removed by the update
    name = unique("notifying")
    before = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Notifying": alarm(name, AlarmActions=[{"Ref": "Topic"}]),
            "Other": {"Type": "AWS::SNS::Topic"},
        }
    }
    stack = unique("stack")
    deploy(stack, before)

    # When the update removes them / Then both are gone, in reverse dependency order (the alarm before its topic)
    assert shim.deletion_order({k: before["Resources"][k] for k in ("Topic", "Notifying")}) == ["Notifying", "Topic"]
    remaining = deploy(stack, {"Resources": {"Other": {"Type": "AWS::SNS::Topic"}}}, update=True)
    assert set(remaining) == {"Other"}
    assert boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_an_updated_rule_keeps_its_name(aws: None) -> None:  # noqa: F811 - the imported fixture
    # Given a rule without a Name (CloudFormation generates one) / When its schedule changes
    rule = {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 hour)"}}
    stack = unique("stack")
    first = deploy(stack, {"Resources": {"Drift": rule}})
    changed = {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(6 hours)"}}
    second = deploy(stack, {"Resources": {"Drift": changed}}, update=True)

    # Then it is updated in place: the same rule (name, so the same ARN), the new schedule
    assert second["Drift"] == first["Drift"]
    described = boto3.client("events", region_name=REGION).describe_rule(Name=first["Drift"])
    assert described["ScheduleExpression"] == "rate(6 hours)"


def test_a_custom_resource_gets_an_update_request_with_its_old_properties(runtime: LambdaRuntime) -> None:  # noqa: F811
    # Given a provider-framework custom resource whose handler keeps its physical id
    on_event = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=unique("on-event"), Code={"ZipFile": zip_package({"index.py": HANDLER})}, **FUNCTION
    )["FunctionArn"]
    stack = unique("stack")
    template = provider_stack(on_event)
    deploy(stack, template)

    # When a property changes (a dataset removed from the cleanup's list)
    template["Resources"]["Cleanup"]["Properties"]["Datasets"] = ["churn"]
    resources = deploy(stack, template, update=True)

    # Then the handler got Update (not Delete + Create) with both property sets, and the resource kept its id
    events = cfn_events(runtime)
    assert [e["RequestType"] for e in events] == ["Create", "Update"]
    assert events[1]["PhysicalResourceId"] == "cleanup-dev"
    assert "Datasets" not in events[1]["OldResourceProperties"]
    assert events[1]["ResourceProperties"]["Datasets"] == ["churn"]
    assert resources["Cleanup"] == "cleanup-dev"


HANDLER = """
import json

def handler(event, context):
    print("CFN-EVENT " + json.dumps(event))
    if event["RequestType"] == "Create":
        return {"PhysicalResourceId": "cleanup-" + event["ResourceProperties"]["Stage"], "Data": {"Answer": "42"}}
    return {"PhysicalResourceId": event["PhysicalResourceId"]}
"""


def key(alias: str) -> dict[str, Any]:
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return {"Type": "AWS::KMS::Key", "Properties": {"Description": alias, "KeyPolicy": {"Statement": [root]}}}


def queue_stack(name: str, queue: dict[str, Any], policy_queues: list[str]) -> dict[str, Any]:
    """A dead-letter queue encrypted with a key, and its TLS-only queue policy."""
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "sqs:*",
        "Resource": {"Fn::GetAtt": [policy_queues[0], "Arn"]},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {
        "Resources": {
            "KeyA": key("a"),
            "KeyB": key("b"),
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name, **queue}},
            "Other": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-other"}},
            "DlqPolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": q} for q in policy_queues],
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": [deny]},
                },
            },
        }
    }


def queue_attributes(url: str) -> dict[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def test_an_updated_queue_keeps_its_url_and_its_policy_changes_in_place(aws: None) -> None:  # noqa: F811
    # Given a deployed queue with key A and a 1-day retention, its policy on it and on another queue
    name, stack = unique("dlq"), unique("stack")
    first = deploy(
        stack, queue_stack(name, {"KmsMasterKeyId": {"Ref": "KeyA"}, "MessageRetentionPeriod": 86400}, ["Dlq", "Other"])
    )
    kms = boto3.client("kms", region_name=REGION)
    key_b = kms.describe_key(KeyId=first["KeyB"])["KeyMetadata"]["KeyId"]

    # When the update moves it to key B with a 14-day retention and the policy to the queue alone
    second = deploy(
        stack,
        queue_stack(name, {"KmsMasterKeyId": {"Ref": "KeyB"}, "MessageRetentionPeriod": 1209600}, ["Dlq"]),
        update=True,
    )

    # Then the queue is the same (its URL) with the new attributes and still its policy; the other queue lost it
    assert second["Dlq"] == first["Dlq"]
    attributes = queue_attributes(second["Dlq"])
    assert attributes["KmsMasterKeyId"] == key_b
    assert attributes["MessageRetentionPeriod"] == "1209600"
    assert json.loads(attributes["Policy"])["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert not queue_attributes(second["Other"]).get("Policy")


def log_group_stack(properties: dict[str, Any], added: bool = False) -> dict[str, Any]:
    resources = {"KeyA": key("a"), "KeyB": key("b"), "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": properties}}
    if added:
        keyed = {"KmsKeyId": {"Fn::GetAtt": ["KeyB", "Arn"]}, "RetentionInDays": 30}
        resources["AddedLogs"] = {"Type": "AWS::Logs::LogGroup", "Properties": keyed}
    return {"Resources": resources}


def test_an_updated_log_group_keeps_its_name_and_a_group_added_on_update_gets_its_key(aws: None) -> None:  # noqa: F811
    # Given a deployed log group without a name (CloudFormation generates it) with key A, kept 7 days
    stack = unique("stack")
    first = deploy(stack, log_group_stack({"KmsKeyId": {"Fn::GetAtt": ["KeyA", "Arn"]}, "RetentionInDays": 7}))

    # When the update moves it to key B, kept 30 days, and adds a group encrypted with key B
    changed = {"KmsKeyId": {"Fn::GetAtt": ["KeyB", "Arn"]}, "RetentionInDays": 30}
    second = deploy(stack, log_group_stack(changed, added=True), update=True)

    # Then the group is the same one, with the new key and retention, and the added group has its key
    assert second["Logs"] == first["Logs"]
    key_b = boto3.client("kms", region_name=REGION).describe_key(KeyId=first["KeyB"])["KeyMetadata"]["Arn"]
    groups = {g["logGroupName"]: g for g in boto3.client("logs", region_name=REGION).describe_log_groups()["logGroups"]}
    assert (groups[second["Logs"]].get("kmsKeyId"), groups[second["Logs"]].get("retentionInDays")) == (key_b, 30)
    assert groups[second["AddedLogs"]].get("kmsKeyId") == key_b


def dead_letter_function(name: str, queue: str | None, key_ref: str | None) -> dict[str, Any]:
    """The function's code in S3 as CDK deploys it (moto's update reads an inline ZipFile as base64)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="code.zip", Body=zip_package({"index.py": "def handler(e, c):\n    return 1\n"}))
    code = {"S3Bucket": name, "S3Key": "code.zip"}
    properties: dict[str, Any] = {**FUNCTION, "FunctionName": name, "Code": code}
    if queue:
        properties["DeadLetterConfig"] = {"TargetArn": {"Fn::GetAtt": [queue, "Arn"]}}
    if key_ref:
        properties["KMSKeyArn"] = {"Fn::GetAtt": [key_ref, "Arn"]}
    return {
        "Resources": {
            "Key": key("env"),
            "First": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-first"}},
            "Second": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-second"}},
            "Function": {"Type": "AWS::Lambda::Function", "Properties": properties},
        }
    }


def test_a_function_update_sets_and_clears_its_dead_letter_queue_and_key(runtime: LambdaRuntime) -> None:  # noqa: F811
    # Given a function deployed without a dead-letter queue nor its own key
    name, stack = unique("fn"), unique("stack")
    deploy(stack, dead_letter_function(name, None, None))
    function = lambda_models_backend_function(name)
    assert function.local_dead_letter_arn is None

    # When an update gives it the second queue and the key / Then both are the function's (asynchronous
    # deliveries that fail go to that queue; the environment is encrypted with that key)
    resources = deploy(stack, dead_letter_function(name, "Second", "Key"), update=True)
    function = lambda_models_backend_function(name)
    sqs = boto3.client("sqs", region_name=REGION)
    second_arn = sqs.get_queue_attributes(QueueUrl=resources["Second"], AttributeNames=["QueueArn"])["Attributes"]
    assert function.local_dead_letter_arn == second_arn["QueueArn"]
    configuration = boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName=name)
    key_arn = boto3.client("kms", region_name=REGION).describe_key(KeyId=resources["Key"])["KeyMetadata"]["Arn"]
    assert configuration["KMSKeyArn"] == key_arn

    # When an update removes both / Then the function has neither again
    deploy(stack, dead_letter_function(name, None, None), update=True)
    function = lambda_models_backend_function(name)
    assert function.local_dead_letter_arn is None
    assert not boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName=name).get("KMSKeyArn")


def lambda_models_backend_function(name: str) -> Any:
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    return lambda_backends[DEFAULT_ACCOUNT_ID][REGION].get_function(name)


def test_an_updated_bucket_keeps_its_name_and_data_and_its_lifecycle_rules_change_in_place(aws: None) -> None:  # noqa: F811
    # Given a deployed bucket with a generated name (CDK's buckets have no BucketName), tags, and one lifecycle rule
    def bucket(rules: list[dict[str, Any]] | None) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}
                ]
            },
            "Tags": [{"Key": "stage", "Value": "dev"}],
        }
        if rules is not None:
            properties["LifecycleConfiguration"] = {"Rules": rules}
        return {"Resources": {"Lake": {"Type": "AWS::S3::Bucket", "Properties": properties}}}

    capture = {"Id": "capture", "Status": "Enabled", "Prefix": "data-capture/a/", "ExpirationInDays": 30}
    labels = {"Id": "labels", "Status": "Enabled", "Prefix": "monitoring/a/", "ExpirationInDays": 90}
    stack = unique("stack")
    name = deploy(stack, bucket([capture]))["Lake"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=name, Key="data-capture/a/x.jsonl", Body=b"{}")
    # When a dataset adds a rule (moto's own update raised KeyError: 'BucketName' on the tags)
    assert deploy(stack, bucket([capture, labels]), update=True)["Lake"] == name
    # Then the same bucket, with its objects, has both rules, and its tags
    rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert sorted((r["ID"], r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules) == [
        ("capture", "data-capture/a/", 30),
        ("labels", "monitoring/a/", 90),
    ]
    assert s3.get_object(Bucket=name, Key="data-capture/a/x.jsonl")["Body"].read() == b"{}"
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "stage", "Value": "dev"}]
    (rule,) = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # When the template drops the lifecycle configuration / Then the bucket has none
    deploy(stack, bucket(None), update=True)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=name)
