"""Serving and safe deployment, shared by every declared dataset.

Each dataset's endpoint is created by the deployment state machine (from an approved package of the dataset's
group), under a fixed name (``<prefix>-<dataset>``), so its alarms and guardrails (``stacks/constructs/dataset.py``)
refer to it without a CloudFormation reference. Deployment: create model + endpoint config -> create, or update
with deployment guardrails (canary / linear / all-at-once, auto-rollback on the dataset's rollback alarms) -> wait
-> verify the endpoint runs the requested config (a silent rollback fails the deployment) -> autoscaling. The
golden-payload smoke test ran before the package was registered, inside the evaluation job, on the image's own
serving stack (``pipelines/evaluation/smoke.py``): no candidate endpoint. The deploy Lambda finds the dataset
from the package's group in the platform document. The cleanup custom resource removes what the pipeline created:
a retired dataset's on a stack update, everything on the stack's deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import custom_resources as cr
from constructs import Construct

from pipelines.platform import BATCH_INPUT_PREFIX, DATA_CAPTURE_PREFIX, EXPERIMENTS_PREFIX
from stacks.config import StageConfig
from stacks.constructs.data_lake import BATCH_OUTPUT_PREFIX, DataLake
from stacks.constructs.lambda_factory import LambdaFactory, grant_put_metrics, retention_days
from stacks.constructs.tables import state_table
from stacks.constructs.training_pipeline import TRANSIENT_ERRORS, registry_arns

if TYPE_CHECKING:
    from stacks.constructs.network import Network

AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"


class Serving(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        datasets: Sequence[StageConfig],
        lake: DataLake,
        lambdas: LambdaFactory,
        topic: sns.ITopic,
        network: Network | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.config = config
        self.datasets = tuple(datasets)
        # SageMaker writes captures to <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<uuid>.jsonl
        self.data_capture_uri = f"s3://{lake.artifacts.bucket_name}/{DATA_CAPTURE_PREFIX.rstrip('/')}"

        # ---- endpoint execution role: model artifacts (read), data capture (write), logs ----
        self.endpoint_role = iam.Role(
            self,
            "EndpointRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker endpoint/transform: read model artifacts, write data capture and results",
        )
        lake.artifacts.grant_read(self.endpoint_role, "models/*")
        lake.artifacts.grant_put(self.endpoint_role, f"{DATA_CAPTURE_PREFIX}*")
        lake.raw.grant_read(self.endpoint_role, f"{BATCH_INPUT_PREFIX}*")
        lake.curated.grant_put(self.endpoint_role, f"{BATCH_OUTPUT_PREFIX}*")
        lake.key.grant_encrypt_decrypt(self.endpoint_role)
        self.endpoint_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:CreateLogGroup",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.endpoint_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        self.endpoint_role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.endpoint_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:ecr:{config.region}:{_image_account(config)}:repository/"
                    "sagemaker-scikit-learn"
                ],
            )
        )

        # a private stage's models (endpoints and batch transforms) run in the VPC: the deploy and batch functions
        # put its VpcConfig on every model they create (lambdas/shared/network.py)
        if network:
            network.grant_sagemaker(self.endpoint_role)
        model_network = network.environment() if network else {}

        # ---- guardrail alarms: every dataset's <prefix>-<dataset>-rollback-* (stacks/constructs/dataset.py) ----
        # "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the
        # auto-rollback alarms you specify" (SageMaker Developer Guide, "Auto-Rollback Configuration and Monitoring")
        self.rollback_alarms_arn = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{config.prefix}-*-rollback-*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.endpoint_role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[self.rollback_alarms_arn])
        )

        # ---- deployment state machine ----
        self.deploy_fn = lambdas.function(
            self,
            "Deploy",
            handler="deploy.handler.handler",
            description="Deployment steps: prepare, create/update with guardrails, shadow, verify",
            timeout=cdk.Duration.minutes(5),
            environment={
                "ENDPOINT_ROLE_ARN": self.endpoint_role.role_arn,
                "DATA_CAPTURE_URI": self.data_capture_uri,
                "KMS_KEY_ARN": lake.key.key_arn,
                **model_network,
            },
        )
        self._grant_deploy(self.deploy_fn, config, lake)
        self.deployment = self._deployment_state_machine(config, topic, lake.key)
        # the Notify states publish to the KMS-encrypted topic with the state machine's role: sns:Publish plus the
        # key's kms:GenerateDataKey* / kms:Decrypt (Amazon SNS Developer Guide, "Key management")
        topic.grant_publish(self.deployment)

        # ---- teardown: stack deletion removes endpoints, configs and models the pipeline created ----
        self.cleanup_fn = lambdas.function(
            self,
            "Cleanup",
            handler="cleanup.handler.handler",
            description="Custom resource: on stack delete, remove pipeline-created endpoints/configs/models",
            timeout=cdk.Duration.minutes(10),
            environment={"RESOURCE_PREFIX": config.prefix},
        )
        prefix_arns = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{config.prefix}*")
            for kind in ("endpoint", "endpoint-config", "model")
        ]
        self.cleanup_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DeleteModel",
                    "sagemaker:DescribeEndpoint",
                ],
                resources=prefix_arns,
            )
        )
        self.cleanup_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListEndpoints", "sagemaker:ListEndpointConfigs", "sagemaker:ListModels"],
                resources=["*"],
            )
        )
        # deleting an autoscaled endpoint deregisters its scalable targets, which needs this permission
        self.cleanup_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["application-autoscaling:DeregisterScalableTarget"],
                resources=[
                    stack.format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")
                ],
                conditions={"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}},
            )
        )
        provider = cr.Provider(
            self,
            "CleanupProvider",
            on_event_handler=self.cleanup_fn,
            **(network.function_placement() if network else {}),
            provider_function_env_encryption=lake.key,
            log_group=logs.LogGroup(
                self,
                "CleanupProviderLogs",
                retention=retention_days(config.log_retention_days),
                encryption_key=lake.key,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
        )
        # Datasets: an update that drops a name retires that dataset's endpoints, configs and models
        self.cleanup = cdk.CustomResource(
            self,
            "PipelineResourcesCleanup",
            service_token=provider.service_token,
            resource_type="Custom::SageMakerCleanup",
            properties={"Prefix": config.prefix, "Datasets": sorted(d.dataset.name for d in self.datasets)},
        )
        # deleted before the role the endpoints run with (CloudFormation deletes dependents first)
        self.cleanup.node.add_dependency(self.endpoint_role)

        # ---- batch inference: upload to raw/batch-input/<dataset>/ -> transform job with the dataset's champion ----
        self.batch_idempotency = state_table(self, "BatchIdempotencyTable", key=lake.key)
        self.batch_fn = lambdas.function(
            self,
            "BatchInference",
            asynchronous=True,  # batch input uploads (EventBridge)
            handler="batch_inference.handler.handler",
            description="Runs a batch transform with the dataset's champion on each batch-input upload (once per "
            "version)",
            environment={
                "OUTPUT_URI": f"s3://{lake.curated.bucket_name}/{BATCH_OUTPUT_PREFIX}",
                "ENDPOINT_ROLE_ARN": self.endpoint_role.role_arn,
                "KMS_KEY_ARN": lake.key.key_arn,
                "IDEMPOTENCY_TABLE": self.batch_idempotency.table_name,
                **model_network,
            },
        )
        self.batch_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:AddTags",
                ],
                resources=[
                    stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{config.prefix}*")
                    for kind in ("transform-job", "model")
                ],
            )
        )
        self._grant_registry_read(self.batch_fn)
        self.endpoint_role.grant_pass_role(self.batch_fn.grant_principal)
        self.batch_idempotency.grant_read_write_data(self.batch_fn)
        lake.key.grant_encrypt_decrypt(self.batch_fn)
        lake.key.grant(self.batch_fn, "kms:CreateGrant", "kms:DescribeKey")
        grant_put_metrics(self.batch_fn, config.metrics_namespace)
        events.Rule(
            self,
            "BatchInputRule",
            description="Object Created under batch-input/<dataset>/ in the raw zone runs a batch transform",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [lake.raw.bucket_name]},
                    "object": {"key": [{"prefix": BATCH_INPUT_PREFIX}]},
                },
            ),
            targets=[targets.LambdaFunction(self.batch_fn, retry_attempts=4)],
        )

    # ------------------------------------------------------------------
    def _grant_registry_read(self, fn: cdk.aws_lambda.Function) -> None:
        groups, packages = registry_arns(cdk.Stack.of(self), self.config)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                resources=[*groups, *packages],
            )
        )

    def _grant_deploy(self, fn: cdk.aws_lambda.Function, config: StageConfig, lake: DataLake) -> None:
        stack = cdk.Stack.of(self)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                    "sagemaker:AddTags",
                ],
                resources=[
                    stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{config.prefix}*")
                    for kind in ("endpoint", "endpoint-config", "model")
                ],
            )
        )
        self._grant_registry_read(fn)
        fn.add_to_role_policy(
            iam.PolicyStatement(  # a package whose deployment failed is set to Rejected (never the champion)
                actions=["sagemaker:UpdateModelPackage"], resources=registry_arns(stack, config)[1]
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy"],
                resources=[
                    stack.format_arn(service="application-autoscaling", resource="scalable-target", resource_name="*")
                ],
                conditions={"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}},
            )
        )
        fn.add_to_role_policy(  # the rollback alarms in ALARM, named in a silent rollback's notification
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[self.rollback_alarms_arn])
        )
        # PutScalingPolicy (target tracking) needs its caller to hold PutMetricAlarm / DescribeAlarms / DeleteAlarms
        # (Application Auto Scaling User Guide, "Permissions required for API actions on target services and
        # CloudWatch"), on the alarms it creates: TargetTracking-<resource id>-AlarmHigh|Low-<uuid>
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
                resources=[
                    stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=f"TargetTracking-endpoint/{config.prefix}-*/variant/*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        # the autoscaling service-linked role is created on the first RegisterScalableTarget for an endpoint
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/aws-service-role/"
                    f"{AUTOSCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ],
                conditions={"StringLike": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
            )
        )
        # shadow comparison: AWS/SageMaker variant metrics (no resource-level permission) and captured traffic
        fn.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"]))
        lake.artifacts.grant_read(fn, f"{DATA_CAPTURE_PREFIX}*")
        self.endpoint_role.grant_pass_role(fn.grant_principal)
        lake.artifacts.grant_read(fn, "evaluations/*")
        # AB: the experiment's record for the evaluator (read first: a retried verify keeps the running record)
        lake.artifacts.grant_read(fn, f"{EXPERIMENTS_PREFIX}*")
        lake.artifacts.grant_put(fn, f"{EXPERIMENTS_PREFIX}*")
        lake.key.grant_decrypt(fn)
        # endpoint configs name the data key (storage volume, data capture): the caller needs grants on it
        lake.key.grant(fn, "kms:CreateGrant", "kms:DescribeKey")
        grant_put_metrics(fn, config.metrics_namespace)

    def _deployment_state_machine(self, config: StageConfig, topic: sns.ITopic, key: kms.IKey) -> sfn.StateMachine:
        def step(name: str, action: str, result_path: str = "$.deploy") -> tasks.LambdaInvoke:
            task = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=self.deploy_fn,
                payload=sfn.TaskInput.from_object(
                    {"action": action, "execution.$": "$$.Execution.Name", "state.$": "$"}
                ),
                payload_response_only=True,
                result_path=result_path,
                retry_on_service_exceptions=False,
            )
            task.add_retry(errors=TRANSIENT_ERRORS, interval=cdk.Duration.seconds(5), backoff_rate=2.0, max_attempts=4)
            return task

        explain = step("ExplainDeployFailure", "explain_failure", "$.failure")
        notify_failure = tasks.SnsPublish(
            self,
            "NotifyDeployFailed",
            topic=topic,
            subject=sfn.JsonPath.string_at("$.failure.subject"),
            message=sfn.TaskInput.from_json_path_at("$.failure.message"),
            message_attributes={"outcome": tasks.MessageAttribute(value="deploy-failed")},
            result_path=sfn.JsonPath.DISCARD,
        )
        fail = sfn.Fail(
            self,
            "DeploymentFailed",
            error="DeploymentFailed",
            cause_path=sfn.JsonPath.string_at("$.failure.reason"),
        )
        failure_path = explain.next(notify_failure).next(fail)

        prepare = step("PrepareDeployment", "prepare")
        # create, or update with blue/green guardrails; SHADOW bakes the new model as a shadow variant first
        rollout = step("StartRollout", "rollout", "$.rollout")
        wait = sfn.Wait(self, "WaitForRollout", time=sfn.WaitTime.seconds_path("$.rollout.poll_seconds"))
        check = step("CheckRollout", "check", "$.rollout")
        wait_shadow = sfn.Wait(self, "WaitForShadowBake", time=sfn.WaitTime.seconds_path("$.rollout.bake_seconds"))
        compare = step("CompareShadow", "compare_shadow", "$.rollout")
        verify = step("VerifyDeployment", "verify", "$.verified")
        notify_done = tasks.SnsPublish(
            self,
            "NotifyDeployed",
            topic=topic,
            subject=sfn.JsonPath.string_at("$.verified.subject"),
            message=sfn.TaskInput.from_json_path_at("$.verified.message"),
            message_attributes={"outcome": tasks.MessageAttribute(value="deployed")},
            result_path=sfn.JsonPath.DISCARD,
        )
        for task in (prepare, rollout, check, compare, verify, notify_done):
            task.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
        in_progress = (
            sfn.Choice(self, "RolloutFinished")
            .when(sfn.Condition.string_equals("$.rollout.status", "InProgress"), wait)
            .when(sfn.Condition.string_equals("$.rollout.status", "ShadowBaking"), wait_shadow)
            .otherwise(verify.next(notify_done).next(sfn.Succeed(self, "Deployed")))
        )
        wait.next(check).next(in_progress)
        wait_shadow.next(compare).next(in_progress)
        definition = prepare.next(rollout).next(in_progress)
        log_group = logs.LogGroup(
            self,
            "DeploymentLogs",
            log_group_name=f"/aws/vendedlogs/states/{config.prefix}-deployment",
            retention=retention_days(config.log_retention_days),
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        return sfn.StateMachine(
            self,
            "Deployment",
            state_machine_name=f"{config.prefix}-deployment",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            timeout=cdk.Duration.hours(3),
            comment="Approved package (smoke-tested by its evaluation job) -> guarded rollout (or shadow bake + "
            "comparison) -> verify (silent rollback = failure) -> autoscaling",
        )


def _image_account(config: StageConfig) -> str:
    from stacks.constructs.images import sklearn_image_uri

    uri = sklearn_image_uri(config.region, config.training.sklearn_framework_version, config.serving.instance_type)
    return uri.split(".")[0]
