"""CloudFormation resource types the pinned moto skips, created from their resolved template properties.

moto 5.2.5's CloudFormation silently skips resource types it has no model for (the stack still says
CREATE_COMPLETE) and fails on any ``Fn::GetAtt`` that points at one. This shim registers a model for each
type our synthesized stack uses that moto lacks. moto resolves the intrinsics (Ref, GetAtt, Sub, Join, ...)
as usual; each model turns the resolved ``Properties`` into the service API call that CloudFormation itself
would make, against the same moto backends. Nothing here lists our resources: only resource *types*.

Custom resources: ``Custom::S3BucketNotifications`` (CDK's bucket-notification handler) applies its
``NotificationConfiguration``; any other ``Custom::`` resource whose service token is a CDK provider
framework function has its user ``onEvent`` handler invoked with the CloudFormation request, as the
framework's Node.js function would (create on stack create, delete on stack delete).

Stack deletion runs in reverse dependency order (moto deletes in set order and only knows ``DependsOn``, so a
custom resource could outlive the function that must clean up after it): references through ``Ref``,
``Fn::GetAtt``, ``Fn::Sub`` and ``DependsOn`` all count, as in CloudFormation.

Also fixed here: moto's ``AWS::KMS::Key`` model stores ``KeyPolicy`` as given (GetKeyPolicy would return an
object, not the JSON string KMS returns) and reads tags as ``TagKey``/``TagValue`` while templates carry
``Key``/``Value``; moto's ``AWS::S3::Bucket`` model applies only encryption and tags, so the rest of the bucket's
properties (versioning, public access block, ownership controls, lifecycle rules, server access logging,
notification configuration) are applied through the S3 API after moto created the bucket. moto's
``AWS::Logs::LogGroup`` model drops ``KmsKeyId``, and its ``Fn::GetAtt Arn`` lacks the ``:*`` suffix CloudFormation
returns
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html#aws-resource-logs-loggroup-return-values):
a policy granting ``logs:PutLogEvents`` on it would otherwise match no log stream.

Stack updates (``_update_in_place``): moto's ``AWS::Logs::LogGroup`` has no update and its ``AWS::SQS::Queue`` update
applies two attributes only; both are updated in place here (``_log_group_update``, ``_queue_update``), a queue
keeping its URL, and a queue policy moves with its ``Queues``.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import boto3
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.events import models as events_models
from moto.kms import models as kms_models
from moto.logs import models as logs_models
from moto.s3 import models as s3_models
from moto.s3.cloud_formation import cfn_to_api_encryption
from moto.sqs import models as sqs_models
from moto.utilities.tagging_service import TaggingService
from moto.utilities.utils import get_partition

_installed = False
_original_class_from_type = parsing.resource_class_from_type
_original_name_type = parsing.resource_name_property_from_type
_original_kms_create = kms_models.Key.create_from_cloudformation_json
_original_bucket_create = s3_models.FakeBucket.create_from_cloudformation_json
_original_bucket_update = s3_models.FakeBucket.update_from_cloudformation_json
_original_log_group_create = logs_models.LogGroup.create_from_cloudformation_json


def _client(service: str, region: str) -> Any:
    """A client of the same moto (decorator mode: intercepted; server mode: AWS_ENDPOINT_URL)."""
    return boto3.client(service, region_name=region)


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in properties.get("Tags", []) or []]


class LocalResource(CloudFormationModel):
    """A resource created through its service API; subclasses say how."""

    type_name: ClassVar[str] = ""
    name_property: ClassVar[str] = ""
    attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, region: str, account_id: str, properties: dict[str, Any], **attrs: Any) -> None:
        self.name = name
        self.region = region
        self.account_id = account_id
        self.properties = properties
        self.attrs = attrs

    # ---- the CloudFormationModel protocol ----
    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.type_name

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.name_property

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attrs:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            raise UnformattedGetAttTemplateException()
        return self.attrs[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> LocalResource:
        properties = cloudformation_json.get("Properties", {})
        try:
            return cls.create(resource_name, properties, account_id, region_name, kwargs)
        except Exception as error:  # surface the reason as a CloudFormation validation error, not a 500
            from moto.cloudformation.exceptions import ValidationError

            logical_id = kwargs.get("LogicalId", resource_name)
            raise ValidationError(
                logical_id, message=f"{cls.type_name} {logical_id}: {type(error).__name__}: {error}"
            ) from error

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LocalResource:
        return cls.update(original_resource, new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def update(cls, original: Any, name: str, resource_json: dict[str, Any], account_id: str, region: str) -> Any:
        """A changed resource: replaced (the old one deleted, a new one created) unless a type updates in place."""
        original.delete(account_id, region)
        return cls.create_from_cloudformation_json(name, resource_json, account_id, region)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        return None

    # ---- per type ----
    @classmethod
    def create(
        cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]
    ) -> LocalResource:
        raise NotImplementedError

    def delete(self, account_id: str, region: str) -> None:
        return None


class Alarm(LocalResource):
    type_name = "AWS::CloudWatch::Alarm"
    name_property = "AlarmName"
    attributes = ("Arn",)
    _FIELDS = (
        "AlarmName",
        "AlarmDescription",
        "ActionsEnabled",
        "OKActions",
        "AlarmActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "Unit",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "ThresholdMetricId",
    )

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        request = {k: properties[k] for k in cls._FIELDS if k in properties}
        request["AlarmName"] = properties.get("AlarmName", name)
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in request:
                request[key] = int(request[key])
        if "Threshold" in request:
            request["Threshold"] = float(request["Threshold"])
        if "ActionsEnabled" in request:
            request["ActionsEnabled"] = str(request["ActionsEnabled"]).lower() == "true"
        _client("cloudwatch", region).put_metric_alarm(**request)
        arn = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{request['AlarmName']}"
        return cls(request["AlarmName"], region, account_id, properties, Arn=arn)

    def delete(self, account_id: str, region: str) -> None:
        _client("cloudwatch", region).delete_alarms(AlarmNames=[self.name])

    @classmethod
    def update(cls, original: Any, name: str, resource_json: dict[str, Any], account_id: str, region: str) -> Any:
        """The same alarm name: PutMetricAlarm again, which updates the alarm and keeps its state (an update
        needs no interruption); a new ``AlarmName`` replaces the alarm."""
        alarm_name = resource_json.get("Properties", {}).get("AlarmName", original.name)
        if alarm_name != original.name:
            original.delete(account_id, region)
        return cls.create_from_cloudformation_json(alarm_name, resource_json, account_id, region)


class CompositeAlarm(LocalResource):
    """``AWS::CloudWatch::CompositeAlarm`` through PutCompositeAlarm (``cloudwatch_alarms`` implements it)."""

    type_name = "AWS::CloudWatch::CompositeAlarm"
    name_property = "AlarmName"
    attributes = ("Arn",)
    _FIELDS = (
        "AlarmName",
        "AlarmRule",
        "AlarmDescription",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "ActionsSuppressor",
        "ActionsSuppressorWaitPeriod",
        "ActionsSuppressorExtensionPeriod",
    )

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        request = {k: properties[k] for k in cls._FIELDS if k in properties}
        request["AlarmName"] = properties.get("AlarmName", name)
        if "ActionsEnabled" in request:
            request["ActionsEnabled"] = str(request["ActionsEnabled"]).lower() == "true"
        _client("cloudwatch", region).put_composite_alarm(**request)
        arn = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{request['AlarmName']}"
        return cls(request["AlarmName"], region, account_id, properties, Arn=arn)

    def delete(self, account_id: str, region: str) -> None:
        _client("cloudwatch", region).delete_alarms(AlarmNames=[self.name])


class GlueDatabase(LocalResource):
    type_name = "AWS::Glue::Database"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        database_input = dict(properties["DatabaseInput"])
        _client("glue", region).create_database(DatabaseInput=database_input)
        return cls(database_input["Name"], region, account_id, properties)

    def delete(self, account_id: str, region: str) -> None:
        _client("glue", region).delete_database(Name=self.name)


class GlueSecurityConfiguration(LocalResource):
    type_name = "AWS::Glue::SecurityConfiguration"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        configuration = dict(properties["EncryptionConfiguration"])
        if "S3Encryptions" in configuration:  # the template's plural is the API's S3Encryption list
            configuration["S3Encryption"] = configuration.pop("S3Encryptions")
        _client("glue", region).create_security_configuration(
            Name=properties["Name"], EncryptionConfiguration=configuration
        )
        return cls(properties["Name"], region, account_id, properties)

    def delete(self, account_id: str, region: str) -> None:
        _client("glue", region).delete_security_configuration(Name=self.name)


class GlueJob(LocalResource):
    type_name = "AWS::Glue::Job"
    name_property = "Name"
    _FIELDS = (
        "Description",
        "Role",
        "ExecutionProperty",
        "Command",
        "DefaultArguments",
        "NonOverridableArguments",
        "MaxRetries",
        "Timeout",
        "SecurityConfiguration",
        "GlueVersion",
        "NumberOfWorkers",
        "WorkerType",
        "ExecutionClass",
        "Connections",
    )

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        request = {k: properties[k] for k in cls._FIELDS if k in properties}
        for key in ("MaxRetries", "Timeout", "NumberOfWorkers"):
            if key in request:
                request[key] = int(request[key])
        job_name = properties.get("Name", name)
        tags = properties.get("Tags") or {}
        _client("glue", region).create_job(Name=job_name, Tags=dict(tags), **request)
        return cls(job_name, region, account_id, properties)

    def delete(self, account_id: str, region: str) -> None:
        _client("glue", region).delete_job(JobName=self.name)


class GlueConnection(LocalResource):
    """``AWS::Glue::Connection`` (a private stage's NETWORK connection of the ETL job) through CreateConnection;
    ``Ref`` is the connection's name, as CloudFormation returns it."""

    type_name = "AWS::Glue::Connection"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        connection_input = dict(properties["ConnectionInput"])
        connection_input.setdefault("ConnectionProperties", {})
        _client("glue", region).create_connection(ConnectionInput=connection_input)
        return cls(connection_input["Name"], region, account_id, properties)

    def delete(self, account_id: str, region: str) -> None:
        _client("glue", region).delete_connection(ConnectionName=self.name)


class SecurityGroupEgress(LocalResource):
    """``AWS::EC2::SecurityGroupEgress`` (a rule between two security groups; moto models only the ingress
    resource) through AuthorizeSecurityGroupEgress. The local cloud filters no traffic: the rule is a record."""

    type_name = "AWS::EC2::SecurityGroupEgress"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        permission: dict[str, Any] = {"IpProtocol": str(properties["IpProtocol"])}
        for key in ("FromPort", "ToPort"):
            if key in properties:
                permission[key] = int(properties[key])
        if "DestinationSecurityGroupId" in properties:
            permission["UserIdGroupPairs"] = [{"GroupId": properties["DestinationSecurityGroupId"]}]
        if "CidrIp" in properties:
            permission["IpRanges"] = [{"CidrIp": properties["CidrIp"]}]
        _client("ec2", region).authorize_security_group_egress(
            GroupId=properties["GroupId"], IpPermissions=[permission]
        )
        return cls(f"{properties['GroupId']}-egress-{name}", region, account_id, properties)


class ModelPackageGroup(LocalResource):
    type_name = "AWS::SageMaker::ModelPackageGroup"
    attributes = ("ModelPackageGroupArn", "ModelPackageGroupStatus", "CreationTime")

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        group = properties["ModelPackageGroupName"]
        request: dict[str, Any] = {"ModelPackageGroupName": group}
        if "ModelPackageGroupDescription" in properties:
            request["ModelPackageGroupDescription"] = properties["ModelPackageGroupDescription"]
        if _tags(properties):
            request["Tags"] = _tags(properties)
        arn = _client("sagemaker", region).create_model_package_group(**request)["ModelPackageGroupArn"]
        return cls(arn, region, account_id, properties, ModelPackageGroupArn=arn, ModelPackageGroupStatus="Completed")

    def delete(self, account_id: str, region: str) -> None:
        # moto 5.2.5 has no DeleteModelPackageGroup (NotImplementedError): remove the group from its backend
        from moto.sagemaker.models import sagemaker_backends

        sagemaker_backends[account_id][region].model_package_groups.pop(self.properties["ModelPackageGroupName"], None)


class BucketPolicy(LocalResource):
    type_name = "AWS::S3::BucketPolicy"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        bucket = properties["Bucket"]
        _client("s3", region).put_bucket_policy(Bucket=bucket, Policy=json.dumps(properties["PolicyDocument"]))
        return cls(bucket, region, account_id, properties)

    def delete(self, account_id: str, region: str) -> None:
        from botocore.exceptions import ClientError

        try:
            _client("s3", region).delete_bucket_policy(Bucket=self.name)
        except ClientError as error:  # moto deletes a stack's resources in no particular order: the bucket
            if error.response["Error"]["Code"] != "NoSuchBucket":  # may be gone already, and its policy with it
                raise


class TopicPolicy(LocalResource):
    type_name = "AWS::SNS::TopicPolicy"
    attributes = ("Id",)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        client = _client("sns", region)
        for topic in properties["Topics"]:
            client.set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
            )
        return cls(name, region, account_id, properties, Id=name)


def _queue_name(url: Any) -> str:
    return str(url).rstrip("/").rsplit("/", 1)[-1]


class QueuePolicy(LocalResource):
    """``AWS::SQS::QueuePolicy``: SetQueueAttributes ``Policy`` on each queue (``Queues``: the queues' URLs). An
    update sets the new document in place (no interruption) and removes the policy from a queue no longer listed;
    a delete removes it from every queue
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queuepolicy.html)."""

    type_name = "AWS::SQS::QueuePolicy"
    attributes = ("Id",)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        client = _client("sqs", region)
        for url in properties["Queues"]:
            queue = client.get_queue_url(QueueName=_queue_name(url))["QueueUrl"]
            client.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})
        return cls(name, region, account_id, properties, Id=name)

    @classmethod
    def update(cls, original: Any, name: str, resource_json: dict[str, Any], account_id: str, region: str) -> Any:
        listed = {_queue_name(url) for url in resource_json.get("Properties", {}).get("Queues", [])}
        _clear_queue_policies(
            [url for url in original.properties.get("Queues", []) if _queue_name(url) not in listed], region
        )
        properties = resource_json.get("Properties", {})
        return cls.create(original.name, properties, account_id, region, {})

    def delete(self, account_id: str, region: str) -> None:
        _clear_queue_policies(self.properties.get("Queues", []), region)


def _clear_queue_policies(urls: list[Any], region: str) -> None:
    """SetQueueAttributes with an empty ``Policy`` removes a queue's policy; a queue already gone has none."""
    from botocore.exceptions import ClientError

    client = _client("sqs", region)
    for url in urls:
        try:
            queue = client.get_queue_url(QueueName=_queue_name(url))["QueueUrl"]
        except ClientError as error:
            if "NonExistentQueue" not in error.response["Error"]["Code"]:
                raise
            continue
        client.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": ""})


# ---- custom resources ----------------------------------------------------------------------------------

CustomHandler = Callable[[str, dict[str, Any], dict[str, Any], str], dict[str, Any]]
"""(function ARN, CloudFormation request, resolved properties, region) -> handler response."""


def invoke_function(function_arn: str, request: dict[str, Any], region: str) -> dict[str, Any]:
    """Invoke a Lambda function synchronously through the Lambda API (the local runtime runs it)."""
    response = _client("lambda", region).invoke(FunctionName=function_arn, Payload=json.dumps(request).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise RuntimeError(f"custom resource handler {function_arn} failed: {message}")
    return payload or {}


class CustomResource(LocalResource):
    """``Custom::*``: S3 bucket notifications, or a CDK provider-framework resource."""

    type_name = "Custom::*"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str, context: dict[str, Any]):  # type: ignore[no-untyped-def]
        resource_type = context.get("ResourceType", "")
        if resource_type == "Custom::S3BucketNotifications":
            _client("s3", region).put_bucket_notification_configuration(
                Bucket=properties["BucketName"],
                NotificationConfiguration=properties.get("NotificationConfiguration", {}),
            )
            return cls(f"{properties['BucketName']}-notifications", region, account_id, properties)
        handler = _user_handler(properties["ServiceToken"], region)
        request = _request("Create", name, properties, context)
        response = invoke_function(handler, request, region)
        physical_id = response.get("PhysicalResourceId") or request["RequestId"]
        resource = cls(physical_id, region, account_id, properties, **dict(response.get("Data") or {}))
        resource.context = {**context, "handler": handler}
        return resource

    context: dict[str, Any]

    @classmethod
    def update(cls, original: Any, name: str, resource_json: dict[str, Any], account_id: str, region: str) -> Any:
        """A provider-framework resource whose properties changed gets an ``Update`` request with its physical id
        and ``OldResourceProperties``; a new physical id in the answer is a replacement, and the old resource then
        gets its ``Delete`` (CloudFormation sends it in the cleanup phase)
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html).
        Bucket notifications are applied again."""
        context = getattr(original, "context", None)
        properties = resource_json.get("Properties", {})
        if not context:
            return cls.create_from_cloudformation_json(name, resource_json, account_id, region)
        request = _request("Update", original.name, properties, context)
        request["PhysicalResourceId"] = original.name
        request["OldResourceProperties"] = original.properties
        response = invoke_function(context["handler"], request, region)
        physical_id = response.get("PhysicalResourceId") or original.name
        if physical_id != original.name:
            original.delete(account_id, region)
        resource = cls(physical_id, region, account_id, properties, **dict(response.get("Data") or {}))
        resource.context = context
        return resource

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # any key of the handler's Data (moto checks Fn::GetAtt before anything is created)

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.attrs.get(attribute_name, "")

    def delete(self, account_id: str, region: str) -> None:
        context = getattr(self, "context", None)
        if not context:
            return
        request = _request("Delete", self.name, self.properties, context)
        request["PhysicalResourceId"] = self.name
        from botocore.exceptions import ClientError

        try:
            invoke_function(context["handler"], request, region)
        except ClientError as error:  # moto deletes a stack's resources in no particular order: a handler
            if error.response["Error"]["Code"] != "ResourceNotFoundException":  # of the same stack may be gone
                raise


def _user_handler(service_token: str, region: str) -> str:
    """The user onEvent function behind a CDK provider framework token (or the token itself)."""
    configuration = _client("lambda", region).get_function_configuration(FunctionName=service_token)
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    return str(variables.get("USER_ON_EVENT_FUNCTION_ARN") or service_token)


def _request(kind: str, name: str, properties: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ServiceToken": properties.get("ServiceToken"),
        "ResponseURL": "http://localhost/cfn-response-unused",
        "StackId": context.get("StackId"),
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": context.get("LogicalId", name),
        "ResourceType": context.get("ResourceType"),
        "ResourceProperties": properties,
    }


MODELS: tuple[type[LocalResource], ...] = (
    Alarm,
    CompositeAlarm,
    GlueDatabase,
    GlueSecurityConfiguration,
    GlueJob,
    GlueConnection,
    SecurityGroupEgress,
    ModelPackageGroup,
    BucketPolicy,
    TopicPolicy,
    QueuePolicy,
)


def _kms_key_with_tags(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any):  # type: ignore[no-untyped-def]
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("KeyPolicy"), dict):  # GetKeyPolicy returns the document as a JSON string
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        if properties.get("Tags"):
            properties["Tags"] = [
                {"TagKey": t.get("TagKey", t.get("Key")), "TagValue": t.get("TagValue", t.get("Value"))}
                for t in properties["Tags"]
            ]
        return original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kw)  # type: ignore[attr-defined]

    return create


def _log_group_with_key(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``AWS::Logs::LogGroup`` model passes the template's ``KmsKeyId`` where its backend reads the API's
    ``kmsKeyId``, so the group would lose its key; CloudFormation associates it (the API's CreateLogGroup
    ``kmsKeyId``, https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html)."""

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any):  # type: ignore[no-untyped-def]
        group = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kw)  # type: ignore[attr-defined]
        key = cloudformation_json.get("Properties", {}).get("KmsKeyId")
        if key:
            group.kms_key_id = str(key)
        return group

    return create


def lifecycle_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CloudFormation ``LifecycleConfiguration.Rules`` as the PutBucketLifecycleConfiguration API's rules."""
    converted = []
    for rule in rules:
        api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled")}
        api["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "NoncurrentVersionExpiration" in rule:
            api["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
            }
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            }
        if rule.get("Transitions"):
            api["Transitions"] = [
                {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in rule["Transitions"]
            ]
        converted.append(api)
    return converted


def apply_bucket_properties(bucket: str, properties: dict[str, Any], region: str) -> None:
    """The bucket properties moto's CloudFormation model ignores, through the S3 API."""
    s3 = _client("s3", region)
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]}
        )
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=dict(properties["PublicAccessBlockConfiguration"])
        )
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=dict(properties["OwnershipControls"]))
    if "LifecycleConfiguration" in properties:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": lifecycle_rules(properties["LifecycleConfiguration"]["Rules"])},
        )
    if "LoggingConfiguration" in properties:
        logging = properties["LoggingConfiguration"]
        # The log bucket's policy (which lets the logging service write) refers to this bucket, so CloudFormation
        # creates it after this bucket; S3 accepts the configuration anyway, moto checks the policy right away.
        # Applied once the stack's resources exist (``apply_deferred``).
        _deferred.append(
            lambda: s3.put_bucket_logging(
                Bucket=bucket,
                BucketLoggingStatus={
                    "LoggingEnabled": {
                        "TargetBucket": logging["DestinationBucketName"],
                        "TargetPrefix": logging.get("LogFilePrefix", ""),
                    }
                },
            )
        )
    if "NotificationConfiguration" in properties:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=dict(properties["NotificationConfiguration"])
        )


_deferred: list[Callable[[], Any]] = []
_SUB_NAMES = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def references(node: Any, logical_ids: set[str]) -> set[str]:
    """The logical ids a resource's JSON refers to (Ref, Fn::GetAtt, Fn::Sub, DependsOn)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(_SUB_NAMES.findall(str(text)))
                if isinstance(value, list) and len(value) > 1:
                    found |= references(value[1], logical_ids)
            elif key == "DependsOn":
                found.update([value] if isinstance(value, str) else value)
            else:
                found |= references(value, logical_ids)
    elif isinstance(node, list):
        for item in node:
            found |= references(item, logical_ids)
    return found & logical_ids


def deletion_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids, dependents before what they depend on (CloudFormation's delete order)."""
    ids = set(resources)
    depends = {name: references(body, ids) - {name} for name, body in resources.items()}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return
        visiting.add(name)
        for dependency in sorted(depends[name]):
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in sorted(resources):
        visit(name)
    return list(reversed(order))


RETAINED_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
"""``DeletionPolicy`` values that keep the resource when its stack is deleted or when an update removes it from the
template (RetainExceptOnCreate deletes only a resource whose creation failed, which a completed stack has none of):
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html"""


def retained(resource_json: dict[str, Any]) -> bool:
    return resource_json.get("DeletionPolicy") in RETAINED_POLICIES


def _delete_resources(self: Any, resources: dict[str, Any]) -> list[str]:
    """Delete ``resources`` (logical id -> its JSON) of the stack in reverse dependency order, keeping the retained
    ones; every one leaves the stack. Failures are retried after the others, like moto's loop. Returns the logical
    ids of the retained resources."""
    order = deletion_order(resources)
    kept = [name for name in order if retained(resources[name])]
    pending = [name for name in order if name not in kept]
    last_error: Exception | None = None
    while pending:
        progressed = False
        for name in list(pending):
            parsed = self._parsed_resources.get(name)
            try:
                if parsed is not None and not isinstance(parsed, str):
                    self._delete_resource(parsed, resources[name])
            except Exception as error:  # retried after the others, like moto's loop
                last_error = error
                continue
            self._parsed_resources.pop(name, None)
            pending.remove(name)
            progressed = True
        if not progressed:
            assert last_error is not None
            raise last_error
    for name in kept:
        self._parsed_resources.pop(name, None)
    return kept


def _delete_in_order(self: Any) -> None:
    """moto's ResourceMap.delete, in reverse dependency order, keeping retained resources."""
    _delete_resources(self, dict(self._resource_json_map))


_original_create = parsing.ResourceMap.create


def _create_keeping_the_template(self: Any, template: dict[str, Any]) -> bool:
    """moto's ResourceMap.create, keeping the resources' JSON as given for the next update's diff."""
    self._as_deployed = copy.deepcopy(template["Resources"])
    return bool(_original_create(self, template))


def _update_in_place(self: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
    """moto's ResourceMap.update in CloudFormation's order
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html):
    resources new to the template are created, changed ones updated (each type's update: in place when its model
    can, else replaced), and only then, in the cleanup phase, the ones the template no longer has are deleted, in
    reverse dependency order, except those whose ``DeletionPolicy`` retains them (they leave the stack and stay).
    Unchanged resources are not touched. moto removes first, deletes retained resources too, keeps removed ones
    listed as stack resources and drops a changed resource whose type has no update from the stack silently."""
    previous = dict(self._resource_json_map)
    # moto writes into the template it creates from (an absent Properties becomes {}, generated names appear):
    # compare the new template with the one the stack was deployed from, as given
    self._resource_json_map = getattr(self, "_as_deployed", previous)
    diff = self.build_resource_diff(template, parameters)
    self._as_deployed = copy.deepcopy(template["Resources"])
    self._template = template
    if parameters:
        self.input_parameters = parameters
    self.load_mapping()
    self.load_parameters()
    self.load_conditions()
    self._resource_json_map = template["Resources"]
    for name in deletion_order({n: template["Resources"][n] for n in diff["Add"]})[::-1]:
        _ = self[name]  # ResourceMap creates a resource (and what it refers to) on first access
    pending, last_error = list(diff["Modify"]), None
    for _attempt in range(parsing.MAX_UPDATE_ATTEMPTS):
        for name in list(pending):
            try:
                updated = parsing.parse_and_update_resource(
                    name, template["Resources"][name], self, account_id=self._account_id, region_name=self._region_name
                )
            except Exception as error:  # a dependency not updated yet: retried in the next pass, like moto
                last_error = error
                continue
            if updated is None:
                kind = template["Resources"][name]["Type"]
                raise parsing.ValidationError(name, message=f"{name}: no update for {kind} in the local cloud")
            self._parsed_resources[name] = updated
            pending.remove(name)
        if not pending:
            break
    if pending:
        assert last_error is not None
        raise last_error
    _delete_resources(self, {name: previous[name] for name in diff["Remove"]})


def apply_deferred() -> int:
    """Apply what had to wait for the whole stack (server access logging); returns how many."""
    done = 0
    while _deferred:
        _deferred.pop(0)()
        done += 1
    return done


def _bucket_with_properties(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any):  # type: ignore[no-untyped-def]
        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kw)  # type: ignore[attr-defined]
        apply_bucket_properties(bucket.name, cloudformation_json.get("Properties", {}), region_name)
        return bucket

    return create


def install() -> None:
    """Register the models (idempotent)."""
    global _installed
    if _installed:
        return
    by_type = {model.type_name: model for model in MODELS}

    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type.startswith("Custom::"):
            return CustomResource
        if resource_type in by_type:
            return by_type[resource_type]
        return _original_class_from_type(resource_type)

    parsing.resource_class_from_type = resource_class_from_type  # type: ignore[assignment]

    def resource_name_property_from_type(resource_type: str) -> str | None:
        if resource_type in by_type:
            return by_type[resource_type].name_property or None
        return _original_name_type(resource_type)

    parsing.resource_name_property_from_type = resource_name_property_from_type  # type: ignore[assignment]
    kms_models.Key.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _kms_key_with_tags(_original_kms_create)
    )
    s3_models.FakeBucket.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _bucket_with_properties(_original_bucket_create)
    )
    parsing.ResourceMap.delete = _delete_in_order  # type: ignore[method-assign]
    parsing.ResourceMap.update = _update_in_place  # type: ignore[method-assign]
    parsing.ResourceMap.create = _create_keeping_the_template  # type: ignore[method-assign]
    s3_models.FakeBucket.update_from_cloudformation_json = classmethod(_bucket_update)  # type: ignore[method-assign,assignment]
    events_models.Rule.update_from_cloudformation_json = classmethod(_rule_update)  # type: ignore[method-assign,assignment]
    logs_models.LogGroup.get_cfn_attribute = _log_group_attribute  # type: ignore[method-assign]
    logs_models.LogGroup.update_from_cloudformation_json = classmethod(_log_group_update)  # type: ignore[method-assign,assignment]
    sqs_models.Queue.update_from_cloudformation_json = classmethod(_queue_update)  # type: ignore[method-assign,assignment]
    logs_models.LogGroup.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _log_group_with_key(_original_log_group_create)
    )
    _installed = True


_original_log_group_attribute = logs_models.LogGroup.get_cfn_attribute


def _bucket_update(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    """A bucket's properties changed without a new ``BucketName``: updated in place (no interruption), as
    CloudFormation does. moto 5.2.5 reads ``Properties.BucketName`` for the tags (a KeyError on a generated name:
    every CDK bucket) and applies nothing but encryption and tags; here the properties its create ignores are
    applied too (``apply_bucket_properties``: lifecycle rules, versioning, ...), and a lifecycle configuration
    the template no longer has is deleted. A new ``BucketName`` keeps moto's replacement."""
    properties = cloudformation_json.get("Properties") or {}
    name = original_resource.name
    if properties.get("BucketName", name) != name:
        return _original_bucket_update(
            original_resource, new_resource_name, cloudformation_json, account_id, region_name
        )
    # encryption and tags as moto's own create applies them, on the bucket's real name
    backend = s3_models.s3_backends[account_id][get_partition(region_name)]
    if "BucketEncryption" in properties:
        backend.put_bucket_encryption(
            bucket_name=name, encryption=cfn_to_api_encryption(properties["BucketEncryption"])
        )
    if "Tags" in properties:
        backend.put_bucket_tagging(bucket_name=name, tags=TaggingService().flatten_tag_list(properties["Tags"]))  # type: ignore[arg-type]
    if "LifecycleConfiguration" not in properties:
        _client("s3", region_name).delete_bucket_lifecycle(Bucket=name)
    apply_bucket_properties(name, properties, region_name)
    return original_resource


def _rule_update(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    """An EventBridge rule updated in place keeps its name (moto recreates it under a newly generated one, so the
    rule's ARN in a Lambda permission's SourceArn would no longer match); a new ``Name`` replaces it."""
    name = cloudformation_json.get("Properties", {}).get("Name") or original_resource.name
    original_resource.delete(account_id, region_name)
    return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)


def _log_group_update(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    """moto's ``AWS::Logs::LogGroup`` has no update (the stack update would fail). CloudFormation replaces a group
    only for a new ``LogGroupName``; ``KmsKeyId``, ``RetentionInDays`` and ``Tags`` change in place, and a removed
    one is reset (no key, never expire, no tag)
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html).
    moto has no AssociateKmsKey/DisassociateKmsKey: the key is set on the group as the create shim does."""
    properties = cloudformation_json.get("Properties", {})
    name = properties.get("LogGroupName") or original_resource.name
    if name != original_resource.name:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
    key = properties.get("KmsKeyId")
    original_resource.kms_key_id = str(key) if key else None
    logs = _client("logs", region_name)
    if properties.get("RetentionInDays") is not None:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
    else:
        logs.delete_retention_policy(logGroupName=name)
    tags = {t["Key"]: t["Value"] for t in _tags(properties)}
    stale = [k for k in logs.list_tags_log_group(logGroupName=name).get("tags", {}) if k not in tags]
    if stale:
        logs.untag_log_group(logGroupName=name, tags=stale)
    if tags:
        logs.tag_log_group(logGroupName=name, tags=tags)
    return original_resource


QUEUE_DEFAULTS = {
    "DelaySeconds": "0",
    "MaximumMessageSize": "262144",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "KmsMasterKeyId": "",
    "KmsDataKeyReusePeriodSeconds": "300",
    "RedrivePolicy": "",
}
"""The SQS attributes an ``AWS::SQS::Queue`` update sets in place, with the value a removed property goes back to
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queue.html)."""


def _queue_update(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    """A queue updated in place keeps its URL (the ``Ref`` in a function's DeadLetterConfig, a queue policy and an
    alarm's dimension): only a new ``QueueName`` or ``FifoQueue`` replaces it (see ``QUEUE_DEFAULTS``' page). moto
    updates two attributes only (a new ``KmsMasterKeyId`` or retention would be lost), and its SetQueueAttributes
    drops the queue's ``Policy`` when it is not in the same call: it is passed along."""
    properties = cloudformation_json.get("Properties", {})
    name = properties.get("QueueName") or original_resource.name
    fifo = str(properties.get("FifoQueue", False)).lower() == "true"
    if name != original_resource.name or fifo != bool(getattr(original_resource, "fifo_queue", False)):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
    sqs = _client("sqs", region_name)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = {}
    for key, default in QUEUE_DEFAULTS.items():
        value = properties.get(key, default)
        attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value)
    if original_resource.policy:
        attributes["Policy"] = original_resource.policy
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    tags = {t["Key"]: t["Value"] for t in _tags(properties)}
    stale = [k for k in sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) if k not in tags]
    if stale:
        sqs.untag_queue(QueueUrl=url, TagKeys=stale)
    if tags:
        sqs.tag_queue(QueueUrl=url, Tags=tags)
    return original_resource


def _log_group_attribute(self: Any, attribute_name: str) -> str:
    value = _original_log_group_attribute(self, attribute_name)
    return f"{value}:*" if attribute_name == "Arn" and not str(value).endswith(":*") else value


def unsupported_types(template: dict[str, Any]) -> list[str]:
    """Resource types of ``template`` that neither moto nor this shim can create (should be empty)."""
    install()
    missing = set()
    for resource in template.get("Resources", {}).values():
        kind = resource["Type"]
        if not kind.startswith("Custom::") and parsing.resource_class_from_type(kind) is None:
            missing.add(kind)
    return sorted(missing)
