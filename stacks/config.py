"""Typed stage configuration: the one place where every tunable of the stack lives.

``cdk synth -c stage=prod`` (or ``build_app(stage="prod")``) picks a stage. ``StageConfig.for_dataset`` applies a
declared dataset (``datasets/<name>.yaml``) to the stage: its gate (or the stage's stricter floor), its overrides
and every name derived from it. What the jobs and Lambdas need at run time reaches them in the platform document
(``stacks/platform_document.py`` -> ``pipelines/datasets.json``); environment variables carry names only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipelines.experiments.outcomes import DEFAULT_OUTCOMES, outcome_problem
from pipelines.platform import (
    BATCH_INPUT_PREFIX,
    DATA_CAPTURE_PREFIX,
    GROUND_TRUTH_PREFIX,
    MANIFESTS_PREFIX,
    MONITORING_PREFIX,
    RAW_DATASETS_PREFIX,
    glue_table_name,
    quality_metric_name,
)
from pipelines.schema import METRICS, DatasetSchema, Gate, Task
from pipelines.training.hyperparameters import Hyperparameters
from stacks.datasets import DATASETS_DIR, read_schema
from stacks.pricing import ENDPOINT_HOURLY_USD, TRAINING_HOURLY_USD

Stage = Literal["dev", "prod"]
DeploymentStrategy = Literal["CANARY", "LINEAR", "ALL_AT_ONCE", "SHADOW", "AB"]
Approval = Literal["auto", "manual"]
Network = Literal["public", "private"]
"""``public``: the functions and jobs call AWS on its public regional endpoints (no VPC: nothing billed while idle).
``private``: a VPC with isolated subnets only and VPC endpoints (``stacks/constructs/network.py``); the functions,
the Glue job, the SageMaker jobs, models and endpoints run in it, with network isolation on the SageMaker
containers. docs/performance.md ("Why dev stays public") says what each costs and what dev skips."""

PROJECT = "mlops"
DEFAULT_REGION = "us-east-1"
METRICS_NAMESPACE = "MLOps"
SAMPLE_DATASET = "churn"
"""The sample dataset (``datasets/churn.yaml``): ``StageConfig.dataset`` before ``for_dataset``, and the dataset the
single-dataset stack outputs (``EndpointName``, ``ModelPackageGroup``, ``UploadPrefix``) name when it is declared."""
ROLLBACK_ALARM_KINDS: tuple[str, ...] = ("5xx", "model-latency", "model-errors")
"""The deployment guardrails of a dataset: ``<prefix>-<dataset>-rollback-<kind>``."""


@dataclass(frozen=True)
class QualityGate:
    """Data-quality rules of the ETL job."""

    max_bad_row_share: float = 0.05  # more rejected rows than this fails the run
    min_rows: int = 100  # fewer valid rows than this fails the run
    validation_share: float = 0.15
    test_share: float = 0.15
    split_seed: int = 42  # salt of the key hash that assigns a row to a split


@dataclass(frozen=True)
class GlueSettings:
    worker_type: str = "G.1X"
    workers: int = 2
    timeout_minutes: int = 30
    max_retries: int = 0


LAMBDA_MAX_TIMEOUT_SECONDS = 900
"""A function runs at most 15 minutes ("Lambda quotas": function timeout 900 seconds)."""
LAMBDA_MEMORY_MB = (128, 10_240)
"""Lambda's memory range ("Lambda quotas": 128 MB to 10,240 MB, in 1-MB increments)."""


@dataclass(frozen=True)
class EtlSettings:
    """Which engine runs an upload's ETL: an upload of at most ``lambda_max_bytes`` runs in a Lambda (the same driver
    and transforms as the Glue job: ``pipelines/etl/driver.py``), a larger one in Glue (``GlueSettings``); 0 sends
    every upload to Glue. The function holds the raw file, its parsed frame and the Parquet output in memory
    (nothing on /tmp): measured on this repository's 2-core host, the logic peaks at 313 MB RSS and 0.6 s for a
    19.5 MB CSV (250,000 churn rows) and 620 MB and 2.0 s for 78 MB (1,000,000 rows), about 6 MB per MB of CSV
    above a 150 MB base (docs/performance.md, "The Lambda ETL"). 64 MiB at 2,048 MB of memory keeps a margin of
    more than 3x for the S3 read and the Parquet bodies; the run takes seconds against a timeout of 5 minutes."""

    lambda_max_bytes: int = 64 * 1024 * 1024
    lambda_memory_mb: int = 2048
    lambda_timeout_seconds: int = 300

    def __post_init__(self) -> None:
        if self.lambda_max_bytes < 0:
            raise ValueError(f"etl.lambda_max_bytes {self.lambda_max_bytes}: 0 (every upload to Glue) or more")
        low, high = LAMBDA_MEMORY_MB
        if not low <= self.lambda_memory_mb <= high:
            raise ValueError(f"etl.lambda_memory_mb {self.lambda_memory_mb}: Lambda allows {low} to {high} MB")
        if not 1 <= self.lambda_timeout_seconds <= LAMBDA_MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"etl.lambda_timeout_seconds {self.lambda_timeout_seconds}: Lambda allows 1 to "
                f"{LAMBDA_MAX_TIMEOUT_SECONDS} s"
            )
        # the memory must hold the file about 6 times over plus the interpreter (the measured figures above), x2
        needed = 2 * (150 + 6 * self.lambda_max_bytes / 2**20)
        if self.lambda_memory_mb < needed:
            raise ValueError(
                f"etl.lambda_max_bytes {self.lambda_max_bytes} needs about {needed:.0f} MB of memory with a 2x margin "
                f"(150 MB + 6 x the file, measured), but etl.lambda_memory_mb is {self.lambda_memory_mb}: raise the "
                "memory or lower the threshold"
            )


@dataclass(frozen=True)
class TrainingSettings:
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_gb: int = 10
    max_runtime_seconds: int = 3600
    # SageMaker scikit-learn container; must match the locally pinned scikit-learn (1.9)
    sklearn_framework_version: str = "1.9-0"
    processing_instance_type: str = "ml.m5.large"
    # SageMaker managed warm pool (ResourceConfig.KeepAlivePeriodInSeconds of TrainModel): after a training job the
    # instances are kept this long, billed as training time while retained, and the next matching job (same role,
    # instance type and count, volume size and key, VPC config, network isolation and inter-container encryption)
    # starts on them without provisioning. 0: no warm pool, the key is not synthesized. Dev keeps one for a data
    # scientist's iteration loop; prod does not (runs hours apart: docs/performance.md, "The cloud timeline on
    # paper"). The account needs a warm pool quota for the instance type (default 0: the job runs, no pool is
    # kept; docs/operations.md)
    keep_alive_seconds: int = 0
    # the defaults of train.py's own Hyperparameters (one definition); override per stage with replace()
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)

    def __post_init__(self) -> None:
        problem = keep_alive_problem(self.keep_alive_seconds, self.instance_type)
        if problem:
            raise ValueError(f"training: {problem}")


KEEP_ALIVE_MAX_SECONDS = 21_600
"""ResourceConfig.KeepAlivePeriodInSeconds: 0-21600 (API reference, ResourceConfig and ResourceConfigForUpdate;
botocore's model; the developer guide's "Train using SageMaker managed warm pools" still says 3600)."""


def keep_alive_problem(seconds: int, instance_type: str) -> str | None:
    """Why a stage's warm pool setting cannot be synthesized (None: it can): a whole number of seconds in the
    API's range, on a training instance type with a price (a retained pool bills while idle: the cost is shown)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= KEEP_ALIVE_MAX_SECONDS:
        return (
            f"keep_alive_seconds {seconds!r}: KeepAlivePeriodInSeconds is a whole number of seconds from 0 (no warm "
            f"pool) to {KEEP_ALIVE_MAX_SECONDS}"
        )
    if seconds and instance_type not in TRAINING_HOURLY_USD:
        return (
            f"keep_alive_seconds {seconds}: a warm pool of {instance_type!r} bills while retained, and "
            f"stacks/pricing.py has no training price for it (priced: {', '.join(TRAINING_HOURLY_USD)}); add it there"
        )
    return None


@dataclass(frozen=True)
class EvaluationGate:
    """Champion/challenger gate (a dataset declares its own: ``pipelines.schema.Gate``; ``from_gate``)."""

    primary_metric: str = "auc"  # one of pipelines.schema.METRICS that fits the dataset's task
    min_improvement: float = 0.005  # challenger must beat the champion by this much, in the metric's direction
    absolute_floor: float = 0.70  # and clear this, champion or not (for an error metric: stay at or below it)

    @classmethod
    def from_gate(cls, gate: Gate) -> EvaluationGate:
        return cls(primary_metric=gate.metric, min_improvement=gate.min_improvement, absolute_floor=gate.floor)

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.primary_metric].higher_is_better


def stricter_floor(metric: str, declared: float, stage_minimum: float | None) -> float:
    """The floor a stage applies to a declared gate: the stricter of the declaration's and the stage's own minimum
    for that metric, in the metric's direction (``max`` for AUC or accuracy, ``min`` for an error such as RMSE,
    whose "floor" is a ceiling). A stage without a minimum for the metric keeps the declared floor."""
    if stage_minimum is None:
        return declared
    return max(declared, stage_minimum) if METRICS[metric].higher_is_better else min(declared, stage_minimum)


def traffic_batch_instances(percent: int, instances: int) -> int:
    """Instances a ``CAPACITY_PERCENT`` traffic batch of a blue/green deployment turns on: the share of the fleet
    rounded up to whole instances, at least one. Traffic follows capacity, so the batch's share of traffic is this
    over ``instances`` (10% of a 2-instance fleet is one instance: half the traffic)."""
    return max(1, math.ceil(percent * instances / 100))


@dataclass(frozen=True)
class ABSettings:
    """An A/B experiment (``serving.strategy: AB``): after the smoke test the challenger becomes a second production
    variant taking ``challenger_share`` of the requests (SageMaker splits traffic by variant weight), the champion
    the rest; the evaluator tests the challenger's ``outcome`` per labelled request with an always-valid
    sequential test (``pipelines.experiments.sequential``) and promotes it, or removes it, on the decision."""

    challenger_share: float = 0.2  # of the requests: the challenger variant's weight, the champion's is 1 - this
    # a per-observation outcome that fits the task (pipelines.experiments.outcomes.OUTCOMES; never AUC): empty
    # takes the task's DEFAULT_OUTCOMES
    outcome: str = ""
    # the smallest improvement worth detecting, absolute, in the outcome's units (0.02 of ``correct`` is two
    # percentage points; of ``absolute_error`` it is in the target's units): 0 = not set, required by AB
    minimum_detectable_effect: float = 0.0
    confidence: float = 0.95  # 1 - the false-promotion rate, peeking included
    power: float = 0.8  # of detecting the MDE within max_duration_hours (the futility check)
    max_duration_hours: int = 168  # then the champion stays (a tie); it allows for label_delay_hours
    label_delay_hours: int = 24  # how late labels arrive: the last hours of traffic are not waited for
    challenger_instance_count: int = 1
    evaluation_minutes: int = 60  # the evaluator's schedule

    def problems(self, task: Task) -> list[tuple[str, str]]:
        """(key, message) for every rule this experiment breaks on a ``task`` model (the synth's check)."""

        problems = []
        if not 0 < self.challenger_share < 1:
            problems.append(("challenger_share", f"{self.challenger_share} is not a share of traffic in (0, 1)"))
        outcome = self.outcome or DEFAULT_OUTCOMES[task]
        problem = outcome_problem(outcome, task)
        if problem:
            problems.append(("outcome", problem))
        mde = self.minimum_detectable_effect
        if not mde > 0:
            problems.append(("minimum_detectable_effect", "required with strategy AB: an absolute improvement > 0"))
        elif outcome == "correct" and mde >= 1:
            problems.append(("minimum_detectable_effect", f"{mde} is not below 1, the range of a correct answer"))
        if not 0.8 <= self.confidence < 1:
            problems.append(("confidence", f"{self.confidence} is not in [0.8, 1)"))
        if not 0.5 <= self.power < 1:
            problems.append(("power", f"{self.power} is not in [0.5, 1)"))
        if self.label_delay_hours < 0:
            problems.append(("label_delay_hours", f"{self.label_delay_hours} is negative"))
        if self.max_duration_hours <= self.label_delay_hours:
            problems.append(
                (
                    "max_duration_hours",
                    f"{self.max_duration_hours} h leaves no labelled traffic after a label delay of "
                    f"{self.label_delay_hours} h",
                )
            )
        if self.challenger_instance_count < 1:
            problems.append(("challenger_instance_count", "a production variant needs at least 1 instance"))
        if not 1 <= self.evaluation_minutes <= 1440:
            problems.append(("evaluation_minutes", f"{self.evaluation_minutes} is not in 1-1440 (a rate schedule)"))
        return problems


@dataclass(frozen=True)
class ServingSettings:
    """The endpoint and how a new model reaches it. CANARY and LINEAR shift traffic in whole instances, and
    SageMaker allows a canary (and a linear step) of at most half the variant's instances: they need a fleet of
    at least two instances, at every size autoscaling may choose (``__post_init__`` refuses anything else)."""

    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 2
    min_capacity: int = 2
    max_capacity: int = 4
    target_invocations_per_instance: int = 700  # per minute, target tracking
    strategy: DeploymentStrategy = "CANARY"
    canary_percent: int = 25  # of the fleet, in whole instances: 1 of 2 or 4, 2 of 6
    linear_step_percent: int = 33
    bake_time_seconds: int = 300  # WaitIntervalInSeconds of each traffic step
    termination_wait_seconds: int = 120
    max_execution_timeout_seconds: int = 1800
    data_capture_percent: int = 100
    variant_name: str = "AllTraffic"
    # the evaluation job's smoke test (the image's serving stack on the new archive, before registration): max
    # |served - in-process| of every number of an answer (probabilities, values), relatively or absolutely
    smoke_tolerance: float = 1e-4
    # SHADOW: the challenger gets a copy of production traffic for shadow_bake_seconds, then is promoted only if
    # it is not worse than the champion on these measures
    shadow_bake_seconds: int = 1800
    shadow_min_invocations: int = 100
    shadow_max_error_rate_increase: float = 0.01  # absolute, e.g. 0.01 = one percentage point
    shadow_max_latency_ratio: float = 1.2  # shadow mean ModelLatency / production mean ModelLatency
    shadow_min_agreement: float = 0.9  # classification: share of paired captured rows with the same label
    # regression: relative error |shadow - production| / |production| of paired captured values. A retrained model
    # legitimately moves its answers a little (new data, new trees): the median bounds the typical request (5%),
    # the 90th percentile the tail, where sparse segments move most when new data arrives (20%)
    shadow_max_median_relative_error: float = 0.05
    shadow_max_p90_relative_error: float = 0.2
    ab: ABSettings = field(default_factory=ABSettings)  # strategy AB: the experiment

    def __post_init__(self) -> None:
        if self.instance_type not in ENDPOINT_HOURLY_USD:
            raise ValueError(
                f"serving: instance_type {self.instance_type!r} has no on-demand price in stacks/pricing.py "
                f"(priced: {', '.join(ENDPOINT_HOURLY_USD)}); add its price there to use it"
            )
        if not 1 <= self.min_capacity <= self.initial_instance_count <= self.max_capacity:
            raise ValueError(
                f"serving: need 1 <= min_capacity ({self.min_capacity}) <= initial_instance_count "
                f"({self.initial_instance_count}) <= max_capacity ({self.max_capacity})"
            )
        for instances in range(self.min_capacity, self.max_capacity + 1):
            problem = traffic_shift_problem(self, self.strategy, instances)
            if problem:
                raise ValueError(f"serving: {problem}")


def traffic_shift_problem(serving: ServingSettings, strategy: str, instances: int) -> str | None:
    """Why SageMaker would refuse ``strategy`` on a variant of ``instances`` instances (None: it would not).
    Canary: at most half the instances. Linear: steps of 10-50% of the instances."""
    if strategy == "CANARY":
        batch = traffic_batch_instances(serving.canary_percent, instances)
        if not 0 < serving.canary_percent <= 50 or 2 * batch > instances:
            return (
                f"a {serving.canary_percent}% canary on {instances} instance(s) is {batch} instance(s), over the "
                "half of the variant SageMaker allows; run at least 2 instances (initial_instance_count and "
                "min_capacity) or choose ALL_AT_ONCE"
            )
    if strategy == "LINEAR":
        batch = traffic_batch_instances(serving.linear_step_percent, instances)
        if not 10 <= serving.linear_step_percent <= 50 or 2 * batch > instances:
            return (
                f"a {serving.linear_step_percent}% linear step on {instances} instance(s) is {batch} instance(s); "
                "SageMaker allows steps of 10-50% of the variant: run at least 2 instances or choose ALL_AT_ONCE"
            )
    return None


@dataclass(frozen=True)
class AlarmThresholds:
    """CloudWatch alarms: rollback guardrails (endpoint) and retrain triggers (model)."""

    # Rollback guardrails watch the production variant (old and new fleets) in one-minute periods. The inference
    # handler answers every client fault with a 4XX itself, so a 5XX is always a model failure: one rolls back.
    error_5xx_count: int = 1
    model_latency_p99_ms: int = 500
    # InvocationModelErrors' Average: the share of a minute's invocations without a 2XX answer (4XX, 5XX, no answer
    # within 60 s), in every one of rollback_evaluation_periods minutes. A sustained share, not a count, so one
    # client sending garbage does not roll a good model back while a new fleet that refuses or drops every request
    # does: StageConfig keeps it below the smallest share of the requests a new fleet serves
    # (smallest_new_fleet_share: 1 of 4 instances, 25%, for the default canary)
    model_error_rate: float = 0.2
    rollback_evaluation_periods: int = 2
    drift_psi: float = 0.2  # PSI over this is significant drift
    drift_schedule_minutes: int = 60  # the drift monitor's cadence for the dataset (and the drift alarm's period)
    # The quality alarm watches the dataset's gate metric measured on ground truth (pipelines.platform
    # QUALITY_METRIC_NAMES), against the stage's gate floor in the metric's direction: falling AUC or accuracy,
    # rising RMSE or MAE. A live model worse than what the gate lets deploy starts a (guarded) retrain.
    # ground truth arrives in batches (a day's labels in one upload): each batch is one AUC datapoint, so the
    # quality alarm's period is the label cadence; with hourly periods, N consecutive breaching periods would
    # need N uploads in N consecutive hours and a daily-labelled model could never trip it
    quality_period_hours: int = 24
    monitor_evaluation_periods: int = 3  # consecutive breaching periods before a retrain alarm fires


@dataclass(frozen=True)
class MonitorSettings:
    """How the drift monitor and the ground-truth Lambda read what they measure (the same for every dataset)."""

    drift_ks_threshold: float = 0.1  # highlighted in the drift report; not alarmed
    drift_min_rows: int = 200  # fewer captured rows: no drift verdict, no metric (a quiet endpoint never alarms)
    drift_lookback_hours: int = 24  # the first run (or after a long gap) reads at most this much capture
    drift_lateness_hours: int = 2  # capture files that land up to this late are still read (once)
    quality_min_labeled_rows: int = 50  # fewer labelled rows: no quality metric
    quality_lookback_hours: int = 168  # labels are joined with predictions captured up to a week before the upload


@dataclass(frozen=True)
class RetrainGuard:
    cooldown_minutes: int = 360
    max_per_day: int = 2
    consecutive_breaches: int = 3
    # A scheduled retrain (an EventBridge rule ``<prefix>-<dataset>-retrain``): ``rate(value unit)`` or
    # ``cron(six fields)`` in UTC, checked as EventBridge checks a rule's ScheduleExpression
    # (``pipelines.schedules``); "" for none. It goes through the same guard (running, cooldown, budget) and data
    # policy as an alarm's retrain (``lambdas/retrain/scheduled.py``)
    schedule: str = ""


@dataclass(frozen=True)
class RetentionSettings:
    """How long a dataset's production data is kept, in days: S3 lifecycle rules on its prefixes
    (``stacks/constructs/data_lake.py``). An expired object becomes a noncurrent version (the zones are versioned)
    that ``NONCURRENT_DAYS_AFTER_RETENTION`` later is deleted for good: a record is gone at most that many days
    after its retention ends."""

    capture_days: int = 30  # captured requests and responses (artifacts zone, data-capture/<endpoint>/)
    labels_days: int = 30  # joined labels and quality summaries (artifacts zone, monitoring/quality/<dataset>/)
    production_days: int = 90  # labelled production training rows (curated zone, production/<dataset>/)

    def problems(self, monitor: MonitorSettings, window_days: int | None) -> list[str]:
        """Why this retention cannot work with what reads the data (empty: it can)."""
        out = [
            f"{name} {days}: S3 expires objects after a positive whole number of days"
            for name, days in (
                ("capture_days", self.capture_days),
                ("labels_days", self.labels_days),
                ("production_days", self.production_days),
            )
            if isinstance(days, bool) or not isinstance(days, int) or days < 1
        ]
        if out:
            return out
        lookback = max(monitor.quality_lookback_hours, monitor.drift_lookback_hours)
        if self.capture_days * 24 < lookback:
            out.append(
                f"capture_days {self.capture_days}: labels are joined with predictions captured up to "
                f"{lookback} h before them (monitor.quality_lookback_hours): keep capture at least "
                f"{math.ceil(lookback / 24)} days"
            )
        if window_days is not None and self.production_days < window_days:
            out.append(
                f"production_days {self.production_days}: the data policy trains on the labelled rows of the last "
                f"{window_days} days (data_policy.production_window_days): keep them at least that long"
            )
        return out


NONCURRENT_DAYS_AFTER_RETENTION = 1
"""Days an expired (now noncurrent) version of a dataset's production data is kept before S3 deletes it."""


MINIMUM_UNRESERVED_CONCURRENCY = 100
"""What Lambda keeps for the functions without a reservation: "You can reserve up to the Unreserved account
concurrency value that is shown, minus 100 for functions that don't have reserved concurrency" (AWS Lambda Developer
Guide, "Configuring reserved concurrency", https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
PutFunctionConcurrency (and CloudFormation's ``ReservedConcurrentExecutions``) beyond it fails with
``InvalidParameterValueException``: "Specified ReservedConcurrentExecutions for function decreases account's
UnreservedConcurrentExecution below its minimum value of [100]"."""
DEFAULT_ACCOUNT_CONCURRENCY = 1000
"""Lambda's default concurrent-executions quota per account and region ("Lambda quotas"); a new account's can be
as low as 10 until it is raised in Service Quotas."""


@dataclass(frozen=True)
class Reservation:
    """One function's reserved concurrency (``None``: none) and why that figure."""

    limit: int | None
    reason: str

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"reserved concurrency {self.limit}: reserve at least 1 or none (None)")
        if not self.reason.strip():
            raise ValueError("a reserved concurrency needs its reason")


ASYNC_THROTTLE = (
    "a throttled asynchronous event is not lost: Lambda retries it for up to 6 hours, then puts it in the "
    "function's dead-letter queue"
)
STATE_MACHINE_STEP_CONCURRENCY = (
    "a state machine step (synchronous LambdaInvoke): at most one invocation per running execution, so the "
    "executions bound it, and they are bounded where they start (StartPipeline's and Retrain's reservations, the "
    "idempotency table, the retrain guard); a cap here would only throttle steps of executions already running"
)
FUNCTION_CONCURRENCY: Mapping[str, Reservation] = {
    # keys: the construct id each function is built with (LambdaFactory.function refuses a function not listed)
    "Retrain": Reservation(
        1,
        "the retrain guard's decisions run one at a time (lambdas/retrain/logic.py): besides its DynamoDB claim, "
        "which refuses a second start within the cooldown, no two decisions (a zero cooldown, two `mlops retrain "
        "--force`) can both pass the running-execution check and start two runs of a dataset; it bounds retraining "
        "cost. " + ASYNC_THROTTLE,
    ),
    "StartPipeline": Reservation(
        2,
        "each upload under datasets/ starts a pipeline run (Glue, SageMaker): two starts at once cover two datasets "
        "uploaded together, and a bulk upload or a runaway writer drains at that pace instead of hammering Step "
        "Functions, DynamoDB and the account's shared concurrency. " + ASYNC_THROTTLE,
    ),
    "BatchInference": Reservation(
        2,
        "each batch-input upload starts a SageMaker transform job (billed instances): a burst of uploads starts "
        "them two at a time instead of all at once. " + ASYNC_THROTTLE,
    ),
    "DriftMonitor": Reservation(
        2,
        "scheduled once per dataset per period, 1 GB for up to 5 minutes over the captured requests: two at once "
        "keep a schedule burst (several datasets, or a backlog of retried events) from running every dataset's "
        "scan in parallel. " + ASYNC_THROTTLE,
    ),
    "GroundTruth": Reservation(
        2,
        "each label upload joins a week of captured predictions (1 GB, up to 5 minutes): two at once bound a bulk "
        "label upload's parallel scans. " + ASYNC_THROTTLE,
    ),
    "ExperimentEvaluator": Reservation(
        1,
        "one look at an A/B experiment at a time: two looks at once (a schedule burst, a retried event) could both "
        "act on a final decision (two endpoint updates, two registry records). " + ASYNC_THROTTLE,
    ),
    "PrepareTraining": Reservation(None, STATE_MACHINE_STEP_CONCURRENCY),
    "RegisterModel": Reservation(None, STATE_MACHINE_STEP_CONCURRENCY),
    "RunEtlInLambda": Reservation(None, STATE_MACHINE_STEP_CONCURRENCY),
    "ExplainFailure": Reservation(None, STATE_MACHINE_STEP_CONCURRENCY),
    "Deploy": Reservation(None, STATE_MACHINE_STEP_CONCURRENCY),
    "Cleanup": Reservation(
        None,
        "the cleanup custom resource's handler: invoked only by its provider during a stack deletion (or a change "
        "of the custom resource), once per stack operation: there is no traffic to limit",
    ),
}


@dataclass(frozen=True)
class ConcurrencySettings:
    """Reserved concurrency of the stage's functions (``FUNCTION_CONCURRENCY``). ``reserve=False`` deploys them
    without reservations, for an account whose quota leaves no room for one (a new account's can be 10, and any
    reservation needs the unreserved concurrency to stay at ``MINIMUM_UNRESERVED_CONCURRENCY`` or more).
    ``account_concurrency_quota`` is the quota the stage declares it deploys into: the synth refuses reservations
    that do not fit it, and ``make deploy`` checks the real account (``cli/preflight.py``)."""

    reserve: bool = True
    account_concurrency_quota: int = DEFAULT_ACCOUNT_CONCURRENCY
    functions: Mapping[str, Reservation] = field(default_factory=lambda: dict(FUNCTION_CONCURRENCY), hash=False)

    def __post_init__(self) -> None:
        room = self.account_concurrency_quota - MINIMUM_UNRESERVED_CONCURRENCY
        if self.total > max(room, 0):
            raise ValueError(
                f"concurrency: the functions reserve {self.total} concurrent executions, but an account whose quota "
                f"is {self.account_concurrency_quota} can reserve at most {max(room, 0)} (Lambda keeps "
                f"{MINIMUM_UNRESERVED_CONCURRENCY} unreserved); lower the reservations, declare the account's real "
                "account_concurrency_quota, or set reserve=False for this stage"
            )

    def reserved(self, function: str) -> int | None:
        """The reserved concurrency of the function built as ``function`` (its construct id), None: none."""
        if function not in self.functions:
            raise ValueError(
                f"function {function!r} has no reserved-concurrency decision: add it to FUNCTION_CONCURRENCY in "
                "stacks/config.py with its figure (or None) and the reason"
            )
        return self.functions[function].limit if self.reserve else None

    @property
    def total(self) -> int:
        """What the stage reserves in all (0 with ``reserve=False``)."""
        return sum(r.limit or 0 for r in self.functions.values()) if self.reserve else 0


@dataclass(frozen=True)
class Delivery:
    """How GitHub Actions deploys this stage (``stacks/delivery_stack.py``): what the OIDC deploy role trusts. The
    repository comes from context ``github_repository``, the account from the credentials: not from this file."""

    environment: str | None = None  # the deploy job's GitHub environment; then `sub` names it instead of the branch
    branch: str = "main"
    smoke: bool = False  # a smoke-run role (upload the sample, invoke the endpoint) for the pipeline's smoke run


@dataclass(frozen=True)
class StageConfig:
    stage: Stage
    region: str = DEFAULT_REGION
    account: str | None = None  # None: environment-agnostic template
    dataset: DatasetSchema = field(default_factory=lambda: read_schema(DATASETS_DIR / f"{SAMPLE_DATASET}.yaml"))
    quality: QualityGate = field(default_factory=QualityGate)
    glue: GlueSettings = field(default_factory=GlueSettings)
    etl: EtlSettings = field(default_factory=EtlSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    evaluation: EvaluationGate = field(default_factory=EvaluationGate)
    serving: ServingSettings = field(default_factory=ServingSettings)
    alarms: AlarmThresholds = field(default_factory=AlarmThresholds)
    retrain: RetrainGuard = field(default_factory=RetrainGuard)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    # The stage whose approved models `mlops promote` copies here; with both accounts configured and different, the
    # stack adds the promotion role that account may assume (stacks/constructs/promotion.py, cli/promote.py)
    promotion_source: Stage | None = None
    approval: Approval = "auto"
    # The stage's own minimum of a gate metric (metric -> floor, a ceiling for an error metric): a declared gate
    # applies in every stage, unless the stage's minimum is stricter (``stricter_floor``)
    gate_floors: Mapping[str, float] = field(default_factory=dict, hash=False)
    log_retention_days: int = 30
    noncurrent_version_days: int = 90  # data buckets keep old versions this long
    delivery: Delivery = field(default_factory=lambda: Delivery(smoke=True))
    concurrency: ConcurrencySettings = field(default_factory=ConcurrencySettings)
    network: Network = "public"

    def __post_init__(self) -> None:
        if self.retrain.schedule:
            problem = schedule_problem(self.retrain.schedule)
            if problem:
                raise ValueError(f"retrain.schedule: {problem}")
        policy = self.dataset.data_policy
        for problem in self.retention.problems(self.monitor, policy.production_window_days if policy else None):
            raise ValueError(f"retention: {problem}")
        if self.serving.strategy == "AB":
            for key, problem in self.serving.ab.problems(self.dataset.task):
                raise ValueError(f"serving.ab.{key}: {problem}")
        if not self.concurrency.reserve and self.retrain.cooldown_minutes < 1:
            raise ValueError(
                "concurrency: without reservations the retrain guard's DynamoDB claim is what keeps two alarms from "
                "starting two runs, and it needs a cooldown: set retrain.cooldown_minutes >= 1 or reserve=True"
            )
        for metric in self.gate_floors:
            if metric not in METRICS:
                raise ValueError(f"gate_floors: {metric!r} is not a metric ({', '.join(METRICS)})")
        periods = self.alarms.monitor_evaluation_periods
        for name, seconds in (
            ("drift", self.alarms.drift_schedule_minutes * 60),
            ("quality", self.alarms.quality_period_hours * 3600),
        ):
            problem = alarm_window_problem(seconds, periods)
            if problem:
                raise ValueError(f"{name} alarm: {problem}")
        share = smallest_new_fleet_share(self.serving)
        if not 0 < self.alarms.model_error_rate < share:
            raise ValueError(
                f"alarms: model_error_rate {self.alarms.model_error_rate} must be above 0 and below {share:.2f}, the "
                "smallest share of requests a new fleet serves during a rollout; otherwise a model that refuses "
                "every request is never rolled back"
            )

    def for_dataset(self, schema: DatasetSchema) -> StageConfig:
        """This stage's settings for one declared dataset: its gate (with the stage's stricter floor, if any), and
        its ``serving`` / ``alarms`` / ``retrain`` / ``retention`` overrides on top of the stage's (which run the
        same checks as the stage's own: a ``ValueError`` says why)."""
        gate = schema.evaluation_gate
        floor = stricter_floor(gate.metric, gate.floor, self.gate_floors.get(gate.metric))
        return replace(
            self,
            dataset=schema,
            evaluation=EvaluationGate(
                primary_metric=gate.metric, min_improvement=gate.min_improvement, absolute_floor=floor
            ),
            serving=serving_overrides(self.serving, schema.serving),
            alarms=replace(self.alarms, **schema.alarms),
            retrain=replace(self.retrain, **schema.retrain),
            retention=replace(self.retention, **schema.retention),
        )

    # ---- derived names (fixed, so resources can refer to each other without tokens) ----
    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.stage}"

    @property
    def stack_name(self) -> str:
        return f"{self.prefix}"

    @property
    def drift_schedule_minutes(self) -> int:
        return self.alarms.drift_schedule_minutes

    # ---- names of the dataset (after ``for_dataset``): one definition, shipped in the platform document ----
    @property
    def resource_prefix(self) -> str:
        """``<prefix>-<dataset>``: the dataset's endpoint, model package group, models, configs and jobs."""
        return f"{self.prefix}-{self.dataset.name}"

    @property
    def endpoint_name(self) -> str:
        return self.resource_prefix

    @property
    def model_package_group_name(self) -> str:
        return self.resource_prefix

    @property
    def rollback_alarm_names(self) -> tuple[str, ...]:
        return tuple(f"{self.endpoint_name}-rollback-{kind}" for kind in ROLLBACK_ALARM_KINDS)

    @property
    def quality_metric(self) -> str:
        """The CloudWatch metric of the quality alarm: the gate's metric measured on ground truth."""
        return quality_metric_name(self.evaluation.primary_metric)

    @property
    def retrain_alarm_comparisons(self) -> dict[str, str]:
        """The dataset's retrain alarms (name -> ComparisonOperator), whose action is the guarded retrain Lambda:
        drift (PSI rising), quality (the gate metric on ground truth worse than the stage's floor: falling for
        AUC or accuracy, rising for an error), sustained 5XX errors and p99 latency."""
        worse = "LessThanThreshold" if self.evaluation.higher_is_better else "GreaterThanThreshold"
        base = self.resource_prefix
        return {
            f"{base}-drift": "GreaterThanThreshold",
            f"{base}-quality": worse,
            f"{base}-5xx": "GreaterThanOrEqualToThreshold",
            f"{base}-latency": "GreaterThanThreshold",
        }

    @property
    def state_machine_name(self) -> str:
        return f"{self.prefix}-training-pipeline"

    @property
    def glue_database_name(self) -> str:
        return f"{PROJECT}_{self.stage}".replace("-", "_")

    @property
    def glue_job_name(self) -> str:
        return f"{self.prefix}-etl"

    @property
    def metrics_namespace(self) -> str:
        return f"{METRICS_NAMESPACE}/{self.stage}"

    @property
    def raw_dataset_prefix(self) -> str:
        return f"{RAW_DATASETS_PREFIX}{self.dataset.name}/"

    @property
    def ground_truth_prefix(self) -> str:
        return f"{GROUND_TRUTH_PREFIX}{self.dataset.name}/"

    @property
    def batch_input_prefix(self) -> str:
        return f"{BATCH_INPUT_PREFIX}{self.dataset.name}/"

    @property
    def data_capture_prefix(self) -> str:
        """Where SageMaker writes the endpoint's captures: ``data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/``."""
        return f"{DATA_CAPTURE_PREFIX}{self.endpoint_name}/"

    @property
    def drift_report_prefix(self) -> str:
        return f"{MONITORING_PREFIX}drift/{self.dataset.name}/"

    @property
    def quality_prefix(self) -> str:
        return f"{MONITORING_PREFIX}quality/{self.dataset.name}/"

    @property
    def manifest_key(self) -> str:
        return f"{MANIFESTS_PREFIX}{self.dataset.name}/latest.json"

    @property
    def glue_table_name(self) -> str:
        return glue_table_name(self.dataset.name)


def serving_overrides(serving: ServingSettings, overrides: Mapping[str, Any]) -> ServingSettings:
    """The stage's serving settings with a declaration's ``serving`` overrides (``ab`` key by key)."""
    values = dict(overrides)
    if "ab" in values:
        values["ab"] = replace(serving.ab, **values["ab"])
    return replace(serving, **values)


def schedule_problem(expression: str) -> str | None:
    """Why EventBridge would refuse ``expression`` as a rule's ScheduleExpression, or why the local cloud could not
    fire it (None: it is valid): ``pipelines.schedules``."""
    from pipelines.schedules import ScheduleError, parse

    try:
        parse(expression)
    except ScheduleError as error:
        return f"{expression!r}: {error}"
    return None


def smallest_new_fleet_share(serving: ServingSettings) -> float:
    """The smallest share of the requests the new fleet serves in a rollout's first traffic step, over every
    fleet size autoscaling may choose (traffic follows whole instances; ALL_AT_ONCE shifts everything)."""
    percent = {"CANARY": serving.canary_percent, "LINEAR": serving.linear_step_percent}.get(serving.strategy)
    if percent is None:
        return 1.0
    sizes = range(serving.min_capacity, serving.max_capacity + 1)
    return min(traffic_batch_instances(percent, instances) / instances for instances in sizes)


def alarm_window_problem(period_seconds: int, evaluation_periods: int) -> str | None:
    """Why PutMetricAlarm would refuse this window (None: it would not): the period is 10, 20, 30 s or a
    multiple of 60, and period x evaluation periods is at most 1 day below 1-hour periods, 7 days otherwise."""
    if period_seconds not in (10, 20, 30) and period_seconds % 60:
        return f"a period of {period_seconds} s is not 10, 20, 30 or a multiple of 60"
    limit = 86_400 if period_seconds < 3600 else 604_800
    if period_seconds * evaluation_periods > limit:
        return f"{evaluation_periods} periods of {period_seconds} s exceed CloudWatch's evaluation range of {limit} s"
    return None


def _dev() -> StageConfig:
    sample = read_schema(DATASETS_DIR / f"{SAMPLE_DATASET}.yaml")
    return StageConfig(
        stage="dev",
        dataset=sample,
        evaluation=EvaluationGate.from_gate(sample.evaluation_gate),
        # dev must deploy into a new account, whose concurrency quota can be 10: no reservation fits there
        concurrency=ConcurrencySettings(reserve=False),
        # a warm pool for the iteration loop: the next upload's training job starts on the retained instance if it
        # starts within the hour (docs/performance.md: the gap between two iterations' training jobs is ~21 min
        # typical, ~33 min upper, when the next upload follows the deployment's end; at most ~$0.115 per pool left
        # to expire, ml.m5.large for an hour)
        training=replace(TrainingSettings(), keep_alive_seconds=3600),
    )


def _prod() -> StageConfig:
    dev = _dev()
    return replace(
        dev,
        stage="prod",
        promotion_source="dev",
        approval="manual",
        glue=replace(dev.glue, workers=4, max_retries=1),
        # no warm pool: runs are hours apart (retrain guard), a retained pool would be billed and seldom reused
        training=replace(dev.training, instance_type="ml.m5.xlarge", keep_alive_seconds=0),
        serving=replace(
            dev.serving,
            instance_type="ml.m5.xlarge",
            initial_instance_count=2,
            min_capacity=2,
            max_capacity=6,
            bake_time_seconds=600,
            data_capture_percent=20,
        ),
        gate_floors={"auc": 0.75},  # prod deploys no binary model under AUC 0.75, whatever its declaration says
        log_retention_days=365,
        # prod keeps a year of what it served and learned from: the audit trail of a model's decisions
        retention=RetentionSettings(capture_days=365, labels_days=365, production_days=365),
        delivery=Delivery(environment="prod"),
        concurrency=ConcurrencySettings(reserve=True),  # make deploy checks the account has room for them
        network="private",
    )


STAGES: dict[str, StageConfig] = {"dev": _dev(), "prod": _prod()}


def load_config(stage: str | None) -> StageConfig:
    """The configuration of ``stage`` (default dev); a clear error names the valid stages."""
    name = stage or "dev"
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; choose one of {sorted(STAGES)}") from None
