"""The one place where Lambda functions are built: runtime, architecture, layers, logging, tracing.

Every function ships the same small asset (the ``lambdas`` package, the ``pipelines.schema``,
``pipelines.platform``, ``pipelines.features`` and ``pipelines.etl.transforms`` modules and the platform document
``pipelines/datasets.json``), takes Powertools from its
public layer (resolved through the public SSM parameter of the pinned version) and gets a typed environment
that carries names only: what a function needs to know about a dataset is in the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from pipelines.platform import DOCUMENT_NAME
from stacks.config import StageConfig
from stacks.constructs.assets import ROOT, asset_hash, bundling_options
from stacks.constructs.dead_letters import DeadLetters

if TYPE_CHECKING:
    from stacks.constructs.network import Network

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.X86_64
POWERTOOLS_VERSION = "3.37.0"  # same as the pinned aws-lambda-powertools in pyproject.toml
LAMBDA_PACKAGES = (
    "lambdas",
    "pipelines/schema.py",
    "pipelines/platform.py",
    "pipelines/data_policy.py",  # the retrain's data plan
    # the ETL's row rules and engineered features, for the ground-truth Lambda's labelled production rows
    "pipelines/features.py",
    "pipelines/etl/__init__.py",
    "pipelines/etl/transforms.py",
    "pipelines/etl/driver.py",  # the ETL's driver, for the Lambda ETL of small uploads
    "pipelines/experiments",  # the A/B outcomes and sequential test (deploy Lambda, experiment evaluator)
)
DOCUMENT_PATH = f"pipelines/{DOCUMENT_NAME}"
"""Where the platform document lands in every code asset (next to ``pipelines/platform.py``, which reads it)."""
PANDAS_LAYER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
"""For functions on the AWS SDK for pandas layer: a Lambda has at most a few vCPUs and our numpy code uses no BLAS,
so numpy's thread pools only cost start-up time (OpenBLAS's pool halves numpy's import time when limited to one)."""


class LambdaFactory(Construct):
    """Builds functions that share one code asset, one layer set and one logging policy.

    ``key`` (the data key) encrypts each function's log group (its key policy lets CloudWatch Logs use it:
    ``DataLake._allow_encrypted_logs``) and its environment variables at rest. Lambda decrypts the environment
    with a grant it creates when the function is created or updated, by whoever deploys ("When you use a customer
    managed key, only users in your account with access to the KMS key can view or manage environment variables
    on the function", AWS Lambda Developer Guide, "Securing Lambda environment variables",
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html): the execution role needs
    no KMS permission for it.

    ``asynchronous=True`` (a function EventBridge or a CloudWatch alarm invokes) gives the function a dead-letter
    queue from ``dead_letters``, where Lambda puts an event that still fails after its retries.

    ``network`` (a ``network: private`` stage) puts every function in the VPC's isolated subnets, in the workloads'
    security group, its role allowed to manage the function's network interfaces there."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        document: bytes,
        key: kms.IKey,
        dead_letters: DeadLetters,
        network: Network | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.network = network
        self.key = key
        self.dead_letters = dead_letters
        generated = {DOCUMENT_PATH: document}
        self.code = lambda_.Code.from_asset(
            str(ROOT / "lambdas"),
            asset_hash=asset_hash(("lambdas", "pipelines"), generated),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=bundling_options(LAMBDA_PACKAGES, generated=generated),
        )
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self,
            f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{POWERTOOLS_VERSION}",
        )
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)
        self._extra_layers: dict[str, lambda_.ILayerVersion] = {}

    def pandas_layer(self) -> lambda_.ILayerVersion:
        """numpy/pandas for the drift monitor, from the AWS SDK for pandas public layer."""
        if "pandas" not in self._extra_layers:
            py = RUNTIME.name.replace("python", "py")  # py3.13
            arn = ssm.StringParameter.value_for_string_parameter(
                self,
                f"/aws/service/aws-sdk-pandas/3.17.1/{py}/{ARCHITECTURE.name}/layer-arn",
            )
            self._extra_layers["pandas"] = lambda_.LayerVersion.from_layer_version_arn(self, "SdkForPandas", arn)
        return self._extra_layers["pandas"]

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: Mapping[str, str] | None = None,
        timeout: cdk.Duration | None = None,
        memory_mb: int = 256,
        with_pandas: bool = False,
        asynchronous: bool = False,
    ) -> lambda_.Function:
        """A function whose handler is ``lambdas.<handler>`` (e.g. ``start_pipeline.handler.handler``)."""
        service = handler.split(".")[0]
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=retention_days(self._config.log_retention_days),
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # Own role with logs access to its own log group only (instead of AWSLambdaBasicExecutionRole).
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{construct_id}: {description}"[:1000],
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        dead_letter_queue = self.dead_letters.queue_for(scope, construct_id) if asynchronous else None
        if dead_letter_queue is not None:
            # Lambda sends the failed event with the function's role (Function adds sqs:SendMessage on the queue);
            # the queue is SSE-KMS: a producer needs kms:GenerateDataKey and kms:Decrypt on its key (Amazon SQS
            # Developer Guide, "Key management": "Enable compatibility between AWS services and encrypted queues")
            role.add_to_policy(
                iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
            )
        if self.network is not None:
            self.network.grant_function(role)
        layers = [self.powertools] + ([self.pandas_layer()] if with_pandas else [])
        layer_environment = PANDAS_LAYER_ENVIRONMENT if with_pandas else {}
        fn = lambda_.Function(
            scope,
            construct_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"lambdas.{handler}",
            code=self.code,
            description=description,
            memory_size=memory_mb,
            timeout=timeout or cdk.Duration.seconds(60),
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=log_group,
            role=role,
            layers=layers,
            reserved_concurrent_executions=self._config.concurrency.reserved(construct_id),
            environment_encryption=self.key,
            dead_letter_queue=dead_letter_queue,
            **(self.network.function_placement() if self.network else {}),
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": self._config.metrics_namespace,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "STAGE": self._config.stage,
                **layer_environment,
                **(environment or {}),
            },
        )
        return fn


def grant_put_metrics(fn: lambda_.Function, namespace: str) -> None:
    """PutMetricData has no resource ARN; scope it to our namespace with a condition."""
    fn.add_to_role_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
        )
    )


_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


def retention_days(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention that keeps at least ``days``."""
    for limit, value in sorted(_RETENTION.items()):
        if limit >= days:
            return value
    return logs.RetentionDays.TEN_YEARS
