"""What one declared dataset adds to the stack, and nothing else: its model package group, its deployment
guardrails (rollback alarms), its retrain alarms, its drift schedule and, when it declares one, its retrain schedule.

Everything else is shared by every dataset (one Glue job, one training and one deployment state machine, one of
each Lambda): a dataset costs CloudFormation ``RESOURCES_PER_DATASET`` resources, so a stack of 20 datasets stays far
inside CloudFormation's 500 (tests/infrastructure/test_scale.py keeps that budget). The shared Lambdas are
invoked by these alarms and rules through one permission each, granted in ``Monitoring`` for every alarm and
schedule of the stage (per-alarm permissions would grow the functions' resource policies past Lambda's 20 KB).
At run time the deployment state machine creates the dataset's endpoint ``<prefix>-<dataset>`` and its endpoint
configs and models ``<prefix>-<dataset>-...``; removing the declaration retires them (``lambdas/cleanup``).
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from stacks.config import StageConfig
from stacks.legacy import MODEL_PACKAGE_GROUP_LOGICAL_IDS

RESOURCES_PER_DATASET = 11
"""1 model package group + 3 rollback alarms + 4 retrain alarms + 1 drift schedule rule + 1 retrain schedule rule (a
dataset that declares ``retrain.schedule``) + 1 experiment schedule rule (a dataset whose serving strategy is AB):
the most a dataset adds."""
OVERALL_DRIFT_METRIC = "OverallDriftPSI"
DRIFT_RETRY_ATTEMPTS = 2


@jsii.implements(cloudwatch.IAlarmAction)
class InvokeFunction:
    """A CloudWatch alarm action that invokes ``function`` directly. Unlike ``aws_cloudwatch_actions.LambdaAction``
    it adds no resource-policy statement per alarm: ``Monitoring`` grants CloudWatch one for every alarm of the
    stage (``lambda.alarms.cloudwatch.amazonaws.com``, source ``alarm:<prefix>-*``)."""

    def __init__(self, function: lambda_.IFunction) -> None:
        self._function = function

    def bind(self, scope: Construct, alarm: cloudwatch.IAlarm) -> cloudwatch.AlarmActionConfig:
        return cloudwatch.AlarmActionConfig(alarm_action_arn=self._function.function_arn)


@jsii.implements(events.IRuleTarget)
class ScheduledInvoke:
    """An EventBridge target that invokes ``function`` with ``input``, retried ``DRIFT_RETRY_ATTEMPTS`` times by
    EventBridge (then the function's own asynchronous retries and dead-letter queue apply); like ``InvokeFunction``
    it leaves the permission to ``Monitoring`` (one for every schedule of a kind, source
    ``rule/<prefix>-*-<kind>``: ``SCHEDULE_KINDS``)."""

    def __init__(self, function: lambda_.IFunction, target_input: events.RuleTargetInput) -> None:
        self._function = function
        self._input = target_input

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self._function.function_arn,
            input=self._input,
            retry_policy=events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=DRIFT_RETRY_ATTEMPTS),
        )


SCHEDULE_KINDS = ("drift", "retrain", "experiment")
"""The suffixes of the per-dataset schedule rules: ``<prefix>-<dataset>-<kind>``."""


def drift_rule_name(config: StageConfig) -> str:
    """``<prefix>-<dataset>-drift`` (EventBridge rule names: at most 64 characters)."""
    return f"{config.resource_prefix}-drift"


def retrain_rule_name(config: StageConfig) -> str:
    """``<prefix>-<dataset>-retrain``: the dataset's declared retrain schedule."""
    return f"{config.resource_prefix}-retrain"


def experiment_rule_name(config: StageConfig) -> str:
    """``<prefix>-<dataset>-experiment``: the A/B experiment evaluator's schedule of a dataset served with AB."""
    return f"{config.resource_prefix}-experiment"


def scheduled_event_for(dataset: str) -> events.RuleTargetInput:
    """The scheduled event as EventBridge sends it (the drift monitor reads its ``time``), with the dataset as its
    ``detail``: an input transformer keeps the event's own fields and adds which dataset the run is for."""
    return events.RuleTargetInput.from_object(
        {
            "version": "0",
            "id": events.EventField.event_id,
            "detail-type": events.EventField.detail_type,
            "source": events.EventField.source,
            "account": events.EventField.account,
            "time": events.EventField.time,
            "region": events.EventField.region,
            "resources": events.EventField.from_path("$.resources"),
            "detail": {"dataset": dataset},
        }
    )


class DatasetResources(Construct):
    """The per-dataset resources of ``config.dataset`` (``config`` is ``StageConfig.for_dataset``'s result)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        drift_function: lambda_.IFunction,
        retrain_function: lambda_.IFunction,
        experiment_function: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.name = config.dataset.name
        self.group = self._group(config)
        self.rollback_alarms = self._rollback_alarms(config)
        self.retrain_alarms = self._retrain_alarms(config, InvokeFunction(retrain_function))
        self.drift_rule = events.Rule(
            self,
            "DriftSchedule",
            rule_name=drift_rule_name(config),
            description=f"Runs the drift monitor on {config.endpoint_name}'s captured traffic",
            schedule=events.Schedule.rate(cdk.Duration.minutes(config.alarms.drift_schedule_minutes)),
            targets=[ScheduledInvoke(drift_function, scheduled_event_for(self.name))],
        )
        self.retrain_rule = self._retrain_schedule(config, retrain_function)
        self.experiment_rule = self._experiment_schedule(config, experiment_function)

    def _experiment_schedule(self, config: StageConfig, function: lambda_.IFunction | None) -> events.Rule | None:
        """Serving strategy AB: every ``serving.ab.evaluation_minutes`` the evaluator looks at the dataset's running
        experiment (``lambdas/experiment``; a dataset with none is a no-op). None for any other strategy."""
        if config.serving.strategy != "AB":
            return None
        if function is None:
            raise ValueError(f"dataset {self.name} is served with AB: its resources need the experiment evaluator")
        return events.Rule(
            self,
            "ExperimentSchedule",
            rule_name=experiment_rule_name(config),
            description=f"Looks at {self.name}'s running A/B experiment and acts on its decision",
            schedule=events.Schedule.rate(cdk.Duration.minutes(config.serving.ab.evaluation_minutes)),
            targets=[ScheduledInvoke(function, scheduled_event_for(self.name))],
        )

    def _retrain_schedule(self, config: StageConfig, function: lambda_.IFunction) -> events.Rule | None:
        """The declared ``retrain.schedule`` as a rule whose target is the guarded retrain Lambda (the scheduled
        event names the dataset; ``lambdas/retrain/scheduled.py`` applies the guard and the data policy). None for
        a dataset without a schedule."""
        expression = config.retrain.schedule
        if not expression:
            return None
        return events.Rule(
            self,
            "RetrainSchedule",
            rule_name=retrain_rule_name(config),
            description=f"Scheduled retrain of {self.name} ({expression}, UTC), guarded like the alarms'",
            schedule=events.Schedule.expression(expression),
            targets=[ScheduledInvoke(function, scheduled_event_for(self.name))],
        )

    # ------------------------------------------------------------------
    def _group(self, config: StageConfig) -> sagemaker.CfnModelPackageGroup:
        """The dataset's model registry. Retained when the stack deletes it (the declaration is removed, or the
        stack is destroyed): it holds every challenger of the dataset, approved or rejected, with its metrics and
        lineage, which is the audit trail of what served when. A re-declared dataset finds its group again with
        ``cdk import`` (a create under the same name would fail)."""
        group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=config.model_package_group_name,
            model_package_group_description=(
                f"{config.dataset.name} ({config.stage}): every challenger, approved or rejected, with lineage"
            ),
        )
        group.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        legacy = MODEL_PACKAGE_GROUP_LOGICAL_IDS.get(config.dataset.name)
        if legacy:
            group.override_logical_id(legacy)
        return group

    def endpoint_metric(
        self, metric_name: str, statistic: str, period: cdk.Duration | None = None
    ) -> cloudwatch.Metric:
        """An ``AWS/SageMaker`` metric of the dataset's endpoint, production variant."""
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=metric_name,
            dimensions_map={"EndpointName": self.config.endpoint_name, "VariantName": self.config.serving.variant_name},
            statistic=statistic,
            period=period or cdk.Duration.minutes(1),
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
            ("Invocation5XXErrors", "Sum", a.error_5xx_count, "5XX errors (model failures)"),
            ("ModelLatency", "p99", a.model_latency_p99_ms * 1000, "p99 model latency (us)"),
            ("InvocationModelErrors", "Average", a.model_error_rate, "share of invocations without a 2XX answer"),
        ]
        alarms = []
        for name, (metric, stat, threshold, what) in zip(config.rollback_alarm_names, specs, strict=True):
            sustained = stat == "Average"
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"Rollback{metric}",
                    alarm_name=name,
                    alarm_description=f"Deployment guardrail: {what} on {config.endpoint_name} "
                    "rolls a canary back automatically",
                    metric=self.endpoint_metric(metric, stat),
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

    def _retrain_alarms(self, config: StageConfig, action: cloudwatch.IAlarmAction) -> list[cloudwatch.Alarm]:
        """Drift, quality, sustained 5XX and latency: their action (and OK action, which lets the guard clear the
        alarm's breach record) is the guarded retrain Lambda, which finds the dataset by the alarm's name."""
        a, ns = config.alarms, config.metrics_namespace
        dims = {"EndpointName": config.endpoint_name}
        quality_stat = "Minimum" if config.evaluation.higher_is_better else "Maximum"  # the worst label batch
        specs: dict[str, tuple[str, cloudwatch.IMetric, float, str]] = {
            "drift": (
                "DriftAlarm",
                cloudwatch.Metric(
                    namespace=ns,
                    metric_name=OVERALL_DRIFT_METRIC,
                    dimensions_map=dims,
                    statistic="Maximum",
                    period=cdk.Duration.minutes(a.drift_schedule_minutes),
                ),
                a.drift_psi,
                "Feature drift (max PSI over features) above threshold",
            ),
            "quality": (
                "QualityAlarm",
                cloudwatch.Metric(
                    namespace=ns,
                    metric_name=config.quality_metric,
                    dimensions_map=dims,
                    statistic=quality_stat,
                    period=cdk.Duration.hours(a.quality_period_hours),  # one label batch per period
                ),
                config.evaluation.absolute_floor,
                f"Model {config.evaluation.primary_metric} on ground truth worse than the gate's "
                f"{config.evaluation.absolute_floor}",
            ),
            "5xx": (
                "ErrorsAlarm",
                self.endpoint_metric("Invocation5XXErrors", "Sum", cdk.Duration.minutes(5)),
                a.error_5xx_count * 5,
                "Sustained 5XX errors on the endpoint",
            ),
            "latency": (
                "LatencyAlarm",
                self.endpoint_metric("ModelLatency", "p99", cdk.Duration.minutes(5)),
                a.model_latency_p99_ms * 1000,
                "Sustained p99 model latency (microseconds) above threshold",
            ),
        }
        alarms = []
        periods = a.monitor_evaluation_periods
        for name, comparison in config.retrain_alarm_comparisons.items():
            construct_id, metric, threshold, description = specs[name.rsplit("-", 1)[-1]]
            alarm = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=name,
                alarm_description=f"{config.dataset.name}: {description}; action: guarded retrain",
                metric=metric,
                threshold=threshold,
                comparison_operator=_operator(comparison),
                evaluation_periods=periods,
                datapoints_to_alarm=periods,  # N consecutive breaching periods before acting
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                # percentile alarms (latency) judge only periods with a statistically meaningful sample count
                evaluate_low_sample_count_percentile="ignore" if _percentile(metric) else None,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            alarms.append(alarm)
        return alarms


def _operator(name: str) -> cloudwatch.ComparisonOperator:
    """``GreaterThanThreshold`` (the document's CloudFormation spelling) -> ``GREATER_THAN_THRESHOLD``."""
    snake = "".join(f"_{c}" if c.isupper() else c.upper() for c in name).lstrip("_")
    return cloudwatch.ComparisonOperator[snake]


def _percentile(metric: cloudwatch.IMetric) -> bool:
    statistic = getattr(metric, "statistic", "") or ""
    return bool(statistic) and statistic.lower().startswith("p")
