"""Contract and behaviour of the CloudFormation shim (resource types moto skips are created from their resolved
properties; custom resources run their handlers), and the real stack deployed into the local cloud."""

from __future__ import annotations

import inspect
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.core.common_models import CloudFormationModel

from localcloud import provision
from localcloud.runtime.lambdas import LambdaRuntime
from localcloud.shims import cloudformation as shim
from localcloud.shims import lambda_invoke, s3_policy, ssm_public
from tests.tiers import heavy_fixture
from tests.unit.localcloud.support import (
    ACCOUNT,
    REGION,
    ROLE,
    assert_pinned_moto,
    revisit,
    running_cloud,
    unique,
    zip_package,
)

SHIM = "cloudformation"
SHIMMED_TYPES = [model.type_name for model in shim.MODELS]


def create_stack(template: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(stack name, outputs) of a stack created from ``template``."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    name = unique("stack")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return name, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist_with_the_signatures_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    assert list(inspect.signature(shim._original_class_from_type).parameters) == ["resource_type"], revisit(SHIM)
    assert list(inspect.signature(shim._original_name_type).parameters) == ["resource_type"], revisit(SHIM)
    # moto looks both up through the module at call time, so replacing the module attributes takes effect
    assert "resource_class_from_type(resource_type)" in inspect.getsource(parsing.parse_resource), revisit(SHIM)
    name_lookup = inspect.getsource(parsing.parse_resource_and_generate_name)
    assert "resource_name_property_from_type(resource_type)" in name_lookup, revisit(SHIM)
    # the CloudFormationModel protocol the shim's models implement
    for method in (
        "cloudformation_type",
        "cloudformation_name_type",
        "has_cfn_attr",
        "create_from_cloudformation_json",
        "update_from_cloudformation_json",
        "delete_from_cloudformation_json",
    ):
        assert hasattr(CloudFormationModel, method), revisit(SHIM)
    # moto hands the logical id, stack id and type to create_from_cloudformation_json
    creator = inspect.getsource(parsing.parse_and_create_resource)
    for key in ('"LogicalId"', '"StackId"', '"ResourceType"'):
        assert key in creator, revisit(SHIM)
    assert list(inspect.signature(shim._original_kms_create).parameters)[:4] == [
        "resource_name",
        "cloudformation_json",
        "account_id",
        "region_name",
    ], revisit(SHIM)


@pytest.mark.parametrize("resource_type", SHIMMED_TYPES)
def test_pinned_moto_has_no_model_for_the_shimmed_types(resource_type: str) -> None:
    assert shim._original_class_from_type(resource_type) is None, revisit(SHIM)
    assert shim._original_name_type(resource_type) is None, revisit(SHIM)


def test_pinned_moto_handles_custom_resources_with_its_own_model() -> None:
    assert shim._original_class_from_type("Custom::S3BucketNotifications") is CustomModel, revisit(SHIM)


def test_pinned_moto_skips_an_unknown_type_and_still_says_create_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's own type lookup
    shim.install()
    monkeypatch.setattr(parsing, "resource_class_from_type", shim._original_class_from_type)
    monkeypatch.setattr(parsing, "resource_name_property_from_type", shim._original_name_type)
    template = {"Resources": {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm_properties("skipped")}}}
    with mock_aws(), pytest.warns(UserWarning, match="AWS::CloudWatch::Alarm"):
        # When a stack with an alarm is created
        name, _ = create_stack(template)
        resources = boto3.client("cloudformation", region_name=REGION).list_stack_resources(StackName=name)
        alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    # Then it is CREATE_COMPLETE without the alarm (moto lists a blank summary where the resource would be)
    summaries = resources["StackResourceSummaries"]
    assert [r["LogicalResourceId"] for r in summaries] == [""], revisit(SHIM)
    assert alarms == [], revisit(SHIM)


def test_pinned_moto_cannot_delete_a_model_package_group(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName="group")
        with pytest.raises(NotImplementedError, match="delete_model_package_group"):
            sagemaker.delete_model_package_group(ModelPackageGroupName="group")


def test_pinned_moto_kms_key_reads_tags_in_the_api_form_not_the_template_form() -> None:
    properties = {"KeyPolicy": {"Statement": []}, "Tags": [{"Key": "stage", "Value": "dev"}]}
    with mock_aws(), pytest.raises(KeyError, match="TagKey"):
        shim._original_kms_create("key", {"Properties": properties}, ACCOUNT, REGION)


# ---- behaviour (decorator mode) ------------------------------------------------------------------------


def alarm_properties(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Statistic": "Sum",
        "Period": "60",  # CloudFormation hands numbers over as strings too
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": "1",
        "Threshold": "1",
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": "true",
        **extra,
    }


@pytest.fixture
def aws() -> Iterator[None]:
    shim.install()
    s3_policy.install()
    with mock_aws():
        yield


def test_the_types_moto_lacks_are_created_from_their_resolved_properties(aws: None) -> None:
    # Given a template with every type moto lacks, wired with Ref and GetAtt as CDK writes them
    names = {k: unique(k) for k in ("alarm", "db", "security", "job", "group", "bucket")}
    template = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": names["bucket"]}},
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": alarm_properties(names["alarm"], AlarmActions=[{"Ref": "Topic"}]),
            },
            "Database": {
                "Type": "AWS::Glue::Database",
                "Properties": {"CatalogId": ACCOUNT, "DatabaseInput": {"Name": names["db"]}},
            },
            "Security": {
                "Type": "AWS::Glue::SecurityConfiguration",
                "Properties": {
                    "Name": names["security"],
                    "EncryptionConfiguration": {"S3Encryptions": [{"S3EncryptionMode": "SSE-S3"}]},
                },
            },
            "Job": {
                "Type": "AWS::Glue::Job",
                "Properties": {
                    "Name": names["job"],
                    "Role": ROLE,
                    "Command": {"Name": "glueetl", "ScriptLocation": {"Fn::Sub": "s3://${Bucket}/etl.py"}},
                    "DefaultArguments": {"--dataset": "churn"},
                    "GlueVersion": "5.0",
                    "NumberOfWorkers": "2",
                    "WorkerType": "G.1X",
                    "Timeout": "30",
                    "SecurityConfiguration": {"Ref": "Security"},
                    "Tags": {"stage": "dev"},
                },
            },
            "Group": {
                "Type": "AWS::SageMaker::ModelPackageGroup",
                "Properties": {"ModelPackageGroupName": names["group"], "Tags": [{"Key": "stage", "Value": "dev"}]},
            },
            "BucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Bucket"},
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Resource": [{"Fn::Sub": "arn:aws:s3:::${Bucket}/*"}],
                            }
                        ]
                    },
                },
            },
            "TopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [{"Ref": "Topic"}],
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": {"Ref": "Topic"},
                            }
                        ]
                    },
                },
            },
        },
        "Outputs": {
            "AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}},
            "GroupArn": {"Value": {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]}},
            "TopicArn": {"Value": {"Ref": "Topic"}},
        },
    }
    # When the stack is created
    stack, outputs = create_stack(template)
    # Then each resource exists in its service as the template describes it
    [alarm] = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=[names["alarm"]])[
        "MetricAlarms"
    ]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Threshold"]) == (
        60,
        2,
        1,
        1.0,
    )
    assert alarm["AlarmActions"] == [outputs["TopicArn"]] and alarm["ActionsEnabled"] is True
    assert alarm["Dimensions"] == alarm_properties("x")["Dimensions"]
    assert outputs["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{names['alarm']}"
    glue = boto3.client("glue", region_name=REGION)
    assert glue.get_database(Name=names["db"])["Database"]["Name"] == names["db"]
    security = glue.get_security_configuration(Name=names["security"])["SecurityConfiguration"]
    assert security["EncryptionConfiguration"]["S3Encryption"] == [{"S3EncryptionMode": "SSE-S3"}]
    job = glue.get_job(JobName=names["job"])["Job"]
    assert job["Command"]["ScriptLocation"] == f"s3://{names['bucket']}/etl.py"
    assert (job["NumberOfWorkers"], job["Timeout"], job["SecurityConfiguration"]) == (2, 30, names["security"])
    assert job["DefaultArguments"] == {"--dataset": "churn"}
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    group = sagemaker.describe_model_package_group(ModelPackageGroupName=names["group"])
    assert outputs["GroupArn"] == group["ModelPackageGroupArn"]
    policy = json.loads(boto3.client("s3", region_name=REGION).get_bucket_policy(Bucket=names["bucket"])["Policy"])
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{names['bucket']}/*"]
    attributes = boto3.client("sns", region_name=REGION).get_topic_attributes(TopicArn=outputs["TopicArn"])[
        "Attributes"
    ]
    assert json.loads(attributes["Policy"])["Statement"][0]["Action"] == "sns:Publish"
    # When the stack is deleted, then so are they
    boto3.client("cloudformation", region_name=REGION).delete_stack(StackName=stack)
    assert (
        boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=[names["alarm"]])["MetricAlarms"]
        == []
    )
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        glue.get_job(JobName=names["job"])
    with pytest.raises(ClientError, match="NoSuchBucket"):  # the policy went, and the bucket with it
        boto3.client("s3", region_name=REGION).get_bucket_policy(Bucket=names["bucket"])


def test_a_resource_that_cannot_be_created_fails_the_stack_naming_it(aws: None) -> None:
    template = {
        "Resources": {"BrokenSecurity": {"Type": "AWS::Glue::SecurityConfiguration", "Properties": {"Name": "x"}}}
    }
    with pytest.raises(ClientError) as error:
        create_stack(template)
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"] == (
        "AWS::Glue::SecurityConfiguration BrokenSecurity: KeyError: 'EncryptionConfiguration'"
    )


def test_a_kms_key_keeps_its_template_tags(aws: None) -> None:
    template = {
        "Resources": {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {"KeyPolicy": {"Statement": []}, "Tags": [{"Key": "stage", "Value": "dev"}]},
            }
        },
        "Outputs": {"KeyId": {"Value": {"Ref": "Key"}}},
    }
    _, outputs = create_stack(template)
    tags = boto3.client("kms", region_name=REGION).list_resource_tags(KeyId=outputs["KeyId"])["Tags"]
    assert tags == [{"TagKey": "stage", "TagValue": "dev"}]


def test_a_kms_key_policy_reads_back_as_the_json_string_kms_returns(aws: None) -> None:
    # Given a template key with a policy document (CloudFormation takes it as an object)
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    template = {
        "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": document}}},
        "Outputs": {"KeyId": {"Value": {"Ref": "Key"}}},
    }
    # When the stack is created and the policy read back
    _, outputs = create_stack(template)
    policy = boto3.client("kms", region_name=REGION).get_key_policy(KeyId=outputs["KeyId"], PolicyName="default")
    # Then it is a JSON string (GetKeyPolicy's Policy member), equal to the template's document
    assert isinstance(policy["Policy"], str)
    assert json.loads(policy["Policy"]) == document


def test_cdk_bucket_notifications_are_applied(aws: None) -> None:
    bucket = unique("raw")
    template = {
        "Resources": {
            "Raw": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
            "Notifications": {
                "Type": "Custom::S3BucketNotifications",
                "Properties": {
                    "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:BucketNotificationsHandler",
                    "BucketName": {"Ref": "Raw"},
                    "NotificationConfiguration": {"EventBridgeConfiguration": {}},
                    "Managed": True,
                },
            },
        }
    }
    # Given a rule that sends S3 events to a queue
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    queue = sqs.create_queue(QueueName=unique("uploads"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}))
    events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
    # When the stack with CDK's bucket-notification resource is created and an object is uploaded
    create_stack(template)
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="datasets/churn/a.csv", Body=b"1")
    # Then the bucket sends its events to EventBridge
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "datasets/churn/a.csv"


HANDLER = """
import json

def handler(event, context):
    print("CFN-EVENT " + json.dumps(event))
    if event["RequestType"] == "Create":
        return {"PhysicalResourceId": "cleanup-" + event["ResourceProperties"]["Stage"], "Data": {"Answer": "42"}}
    return {}
"""


@pytest.fixture
def runtime(aws: None, tmp_path: Path) -> Iterator[LambdaRuntime]:
    lambda_invoke.install()
    paths = sysconfig.get_paths()
    lambdas = LambdaRuntime(tmp_path, "https://127.0.0.1:1", REGION, [paths["purelib"], paths["platlib"]])
    lambda_invoke.set_runtime(lambdas)
    boto3.client("iam", region_name=REGION).create_role(
        RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps({"Statement": []})
    )
    yield lambdas
    lambda_invoke.set_runtime(None)
    lambdas.stop()


FUNCTION = {"Handler": "index.handler", "Role": ROLE, "Runtime": "python3.12"}


def provider_stack(on_event_arn: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CDK provider-framework custom resource: the framework function knows the user's onEvent handler."""
    return {
        "Resources": {
            **(extra or {}),
            "Framework": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    **FUNCTION,
                    "FunctionName": unique("framework"),
                    "Code": {"ZipFile": "def handler(event, context):\n    raise RuntimeError('not called')\n"},
                    "Environment": {"Variables": {"USER_ON_EVENT_FUNCTION_ARN": on_event_arn}},
                },
            },
            "Cleanup": {
                "Type": "Custom::SageMakerCleanup",
                "Properties": {"ServiceToken": {"Fn::GetAtt": ["Framework", "Arn"]}, "Stage": "dev"},
            },
        },
        "Outputs": {"Answer": {"Value": {"Fn::GetAtt": ["Cleanup", "Answer"]}}, "Id": {"Value": {"Ref": "Cleanup"}}},
    }


def cfn_events(runtime: LambdaRuntime) -> list[dict[str, Any]]:
    return [
        json.loads(line.split("CFN-EVENT ", 1)[1])
        for invocation in runtime.invocations
        for line in invocation.logs.splitlines()
        if line.startswith("CFN-EVENT ")
    ]


def test_a_provider_framework_custom_resource_runs_the_user_handler(runtime: LambdaRuntime) -> None:
    # Given a user onEvent handler and a stack whose provider framework function points at it
    on_event = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=unique("on-event"), Code={"ZipFile": zip_package({"index.py": HANDLER})}, **FUNCTION
    )["FunctionArn"]
    # When the stack is created, then deleted
    stack, outputs = create_stack(provider_stack(on_event))
    boto3.client("cloudformation", region_name=REGION).delete_stack(StackName=stack)
    # Then the user handler got CloudFormation's Create then Delete requests, and its answer became the resource
    assert (outputs["Answer"], outputs["Id"]) == ("42", "cleanup-dev")
    events = cfn_events(runtime)
    assert [e["RequestType"] for e in events] == ["Create", "Delete"]
    assert (events[0]["LogicalResourceId"], events[0]["ResourceType"]) == ("Cleanup", "Custom::SageMakerCleanup")
    assert events[0]["ResourceProperties"]["Stage"] == "dev"
    assert events[1]["PhysicalResourceId"] == "cleanup-dev"
    assert {i.function for i in runtime.invocations} == {on_event.rsplit(":", 1)[1]}  # never the framework's


def test_a_stack_with_its_own_handler_deletes_in_any_order(runtime: LambdaRuntime) -> None:
    # Given the handler inside the stack (as the stack's cleanup function is): moto deletes in no particular order
    on_event = {
        "Type": "AWS::Lambda::Function",
        "Properties": {**FUNCTION, "FunctionName": unique("on-event"), "Code": {"ZipFile": HANDLER}},
    }
    stack, outputs = create_stack(provider_stack({"Fn::GetAtt": ["OnEvent", "Arn"]}, {"OnEvent": on_event}))
    assert outputs["Answer"] == "42"
    # When it is deleted, then it is gone, whether or not the handler still existed for the Delete request
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.delete_stack(StackName=stack)
    with pytest.raises(ClientError, match=f"Stack with id {stack} does not exist"):
        cloudformation.describe_stacks(StackName=stack)
    assert next(e["RequestType"] for e in cfn_events(runtime)) == "Create"


PRIVATE_NETWORK_TYPES = (
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::FlowLog",
    "AWS::Glue::Connection",
)


@pytest.mark.parametrize(
    ("resource_type", "missing"),
    [
        ("AWS::Scheduler::Schedule", ["AWS::Scheduler::Schedule"]),
        ("AWS::CloudWatch::Alarm", []),
        ("Custom::Anything", []),
        ("AWS::S3::Bucket", []),
        # a private stage's network (prod): moto's EC2 models and this shim's
        *((kind, []) for kind in PRIVATE_NETWORK_TYPES),
    ],
)
def test_unsupported_types(resource_type: str, missing: list[str]) -> None:
    template = {"Resources": {"R": {"Type": resource_type}, "Other": {"Type": "AWS::SNS::Topic"}}}
    assert shim.unsupported_types(template) == missing


def test_install_is_idempotent() -> None:
    shim.install()
    first = parsing.resource_class_from_type
    shim.install()
    assert parsing.resource_class_from_type is first
    assert first("AWS::CloudWatch::Alarm") is shim.Alarm
    assert first("Custom::S3BucketNotifications") is shim.CustomResource


# ---- the real stack, synthesized and deployed into the local cloud -------------------------------------


@heavy_fixture
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, provision.Deployment]]:
    assembly = provision.synth("dev", tmp_path_factory.mktemp("cdk") / "cdk.out")
    with running_cloud() as cloud:
        yield cloud, cloud.deploy("dev", assembly=assembly)


def resources_of(deployment: provision.Deployment, resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in deployment.template["Resources"].items() if v["Type"] == resource_type}


def test_every_resource_of_the_synthesized_stack_is_deployed(deployed: tuple[Any, provision.Deployment]) -> None:
    _, deployment = deployed
    assert shim.unsupported_types(deployment.template) == []
    expected = {k for k, v in deployment.template["Resources"].items() if v["Type"] != "AWS::CDK::Metadata"}
    assert expected <= set(deployment.resources)
    assert {deployment.resource_types[k] for k in expected} >= {"AWS::CloudWatch::Alarm", "AWS::Glue::Job"}


def test_the_stacks_alarms_exist_as_synthesized(deployed: tuple[Any, provision.Deployment]) -> None:
    cloud, deployment = deployed
    alarms = {a["AlarmName"]: a for a in cloud.clients.cloudwatch.describe_alarms()["MetricAlarms"]}
    synthesized = resources_of(deployment, "AWS::CloudWatch::Alarm")
    assert synthesized
    for logical_id, resource in synthesized.items():
        properties = resource["Properties"]
        alarm = alarms[deployment.resources[logical_id]]
        for key in ("MetricName", "Namespace", "ComparisonOperator", "EvaluationPeriods", "TreatMissingData"):
            if key in properties:
                assert alarm[key] == properties[key], (logical_id, key)
        assert alarm["Threshold"] == float(properties["Threshold"])
        assert len(alarm.get("AlarmActions", [])) == len(properties.get("AlarmActions", []))


def test_the_stacks_glue_job_group_and_state_machines_are_usable(deployed: tuple[Any, provision.Deployment]) -> None:
    cloud, deployment = deployed
    [job_name] = deployment.physical("AWS::Glue::Job").values()
    job = cloud.clients.glue.get_job(JobName=job_name)["Job"]
    extra = job["DefaultArguments"]["--extra-py-files"]
    bucket, key = extra[5:].split("/", 1)
    assert cloud.clients.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # the published asset
    group = deployment.outputs["ModelPackageGroup"]
    assert cloud.clients.sagemaker.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupStatus"]
    for output in ("TrainingStateMachine", "DeploymentStateMachine"):
        described = cloud.clients.stepfunctions.describe_state_machine(stateMachineArn=deployment.outputs[output])
        assert described["status"] == "ACTIVE"  # in the backend that executes


def test_the_stacks_buckets_take_https_and_notify_eventbridge(deployed: tuple[Any, provision.Deployment]) -> None:
    cloud, deployment = deployed
    raw = deployment.outputs["RawBucket"]
    cloud.clients.s3.put_object(Bucket=raw, Key=f"probe/{unique('object')}.txt", Body=b"x")  # TLS only: allowed
    from moto.s3.models import s3_backends

    assert s3_backends[ACCOUNT]["aws"].get_bucket(raw).notification_configuration.event_bridge == {}


def test_the_stacks_functions_log_where_the_template_says_and_use_the_public_layers(
    deployed: tuple[Any, provision.Deployment],
) -> None:
    cloud, deployment = deployed
    from moto.awslambda.utils import get_backend

    backend = get_backend(ACCOUNT, REGION)
    functions = resources_of(deployment, "AWS::Lambda::Function")
    layer_values = {
        v
        for v in (ssm_public.public_value(n, REGION) for n in provision._ssm_parameter_names(deployment.template))
        if v
    }
    for logical_id, resource in functions.items():
        function = backend.get_function(deployment.resources[logical_id])
        group = (resource["Properties"].get("LoggingConfig") or {}).get("LogGroup")
        if group:
            assert lambda_invoke.spec_of(function).log_group == deployment.resources[group["Ref"]], logical_id
        for layer in cloud.clients.lambda_.get_function(FunctionName=function.function_name)["Configuration"].get(
            "Layers", []
        ):
            assert layer["Arn"] in layer_values, (logical_id, layer["Arn"])


def test_a_glue_network_connection_and_a_group_to_group_egress_rule_are_created(aws: None) -> None:
    # Given a VPC with a security group (moto's models)
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/20")["Subnet"]
    group = ec2.create_security_group(GroupName="glue", Description="glue", VpcId=vpc)["GroupId"]
    # When the shim creates a NETWORK connection and a self-referencing egress rule
    connection_input = {
        "Name": "etl-network",
        "ConnectionType": "NETWORK",
        "PhysicalConnectionRequirements": {
            "AvailabilityZone": subnet["AvailabilityZone"],
            "SubnetId": subnet["SubnetId"],
            "SecurityGroupIdList": [group],
        },
    }
    connection = shim.GlueConnection.create("Conn", {"ConnectionInput": connection_input}, ACCOUNT, REGION, {})
    properties = {"GroupId": group, "IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535}
    shim.SecurityGroupEgress.create("Egress", {**properties, "DestinationSecurityGroupId": group}, ACCOUNT, REGION, {})
    # Then Glue has the connection under its name and the group the rule
    found = boto3.client("glue", region_name=REGION).get_connection(Name="etl-network")["Connection"]
    assert (connection.physical_resource_id, found["Name"]) == ("etl-network", "etl-network")
    assert found["PhysicalConnectionRequirements"]["SubnetId"] == subnet["SubnetId"]
    (described,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    assert {
        (rule.get("ToPort"), pair["GroupId"])
        for rule in described["IpPermissionsEgress"]
        for pair in rule["UserIdGroupPairs"]
    } == {(65535, group)}
