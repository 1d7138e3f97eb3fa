"""Monitoring and the retraining loop: drift and quality metrics, alarms whose action is the guarded
retrain Lambda, and the dashboard."""

from __future__ import annotations

import json
from dataclasses import asdict

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.data_lake import (
    CURATED_PREFIX,
    DATA_CAPTURE_PREFIX,
    GROUND_TRUTH_PREFIX,
    MANIFESTS_PREFIX,
    MONITORING_PREFIX,
    DataLake,
)
from stacks.constructs.lambda_factory import LambdaFactory, grant_put_metrics
from stacks.constructs.serving import Serving
from stacks.constructs.tables import state_table
from stacks.constructs.training_pipeline import TrainingPipeline

DRIFT_METRIC = "FeatureDriftPSI"
DRIFT_KS_METRIC = "FeatureDriftKS"
OVERALL_DRIFT_METRIC = "OverallDriftPSI"
QUALITY_METRIC = "ModelAUC"
ACCURACY_METRIC = "ModelAccuracy"
RETRAIN_DECISION_METRIC = "RetrainDecision"
# Monitor settings that are not stage tunables (documented in docs/contracts.md)
DRIFT_KS_THRESHOLD = 0.1  # highlighted in the drift report; not alarmed
DRIFT_MIN_ROWS = 200  # fewer captured rows: no drift verdict, no metric (a quiet endpoint never alarms)
DRIFT_LOOKBACK_HOURS = 24  # the first run (or after a long gap) reads at most this much capture
DRIFT_LATENESS_HOURS = 2  # capture files that land up to this late are still read (once)
QUALITY_MIN_LABELED_ROWS = 50  # fewer labelled rows: no quality metric
QUALITY_LOOKBACK_HOURS = 168  # labels are joined with predictions captured up to a week before the upload
DRIFT_REPORT_PREFIX = f"{MONITORING_PREFIX}drift/"
QUALITY_PREFIX = f"{MONITORING_PREFIX}quality/"


def _percentile(metric: cloudwatch.IMetric) -> bool:
    statistic = getattr(metric, "statistic", "") or ""
    return bool(statistic) and statistic.lower().startswith("p")


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
        serving: Serving,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self._comparisons: dict[str, str] = {}  # retrain alarm name -> comparison operator
        ns = config.metrics_namespace
        dims = {"EndpointName": config.endpoint_name}

        # ---- drift monitor: scheduled, reads data capture since the last run ----
        self.drift_fn = lambdas.function(
            self,
            "DriftMonitor",
            handler="drift_monitor.handler.handler",
            description="PSI/KS drift of captured requests vs the ETL baseline; metrics + HTML report",
            memory_mb=1024,
            timeout=cdk.Duration.minutes(5),
            with_pandas=True,  # numpy (drift math); pandas itself is not imported
            environment={
                "ENDPOINT_NAME": config.endpoint_name,
                "ARTIFACTS_BUCKET": lake.artifacts.bucket_name,
                "CURATED_BUCKET": lake.curated.bucket_name,
                "DATA_CAPTURE_PREFIX": f"{DATA_CAPTURE_PREFIX}{config.endpoint_name}/",
                "REPORT_PREFIX": DRIFT_REPORT_PREFIX,
                "DATASET_SCHEMA": config.dataset.to_json(),
                "PSI_THRESHOLD": str(config.alarms.drift_psi),
                "KS_THRESHOLD": str(DRIFT_KS_THRESHOLD),
                "MIN_ROWS": str(DRIFT_MIN_ROWS),
                "LOOKBACK_HOURS": str(DRIFT_LOOKBACK_HOURS),
                "LATENESS_HOURS": str(DRIFT_LATENESS_HOURS),
            },
        )
        # reads data capture, the manifests and the quality report; writes reports + watermark (no delete)
        lake.artifacts.grant_read(self.drift_fn, f"{DATA_CAPTURE_PREFIX}*")
        lake.artifacts.grant_read(self.drift_fn, f"{DRIFT_REPORT_PREFIX}*")
        lake.artifacts.grant_put(self.drift_fn, f"{DRIFT_REPORT_PREFIX}*")
        lake.curated.grant_read(self.drift_fn, f"{MANIFESTS_PREFIX}*")
        lake.curated.grant_read(self.drift_fn, f"{CURATED_PREFIX}*")
        lake.key.grant_encrypt_decrypt(self.drift_fn)
        grant_put_metrics(self.drift_fn, ns)
        events.Rule(
            self,
            "DriftSchedule",
            description="Runs the drift monitor on the captured traffic",
            schedule=events.Schedule.rate(cdk.Duration.minutes(config.drift_schedule_minutes)),
            targets=[targets.LambdaFunction(self.drift_fn, retry_attempts=2)],
        )

        # ---- ground truth: labels joined with captured predictions -> quality per model version ----
        self.ground_truth_fn = lambdas.function(
            self,
            "GroundTruth",
            handler="ground_truth.handler.handler",
            description="Joins uploaded labels with captured predictions; publishes AUC/accuracy per version",
            memory_mb=1024,
            timeout=cdk.Duration.minutes(5),
            # standard library only (no numpy): no AWS SDK for pandas layer
            environment={
                "ENDPOINT_NAME": config.endpoint_name,
                "ARTIFACTS_BUCKET": lake.artifacts.bucket_name,
                "DATA_CAPTURE_PREFIX": f"{DATA_CAPTURE_PREFIX}{config.endpoint_name}/",
                "GROUND_TRUTH_PREFIX": GROUND_TRUTH_PREFIX,
                "QUALITY_PREFIX": QUALITY_PREFIX,
                "IDEMPOTENCY_TABLE": pipeline.idempotency_table.table_name,
                "MIN_LABELED_ROWS": str(QUALITY_MIN_LABELED_ROWS),
                "LOOKBACK_HOURS": str(QUALITY_LOOKBACK_HOURS),
            },
        )
        lake.raw.grant_read(self.ground_truth_fn, f"{GROUND_TRUTH_PREFIX}*")
        lake.artifacts.grant_read(self.ground_truth_fn, f"{DATA_CAPTURE_PREFIX}*")
        lake.artifacts.grant_put(self.ground_truth_fn, f"{QUALITY_PREFIX}*")
        lake.key.grant_encrypt_decrypt(self.ground_truth_fn)
        # idempotent per label object version (Powertools records in the pipeline's idempotency table)
        pipeline.idempotency_table.grant_read_write_data(self.ground_truth_fn)
        grant_put_metrics(self.ground_truth_fn, ns)
        events.Rule(
            self,
            "GroundTruthRule",
            description="Labels uploaded under ground-truth/ in the raw zone",
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

        # ---- guarded retrain Lambda ----
        self.guard_table = state_table(self, "RetrainGuardTable", key=lake.key, partition_key="pk", sort_key="sk")
        self.retrain_fn = lambdas.function(
            self,
            "Retrain",
            handler="retrain.handler.handler",
            description="Alarm action: starts retraining unless cooldown, daily budget or a running execution",
            reserved_concurrency=1,  # decisions are serialised: two alarms cannot both pass the guard
            environment={
                "STATE_MACHINE_ARN": pipeline.state_machine.state_machine_arn,
                "GUARD_TABLE": self.guard_table.table_name,
                "TOPIC_ARN": topic.topic_arn,
                "CURATED_BUCKET": lake.curated.bucket_name,
                "MANIFEST_KEY": f"{MANIFESTS_PREFIX}{config.dataset.name}/latest.json",
                "GUARD": json.dumps(asdict(config.retrain)),
            },
        )
        self.guard_table.grant_read_write_data(self.retrain_fn)
        lake.curated.grant_read(self.retrain_fn, "manifests/*")
        lake.key.grant_encrypt_decrypt(self.retrain_fn)
        pipeline.state_machine.grant_start_execution(self.retrain_fn)
        # the guard's one read: is an execution of the training state machine running? (ListExecutions; grant_read
        # would add DescribeStateMachine/DescribeActivity on "*" and every execution's history, which it never reads)
        self.retrain_fn.add_to_role_policy(
            iam.PolicyStatement(actions=["states:ListExecutions"], resources=[pipeline.state_machine.state_machine_arn])
        )
        topic.grant_publish(self.retrain_fn)
        grant_put_metrics(self.retrain_fn, ns)
        # ---- alarms whose action is the retrain Lambda ----
        a = config.alarms
        retrain_action = cw_actions.LambdaAction(self.retrain_fn)
        self.drift_alarm = self._alarm(
            "DriftAlarm",
            f"{config.prefix}-drift",
            cloudwatch.Metric(
                namespace=ns,
                metric_name=OVERALL_DRIFT_METRIC,
                dimensions_map=dims,
                statistic="Maximum",
                period=cdk.Duration.minutes(config.drift_schedule_minutes),
            ),
            a.drift_psi,
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            "Feature drift (max PSI over features) above threshold",
        )
        self.quality_alarm = self._alarm(
            "QualityAlarm",
            f"{config.prefix}-quality",
            cloudwatch.Metric(
                namespace=ns,
                metric_name=QUALITY_METRIC,
                dimensions_map=dims,
                statistic="Minimum",
                period=cdk.Duration.hours(a.quality_period_hours),  # one label batch per period
            ),
            a.quality_auc_floor,
            cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            "Model AUC on ground truth below the floor",
        )
        self.errors_alarm = self._alarm(
            "ErrorsAlarm",
            f"{config.prefix}-5xx",
            serving.alarm_metric("Invocation5XXErrors", "Sum").with_(period=cdk.Duration.minutes(5)),
            a.error_5xx_count * 5,
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            "Sustained 5XX errors on the endpoint",
        )
        self.latency_alarm = self._alarm(
            "LatencyAlarm",
            f"{config.prefix}-latency",
            serving.alarm_metric("ModelLatency", "p99").with_(period=cdk.Duration.minutes(5)),
            a.model_latency_p99_ms * 1000,
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            "Sustained p99 model latency (microseconds) above threshold",
        )
        self.retrain_alarms = [self.drift_alarm, self.quality_alarm, self.errors_alarm, self.latency_alarm]
        for alarm in self.retrain_alarms:
            # CloudWatch alarm Lambda action: invokes the function directly (adds the invoke permission
            # for lambda.alarms.cloudwatch.amazonaws.com scoped to this alarm's ARN). The OK action lets the
            # guard clear the alarm's breach record, so a flapping alarm never adds up to N breaching periods.
            alarm.add_alarm_action(retrain_action)
            alarm.add_ok_action(retrain_action)
        # the guard compares reasonData's datapoints with the threshold using each alarm's own operator
        self.retrain_fn.add_environment("ALARMS", json.dumps(self._comparisons, sort_keys=True))

        self.dashboard = self._dashboard(config, pipeline, serving)

    # ------------------------------------------------------------------
    def _alarm(
        self,
        construct_id: str,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
    ) -> cloudwatch.Alarm:
        periods = self.config.alarms.monitor_evaluation_periods
        # CloudFormation spelling of the operator (GREATER_THAN_THRESHOLD -> GreaterThanThreshold)
        self._comparisons[name] = "".join(part.capitalize() for part in comparison.name.split("_"))
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=f"{description}; action: guarded retrain",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,  # N consecutive breaching periods before acting
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            # percentile alarms (latency) judge only periods with a statistically meaningful sample count
            evaluate_low_sample_count_percentile="ignore" if _percentile(metric) else None,
        )

    def _dashboard(self, config: StageConfig, pipeline: TrainingPipeline, serving: Serving) -> cloudwatch.Dashboard:
        ns = config.metrics_namespace
        endpoint = config.endpoint_name
        dims = {"EndpointName": endpoint}
        hour = cdk.Duration.hours(1)

        def search(names: str, metric: str, stat: str, by: str, prefix: str = "") -> cloudwatch.MathExpression:
            """Every hourly series of ``metric`` with exactly the dimensions ``names``, one line per ``by``."""
            return cloudwatch.MathExpression(
                expression=f"SEARCH('{{{ns},{names}}} MetricName=\"{metric}\"', '{stat}', 3600)",
                label=f"{prefix}${{PROP('Dim.{by}')}}",
                using_metrics={},
            )

        sm = pipeline.state_machine
        board = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.prefix}-mlops")
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Pipeline runs",
                left=[sm.metric_started(), sm.metric_succeeded(), sm.metric_failed()],
                width=8,
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
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Deployments by outcome",
                left=[search("outcome,service", "Deployment", "Sum", by="outcome")],
                width=8,
            ),
        )
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Endpoint traffic per variant",
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
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Errors and latency",
                left=[
                    serving.alarm_metric("Invocation5XXErrors", "Sum"),
                    serving.alarm_metric("Invocation4XXErrors", "Sum"),
                ],
                right=[serving.alarm_metric("ModelLatency", "p99")],
                width=12,
            ),
        )
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Drift: overall PSI (alarm) and PSI per feature",
                left=[
                    cloudwatch.Metric(
                        namespace=ns,
                        metric_name=OVERALL_DRIFT_METRIC,
                        dimensions_map=dims,
                        statistic="Maximum",
                        period=hour,
                        label="overall PSI",
                    ),
                    search("EndpointName,Feature", DRIFT_METRIC, "Maximum", by="Feature", prefix="PSI "),
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=config.alarms.drift_psi, label="alarm")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Drift: KS per numeric feature",
                left=[search("EndpointName,Feature", DRIFT_KS_METRIC, "Maximum", by="Feature", prefix="KS ")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=DRIFT_KS_THRESHOLD, label="highlight")],
                width=12,
            ),
        )
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Quality on ground truth: AUC (alarm) and accuracy",
                left=[
                    cloudwatch.Metric(
                        namespace=ns,
                        metric_name=name,
                        dimensions_map=dims,
                        statistic="Minimum",
                        period=hour,
                        label=name,
                    )
                    for name in (QUALITY_METRIC, ACCURACY_METRIC)
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=config.alarms.quality_auc_floor, label="AUC floor")
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="AUC per model version",
                left=[search("EndpointName,ModelVersion", QUALITY_METRIC, "Minimum", by="ModelVersion", prefix="AUC ")],
                width=8,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=[*self.retrain_alarms, *serving.rollback_alarms], width=8
            ),
        )
        board.add_widgets(
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
                width=24,
            )
        )
        return board
