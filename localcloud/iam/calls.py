"""API calls as the authorization requests AWS makes for them: the IAM action, the ARN of each resource the call
names (built from the request parameters with the Service Authorization Reference's ARN format), the condition keys
the call supplies, and the requests it implies.

Implied requests, each from AWS's documentation:
- SSE-KMS on S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#aws-managed-customer-managed-keys):
  uploading to an SSE-KMS object needs ``kms:GenerateDataKey`` on its key, a multipart upload also ``kms:Decrypt``,
  reading one ``kms:Decrypt``; the caller needs them (S3 calls KMS on its behalf: ``kms:ViaService``).
- SNS with SSE (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#sns-what-permissions-for-sse):
  a publisher to an encrypted topic needs ``kms:GenerateDataKey*`` and ``kms:Decrypt`` on the topic's key.
- ``iam:PassRole`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html) on the role a call
  passes (the Service Authorization Reference lists it as a dependent action: CreateTrainingJob, CreateModel...),
  with ``iam:PassedToService``; ``sagemaker:AddTags`` when a create call carries Tags.
- Application Auto Scaling target tracking
  (https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html):
  ``PutScalingPolicy`` needs ``cloudwatch:PutMetricAlarm``, ``DescribeAlarms`` and ``DeleteAlarms`` (its alarms are
  created with the caller's permissions); ``RegisterScalableTarget`` creates the service-linked role
  (``iam:CreateServiceLinkedRole``) when it does not exist yet.

An operation this module does not know raises ``UnmappedCall``: the enforcer denies it and reports it, so a new call
in the stack's code cannot slip through unevaluated.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from localcloud.iam import catalog
from localcloud.iam.policy import Caller, Request

PASSED_TO = {"sagemaker": "sagemaker.amazonaws.com", "glue": "glue.amazonaws.com", "states": "states.amazonaws.com"}
SCALING_SERVICE_ROLE = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


class UnmappedCall(LookupError):
    """An API operation whose authorization the local evaluator does not know."""


class World(Protocol):
    """What the mapping reads from the cloud's state."""

    account: str
    region: str

    def key_arn(self, key_id: str) -> str | None: ...
    def bucket_key(self, bucket: str) -> str | None: ...
    def object_key(self, bucket: str, key: str) -> str | None: ...
    def topic_key(self, topic_arn: str) -> str | None: ...
    def role_exists(self, role_arn: str) -> bool: ...


@dataclass(frozen=True)
class Call:
    """One API call as the server received it."""

    service: str  # botocore service name: s3, sagemaker, stepfunctions, sagemaker-runtime...
    operation: str  # botocore operation name: PutObject, CreateTrainingJob...
    params: Mapping[str, Any]
    secure: bool = True


IAM_PREFIX = {
    "stepfunctions": "states",
    "sagemaker-runtime": "sagemaker",
    "application-autoscaling": "application-autoscaling",
}
ACTION_NAMES = {("lambda", "Invoke"): "InvokeFunction"}


def _sagemaker_name(param: str) -> Callable[[Mapping[str, Any]], str | None]:
    def get(params: Mapping[str, Any]) -> str | None:
        value = params.get(param)
        if not value:
            return None
        value = str(value)
        return value.split(":", 5)[5].split("/", 1)[1] if value.startswith("arn:") else value.lower()

    return get


def _param(*names: str) -> Callable[[Mapping[str, Any]], str | None]:
    def get(params: Mapping[str, Any]) -> str | None:
        for name in names:
            if params.get(name):
                return str(params[name])
        return None

    return get


def _arn_param(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    return _param(name)


# (service prefix, resource type) -> the ARN's variable parts from the request parameters; None when absent
_SAGEMAKER = {
    "training-job": ("TrainingJobName", "TrainingJobName"),
    "processing-job": ("ProcessingJobName", "ProcessingJobName"),
    "transform-job": ("TransformJobName", "TransformJobName"),
    "model": ("ModelName", "ModelName"),
    "endpoint-config": ("EndpointConfigName", "EndpointConfigName"),
    "endpoint": ("EndpointName", "EndpointName"),
    "model-package-group": ("ModelPackageGroupName", "ModelPackageGroupName"),
    "hyper-parameter-tuning-job": ("HyperParameterTuningJobName", "HyperParameterTuningJobName"),
}


def _resource_arns(prefix: str, action: str, params: Mapping[str, Any], world: World) -> list[str]:
    """The ARNs of the resources the call names, one per resource type of the action it gives parameters for."""
    account, region = world.account, world.region
    found: list[str] = []

    def add(resource_type: str, **parts: str | None) -> None:
        if all(parts.values()):
            found.append(catalog.arn(prefix, resource_type, account, region, **{k: str(v) for k, v in parts.items()}))

    types = catalog.resource_types(action)
    if prefix == "sagemaker":
        if action == "sagemaker:AddTags":
            return [str(params["ResourceArn"])]
        if action == "sagemaker:ListModelPackages":
            # The SAR gives ListModelPackages the model-package resource type; AWS's cross-account model registry
            # example ("Share a model group across accounts", SageMaker developer guide) grants it on
            # model-package/<group>/*: a listing filtered by group is authorized against the group's versions.
            # Unfiltered, it names no package: "*".
            group = _sagemaker_name("ModelPackageGroupName")(params)
            if group:
                add("model-package", ModelPackageName=f"{group}/*")
            return found
        for resource_type, (param, part) in _SAGEMAKER.items():
            if resource_type in types:
                add(resource_type, **{part: _sagemaker_name(param)(params)})
        if "model-package" in types:
            name = _sagemaker_name("ModelPackageName")(params) or _sagemaker_name("ModelPackageArn")(params)
            add("model-package", ModelPackageName=name)
    elif prefix == "states":
        direct = _param("stateMachineArn", "executionArn")(params)
        if direct:
            found.append(direct)
    elif prefix == "dynamodb":
        add("table", TableName=_param("TableName")(params))
    elif prefix == "glue":
        database = _param("DatabaseName")(params)
        table = _param("TableName", "Name")(params) if action != "glue:GetDatabase" else None
        if table is None and isinstance(params.get("TableInput"), Mapping):
            table = params["TableInput"].get("Name")
        if "job" in types:
            add("job", JobName=_param("JobName")(params))
        if "rootcatalog" in types:
            add("rootcatalog")
        if "database" in types:
            add("database", DatabaseName=database or (_param("Name")(params) if action == "glue:GetDatabase" else None))
        if "table" in types:
            add("table", DatabaseName=database, TableName=table)
    elif prefix == "logs":
        group, stream = _param("logGroupName")(params), _param("logStreamName")(params)
        if "log-stream" in types:
            add("log-stream", LogGroupName=group, LogStreamName=stream)
        elif "log-group" in types:
            add("log-group", LogGroupName=group)
    elif prefix == "lambda":
        name = _param("FunctionName")(params)
        if name:
            found.append(
                name
                if name.startswith("arn:")
                else catalog.arn("lambda", "function", account, region, FunctionName=name)
            )
    elif prefix == "cloudwatch":
        names = list(params.get("AlarmNames") or []) or ([params["AlarmName"]] if params.get("AlarmName") else [])
        for name in names:
            add("alarm", AlarmName=name)
    elif prefix == "sns":
        topic = _param("TopicArn")(params)
        if topic:
            found.append(topic)
    elif prefix == "kms":
        key = _param("KeyId")(params)
        if key:
            found.append(world.key_arn(key) or key)
    elif prefix == "application-autoscaling" and "ScalableTarget" in types and params.get("ResourceId"):
        found.append(scalable_target_arn(params, world))
    return found


def scalable_target_arn(params: Mapping[str, Any], world: World) -> str:
    """A scalable target's ARN: AWS assigns an id at registration; locally one stable id per target."""
    identity = f"{params.get('ServiceNamespace')}/{params.get('ResourceId')}/{params.get('ScalableDimension')}"
    target_id = uuid.uuid5(uuid.NAMESPACE_URL, identity).hex
    return catalog.arn("application-autoscaling", "ScalableTarget", world.account, world.region, ResourceId=target_id)


def _context(call: Call, caller: Caller, world: World) -> dict[str, list[str]]:
    """The global keys every request carries (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html)."""
    from localcloud.clock import clock

    now = clock.now()
    context = {
        "aws:securetransport": ["true" if call.secure else "false"],
        "aws:principalaccount": [caller.account],
        "aws:principaltype": [caller.kind],
        "aws:requestedregion": [world.region],
        "aws:currenttime": [now.strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(now.timestamp()))],
        "aws:principalisawsservice": ["true" if caller.service else "false"],
        "aws:viaawsservice": ["false"],
    }
    if caller.role_arn:
        context["aws:principalarn"] = [caller.role_arn]
        context["aws:userid"] = [f"AROA:{caller.arn.rsplit('/', 1)[-1]}"]
    if caller.service:
        context["aws:principalservicename"] = [caller.service]
    return context


def _kms(
    base: Request, key_arn: str, actions: tuple[str, ...], via: str, service: str, encryption_context: dict[str, str]
) -> list[Request]:
    context = {
        **base.context,
        "kms:viaservice": [f"{service}.{base.context['aws:requestedregion'][0]}.amazonaws.com"],
        "kms:calleraccount": [base.caller.account],
        "aws:viaawsservice": ["true"],
        "aws:calledvia": [f"{service}.amazonaws.com"],
        "kms:encryptioncontextkeys": list(encryption_context),
        **{f"kms:encryptioncontext:{k.lower()}": [v] for k, v in encryption_context.items()},
    }
    modelled = frozenset(
        {"kms:viaservice", "kms:calleraccount", "kms:encryptioncontextkeys", "kms:encryptioncontext:*"}
    )
    return [Request(base.caller, action, key_arn, context, modelled, via=via) for action in actions]


def _s3(call: Call, base: Request, world: World) -> list[Request]:
    """S3 operations: the action (not always the API's name) on the bucket or object ARN, plus SSE-KMS."""
    params = call.params
    bucket, key = params.get("Bucket"), params.get("Key")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    op = call.operation
    versioned = bool(params.get("VersionId"))
    object_actions = {
        "GetObject": "s3:GetObjectVersion" if versioned else "s3:GetObject",
        "HeadObject": "s3:GetObjectVersion" if versioned else "s3:GetObject",
        "PutObject": "s3:PutObject",
        "CreateMultipartUpload": "s3:PutObject",
        "UploadPart": "s3:PutObject",
        "CompleteMultipartUpload": "s3:PutObject",
        "AbortMultipartUpload": "s3:AbortMultipartUpload",
        "DeleteObject": "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject",
        "GetObjectTagging": "s3:GetObjectTagging",
        "PutObjectTagging": "s3:PutObjectTagging",
        "CopyObject": "s3:PutObject",
    }
    bucket_actions = {
        "ListObjects": "s3:ListBucket",
        "ListObjectsV2": "s3:ListBucket",
        "HeadBucket": "s3:ListBucket",
        "ListObjectVersions": "s3:ListBucketVersions",
        "GetBucketLocation": "s3:GetBucketLocation",
        "ListMultipartUploads": "s3:ListBucketMultipartUploads",
        "GetBucketEncryption": "s3:GetEncryptionConfiguration",
        "GetBucketVersioning": "s3:GetBucketVersioning",
    }
    requests: list[Request] = []
    if op in object_actions:
        context = dict(base.context)
        modelled = set()
        if op in ("PutObject", "CreateMultipartUpload", "CopyObject"):
            modelled = {"s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"}
            if params.get("ServerSideEncryption"):
                context["s3:x-amz-server-side-encryption"] = [str(params["ServerSideEncryption"])]
            if params.get("SSEKMSKeyId"):
                context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = [str(params["SSEKMSKeyId"])]
        requests.append(
            replace(base, action=object_actions[op], resource=object_arn, context=context, modelled=frozenset(modelled))
        )
        via = f"s3:{op} (SSE-KMS)"
        encryption = {"aws:s3:arn": bucket_arn}
        if op in ("PutObject", "CreateMultipartUpload", "CopyObject"):
            key_id = params.get("SSEKMSKeyId")
            if params.get("ServerSideEncryption") == "aws:kms" or key_id or world.bucket_key(str(bucket)):
                key_arn = world.key_arn(str(key_id)) if key_id else world.bucket_key(str(bucket))
                if key_arn:
                    actions = (
                        ("kms:GenerateDataKey", "kms:Decrypt")
                        if op == "CreateMultipartUpload"
                        else ("kms:GenerateDataKey",)
                    )
                    requests += _kms(base, key_arn, actions, via, "s3", encryption)
        if op == "GetObject":
            key_arn = world.object_key(str(bucket), str(key))
            if key_arn:
                requests += _kms(base, key_arn, ("kms:Decrypt",), via, "s3", encryption)
        if op == "CopyObject":
            source = str(params.get("CopySource") or "")
            source = (
                source
                if isinstance(params.get("CopySource"), str)
                else f"{params['CopySource']['Bucket']}/{params['CopySource']['Key']}"
            )
            source_bucket, _, source_key = source.lstrip("/").partition("/")
            requests.append(replace(base, action="s3:GetObject", resource=f"arn:aws:s3:::{source_bucket}/{source_key}"))
            key_arn = world.object_key(source_bucket, source_key)
            if key_arn:
                requests += _kms(
                    base, key_arn, ("kms:Decrypt",), via, "s3", {"aws:s3:arn": f"arn:aws:s3:::{source_bucket}"}
                )
        return requests
    if op == "DeleteObjects":
        for item in (params.get("Delete") or {}).get("Objects") or []:
            requests.append(replace(base, action="s3:DeleteObject", resource=f"{bucket_arn}/{item['Key']}"))
        return requests
    if op in bucket_actions:
        context = dict(base.context)
        for name, key_name in (("Prefix", "s3:prefix"), ("Delimiter", "s3:delimiter"), ("MaxKeys", "s3:max-keys")):
            if params.get(name) is not None:
                context[key_name] = [str(params[name])]
        listing = frozenset({"s3:prefix", "s3:delimiter", "s3:max-keys"})
        return [replace(base, action=bucket_actions[op], resource=bucket_arn, context=context, modelled=listing)]
    raise UnmappedCall(f"s3:{op} is not mapped to an IAM authorization by the local evaluator")


def requests_for(call: Call, caller: Caller, world: World) -> list[Request]:
    """Every authorization request ``call`` by ``caller`` makes: its own, then the implied ones."""
    base = Request(caller, "", "*", _context(call, caller, world))
    if call.service == "s3":
        return _s3(call, base, world)
    prefix = IAM_PREFIX.get(call.service, call.service)
    name = ACTION_NAMES.get((call.service, call.operation), call.operation)
    action = f"{prefix}:{name}"
    params = call.params
    if call.service == "dynamodb" and call.operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        out = []
        for item in params.get("TransactItems") or []:
            for kind, operation in kinds.items():
                if kind in item:
                    out += requests_for(Call("dynamodb", operation, item[kind], call.secure), caller, world)
        return out
    try:
        catalog.resource_types(action)
    except catalog.CatalogError:
        raise UnmappedCall(f"{call.service}:{call.operation} is not an IAM action the local evaluator knows") from None
    context = dict(base.context)
    modelled: set[str] = set()
    if action == "cloudwatch:PutMetricData":
        context["cloudwatch:namespace"] = [str(params.get("Namespace"))]
        modelled.add("cloudwatch:namespace")
    if prefix == "application-autoscaling":
        for param, key in (("ServiceNamespace", "service-namespace"), ("ScalableDimension", "scalable-dimension")):
            modelled.add(f"application-autoscaling:{key}")
            if params.get(param):
                context[f"application-autoscaling:{key}"] = [str(params[param])]
    resources = _resource_arns(prefix, action, params, world) or ["*"]
    requests = [Request(caller, action, r, context, frozenset(modelled)) for r in resources]
    return requests + _implied(action, call, requests[0], world)


def _implied(action: str, call: Call, base: Request, world: World) -> list[Request]:
    params = call.params
    prefix = action.partition(":")[0]
    out: list[Request] = []
    privilege_dependents = _dependents(action)
    # CreateHyperParameterTuningJob passes the role of its trials inside TrainingJobDefinition
    definition = params.get("TrainingJobDefinition")
    role = (
        params.get("RoleArn")
        or params.get("ExecutionRoleArn")
        or (definition.get("RoleArn") if isinstance(definition, Mapping) else None)
    )
    if role and "iam:passrole" in privilege_dependents:
        context = {**base.context, "iam:passedtoservice": [PASSED_TO.get(prefix, f"{prefix}.amazonaws.com")]}
        out.append(
            Request(
                base.caller,
                "iam:PassRole",
                str(role),
                context,
                frozenset({"iam:passedtoservice", "iam:associatedresourcearn"}),
                via=action,
            )
        )
    if params.get("Tags") and "sagemaker:addtags" in privilege_dependents:
        out.append(replace(base, action="sagemaker:AddTags", via=action))
    if action == "sns:Publish":
        key_arn = world.topic_key(base.resource)
        if key_arn:
            out += _kms(
                base,
                key_arn,
                ("kms:GenerateDataKey", "kms:Decrypt"),
                f"{action} (SSE)",
                "sns",
                {"aws:sns:topicArn": base.resource},
            )
    if action == "application-autoscaling:PutScalingPolicy" and params.get("PolicyType") == "TargetTrackingScaling":
        resource_id = str(params.get("ResourceId"))
        for which in ("AlarmHigh", "AlarmLow"):
            alarm = catalog.arn(
                "cloudwatch",
                "alarm",
                world.account,
                world.region,
                AlarmName=f"TargetTracking-{resource_id}-{which}-{uuid.uuid5(uuid.NAMESPACE_URL, resource_id + which)}",
            )
            for cw in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"):
                out.append(Request(base.caller, cw, alarm, base.context, via=f"{action} (target tracking)"))
    if action == "application-autoscaling:RegisterScalableTarget" and params.get("ServiceNamespace") == "sagemaker":
        role_arn = f"arn:aws:iam::{world.account}:role/{SCALING_SERVICE_ROLE}"
        if not world.role_exists(role_arn):
            context = {**base.context, "iam:awsservicename": ["sagemaker.application-autoscaling.amazonaws.com"]}
            out.append(
                Request(
                    base.caller,
                    "iam:CreateServiceLinkedRole",
                    role_arn,
                    context,
                    frozenset({"iam:awsservicename"}),
                    via=action,
                )
            )
    return out


def _dependents(action: str) -> frozenset[str]:
    from localcloud.iam.catalog import _privilege

    return frozenset(
        d.lower() for entry in _privilege(action)["resource_types"].values() for d in entry.get("dependent_actions", [])
    )
