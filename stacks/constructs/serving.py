"""Serving and safe deployment.

The endpoint itself is created by the deployment state machine (from an approved package), under a
fixed name from the stage config, so alarms and guardrails refer to it without a CloudFormation
reference. Deployment: create model + endpoint config -> golden-payload smoke test on a candidate
endpoint -> create, or update with deployment guardrails (canary / linear / all-at-once, auto-rollback
on the alarms below) -> wait -> verify the endpoint runs the requested config (a silent rollback fails
the deployment) -> autoscaling. Stack deletion removes what the pipeline created (custom resource).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.data_lake import BATCH_INPUT_PREFIX, BATCH_OUTPUT_PREFIX, DATA_CAPTURE_PREFIX, DataLake
from stacks.constructs.lambda_factory import LambdaFactory, grant_put_metrics, retention_days
from stacks.constructs.tables import state_table
from stacks.constructs.training_pipeline import TRANSIENT_ERRORS

AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"


class Serving(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        lake: DataLake,
        lambdas: LambdaFactory,
        model_package_group_name: str,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.config = config
        self.endpoint_name = config.endpoint_name
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

        # ---- guardrail alarms (canary fleet): 5XX, model latency, invocation (model) errors ----
        self.rollback_alarms = self._rollback_alarms(config)
        # "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the
        # auto-rollback alarms you specify" (SageMaker Developer Guide, "Auto-Rollback Configuration and Monitoring")
        self.endpoint_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"], resources=[alarm.alarm_arn for alarm in self.rollback_alarms]
            )
        )

        # ---- deployment state machine ----
        serving = config.serving
        self.deploy_fn = lambdas.function(
            self,
            "Deploy",
            handler="deploy.handler.handler",
            description="Deployment steps: prepare, smoke test, create/update with guardrails, shadow, verify",
            timeout=cdk.Duration.minutes(5),
            environment={
                "ENDPOINT_NAME": config.endpoint_name,
                "ENDPOINT_ROLE_ARN": self.endpoint_role.role_arn,
                "RESOURCE_PREFIX": config.prefix,
                "MODEL_PACKAGE_GROUP": model_package_group_name,
                "DATA_CAPTURE_URI": self.data_capture_uri,
                "KMS_KEY_ARN": lake.key.key_arn,
                "SERVING": json.dumps(asdict(serving)),
                "ROLLBACK_ALARMS": json.dumps(self.rollback_alarm_names),
            },
        )
        self._grant_deploy(self.deploy_fn, config, lake, model_package_group_name)
        self.deployment = self._deployment_state_machine(config, topic)
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
            log_group=logs.LogGroup(
                self,
                "CleanupProviderLogs",
                retention=retention_days(config.log_retention_days),
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
        )
        self.cleanup = cdk.CustomResource(
            self,
            "PipelineResourcesCleanup",
            service_token=provider.service_token,
            resource_type="Custom::SageMakerCleanup",
            properties={"Prefix": config.prefix, "EndpointName": config.endpoint_name},
        )
        # deleted before the role the endpoints run with (CloudFormation deletes dependents first)
        self.cleanup.node.add_dependency(self.endpoint_role)

        # ---- batch inference: upload to raw/batch-input/ -> transform job with the champion ----
        self.batch_idempotency = state_table(self, "BatchIdempotencyTable", key=lake.key)
        self.batch_fn = lambdas.function(
            self,
            "BatchInference",
            handler="batch_inference.handler.handler",
            description="Runs a batch transform with the champion on each batch-input upload (once per version)",
            environment={
                "MODEL_PACKAGE_GROUP": model_package_group_name,
                "OUTPUT_URI": f"s3://{lake.curated.bucket_name}/{BATCH_OUTPUT_PREFIX}",
                "INPUT_PREFIX": BATCH_INPUT_PREFIX,
                "ENDPOINT_ROLE_ARN": self.endpoint_role.role_arn,
                "KMS_KEY_ARN": lake.key.key_arn,
                "INSTANCE_TYPE": serving.instance_type,
                "RESOURCE_PREFIX": config.prefix,
                "IDEMPOTENCY_TABLE": self.batch_idempotency.table_name,
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
        self._grant_registry_read(self.batch_fn, model_package_group_name)
        self.endpoint_role.grant_pass_role(self.batch_fn.grant_principal)
        self.batch_idempotency.grant_read_write_data(self.batch_fn)
        lake.key.grant_encrypt_decrypt(self.batch_fn)
        lake.key.grant(self.batch_fn, "kms:CreateGrant", "kms:DescribeKey")
        grant_put_metrics(self.batch_fn, config.metrics_namespace)
        events.Rule(
            self,
            "BatchInputRule",
            description="Object Created under batch-input/ in the raw zone runs a batch transform",
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
    def alarm_metric(self, metric_name: str, statistic: str, variant: str | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=metric_name,
            dimensions_map={
                "EndpointName": self.config.endpoint_name,
                "VariantName": variant or self.config.serving.variant_name,
            },
            statistic=statistic,
            period=cdk.Duration.minutes(1),
        )

    def _rollback_alarms(self, config: StageConfig) -> list[cloudwatch.Alarm]:
        """Auto-rollback guardrails on the production variant, per minute. SageMaker's definitions
        (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html): Invocation5XXErrors and
        InvocationModelErrors send 1 per matching request and 0 otherwise, so Sum counts and Average is a rate;
        InvocationModelErrors counts every request without a 2XX answer, client errors (4XX) included. Counting
        it would let one bad client request roll a good model back, so it is watched as a rate (as AWS's
        guardrail example watches Invocation4XXErrors' Average,
        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html), and only a rate
        that holds for all ``rollback_evaluation_periods`` minutes rolls back: in a quiet minute one bad request is
        a large share, but it cannot be one in consecutive minutes unless that client sends most of the traffic."""
        a = config.alarms
        specs = [
            ("5xx", "Invocation5XXErrors", "Sum", a.error_5xx_count, "5XX errors (model failures)"),
            ("model-latency", "ModelLatency", "p99", a.model_latency_p99_ms * 1000, "p99 model latency (us)"),
            (
                "model-errors",
                "InvocationModelErrors",
                "Average",
                a.model_error_rate,
                "share of invocations without a 2XX answer",
            ),
        ]
        alarms = []
        self.rollback_alarm_names: list[str] = []
        for suffix, metric, stat, threshold, what in specs:
            sustained = stat == "Average"
            self.rollback_alarm_names.append(f"{config.endpoint_name}-rollback-{suffix}")
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"Rollback{metric}",
                    alarm_name=self.rollback_alarm_names[-1],
                    alarm_description=f"Deployment guardrail: {what} on {config.endpoint_name} "
                    "rolls a canary back automatically",
                    metric=self.alarm_metric(metric, stat),
                    threshold=threshold,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=a.rollback_evaluation_periods,
                    datapoints_to_alarm=a.rollback_evaluation_periods if sustained else 1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    # a p99 of a handful of requests is one slow request: only judge latency on enough samples
                    evaluate_low_sample_count_percentile="ignore" if stat.startswith("p") else None,
                )
            )
        return alarms

    def _grant_registry_read(self, fn: cdk.aws_lambda.Function, group: str) -> None:
        stack = cdk.Stack.of(self)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                resources=[
                    stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group),
                    stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*"),
                ],
            )
        )

    def _grant_deploy(self, fn: cdk.aws_lambda.Function, config: StageConfig, lake: DataLake, group: str) -> None:
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
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                    "sagemaker:InvokeEndpoint",
                    "sagemaker:AddTags",
                ],
                resources=[
                    stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{config.prefix}*")
                    for kind in ("endpoint", "endpoint-config", "model")
                ],
            )
        )
        self._grant_registry_read(fn, group)
        fn.add_to_role_policy(
            iam.PolicyStatement(  # a package whose deployment failed is set to Rejected (never the champion)
                actions=["sagemaker:UpdateModelPackage"],
                resources=[stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*")],
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
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[a.alarm_arn for a in self.rollback_alarms],
            )
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
                        resource_name=f"TargetTracking-endpoint/{config.endpoint_name}/variant/*",
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
        lake.key.grant_decrypt(fn)
        # endpoint configs name the data key (storage volume, data capture): the caller needs grants on it
        lake.key.grant(fn, "kms:CreateGrant", "kms:DescribeKey")
        grant_put_metrics(fn, config.metrics_namespace)

    def _deployment_state_machine(self, config: StageConfig, topic: sns.ITopic) -> sfn.StateMachine:
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
        # golden payloads on a short-lived candidate endpoint (<endpoint>-smoke) before any traffic moves
        start_smoke = step("StartSmokeEndpoint", "smoke_endpoint", "$.smoke")
        wait_smoke = sfn.Wait(self, "WaitForSmokeEndpoint", time=sfn.WaitTime.seconds_path("$.smoke.poll_seconds"))
        check_smoke = step("CheckSmokeEndpoint", "smoke_endpoint", "$.smoke")
        smoke = step("SmokeTest", "smoke_test", "$.smoke")
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
        for task in (prepare, start_smoke, check_smoke, smoke, rollout, check, compare, verify, notify_done):
            task.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
        smoke_ready = (
            sfn.Choice(self, "SmokeEndpointReady")
            .when(sfn.Condition.string_equals("$.smoke.status", "InProgress"), wait_smoke)
            .otherwise(smoke)
        )
        wait_smoke.next(check_smoke).next(smoke_ready)
        in_progress = (
            sfn.Choice(self, "RolloutFinished")
            .when(sfn.Condition.string_equals("$.rollout.status", "InProgress"), wait)
            .when(sfn.Condition.string_equals("$.rollout.status", "ShadowBaking"), wait_shadow)
            .otherwise(verify.next(notify_done).next(sfn.Succeed(self, "Deployed")))
        )
        wait.next(check).next(in_progress)
        wait_shadow.next(compare).next(in_progress)
        smoke.next(rollout).next(in_progress)
        definition = prepare.next(start_smoke).next(smoke_ready)
        log_group = logs.LogGroup(
            self,
            "DeploymentLogs",
            log_group_name=f"/aws/vendedlogs/states/{config.prefix}-deployment",
            retention=retention_days(config.log_retention_days),
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
            comment="Approved package -> smoke test -> guarded rollout (or shadow bake + comparison) -> verify "
            "(silent rollback = failure) -> autoscaling",
        )


def _image_account(config: StageConfig) -> str:
    from stacks.constructs.images import sklearn_image_uri

    uri = sklearn_image_uri(config.region, config.training.sklearn_framework_version, config.serving.instance_type)
    return uri.split(".")[0]
