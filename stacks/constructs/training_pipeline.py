"""Training pipeline: S3 upload -> start Lambda -> Step Functions
(ETL -> prepare -> SageMaker training with the evaluation inside it -> champion/challenger gate -> registry ->
notify; a dataset with ``model.tuning``: tuning job -> evaluation job -> the same gate).

The training job of an untuned run evaluates the model it saved (``pipelines/training/held_out.py``): the test split
and the champion's archive are channels the fit never sees, the evaluation module and the golden-payload smoke
test run after it, and the report leaves in the job's ``output.tar.gz``; it saves the evaluation job's start-up
(processing jobs have no warm pools). A tuning job's trials get no held-out channel; its best trial is evaluated by
the separate evaluation job, as before.

One state machine for every declared dataset: each execution's input carries ``"dataset": "<name>"`` and every
step passes it on (the Glue job's ``--dataset``, the training job's ``dataset`` hyperparameter, the evaluation
job's ``--dataset``, the Lambdas' ``$``); each step reads the dataset's schema, gate and names from the platform
document shipped with its code. Every task retries transient errors with backoff and catches everything else
into one failure path that publishes the underlying reason (Glue ErrorMessage / SageMaker FailureReason), not just
"States.TaskFailed".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipelines.platform import COMPOSED_PREFIX, PRODUCTION_PREFIX, RAW_DATASETS_PREFIX
from pipelines.training.held_out import HELD_OUT_CHANNELS
from stacks.config import StageConfig
from stacks.constructs.assets import ROOT, Generated, asset_hash, bundling_options
from stacks.constructs.data_lake import CURATED_PREFIX, EVALUATIONS_PREFIX, MODELS_PREFIX, DataLake
from stacks.constructs.images import sklearn_image_uri
from stacks.constructs.lambda_etl import LambdaEtl
from stacks.constructs.lambda_factory import LambdaFactory, grant_put_metrics, retention_days
from stacks.constructs.tables import state_table

if TYPE_CHECKING:
    from stacks.constructs.network import Network

# Errors worth retrying: throttling and transient service faults, never a failed job.
TRANSIENT_ERRORS = [
    "ThrottlingException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "SageMaker.ThrottlingException",
    "SageMaker.ResourceLimitExceeded",
    "SageMaker.InternalFailure",
    "SNS.ThrottledException",
]
GLUE_QUEUE_RETRY = {"interval": 60, "backoff_rate": 1.5, "max_attempts": 12, "max_delay": 300}
"""The ETL task's retrier for Glue.ConcurrentRunsExceededException (``_queue_for_glue``)."""
GLUE_QUEUE_SECONDS = sum(
    min(GLUE_QUEUE_RETRY["interval"] * GLUE_QUEUE_RETRY["backoff_rate"] ** n, GLUE_QUEUE_RETRY["max_delay"])
    for n in range(int(GLUE_QUEUE_RETRY["max_attempts"]))
)
"""The longest an upload waits for a free ETL run (no jitter): 48 minutes."""
ETL_LAMBDA_TASK_MARGIN_SECONDS = 60
"""The Lambda ETL task's timeout beyond the function's own: the invocation's queueing and a cold start."""
TRAINING_PROGRAM = "pipelines/training/train.py"
SOURCE_PACKAGES = ("pipelines",)
SOURCEDIR_ARCHIVE = "sourcedir.tar.gz"  # sagemaker_submit_directory must be a tar.gz
PROCESSING_CODE_DIR = "/opt/ml/processing/code"
CODE_CHANNEL = "code"
"""A network-isolated training container cannot download ``sagemaker_submit_directory`` from S3 (only SageMaker
itself reads the input channels, through the VPC): the source archive comes in as this channel and the toolkit
extracts it from the container path, as the SageMaker Python SDK does for an isolated framework estimator."""
CHANNELS_DIR = "/opt/ml/input/data"
OUTPUT_ARCHIVE = "output.tar.gz"
"""What SageMaker makes of a training job's /opt/ml/output/data: one compressed tar object beside model.tar.gz
(SageMaker Developer Guide, "How Amazon SageMaker AI Processes Training Output")."""
# sh -c '<script>' <$0> <args...>: "$@" hands the job's ContainerArguments to the evaluation module. The
# code input holds the source archive under its S3 object name (the asset hash), hence the glob.
EVALUATION_ENTRYPOINT = [
    "/bin/sh",
    "-c",
    f'cd {PROCESSING_CODE_DIR} && for archive in *gz; do tar xzf "$archive"; done && '
    f'PYTHONPATH={PROCESSING_CODE_DIR} exec python3 -m pipelines.evaluation.evaluate "$@"',
    "evaluate",
]

Retryable = TypeVar("Retryable", sfn.TaskStateBase, sfn.CustomState)


class TrainingPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        datasets: Sequence[StageConfig],
        lake: DataLake,
        lambdas: LambdaFactory,
        generated: Generated,
        topic: sns.ITopic,
        network: Network | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.datasets = tuple(datasets)
        self.network = network
        stack = cdk.Stack.of(self)
        image = sklearn_image_uri(
            config.region, config.training.sklearn_framework_version, config.training.instance_type
        )
        # The same files as the Glue job's pipelines.zip, but a tar.gz: its own hash, or CDK would publish
        # one of the two archives for both (assets with equal custom hashes are deduplicated).
        self.source_dir = cdk.aws_s3_assets.Asset(
            self,
            "SourceDir",
            path=str(ROOT / "pipelines"),
            asset_hash=hashlib.sha256(
                f"{asset_hash(SOURCE_PACKAGES, generated)}:{SOURCEDIR_ARCHIVE}".encode()
            ).hexdigest(),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=bundling_options(SOURCE_PACKAGES, archive_name=SOURCEDIR_ARCHIVE, generated=generated),
        )
        self.code_version = asset_hash(SOURCE_PACKAGES)[:12]

        # ---- SageMaker execution role (training + processing) ----
        self.sagemaker_role = iam.Role(
            self,
            "SageMakerJobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Training and evaluation jobs: read curated data and code, write model artifacts",
        )
        # training reads the curated splits (curated/...: an upload's job also the test split, for its in-job
        # evaluation), the champion's archive (models/...) and prepare's no-champion placeholder (evaluations/...) as
        # channels; the tuned path's evaluation job reads the same and the best trial's archive (models/...). They
        # write the model and the in-job evaluation's output archive (models/<job>/output/) and the evaluation job's
        # report (evaluations/<execution>/), and delete nothing
        lake.curated.grant_read(self.sagemaker_role, f"{CURATED_PREFIX}*")
        for prefix in (MODELS_PREFIX, EVALUATIONS_PREFIX):
            lake.artifacts.grant_read(self.sagemaker_role, f"{prefix}*")
            lake.artifacts.grant_put(self.sagemaker_role, f"{prefix}*")
        # the source archive only, not the whole CDK asset bucket (Asset.grant_read grants every object in it)
        self.source_dir.bucket.grant_read(self.sagemaker_role, self.source_dir.s3_object_key)
        lake.key.grant_encrypt_decrypt(self.sagemaker_role)
        self.sagemaker_role.add_to_policy(
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
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        self.sagemaker_role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        if network:
            network.grant_sagemaker(self.sagemaker_role)
        self.sagemaker_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:ecr:{config.region}:{image.split('.')[0]}:repository/"
                    "sagemaker-scikit-learn"
                ],
            )
        )

        # ---- Lambdas of the pipeline (the dataset's group, gate and names: the platform document) ----
        common_env = {
            "CURATED_BUCKET": lake.curated.bucket_name,
            "ARTIFACTS_BUCKET": lake.artifacts.bucket_name,
        }
        self.prepare_fn = lambdas.function(
            self,
            "PrepareTraining",
            handler="prepare_training.handler.handler",
            description="Reads the ETL manifest, composes a retrain's channels from its data plan, finds the champion "
            "and names the training run",
            # a tuning job's StaticHyperParameters: these minus the tuned ones, plus the dataset (prepare's)
            environment={**common_env, "TRAINING_HYPERPARAMETERS": json.dumps(self._static_hyperparameters(config))},
            with_pandas=True,  # upload splits + labelled production rows (Parquet) -> composed channels
            memory_mb=1024,
            timeout=cdk.Duration.minutes(5),
        )
        self.register_fn = lambdas.function(
            self,
            "RegisterModel",
            handler="register_model.handler.handler",
            description="Records every challenger in the registry with metrics and lineage",
            environment={
                **common_env,
                "INFERENCE_IMAGE": sklearn_image_uri(
                    config.region, config.training.sklearn_framework_version, config.serving.instance_type
                ),
                "CODE_VERSION": self.code_version,
            },
        )
        self.failure_fn = lambdas.function(
            self,
            "ExplainFailure",
            handler="pipeline_failure.handler.handler",
            description="Extracts the underlying Glue/SageMaker/Lambda failure reason for the notification",
        )
        # prepare: the ETL's quality reports, and the no-champion placeholder; register: evaluation reports
        lake.curated.grant_read(self.prepare_fn, f"{CURATED_PREFIX}*")
        # a retrain's data plan: the labelled production rows in, the composed channels out (training reads curated/*)
        lake.curated.grant_read(self.prepare_fn, f"{PRODUCTION_PREFIX}*")
        lake.curated.grant_put(self.prepare_fn, f"{COMPOSED_PREFIX}*")
        lake.artifacts.grant_put(self.prepare_fn, f"{EVALUATIONS_PREFIX}*/no-champion/NO_CHAMPION")
        lake.artifacts.grant_read(self.register_fn, f"{EVALUATIONS_PREFIX}*")
        # an upload's evaluation ran inside its training job: register reads the job's output archive and publishes
        # evaluation.json and golden.json under evaluations/<execution>/ (the registry's ModelQuality points there)
        lake.artifacts.grant_read(self.register_fn, f"{MODELS_PREFIX}*/output/{OUTPUT_ARCHIVE}")
        lake.artifacts.grant_put(self.register_fn, f"{EVALUATIONS_PREFIX}*")
        for fn in (self.prepare_fn, self.register_fn):
            lake.key.grant_decrypt(fn)
        grant_put_metrics(self.register_fn, config.metrics_namespace)
        group_arns, package_arns = registry_arns(stack, config)
        for fn in (self.prepare_fn, self.register_fn):
            # the Service Authorization Reference gives ListModelPackages the model-package resource type: the
            # stage's groups' versions, as the deploy and batch Lambdas are granted (Serving._grant_registry_read)
            fn.add_to_role_policy(
                iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=[*group_arns, *package_arns])
            )
        self.prepare_fn.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=package_arns)
        )
        self.register_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:UpdateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:AddTags",
                ],
                resources=[*group_arns, *package_arns],
            )
        )

        # the ETL of an upload of at most etl.lambda_max_bytes (the Glue job runs larger ones)
        self.lambda_etl = LambdaEtl(
            self, "LambdaEtl", config=config, datasets=self.datasets, lake=lake, lambdas=lambdas
        )
        self.state_machine = self._state_machine(config, lake, image, topic)

        # ---- S3 upload -> EventBridge -> start Lambda (idempotent per object version) ----
        # One rule for every dataset folder: the Lambda starts the declared dataset's pipeline and refuses (logs
        # and notifies, touching nothing) an upload under a folder no declaration names.
        self.idempotency_table = state_table(self, "IdempotencyTable", key=lake.key)
        self.start_fn = lambdas.function(
            self,
            "StartPipeline",
            asynchronous=True,  # dataset uploads (EventBridge)
            handler="start_pipeline.handler.handler",
            description="Starts one pipeline execution per uploaded raw object version of a declared dataset",
            environment={
                "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
                "TOPIC_ARN": topic.topic_arn,
            },
        )
        self.idempotency_table.grant_read_write_data(self.start_fn)
        lake.key.grant_encrypt_decrypt(self.start_fn)
        self.state_machine.grant_start_execution(self.start_fn)
        topic.grant_publish(self.start_fn)  # the refusal of an undeclared dataset's upload
        grant_put_metrics(self.start_fn, config.metrics_namespace)
        self.upload_rule = events.Rule(
            self,
            "RawUploadRule",
            description="Object Created under datasets/ of the raw zone starts the dataset's pipeline",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [lake.raw.bucket_name]},
                    "object": {"key": [{"prefix": RAW_DATASETS_PREFIX}]},
                },
            ),
            targets=[targets.LambdaFunction(self.start_fn, retry_attempts=4)],
        )

    # ------------------------------------------------------------------
    def _retry(self, task: Retryable) -> Retryable:
        task.add_retry(
            errors=TRANSIENT_ERRORS,
            interval=cdk.Duration.seconds(5),
            backoff_rate=2.0,
            max_attempts=4,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    @staticmethod
    def _queue_for_glue(task: tasks.GlueStartJobRun) -> tasks.GlueStartJobRun:
        """Uploads beyond the ETL job's MaxConcurrentRuns (several datasets landing at once) wait for a free run
        instead of failing: StartJobRun answers ConcurrentRunsExceededException while the job runs its maximum.
        The retrier comes first (Step Functions uses the first retrier whose ErrorEquals matches) and spans
        ``GLUE_QUEUE_SECONDS`` at most: a minute, growing 1.5x to 5 minutes, 12 attempts, full jitter so that
        queued uploads do not retry in step."""
        task.add_retry(
            errors=["Glue.ConcurrentRunsExceededException"],
            interval=cdk.Duration.seconds(GLUE_QUEUE_RETRY["interval"]),
            backoff_rate=GLUE_QUEUE_RETRY["backoff_rate"],
            max_attempts=int(GLUE_QUEUE_RETRY["max_attempts"]),
            max_delay=cdk.Duration.seconds(GLUE_QUEUE_RETRY["max_delay"]),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _lambda_step(self, step_id: str, fn: cdk.aws_lambda.IFunction, result_path: str) -> sfn.TaskStateBase:
        return self._retry(
            tasks.LambdaInvoke(
                self,
                f"{step_id}Step",
                state_name=step_id,
                lambda_function=fn,
                payload=sfn.TaskInput.from_object({"execution.$": "$$.Execution.Name", "state.$": "$"}),
                payload_response_only=True,
                result_path=result_path,
                retry_on_service_exceptions=False,
            )
        )

    def _static_hyperparameters(self, config: StageConfig) -> dict[str, str]:
        """The training job's hyperparameters but the execution's dataset: the stage's and the toolkit's."""
        from pipelines.training.hyperparameters import stage_hyperparameters

        return {
            **stage_hyperparameters(config.training.hyperparameters.items()),
            **sagemaker_hyperparameters(
                f"{CHANNELS_DIR}/{CODE_CHANNEL}/{self.source_dir.s3_object_key}"
                if self.network
                else self.source_dir.s3_object_url,
                config.region,
            ),
        }

    def _job_network(self) -> dict[str, Any]:
        """A job's network settings in a private stage: the VPC, no network access from the container, and encrypted
        traffic between the instances of a multi-instance job. The training script reads its channels and writes
        /opt/ml/model; the evaluation reads its inputs and writes its report under /opt/ml/processing, its code
        arriving as an input: neither needs the network. CreateTrainingJob takes these keys at the top level,
        CreateProcessingJob inside ``NetworkConfig``."""
        if self.network is None:
            return {}
        return {
            "VpcConfig": self.network.vpc_config(),
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        }

    @staticmethod
    def _warm_pool(config: StageConfig) -> dict[str, int]:
        """TrainModel's ``ResourceConfig.KeepAlivePeriodInSeconds`` when the stage keeps a SageMaker managed warm
        pool (none otherwise: a stage without one synthesizes the same ResourceConfig as before). Step Functions'
        ``createTrainingJob.sync`` passes the request's parameters to CreateTrainingJob and waits for the job's end,
        not for the pool (which SageMaker keeps after the job)."""
        seconds = config.training.keep_alive_seconds
        return {"KeepAlivePeriodInSeconds": seconds} if seconds else {}

    def _state_machine(self, config: StageConfig, lake: DataLake, image: str, topic: sns.ITopic) -> sfn.StateMachine:
        # ---- failure path: explain -> notify -> fail ----
        explain = tasks.LambdaInvoke(
            self,
            "ExplainFailureStep",
            state_name="ExplainFailure",
            lambda_function=self.failure_fn,
            payload=sfn.TaskInput.from_object(
                {
                    "execution.$": "$$.Execution.Name",
                    "error.$": "$.error",
                    "input.$": "$$.Execution.Input",
                    "state.$": "$",  # how far the run got: names the stage when the Cause does not
                }
            ),
            payload_response_only=True,
            result_path="$.failure",
        )
        explain.add_retry(errors=TRANSIENT_ERRORS, interval=cdk.Duration.seconds(2), max_attempts=3)
        notify_failure = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=topic,
            subject=sfn.JsonPath.string_at("$.failure.subject"),
            message=sfn.TaskInput.from_json_path_at("$.failure.message"),
            message_attributes={
                "outcome": tasks.MessageAttribute(value="failed"),
                "stage": tasks.MessageAttribute(value=sfn.JsonPath.string_at("$.failure.stage")),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        fail = sfn.Fail(
            self,
            "PipelineFailed",
            error="PipelineFailed",
            cause_path=sfn.JsonPath.string_at("$.failure.reason"),
        )
        failure_path = explain.next(notify_failure).next(fail)

        def catch(task: Retryable) -> Retryable:
            task.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
            return task

        # ---- 1. ETL (skipped when a retrain reuses the latest curated data) ----
        etl = catch(
            self._retry(
                self._queue_for_glue(
                    tasks.GlueStartJobRun(
                        self,
                        "RunEtl",
                        glue_job_name=config.glue_job_name,
                        integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                        arguments=sfn.TaskInput.from_object(
                            {
                                "--dataset.$": "$.dataset",
                                "--raw_bucket.$": "$.upload.bucket",
                                "--raw_key.$": "$.upload.key",
                                "--raw_version_id.$": "$.upload.version_id",
                                "--execution_id.$": "$$.Execution.Name",
                            }
                        ),
                        result_selector={"job_run_id.$": "$.Id", "state.$": "$.JobRunState"},
                        result_path="$.etl",
                        task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(config.glue.timeout_minutes + 5)),
                    )
                )
            )
        )
        # the same driver and transforms in a Lambda for a small upload: $.etl has the Glue task's shape
        lambda_etl = catch(
            self._retry(
                tasks.LambdaInvoke(
                    self,
                    "RunEtlInLambdaStep",
                    state_name="RunEtlInLambda",
                    lambda_function=self.lambda_etl.function,
                    payload=sfn.TaskInput.from_object(
                        {"execution.$": "$$.Execution.Name", "dataset.$": "$.dataset", "upload.$": "$.upload"}
                    ),
                    payload_response_only=True,
                    result_selector={"job_run_id.$": "$.job_run_id", "state.$": "$.state"},
                    result_path="$.etl",
                    retry_on_service_exceptions=False,
                    task_timeout=sfn.Timeout.duration(
                        cdk.Duration.seconds(config.etl.lambda_timeout_seconds + ETL_LAMBDA_TASK_MARGIN_SECONDS)
                    ),
                )
            )
        )
        prepare = catch(self._lambda_step("PrepareTraining", self.prepare_fn, "$.prepared"))

        # ---- 2. training (scikit-learn container, script mode) ----
        from pipelines.training.hyperparameters import DATASET_HYPERPARAMETER
        from pipelines.training.metric_definitions import METRIC_DEFINITIONS

        hyperparameters = {
            **self._static_hyperparameters(config),
            # the toolkit json.loads every value: the dataset name as a JSON string literal ("churn")
            f"{DATASET_HYPERPARAMETER}.$": "States.JsonToString($.dataset)",
        }
        code_channel = (
            [
                {
                    "ChannelName": CODE_CHANNEL,
                    "DataSource": {"S3DataSource": {"S3Uri": self.source_dir.s3_object_url, "S3DataType": "S3Prefix"}},
                }
            ]
            if self.network
            else []
        )
        # The evaluation runs inside the training job (pipelines/training/held_out.py): the held-out test split and
        # the champion's archive (or prepare's NO_CHAMPION placeholder) come in as channels the fit never sees
        held_out_channels = [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3Uri.$": uri_path,
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for name, uri_path in zip(
                HELD_OUT_CHANNELS, ("$.prepared.curated.test_uri", "$.prepared.champion_model_data"), strict=True
            )
        ]
        # A CustomState rather than tasks.SageMakerCreateTrainingJob, whose S3Location renders an https URL for a
        # bucket (SageMaker takes the host for the bucket) and, for channels from JSON paths, grants s3:GetObject and
        # s3:ListBucket on every bucket; it also grants sagemaker:ListTags on "*". Its IAM is granted below, scoped.
        output_path = f"s3://{lake.artifacts.bucket_name}/{MODELS_PREFIX}"
        train = catch(
            self._retry(
                sfn.CustomState(
                    self,
                    "TrainModel",
                    state_json={
                        "Type": "Task",
                        "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
                        "Parameters": {
                            "TrainingJobName.$": "$.prepared.training_job_name",
                            "RoleArn": self.sagemaker_role.role_arn,
                            "AlgorithmSpecification": {
                                "TrainingInputMode": "File",
                                "TrainingImage": image,
                                "MetricDefinitions": [
                                    {"Name": m["Name"], "Regex": m["Regex"]} for m in METRIC_DEFINITIONS
                                ],
                            },
                            "InputDataConfig": [
                                {
                                    "ChannelName": split,
                                    "DataSource": {
                                        "S3DataSource": {
                                            "S3Uri.$": f"$.prepared.curated.{split}_uri",
                                            "S3DataType": "S3Prefix",
                                        }
                                    },
                                    "ContentType": "application/x-parquet",
                                }
                                for split in ("train", "validation")
                            ]
                            + held_out_channels
                            + code_channel,
                            "OutputDataConfig": {"S3OutputPath": output_path, "KmsKeyId": lake.key.key_arn},
                            "ResourceConfig": {
                                "InstanceCount": config.training.instance_count,
                                "InstanceType": config.training.instance_type,
                                "VolumeSizeInGB": config.training.volume_gb,
                                "VolumeKmsKeyId": lake.key.key_arn,
                                **self._warm_pool(config),
                            },
                            "StoppingCondition": {"MaxRuntimeInSeconds": config.training.max_runtime_seconds},
                            "HyperParameters": hyperparameters,
                            "Environment": {"MODEL_VERSION.$": "$.prepared.model_version"},
                            **self._job_network(),
                        },
                        # SageMaker uploads /opt/ml/output/data (evaluation.json, golden.json) as
                        # <S3OutputPath>/<training job>/output/output.tar.gz beside model.tar.gz
                        "ResultSelector": {
                            "job_name.$": "$.TrainingJobName",
                            "model_data.$": "$.ModelArtifacts.S3ModelArtifacts",
                            "evaluation_archive.$": "States.Format('{}{}/output/"
                            + OUTPUT_ARCHIVE
                            + "', '"
                            + output_path
                            + "', $.TrainingJobName)",
                        },
                        "ResultPath": "$.training",
                    },
                )
            )
        )

        # ---- 2b. a dataset that declares model.tuning: an automatic model tuning job of the same training job,
        # without the held-out channels (a trial trains only); its best trial (by the gate's metric on the
        # validation split) goes on as the challenger, evaluated by the evaluation job ----
        definition = {
            key: value
            for key, value in train.to_state_json()["Parameters"].items()
            if key not in ("TrainingJobName.$", "HyperParameters")
        }
        # a tuning job's trials keep no warm pool (the stage's keep-alive is for the iteration loop's TrainModel)
        definition["ResourceConfig"] = {
            key: value for key, value in definition["ResourceConfig"].items() if key != "KeepAlivePeriodInSeconds"
        }
        definition["InputDataConfig"] = [
            channel for channel in definition["InputDataConfig"] if channel["ChannelName"] not in HELD_OUT_CHANNELS
        ]
        tune = catch(
            self._retry(
                sfn.CustomState(
                    self,
                    "TuneModel",
                    state_json={
                        "Type": "Task",
                        "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:createHyperParameterTuningJob.sync",
                        "Parameters": {
                            "HyperParameterTuningJobName.$": "$.prepared.tuning.job_name",
                            "HyperParameterTuningJobConfig.$": "$.prepared.tuning.config",
                            "TrainingJobDefinition": {
                                **definition,
                                "StaticHyperParameters.$": "$.prepared.tuning.static_hyperparameters",
                            },
                        },
                        # the best trial's archive: SageMaker writes <S3OutputPath>/<training job>/output/model.tar.gz
                        "ResultSelector": {
                            "job_name.$": "$.BestTrainingJob.TrainingJobName",
                            "model_data.$": "States.Format('{}{}/output/model.tar.gz', '"
                            + output_path
                            + "', $.BestTrainingJob.TrainingJobName)",
                            "tuning": {
                                "job_name.$": "$.HyperParameterTuningJobName",
                                "trials.$": "$.TrainingJobStatusCounters",
                                "hyperparameters.$": "$.BestTrainingJob.TunedHyperParameters",
                                "objective.$": "$.BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric",
                            },
                        },
                        "ResultPath": "$.training",
                    },
                )
            )
        )
        tune_or_train = (
            sfn.Choice(self, "TuneOrTrain").when(sfn.Condition.is_present("$.prepared.tuning"), tune).otherwise(train)
        )

        # ---- 3. the tuned path's evaluation: the best trial vs the champion on the held-out test split (a processing
        # job; an upload's TrainModel evaluates inside the training job) ----
        from pipelines.evaluation.evaluate import processing_arguments  # lazy: sklearn, synth path only

        # --dataset <the execution's dataset> and the container paths: the gate comes from the platform document
        evaluation_arguments = "States.Array({})".format(
            ", ".join(["'--dataset'", "$.dataset", *(f"'{argument}'" for argument in processing_arguments())])
        )
        evaluate = catch(
            self._retry(
                sfn.CustomState(
                    self,
                    "EvaluateModels",
                    state_json={
                        "Type": "Task",
                        "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:createProcessingJob.sync",
                        "Parameters": {
                            "ProcessingJobName.$": "$.prepared.evaluation_job_name",
                            "RoleArn": self.sagemaker_role.role_arn,
                            "AppSpecification": {
                                "ImageUri": image,
                                "ContainerEntrypoint": EVALUATION_ENTRYPOINT,
                                "ContainerArguments.$": evaluation_arguments,
                            },
                            "ProcessingInputs": [
                                _processing_input("code", self.source_dir.s3_object_url, "/opt/ml/processing/code"),
                                _processing_input(
                                    "test", None, "/opt/ml/processing/test", "$.prepared.curated.test_uri"
                                ),
                                _processing_input(
                                    "challenger",
                                    None,
                                    "/opt/ml/processing/challenger",
                                    "$.training.model_data",
                                ),
                                # the approved model's archive, or prepare's NO_CHAMPION placeholder prefix
                                _processing_input(
                                    "champion",
                                    None,
                                    "/opt/ml/processing/champion",
                                    "$.prepared.champion_model_data",
                                ),
                            ],
                            "ProcessingOutputConfig": {
                                "KmsKeyId": lake.key.key_arn,
                                "Outputs": [
                                    {
                                        "OutputName": "evaluation",
                                        "S3Output": {
                                            "S3Uri.$": "$.prepared.evaluation_uri",
                                            "LocalPath": "/opt/ml/processing/evaluation",
                                            "S3UploadMode": "EndOfJob",
                                        },
                                    }
                                ],
                            },
                            "ProcessingResources": {
                                "ClusterConfig": {
                                    "InstanceCount": 1,
                                    "InstanceType": config.training.processing_instance_type,
                                    "VolumeSizeInGB": config.training.volume_gb,
                                    "VolumeKmsKeyId": lake.key.key_arn,
                                }
                            },
                            "StoppingCondition": {"MaxRuntimeInSeconds": config.training.max_runtime_seconds},
                            **({"NetworkConfig": self._job_network()} if self.network else {}),
                        },
                        "ResultSelector": {"job_name.$": "$.ProcessingJobName"},
                        "ResultPath": "$.evaluation_job",
                    },
                )
            )
        )
        register = catch(self._lambda_step("RegisterModel", self.register_fn, "$.registration"))
        notify_registered = tasks.SnsPublish(
            self,
            "NotifyRegistered",
            topic=topic,
            subject=sfn.JsonPath.string_at("$.registration.subject"),
            message=sfn.TaskInput.from_json_path_at("$.registration.message"),
            message_attributes={"outcome": tasks.MessageAttribute(value="registered")},
            result_path=sfn.JsonPath.DISCARD,
        )
        notify_rejected = tasks.SnsPublish(
            self,
            "NotifyRejected",
            topic=topic,
            subject=sfn.JsonPath.string_at("$.registration.subject"),
            message=sfn.TaskInput.from_json_path_at("$.registration.message"),
            message_attributes={"outcome": tasks.MessageAttribute(value="rejected")},
            result_path=sfn.JsonPath.DISCARD,
        )
        for t in (notify_registered, notify_rejected):
            catch(self._retry(t))
        done = sfn.Succeed(self, "Done")
        gate = (
            sfn.Choice(self, "GatePassed")
            .when(sfn.Condition.boolean_equals("$.registration.passed", True), notify_registered.next(done))
            .otherwise(notify_rejected.next(done))
        )
        # the S3 event's object.size, passed on by the start Lambda as $.upload.size
        engine = (
            sfn.Choice(self, "EtlEngine")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.upload.size"),
                    sfn.Condition.number_less_than_equals("$.upload.size", config.etl.lambda_max_bytes),
                ),
                lambda_etl,
            )
            .otherwise(etl)
        )
        lambda_etl.next(prepare)
        etl.next(prepare)
        has_curated = (
            sfn.Choice(self, "NeedsEtl").when(sfn.Condition.is_present("$.curated"), prepare).otherwise(engine)
        )
        prepare.next(tune_or_train)
        tune.next(evaluate).next(register)
        train.next(register).next(gate)

        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{config.state_machine_name}",
            retention=retention_days(config.log_retention_days),
            encryption_key=lake.key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=config.state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(has_curated),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            timeout=cdk.Duration.hours(6),
            comment="ETL -> training + evaluation (tuned: tuning -> evaluation) -> gate -> registry -> notify",
        )
        # The training and processing tasks are CustomStates: grant what their .sync integrations need (Step
        # Functions Developer Guide, "IAM policies for calling SageMaker AI"), scoped to this stage's job names.
        stack = cdk.Stack.of(self)
        jobs = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{config.prefix}-*")
            for kind in ("training-job", "processing-job")
        ]
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=jobs,
            )
        )
        # the tuning task's .sync integration (same guide): create, describe, stop and list its trials, tags
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[
                    stack.format_arn(
                        service="sagemaker", resource="hyper-parameter-tuning-job", resource_name=f"{config.prefix}-*"
                    )
                ],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events", resource="rule", resource_name=f"StepFunctionsGetEventsFor{kind}"
                    )
                    for kind in ("SageMakerTrainingJobsRule", "SageMakerProcessingJobsRule", "SageMakerTuningJobsRule")
                ],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # the Notify states publish to the KMS-encrypted topic with this role: sns:Publish plus the key's
        # kms:GenerateDataKey* / kms:Decrypt (Amazon SNS Developer Guide, "Key management")
        topic.grant_publish(machine)
        return machine


def registry_arns(stack: cdk.Stack, config: StageConfig) -> tuple[list[str], list[str]]:
    """(the stage's model package groups, their versions): ``<prefix>-*`` and ``<prefix>-*/*``. One pattern for
    every declared dataset's group (``<prefix>-<dataset>``): two ARNs per dataset in the prepare, register and
    deploy roles would outgrow IAM's 10,240 characters of inline policies per role at about 15 datasets
    (tests/infrastructure/test_scale.py)."""
    return (
        [stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=f"{config.prefix}-*")],
        [stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{config.prefix}-*/*")],
    )


def sagemaker_hyperparameters(submit_directory: str, region: str) -> dict[str, str]:
    """The training toolkit's own hyperparameters, JSON-encoded as the SageMaker SDK sends them (the
    toolkit ``json.loads`` every value)."""
    return {
        "sagemaker_program": json.dumps(TRAINING_PROGRAM),
        "sagemaker_submit_directory": json.dumps(submit_directory),
        "sagemaker_region": json.dumps(region),
        "sagemaker_container_log_level": json.dumps(20),
    }


def _processing_input(name: str, uri: str | None, local_path: str, uri_path: str | None = None) -> dict:
    s3_input: dict[str, str] = {
        "LocalPath": local_path,
        "S3DataType": "S3Prefix",
        "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated",
    }
    if uri_path:
        s3_input["S3Uri.$"] = uri_path
    else:
        s3_input["S3Uri"] = str(uri)
    return {"InputName": name, "S3Input": s3_input}
