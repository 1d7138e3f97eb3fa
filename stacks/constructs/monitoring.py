"""Monitoring and the retraining loop, shared by every declared dataset: the drift monitor, the ground-truth
Lambda, the guarded retrain Lambda and the dashboard (one section per dataset).

The per-dataset alarms and drift schedules live in ``stacks/constructs/dataset.py``; they invoke these functions
through one resource-policy statement each (``allow_alarms`` / ``allow_schedules``): Lambda caps a function's
resource-based policy at 20 KB, which one statement per alarm would exceed at about 60 alarms ("The final policy
size is bigger than the limit": https://repost.aws/knowledge-center/lambda-resource-based-policy-size-error, whose
fix is one statement with a wildcard source). Each function finds the dataset in the event (the schedule's
``detail.dataset``, the key's folder, the alarm's name) and the rest in the platform document.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipelines.platform import (
    DATA_CAPTURE_PREFIX,
    GROUND_TRUTH_PREFIX,
    MANIFESTS_PREFIX,
    MONITORING_PREFIX,
    PRODUCTION_PREFIX,
    QUARANTINE_PREFIX,
    production_table_name,
)
from stacks.config import StageConfig
from stacks.constructs.data_lake import CURATED_PREFIX, EVALUATIONS_PREFIX, QUALITY_PREFIX, DataLake
from stacks.constructs.dataset import OVERALL_DRIFT_METRIC, DatasetResources
from stacks.constructs.lambda_factory import LambdaFactory, grant_put_metrics
from stacks.constructs.tables import state_table
from stacks.constructs.training_pipeline import TrainingPipeline, registry_arns

DRIFT_METRIC = "FeatureDriftPSI"
DRIFT_KS_METRIC = "FeatureDriftKS"
RETRAIN_DECISION_METRIC = "RetrainDecision"
DRIFT_REPORT_PREFIX = f"{MONITORING_PREFIX}drift/"
ALARMS_PRINCIPAL = "lambda.alarms.cloudwatch.amazonaws.com"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        lake: DataLake,
        lambdas: LambdaFactory,
        pipeline: TrainingPipeline,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        ns = config.metrics_namespace

        # ---- drift monitor: one schedule per dataset (its detail names the dataset) ----
        self.drift_fn = lambdas.function(
            self,
            "DriftMonitor",
            asynchronous=True,  # the drift schedules (EventBridge)
            handler="drift_monitor.handler.handler",
            description="PSI/KS drift of a dataset's captured requests vs its ETL baseline and of the model's "
            "answers vs its test answers; metrics + HTML report",
            memory_mb=1024,
            timeout=cdk.Duration.minutes(5),
            with_pandas=True,  # numpy (drift math); pandas itself is not imported
            environment={
                "ARTIFACTS_BUCKET": lake.artifacts.bucket_name,
                "CURATED_BUCKET": lake.curated.bucket_name,
            },
        )
        # reads data capture, the manifests and the quality report; writes reports + watermark (no delete)
        lake.artifacts.grant_read(self.drift_fn, f"{DATA_CAPTURE_PREFIX}*")
        lake.artifacts.grant_read(self.drift_fn, f"{DRIFT_REPORT_PREFIX}*")
        lake.artifacts.grant_put(self.drift_fn, f"{DRIFT_REPORT_PREFIX}*")
        lake.curated.grant_read(self.drift_fn, f"{MANIFESTS_PREFIX}*")
        lake.curated.grant_read(self.drift_fn, f"{CURATED_PREFIX}*")
        # the output baseline: the answering model's package (the dataset's group) and its evaluation report
        groups, packages = registry_arns(cdk.Stack.of(self), config)
        self.drift_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                resources=[*groups, *packages],
            )
        )
        lake.artifacts.grant_read(self.drift_fn, f"{EVALUATIONS_PREFIX}*")
        lake.key.grant_encrypt_decrypt(self.drift_fn)
        grant_put_metrics(self.drift_fn, ns)

        # ---- ground truth: labels under ground-truth/<dataset>/ joined with the dataset's captured predictions ----
        stack_of = cdk.Stack.of(self)
        self.ground_truth_fn = lambdas.function(
            self,
            "GroundTruth",
            asynchronous=True,  # label uploads (EventBridge)
            handler="ground_truth.handler.handler",
            description="Joins uploaded labels with a dataset's captured predictions; publishes quality per version",
            memory_mb=1024,
            timeout=cdk.Duration.minutes(5),
            # the labelled rows pass the ETL's row validation (pandas, pyarrow) and are written as Parquet
            with_pandas=True,
            environment={
                "ARTIFACTS_BUCKET": lake.artifacts.bucket_name,
                "CURATED_BUCKET": lake.curated.bucket_name,
                "GLUE_DATABASE": config.glue_database_name,
                "IDEMPOTENCY_TABLE": pipeline.idempotency_table.table_name,
            },
        )
        lake.raw.grant_read(self.ground_truth_fn, f"{GROUND_TRUTH_PREFIX}*")
        lake.artifacts.grant_read(self.ground_truth_fn, f"{DATA_CAPTURE_PREFIX}*")
        lake.artifacts.grant_put(self.ground_truth_fn, f"{QUALITY_PREFIX}*")
        # labelled production rows (curated zone) and their tables: exactly each declared dataset's
        lake.curated.grant_put(self.ground_truth_fn, f"{PRODUCTION_PREFIX}*")
        # and the rows that fail the dataset's rules, quarantined beside its uploads' (ground_truth/production.py)
        lake.curated.grant_put(self.ground_truth_fn, f"{QUARANTINE_PREFIX}dataset=*/{PRODUCTION_PREFIX}*")
        self.ground_truth_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:CreateTable", "glue:UpdateTable"],
                resources=[
                    stack_of.format_arn(service="glue", resource="catalog"),
                    stack_of.format_arn(service="glue", resource="database", resource_name=config.glue_database_name),
                    *(
                        stack_of.format_arn(
                            service="glue",
                            resource="table",
                            resource_name=f"{config.glue_database_name}/{production_table_name(d.dataset.name)}",
                        )
                        for d in lake.datasets
                    ),
                ],
            )
        )
        lake.key.grant_encrypt_decrypt(self.ground_truth_fn)
        # idempotent per label object version (Powertools records in the pipeline's idempotency table)
        pipeline.idempotency_table.grant_read_write_data(self.ground_truth_fn)
        grant_put_metrics(self.ground_truth_fn, ns)
        events.Rule(
            self,
            "GroundTruthRule",
            description="Labels uploaded under ground-truth/<dataset>/ in the raw zone",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [lake.raw.bucket_name]},
                    "object": {"key": [{"prefix": GROUND_TRUTH_PREFIX}]},
                },
            ),
            targets=[targets.LambdaFunction(self.ground_truth_fn, retry_attempts=4)],
        )

        # ---- guarded retrain Lambda: the action of every dataset's retrain alarms ----
        self.guard_table = state_table(self, "RetrainGuardTable", key=lake.key, partition_key="pk", sort_key="sk")
        self.retrain_fn = lambdas.function(
            self,
            "Retrain",
            asynchronous=True,  # the retrain alarms (CloudWatch alarm actions)
            handler="retrain.handler.handler",
            description="Alarm action and retrain schedules: starts a dataset's retraining unless cooldown, daily "
            "budget or a running execution",
            with_pandas=True,  # reads the labelled production rows (Parquet) its data policy plans with
            environment={
                "STATE_MACHINE_ARN": pipeline.state_machine.state_machine_arn,
                "GUARD_TABLE": self.guard_table.table_name,
                "TOPIC_ARN": topic.topic_arn,
                "CURATED_BUCKET": lake.curated.bucket_name,
            },
        )
        self.guard_table.grant_read_write_data(self.retrain_fn)
        lake.curated.grant_read(self.retrain_fn, f"{MANIFESTS_PREFIX}*")
        lake.curated.grant_read(self.retrain_fn, f"{PRODUCTION_PREFIX}*")  # the data policy's labelled rows
        lake.key.grant_encrypt_decrypt(self.retrain_fn)
        pipeline.state_machine.grant_start_execution(self.retrain_fn)
        # the guard's reads: is an execution of the training state machine running (ListExecutions), and for which
        # dataset (DescribeExecution's input)? grant_read would add DescribeStateMachine/DescribeActivity on "*" and
        # every execution's history, which it never reads
        stack = cdk.Stack.of(self)
        self.retrain_fn.add_to_role_policy(
            iam.PolicyStatement(actions=["states:ListExecutions"], resources=[pipeline.state_machine.state_machine_arn])
        )
        self.retrain_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{config.state_machine_name}:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        topic.grant_publish(self.retrain_fn)
        grant_put_metrics(self.retrain_fn, ns)
        self.allow_alarms(self.retrain_fn)
        self.allow_schedules(self.drift_fn)
        if any(d.retrain.schedule for d in lake.datasets):  # the declared retrain schedules
            self.allow_schedules(self.retrain_fn, "retrain")
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.prefix}-mlops")
        self._overview(pipeline)

    # ------------------------------------------------------------------
    def allow_alarms(self, function: lambda_.IFunction) -> None:
        """Let CloudWatch invoke ``function`` for this stage's alarms (``alarm:<prefix>-*``, this account): one
        statement for every dataset's retrain alarms (actions: ``dataset.InvokeFunction``)."""
        stack = cdk.Stack.of(self)
        function.add_permission(
            "InvokeFromStageAlarms",
            principal=iam.ServicePrincipal(ALARMS_PRINCIPAL),
            action="lambda:InvokeFunction",
            source_account=stack.account,
            source_arn=stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=f"{self.config.prefix}-*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            ),
        )

    def allow_schedules(self, function: lambda_.IFunction, kind: str = "drift") -> None:
        """Let EventBridge invoke ``function`` for every dataset's ``kind`` schedule (``rule/<prefix>-*-<kind>``,
        ``dataset.SCHEDULE_KINDS``): one statement for the stage's drift schedules, one for its retrain schedules."""
        stack = cdk.Stack.of(self)
        function.add_permission(
            f"InvokeFrom{kind.capitalize()}Schedules",
            principal=iam.ServicePrincipal("events.amazonaws.com"),
            action="lambda:InvokeFunction",
            source_account=stack.account,
            source_arn=stack.format_arn(
                service="events", resource="rule", resource_name=f"{self.config.prefix}-*-{kind}"
            ),
        )

    def _search(
        self, names: str, metric: str, stat: str, by: str, *, prefix: str = "", where: str = ""
    ) -> cloudwatch.MathExpression:
        """Every hourly series of ``metric`` with exactly the dimensions ``names`` (and the filter ``where``), one
        line per ``by``."""
        ns = self.config.metrics_namespace
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{{{ns},{names}}} MetricName=\"{metric}\"{where}', '{stat}', 3600)",
            label=f"{prefix}${{PROP('Dim.{by}')}}",
            using_metrics={},
        )

    def _overview(self, pipeline: TrainingPipeline) -> None:
        """The shared rows: pipeline runs, registrations, deployments and retrain decisions of every dataset."""
        ns, hour = self.config.metrics_namespace, cdk.Duration.hours(1)
        sm = pipeline.state_machine
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Pipeline runs (all datasets)",
                left=[sm.metric_started(), sm.metric_succeeded(), sm.metric_failed()],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Model versions registered / rejected",
                left=[
                    cloudwatch.Metric(
                        namespace=ns,
                        metric_name=name,
                        dimensions_map={"service": "register_model"},
                        statistic="Sum",
                        period=hour,
                    )
                    for name in ("ModelRegistered", "ModelRejected")
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Deployments by outcome",
                left=[self._search("outcome,service", "Deployment", "Sum", by="outcome")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Retrain decisions",
                left=[
                    cloudwatch.Metric(
                        namespace=ns,
                        metric_name=RETRAIN_DECISION_METRIC,
                        dimensions_map={"decision": d, "service": "retrain"},
                        statistic="Sum",
                        period=hour,
                        label=d,
                    )
                    for d in ("started", "suppressed")
                ],
                width=6,
            ),
        )

    def add_dataset_sections(self, datasets: Sequence[DatasetResources]) -> None:
        """One dashboard section per dataset: its traffic, errors and latency, drift, quality and alarms."""
        for dataset in datasets:
            self._section(dataset)

    def _section(self, dataset: DatasetResources) -> None:
        config, hour = dataset.config, cdk.Duration.hours(1)
        endpoint, ns = config.endpoint_name, config.metrics_namespace
        on_endpoint = f' EndpointName="{endpoint}"'
        evaluation = config.evaluation
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"## {config.dataset.name} ({config.dataset.task}): endpoint `{endpoint}`, gate "
                f"{evaluation.primary_metric} {'>=' if evaluation.higher_is_better else '<='} "
                f"{evaluation.absolute_floor}",
                width=24,
                height=1,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{config.dataset.name}: traffic per variant",
                left=[
                    cloudwatch.MathExpression(
                        expression=(
                            f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} MetricName="Invocations" '
                            f"EndpointName=\"{endpoint}\"', 'Sum', 60)"
                        ),
                        label="Invocations",
                        using_metrics={},
                    )
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{config.dataset.name}: errors and latency",
                left=[
                    dataset.endpoint_metric("Invocation5XXErrors", "Sum"),
                    dataset.endpoint_metric("Invocation4XXErrors", "Sum"),
                ],
                right=[dataset.endpoint_metric("ModelLatency", "p99")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{config.dataset.name}: drift (overall PSI: alarm; PSI per feature)",
                left=[
                    cloudwatch.Metric(
                        namespace=ns,
                        metric_name=OVERALL_DRIFT_METRIC,
                        dimensions_map={"EndpointName": endpoint},
                        statistic="Maximum",
                        period=hour,
                        label="overall PSI",
                    ),
                    self._search(
                        "EndpointName,Feature", DRIFT_METRIC, "Maximum", by="Feature", prefix="PSI ", where=on_endpoint
                    ),
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=config.alarms.drift_psi, label="alarm")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{config.dataset.name}: {evaluation.primary_metric} on ground truth (alarm; per model version)",
                left=[
                    cloudwatch.Metric(
                        namespace=ns,
                        metric_name=config.quality_metric,
                        dimensions_map={"EndpointName": endpoint},
                        statistic="Minimum" if evaluation.higher_is_better else "Maximum",
                        period=hour,
                        label=config.quality_metric,
                    ),
                    self._search(
                        "EndpointName,ModelVersion",
                        config.quality_metric,
                        "Average",
                        by="ModelVersion",
                        where=on_endpoint,
                    ),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=evaluation.absolute_floor, label="gate (alarm)")
                ],
                width=6,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title=f"{config.dataset.name}: alarms",
                alarms=[*dataset.retrain_alarms, *dataset.rollback_alarms],
                width=24,
                height=2,
            )
        )
