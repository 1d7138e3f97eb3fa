"""Each grant the real-account review added (issue 13), the tuning task's (issue 18) and the Lambda ETL's (issue 25)
is needed: removed from the deployed stack, the local run fails with AccessDenied naming the principal and the
action, as AWS would.

Every case exercises the call the way the stack's principal makes it: Step Functions publishing a notification and
starting and polling a tuning job (passing the trials' role) with its role, Glue putting job metrics and CloudWatch
Logs encrypting the job's and the functions' logs with the data key, the deploy Lambda's target-tracking policy
(Application Auto Scaling creates its alarms with the caller's permissions), and SageMaker reading the auto-rollback
alarms with the endpoint's execution role. The first assertion (the deployed stack allows it) holds once the grants
are in the stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.cloud import LocalCloud
from localcloud.iam import calls
from localcloud.iam.enforcer import AccessDenied
from localcloud.iam.grants import remove_grant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    started = LocalCloud(workdir=tmp_path_factory.mktemp("iam-grants"), prewarm=False).start()
    try:
        started.deploy("dev", assembly=assembly)
        yield started
    finally:
        started.stop()


def physical(cloud: LocalCloud, prefix: str) -> str:
    deployment = next(iter(cloud.deployments.values()))
    return next(v for k, v in deployment.resources.items() if k.startswith(prefix))


def role_arn(cloud: LocalCloud, prefix: str) -> str:
    return str(cloud.clients.iam.get_role(RoleName=physical(cloud, prefix))["Role"]["Arn"])


def publish_as_state_machine(prefix: str) -> Any:
    def run(cloud: LocalCloud) -> None:
        topic = next(iter(cloud.deployments.values())).outputs.get("NotificationsTopic") or next(
            t["TopicArn"] for t in cloud.clients.sns.list_topics()["Topics"] if "notifications" in t["TopicArn"]
        )
        machine = next(m["stateMachineArn"] for m in cloud.clients.stepfunctions.list_state_machines()["stateMachines"])
        clients = cloud.clients_for(
            role_arn(cloud, prefix), "states.amazonaws.com", "StepFunctions", source_arn=machine
        )
        clients.sns.publish(TopicArn=topic, Message="deployment finished")

    return run


def glue_metrics(cloud: LocalCloud) -> None:
    clients = cloud.clients_for(role_arn(cloud, "DataLakeEtlRole"), "glue.amazonaws.com", "GlueJobRunnerSession")
    clients.cloudwatch.put_metric_data(
        Namespace="Glue", MetricData=[{"MetricName": "glue.driver.aggregate.numFailedTasks", "Value": 0.0}]
    )


def glue_logs_key(cloud: LocalCloud) -> None:
    key = cloud.iam.world.key_arn(physical(cloud, "DataLakeDataKey"))
    group = (
        f"arn:aws:logs:{cloud.region}:{cloud.account_id}:log-group:/aws-glue/jobs/mlops-dev-glue-kms-role/etl/output"
    )
    context = {"kms:encryptioncontext:aws:logs:arn": [group], "kms:encryptioncontextkeys": ["aws:logs:arn"]}
    logs = cloud.iam.service(f"logs.{cloud.region}.amazonaws.com")
    modelled = frozenset({"kms:encryptioncontext:*", "kms:encryptioncontextkeys"})
    cloud.iam.check(
        logs, "kms:GenerateDataKey", str(key), context, call="logs:PutLogEvents (SSE-KMS)", modelled=modelled
    )


def lambda_logs_key(cloud: LocalCloud) -> None:
    """A function's log group carries the data key (the CloudFormation shim keeps ``KmsKeyId``): CloudWatch Logs
    encrypts what the function writes with it, as itself (cloud._logs_allowed)."""
    group = physical(cloud, "PipelineStartPipelineLogs")
    key = cloud.iam.world.log_group_key(group)
    assert key == cloud.iam.world.key_arn(physical(cloud, "DataLakeDataKey")), key
    cloud.iam.check_log_encryption(group, key)


def target_tracking(cloud: LocalCloud) -> None:
    clients = cloud.clients_for(role_arn(cloud, "ServingDeployRole"), "lambda.amazonaws.com", "deploy")
    try:
        clients.application_autoscaling.put_scaling_policy(
            PolicyName="invocations-per-instance",
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/mlops-dev-churn/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            },
        )
    except ClientError as error:  # the target is not registered in this cloud: IAM was passed
        if error.response["Error"]["Code"] == "AccessDeniedException":
            raise


def rollback_alarms(cloud: LocalCloud) -> None:
    caller = cloud.iam.caller_of(
        cloud.credentials(role_arn(cloud, "ServingEndpointRole"), "sagemaker.amazonaws.com", "SageMaker")[
            "AWS_ACCESS_KEY_ID"
        ]
    )
    assert caller is not None
    names = [
        a["AlarmName"]
        for a in cloud.clients.cloudwatch.describe_alarms()["MetricAlarms"]
        if "rollback" in a["AlarmName"]
    ]
    assert names, "the stack has auto-rollback alarms"
    cloud.iam.check_call(caller, calls.Call("cloudwatch", "DescribeAlarms", {"AlarmNames": names}))


def tuning_as_state_machine(call: str) -> Any:
    """The TuneModel task's call as the training state machine's role, on a tuning job named under the stage's prefix:
    ``create`` (a Bayesian job, which the local cloud refuses after IAM allowed it: no trial runs) or ``describe``
    (a job that does not exist: ResourceNotFound after IAM allowed it)."""

    def run(cloud: LocalCloud) -> None:
        machine = next(m["stateMachineArn"] for m in cloud.clients.stepfunctions.list_state_machines()["stateMachines"])
        clients = cloud.clients_for(
            role_arn(cloud, "PipelineStateMachineRole"), "states.amazonaws.com", "StepFunctions", source_arn=machine
        )
        name = "mlops-dev-churn-0123456789"
        try:
            if call == "describe":
                clients.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                return
            clients.sagemaker.create_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=name,
                HyperParameterTuningJobConfig={
                    "Strategy": "Bayesian",
                    "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
                    "HyperParameterTuningJobObjective": {"MetricName": "validation:auc", "Type": "Maximize"},
                },
                TrainingJobDefinition={
                    "AlgorithmSpecification": {"TrainingImage": "sklearn:1.9-0", "TrainingInputMode": "File"},
                    "RoleArn": role_arn(cloud, "PipelineSageMakerJobRole"),
                    "OutputDataConfig": {"S3OutputPath": "s3://artifacts/models/"},
                    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
                },
            )
        except ClientError as error:  # past IAM: the local cloud refuses Bayesian / no such job
            if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
                raise

    return run


LAMBDA_ETL_ROLE = "PipelineLambdaEtlRunEtlInLambdaRole"


def lambda_etl(call: str) -> Any:
    """The Lambda ETL's calls as its role: ``list`` (a rerun's leftover splits under its version, s3:ListBucket on the
    curated bucket) or ``partition`` (a version's partition in the stage's database: EntityNotFound after IAM
    allowed it, the table does not exist)."""

    def run(cloud: LocalCloud) -> None:
        clients = cloud.clients_for(role_arn(cloud, LAMBDA_ETL_ROLE), "lambda.amazonaws.com", "etl")
        if call == "list":
            clients.s3.list_objects_v2(Bucket=physical(cloud, "DataLakeCurated"), Prefix="curated/dataset=churn/")
            return
        try:
            clients.glue.create_partition(
                DatabaseName="mlops_dev",
                TableName="no-such-table",
                PartitionInput={"Values": ["v1", "train"], "StorageDescriptor": {"Location": "s3://x/y/"}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "EntityNotFoundException":
                raise

    return run


@dataclass(frozen=True)
class Grant:
    name: str
    resource: str  # logical id prefix of the role or key that carries it
    action: str
    exercise: Any
    service: str | None = None  # for a key policy: the service principal the statement names


GRANTS = [
    Grant(
        "training pipeline publishes to the KMS topic: kms:GenerateDataKey",
        "PipelineStateMachineRole",
        "kms:GenerateDataKey",
        publish_as_state_machine("PipelineStateMachineRole"),
    ),
    Grant(
        "training pipeline publishes to the KMS topic: kms:Decrypt",
        "PipelineStateMachineRole",
        "kms:Decrypt",
        publish_as_state_machine("PipelineStateMachineRole"),
    ),
    Grant(
        "deployment publishes to the KMS topic: kms:GenerateDataKey",
        "ServingDeploymentRole",
        "kms:GenerateDataKey",
        publish_as_state_machine("ServingDeploymentRole"),
    ),
    Grant(
        "deployment publishes to the KMS topic: kms:Decrypt",
        "ServingDeploymentRole",
        "kms:Decrypt",
        publish_as_state_machine("ServingDeploymentRole"),
    ),
    Grant(
        "training pipeline starts a tuning job: sagemaker:CreateHyperParameterTuningJob",
        "PipelineStateMachineRole",
        "sagemaker:CreateHyperParameterTuningJob",
        tuning_as_state_machine("create"),
    ),
    Grant(
        "training pipeline polls its tuning job (.sync): sagemaker:DescribeHyperParameterTuningJob",
        "PipelineStateMachineRole",
        "sagemaker:DescribeHyperParameterTuningJob",
        tuning_as_state_machine("describe"),
    ),
    Grant(
        "training pipeline passes the job role to the tuning job's trials: iam:PassRole",
        "PipelineStateMachineRole",
        "iam:PassRole",
        tuning_as_state_machine("create"),
    ),
    Grant("Glue job metrics: cloudwatch:PutMetricData", "DataLakeEtlRole", "cloudwatch:PutMetricData", glue_metrics),
    Grant(
        "Glue's encrypted logs: key policy for CloudWatch Logs",
        "DataLakeDataKey",
        "kms:GenerateDataKey",
        glue_logs_key,
        "logs.us-east-1.amazonaws.com",
    ),
    Grant(
        "the functions' encrypted logs: key policy for CloudWatch Logs",
        "DataLakeDataKey",
        "kms:GenerateDataKey",
        lambda_logs_key,
        "logs.us-east-1.amazonaws.com",
    ),
    Grant(
        "Lambda ETL lists its version's leftovers: s3:ListBucket", LAMBDA_ETL_ROLE, "s3:ListBucket", lambda_etl("list")
    ),
    Grant(
        "Lambda ETL adds its version's partitions: glue:CreatePartition",
        LAMBDA_ETL_ROLE,
        "glue:CreatePartition",
        lambda_etl("partition"),
    ),
    Grant(
        "target tracking: cloudwatch:PutMetricAlarm", "ServingDeployRole", "cloudwatch:PutMetricAlarm", target_tracking
    ),
    Grant(
        "target tracking: cloudwatch:DescribeAlarms", "ServingDeployRole", "cloudwatch:DescribeAlarms", target_tracking
    ),
    Grant("target tracking: cloudwatch:DeleteAlarms", "ServingDeployRole", "cloudwatch:DeleteAlarms", target_tracking),
    Grant(
        "auto-rollback: endpoint role cloudwatch:DescribeAlarms",
        "ServingEndpointRole",
        "cloudwatch:DescribeAlarms",
        rollback_alarms,
    ),
]


def denial(exercise: Any, cloud: LocalCloud) -> str | None:
    try:
        exercise(cloud)
    except AccessDenied as denied:
        return str(denied)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "AuthorizationError"):
            return str(error.response["Error"]["Message"])
        raise
    return None


@pytest.mark.parametrize("grant", GRANTS, ids=[g.name for g in GRANTS])
def test_removing_the_grant_fails_the_call_with_access_denied_naming_it(cloud: LocalCloud, grant: Grant) -> None:
    # Given the deployed stack, the principal's call is allowed
    assert denial(grant.exercise, cloud) is None, f"the stack lacks the grant: {grant.name}"
    saved = _snapshot(cloud, grant.resource)
    try:
        # When that one grant is removed
        remove_grant(cloud, grant.resource, grant.action, grant.service)
        # Then the same call fails with AccessDenied naming the action (and the principal)
        message = denial(grant.exercise, cloud)
        assert message is not None and f"is not authorized to perform: {grant.action}" in message, message
    finally:
        _restore(cloud, grant.resource, saved)


def _snapshot(cloud: LocalCloud, prefix: str) -> dict[str, str]:
    name = physical(cloud, prefix)
    if prefix.startswith("DataLakeDataKey"):
        return {"default": cloud.clients.kms.get_key_policy(KeyId=name, PolicyName="default")["Policy"]}
    iam = cloud.clients.iam
    out = {}
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        out[policy] = document if isinstance(document, str) else json.dumps(document)
    return out


def _restore(cloud: LocalCloud, prefix: str, saved: dict[str, str]) -> None:
    name = physical(cloud, prefix)
    if prefix.startswith("DataLakeDataKey"):
        cloud.clients.kms.put_key_policy(KeyId=name, PolicyName="default", Policy=saved["default"])
        return
    for policy, document in saved.items():
        cloud.clients.iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=document)
