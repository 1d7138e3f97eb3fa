"""SageMaker training and processing jobs run their code (moto 5.2.5 marks them Completed at once, writes
no model, replaces the job's MetricDefinitions with a fixed one and drops ``Environment``).

Patch points: ``moto.sagemaker.responses.SageMakerResponse.create_training_job`` /
``create_processing_job`` (the request's ``Environment``, ``MetricDefinitions`` and resources are kept on
the job; the job starts ``InProgress`` and runs on the local cloud's dispatcher, see
``localcloud.runtime.jobs``); the job classes get ``FailureReason`` and the metrics the job really logged.
Training metrics also go to CloudWatch (``/aws/sagemaker/TrainingJobs``, dimension ``TrainingJobName``),
and job logs to CloudWatch Logs (``/aws/sagemaker/TrainingJobs``, ``/aws/sagemaker/ProcessingJobs``).

Transform jobs (moto completes them at once and writes nothing; it also silently replaces a job of the same
name): ``create_transform_job`` refuses a name in use (``ResourceInUse``), starts the job ``InProgress`` and runs
it on the dispatcher through the model's container (``localcloud.runtime.transform``); it ends ``Completed``
with one ``<input>.out`` per input object, or ``Failed`` with ``FailureReason``. Logs go to
``/aws/sagemaker/TransformJobs``.

Managed warm pools (``localcloud.runtime.warm_pools``, moto has none): CreateTrainingJob refuses a
``KeepAlivePeriodInSeconds`` out of range (ValidationException); a new job reuses a matching ``Available`` pool, an
ended job with a keep-alive keeps one within the account's warm pool quota (``LocalCloud(warm_pool_quota=...)``,
default 0 as a new account's), on the cloud clock; DescribeTrainingJob and ListTrainingJobs report
``WarmPoolStatus`` (``WarmPoolStatusEquals`` filters); UpdateTrainingJob (not in moto) changes an Available pool's
keep-alive.

Jobs act with their execution role, as SageMaker does
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html): inputs are read and outputs written with it,
the job process gets its temporary credentials, the image is pulled with it (``ecr:GetAuthorizationToken``,
``ecr:BatchGetImage``, ``ecr:GetDownloadUrlForLayer``; the repository policy of the image's account is not
modelled), logs and training metrics are written with it. A transform job uses its model's execution role.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, cast

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError

from localcloud.clock import clock
from localcloud.runtime import jobs, warm_pools
from localcloud.runtime.journal import journal

_installed = False
_cloud: Any = None
_original_training = sm_responses.SageMakerResponse.create_training_job
_original_processing = sm_responses.SageMakerResponse.create_processing_job
_original_transform = sm_responses.SageMakerResponse.create_transform_job
_original_create_tuning = sm_responses.SageMakerResponse.create_hyper_parameter_tuning_job
_original_list_training = sm_responses.SageMakerResponse.list_training_jobs


def set_cloud(cloud: Any) -> None:
    global _cloud
    _cloud = cloud


def _request(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.body or "{}"))


SAGEMAKER = "sagemaker.amazonaws.com"


def _as_role(role_arn: str | None) -> tuple[Any, dict[str, str] | None, tuple[str, str] | None]:
    """(clients, credentials, log writer identity) of an execution role; the harness's when IAM is not running."""
    if getattr(_cloud, "iam", None) is None or not role_arn:
        return _cloud.clients, None, None
    return (
        _cloud.clients_for(role_arn, SAGEMAKER, "SageMaker"),
        _cloud.credentials(role_arn, SAGEMAKER, "SageMaker"),
        (role_arn, SAGEMAKER),
    )


def _pull_image(role_arn: str | None, image: str | None) -> str | None:
    """The image pull a job's instance makes with the execution role; the denial's message, or None."""
    from localcloud.iam.enforcer import AccessDenied

    enforcer = getattr(_cloud, "iam", None)
    if enforcer is None or not role_arn or not image or ".dkr.ecr." not in image:
        return None
    registry, _, path = image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    repository = f"arn:aws:ecr:{region}:{account}:repository/{path.split(':')[0].split('@')[0]}"
    caller = enforcer.caller_of(_cloud.credentials(role_arn, SAGEMAKER, "SageMaker")["AWS_ACCESS_KEY_ID"])
    if caller is None:  # a role that does not exist: reported by the enforcer, not evaluated
        return None
    try:
        enforcer.check(caller, "ecr:GetAuthorizationToken", "*", call="image pull")
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            enforcer.check(caller, action, repository, call="image pull")
    except AccessDenied as denied:
        return f"ClientError: Cannot pull the image {image}: {denied}"
    return None


def _final_status(job: Any, outcome: Any) -> str:
    """``Completed``, or ``Failed`` with the job's ``FailureReason`` taken from the outcome."""
    if outcome.ok:
        return "Completed"
    job.failure_reason = outcome.reason
    return "Failed"


def create_training_job(self: Any) -> Any:
    request = _request(self)
    try:
        warm_pools.check_request(request)
    except warm_pools.WarmPoolRefused as refused:
        raise ValidationError(str(refused)) from None
    created = clock.time()
    result = _original_training(self)
    peers = self.sagemaker_backend.training_jobs
    job = peers[request["TrainingJobName"]]
    job.algorithm_specification = copy.deepcopy(request["AlgorithmSpecification"])
    job.environment = request.get("Environment") or {}
    job.warm_pool_peers, job.warm_pool_created = peers, created
    if _cloud is None:  # moto's job is Completed at once: it takes a pool and leaves one at once
        warm_pools.claim(job, list(peers.values()))
        warm_pools.release(job, None, list(peers.values()), created)
        return result
    _started(job)
    pool = warm_pools.claim(job, list(peers.values()))
    if pool is not None:
        journal.record("warm-pool", job=job.training_job_name, status="InUse")
    _cloud.dispatcher.submit(_run_training_job, job, request)
    return result


def _started(job: Any) -> None:
    job.training_job_status = "InProgress"
    job.secondary_status = "Starting"
    job.final_metric_data_list = []
    job.model_artifacts = None
    job.training_end_time = None
    journal.record("training-job", job=job.training_job_name, status="InProgress")


def _run_training_job(job: Any, request: dict[str, Any]) -> dict[str, float]:
    """Run a training job's code to its end (``Completed`` or ``Failed``); the metrics its log gave."""
    job.secondary_status = "Training"
    job.training_start_time = datetime.now(UTC)
    role = request.get("RoleArn")
    clients, credentials, writer = _as_role(role)
    image = (request.get("AlgorithmSpecification") or {}).get("TrainingImage")
    pulled = _pull_image(role, image)
    outcome = (
        jobs.JobResult(False, reason=pulled)
        if pulled
        else jobs.run_training(clients.s3, request, _cloud.workdir, _cloud.endpoint_url, _cloud.region, credentials)
    )
    now = datetime.now(UTC)
    job.training_end_time = job.last_modified_time = now
    job.final_metric_data_list = (
        [{"MetricName": name, "Value": value, "Timestamp": now} for name, value in outcome.outputs["metrics"].items()]
        if outcome.outputs.get("metrics")
        else []
    )
    job.training_time_in_seconds = job.billable_time_in_seconds = max(1, int(outcome.seconds))
    _cloud.job_logs("/aws/sagemaker/TrainingJobs", f"{job.training_job_name}/algo-1", outcome.log, role=writer)
    _publish_training_metrics(clients, job.training_job_name, outcome.outputs.get("metrics") or {})
    if outcome.ok:
        job.model_artifacts = {"S3ModelArtifacts": outcome.outputs["model_uri"]}
    job.training_job_status = job.secondary_status = _final_status(job, outcome)
    _release_warm_pool(job, outcome)
    jobs.job_changed()
    journal.record(
        "training-job",
        job=job.training_job_name,
        status=job.training_job_status,
        seconds=round(outcome.seconds, 2),
        metrics=outcome.outputs.get("metrics"),
        reason=getattr(job, "failure_reason", None),
    )
    return dict(outcome.outputs.get("metrics") or {})


def _release_warm_pool(job: Any, outcome: Any) -> None:
    """The ended job's instances stay as a warm pool, or not (``localcloud.runtime.warm_pools.release``)."""
    peers = getattr(job, "warm_pool_peers", None) or {}
    warm_pools.release(
        job, None if outcome.ok else outcome.reason or "", list(peers.values()), getattr(job, "warm_pool_created", 0.0)
    )
    described = warm_pools.status(job)
    if described is not None:
        journal.record("warm-pool", job=job.training_job_name, status=described["Status"])


def describe_training_job(self: Any) -> Any:
    """DescribeTrainingJob with the job's ``WarmPoolStatus`` (when it asked for or used a warm pool)."""
    name = self._get_param("TrainingJobName")
    response = dict(self.sagemaker_backend.describe_training_job(name))
    described = warm_pools.status(self.sagemaker_backend.training_jobs[name])
    if described is not None:
        response["WarmPoolStatus"] = described
    return ActionResult(response)


def list_training_jobs(self: Any) -> Any:
    """ListTrainingJobs with each summary's ``WarmPoolStatus`` and the ``WarmPoolStatusEquals`` filter (applied to the
    page moto returns: a filtered page may hold fewer than ``MaxResults`` summaries, which the API allows)."""
    result = _original_list_training(self)
    response = dict(cast("dict[str, Any]", result.result))
    wanted = self._get_param("WarmPoolStatusEquals")
    summaries = []
    for summary in response.get("TrainingJobSummaries", []):
        job = self.sagemaker_backend.training_jobs.get(summary["TrainingJobName"])
        described = warm_pools.status(job) if job is not None else None
        if wanted and (described or {}).get("Status") != wanted:
            continue
        summaries.append({**summary, **({"WarmPoolStatus": described} if described else {})})
    response["TrainingJobSummaries"] = summaries
    return ActionResult(response)


def update_training_job(self: Any) -> Any:
    """UpdateTrainingJob (not in moto 5.2.5): ``ResourceConfig.KeepAlivePeriodInSeconds`` of a job whose warm pool is
    Available (0 terminates it); the profiler and remote debugging settings are not modelled (refused)."""
    name = self._get_param("TrainingJobName")
    job = self.sagemaker_backend.training_jobs.get(name)
    if job is None:
        raise ResourceNotFound(f"Could not find training job '{name}'.")
    others = {"ProfilerConfig", "ProfilerRuleConfigurations", "RemoteDebugConfig"} & set(_request(self))
    if others:
        raise ValidationError(
            f"the local cloud updates a training job's warm pool only, not {', '.join(sorted(others))}"
        )
    seconds = (self._get_param("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
    if seconds is None:
        raise ValidationError("ResourceConfig.KeepAlivePeriodInSeconds is required")
    try:
        warm_pools.update_keep_alive(job, int(seconds))
    except warm_pools.WarmPoolRefused as refused:
        raise ValidationError(str(refused)) from None
    return ActionResult({"TrainingJobArn": job.arn})


def _publish_training_metrics(clients: Any, job_name: str, metrics: dict[str, float]) -> None:
    from botocore.exceptions import ClientError

    if not metrics:
        return
    with contextlib.suppress(ClientError):  # a denied put is recorded by the local cloud's IAM; the job goes on
        clients.cloudwatch.put_metric_data(
            Namespace="/aws/sagemaker/TrainingJobs",
            MetricData=[
                {"MetricName": name, "Dimensions": [{"Name": "TrainingJobName", "Value": job_name}], "Value": value}
                for name, value in metrics.items()
            ],
        )


def create_processing_job(self: Any) -> Any:
    result = _original_processing(self)
    request = _request(self)
    job = self.sagemaker_backend.processing_jobs[request["ProcessingJobName"]]
    job.environment = request.get("Environment") or {}
    job.processing_resources = request.get("ProcessingResources")
    if _cloud is None:
        return result
    job.processing_job_status = "InProgress"
    job.processing_end_time = None
    journal.record("processing-job", job=job.processing_job_name, status="InProgress")

    def execute() -> None:
        job.processing_start_time = datetime.now(UTC)
        role = request.get("RoleArn")
        clients, credentials, writer = _as_role(role)
        pulled = _pull_image(role, (request.get("AppSpecification") or {}).get("ImageUri"))
        outcome = (
            jobs.JobResult(False, reason=pulled)
            if pulled
            else jobs.run_processing(
                clients.s3, request, _cloud.workdir, _cloud.endpoint_url, _cloud.region, credentials
            )
        )
        job.processing_end_time = job.last_modified_time = datetime.now(UTC)
        _cloud.job_logs("/aws/sagemaker/ProcessingJobs", f"{job.processing_job_name}/algo-1", outcome.log, role=writer)
        job.processing_job_status = _final_status(job, outcome)
        jobs.job_changed()
        journal.record(
            "processing-job",
            job=job.processing_job_name,
            status=job.processing_job_status,
            seconds=round(outcome.seconds, 2),
            reason=getattr(job, "failure_reason", None),
        )

    _cloud.dispatcher.submit(execute)
    return result


# ---- automatic model tuning ------------------------------------------------------------------------------

TUNING_DEFINITION_KEYS = (
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "Environment",
    "VpcConfig",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
)
"""The keys of a tuning job's TrainingJobDefinition that each trial's CreateTrainingJob request takes as they are
(HyperParameterTrainingJobDefinition; ``StaticHyperParameters`` plus the trial's values become its
``HyperParameters``)."""


def _trial_request(tuning_name: str, index: int, definition: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The CreateTrainingJob request of trial ``index`` (1-based): SageMaker names it
    ``<tuning job>-<NNN>-<8 hex digits>``."""
    suffix = hashlib.sha256(f"{tuning_name}:{index}".encode()).hexdigest()[:8]
    request = {key: copy.deepcopy(definition[key]) for key in TUNING_DEFINITION_KEYS if key in definition}
    request["TrainingJobName"] = f"{tuning_name}-{index:03d}-{suffix}"
    request["HyperParameters"] = {**(definition.get("StaticHyperParameters") or {}), **values}
    return request


def _trial_summary(trial: dict[str, Any], tuning_name: str, objective: dict[str, str]) -> dict[str, Any]:
    """A HyperParameterTrainingJobSummary (BestTrainingJob, ListTrainingJobsForHyperParameterTuningJob)."""
    job = trial["job"]
    summary: dict[str, Any] = {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "TuningJobName": tuning_name,
        "CreationTime": job.creation_time,
        "TrainingJobStatus": trial["status"],
        "TunedHyperParameters": dict(trial["values"]),
    }
    for key, value in (("TrainingStartTime", job.training_start_time), ("TrainingEndTime", job.training_end_time)):
        if value is not None:
            summary[key] = value
    if trial["status"] == "Failed":
        summary["FailureReason"] = getattr(job, "failure_reason", None) or "unknown"
    if trial["objective"] is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"],
            "MetricName": objective["MetricName"],
            "Value": trial["objective"],
        }
    summary["ObjectiveStatus"] = (
        "Succeeded" if trial["objective"] is not None else "Pending" if trial["status"] == "InProgress" else "Failed"
    )
    return summary


def _counters(trials: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """TrainingJobStatusCounters and ObjectiveStatusCounters of the trials so far."""
    status = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for trial in trials:
        key = {"Failed": "NonRetryableError"}.get(trial["status"], trial["status"])
        status[key] = status.get(key, 0) + 1
        done = (
            "Succeeded"
            if trial["objective"] is not None
            else "Pending"
            if trial["status"] == "InProgress"
            else "Failed"
        )
        objective[done] += 1
    return status, objective


def _tuning_started(job: Any, objective: dict[str, str]) -> Any:
    """moto's tuning job (Completed at once, with placeholder results) made an InProgress one with no trials."""
    job.hyper_parameter_tuning_job_status = "InProgress"
    job.hyper_parameter_tuning_end_time = job.failure_reason = job.tuning_job_completion_details = None
    job.best_training_job = job.OverallBestTrainingJob = None
    job.stop_requested = False
    job.objective = objective
    job.trials = []
    job.consumed_resources = {"RuntimeInSeconds": 0}
    job.training_job_status_counters, job.objective_status_counters = _counters([])
    return job


def create_hyper_parameter_tuning_job(self: Any) -> Any:
    """CreateHyperParameterTuningJob: the trials run as real training jobs (``localcloud.runtime.tuning`` picks
    their values; Bayesian and Hyperband are refused with the reason), one after another (two cores; within
    MaxParallelTrainingJobs), each objective parsed from its log by the job's MetricDefinitions."""
    from localcloud.runtime import tuning

    request = _request(self)
    name = request["HyperParameterTuningJobName"]
    config = request.get("HyperParameterTuningJobConfig") or {}
    definition: dict[str, Any] = request.get("TrainingJobDefinition") or {}
    if _cloud is not None:
        if not definition:
            raise ValidationError("the local cloud runs a tuning job of one TrainingJobDefinition")
        try:
            plan = tuning.plan_trials(config)
        except tuning.TuningRefused as refused:
            raise ValidationError(str(refused)) from None
        objective = dict(config.get("HyperParameterTuningJobObjective") or {})
        defined = {
            m.get("Name") for m in (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        }
        if objective.get("MetricName") not in defined:
            raise ValidationError(
                f"the objective metric {objective.get('MetricName')!r} is not one of the job's MetricDefinitions"
            )
    result = _original_create_tuning(self)
    if _cloud is None:
        return result
    job = _tuning_started(self.sagemaker_backend.hyper_parameter_tuning_jobs[name], objective)
    journal.record("tuning-job", job=name, status="InProgress", strategy=config.get("Strategy"), trials=len(plan))

    def execute() -> None:
        started = datetime.now(UTC)
        backend = self.sagemaker_backend
        for index, values in enumerate(plan, start=1):
            if job.stop_requested:
                break
            trial_request = _trial_request(name, index, definition, values)
            # moto rewrites the specification it is given (its MetricDefinitions): hand it a copy
            trial_job = backend.create_training_job(
                training_job_name=trial_request["TrainingJobName"],
                hyper_parameters=dict(trial_request["HyperParameters"]),
                algorithm_specification=copy.deepcopy(trial_request["AlgorithmSpecification"]),
                role_arn=trial_request["RoleArn"],
                input_data_config=trial_request.get("InputDataConfig"),
                output_data_config=trial_request["OutputDataConfig"],
                resource_config=trial_request["ResourceConfig"],
                vpc_config=trial_request.get("VpcConfig"),
                stopping_condition=trial_request["StoppingCondition"],
                tags=None,
                enable_network_isolation=trial_request.get("EnableNetworkIsolation", False),
                enable_inter_container_traffic_encryption=trial_request.get(
                    "EnableInterContainerTrafficEncryption", False
                ),
                enable_managed_spot_training=trial_request.get("EnableManagedSpotTraining", False),
                checkpoint_config=trial_request.get("CheckpointConfig"),
                debug_hook_config=None,
                debug_rule_configurations=None,
                tensor_board_output_config=None,
                experiment_config=None,
            )
            trial_job.algorithm_specification = copy.deepcopy(trial_request["AlgorithmSpecification"])
            trial_job.environment = trial_request.get("Environment") or {}
            trial_job.tuning_job_arn = job.arn
            trial: dict[str, Any] = {"job": trial_job, "values": values, "status": "InProgress", "objective": None}
            job.trials.append(trial)
            _started(trial_job)
            job.training_job_status_counters, job.objective_status_counters = _counters(job.trials)
            jobs.job_changed()
            metrics = _run_training_job(trial_job, trial_request)
            trial["status"] = trial_job.training_job_status
            trial["objective"] = metrics.get(objective["MetricName"]) if trial["status"] == "Completed" else None
            job.training_job_status_counters, job.objective_status_counters = _counters(job.trials)
            best = tuning.best_trial(job.trials, objective.get("Type", "Maximize"))
            job.best_training_job = job.OverallBestTrainingJob = (
                _trial_summary(dict(best), name, objective) if best is not None else None
            )
            job.last_modified_time = datetime.now(UTC)
            jobs.job_changed()
        job.consumed_resources = {"RuntimeInSeconds": max(1, int((datetime.now(UTC) - started).total_seconds()))}
        if job.stop_requested:
            job.hyper_parameter_tuning_job_status = "Stopped"
        elif job.best_training_job is None:
            job.hyper_parameter_tuning_job_status = "Failed"
            reasons = sorted({getattr(t["job"], "failure_reason", None) or "no objective metric" for t in job.trials})
            job.failure_reason = (
                f"All {len(job.trials)} training jobs failed or logged no {objective.get('MetricName')}: "
                + "; ".join(reasons)
            )[:1024]
        else:
            job.hyper_parameter_tuning_job_status = "Completed"
        job.hyper_parameter_tuning_end_time = job.last_modified_time = datetime.now(UTC)
        jobs.job_changed()
        journal.record(
            "tuning-job",
            job=name,
            status=job.hyper_parameter_tuning_job_status,
            trials=[
                {"job": t["job"].training_job_name, "values": t["values"], "objective": t["objective"]}
                for t in job.trials
            ],
            best=(job.best_training_job or {}).get("TrainingJobName"),
            reason=job.failure_reason,
        )

    _cloud.dispatcher.submit(execute)
    return result


def describe_hyper_parameter_tuning_job(self: Any) -> Any:
    """DescribeHyperParameterTuningJob in the documented shape: ``BestTrainingJob`` / ``OverallBestTrainingJob``,
    ``HyperParameterTuningEndTime`` and ``FailureReason`` only once there is one (moto fills them with placeholders)."""
    name = self._get_param("HyperParameterTuningJobName")
    response = self.sagemaker_backend.describe_hyper_parameter_tuning_job(name)
    job = self.sagemaker_backend.hyper_parameter_tuning_jobs[name]
    if hasattr(job, "trials"):
        response = {key: value for key, value in response.items() if value is not None}
    return ActionResult(response)


def list_training_jobs_for_hyper_parameter_tuning_job(self: Any) -> Any:
    """ListTrainingJobsForHyperParameterTuningJob: the trials as HyperParameterTrainingJobSummary, filtered by
    ``StatusEquals``, sorted by ``SortBy`` (Name | CreationTime | Status | FinalObjectiveMetricValue, default
    Name) and ``SortOrder`` (default Ascending), ``MaxResults`` per page (default 10) with ``NextToken``."""
    name = self._get_param("HyperParameterTuningJobName")
    job = self.sagemaker_backend.hyper_parameter_tuning_jobs.get(name)
    if job is None:
        raise ResourceNotFound(f"Could not find hyper parameter tuning job '{name}'.")
    summaries = [_trial_summary(t, name, getattr(job, "objective", {})) for t in getattr(job, "trials", [])]
    status = self._get_param("StatusEquals")
    if status:
        summaries = [s for s in summaries if s["TrainingJobStatus"] == status]
    sort_by = self._get_param("SortBy") or "Name"
    keys = {
        "Name": lambda s: s["TrainingJobName"],
        "CreationTime": lambda s: s["CreationTime"],
        "Status": lambda s: s["TrainingJobStatus"],
        "FinalObjectiveMetricValue": lambda s: (s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get(
            "Value", float("-inf")
        ),
    }
    if sort_by not in keys:
        raise ValidationError(f"SortBy {sort_by!r} is not one of {', '.join(keys)}")
    summaries.sort(key=keys[sort_by], reverse=(self._get_param("SortOrder") or "Ascending") == "Descending")
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 10)
    page = summaries[start : start + size]
    response: dict[str, Any] = {"TrainingJobSummaries": page}
    if start + size < len(summaries):
        response["NextToken"] = str(start + size)
    return ActionResult(response)


def stop_hyper_parameter_tuning_job(self: Any) -> Any:
    """StopHyperParameterTuningJob: ``Stopping`` at once; no further trial starts, the running one ends, then
    ``Stopped``. A job that is not InProgress cannot be stopped (ValidationException)."""
    name = self._get_param("HyperParameterTuningJobName")
    job = self.sagemaker_backend.hyper_parameter_tuning_jobs.get(name)
    if job is None:
        raise ResourceNotFound(f"Could not find hyper parameter tuning job '{name}'.")
    if job.hyper_parameter_tuning_job_status != "InProgress":
        raise ValidationError(f"the tuning job {name} is {job.hyper_parameter_tuning_job_status}: it cannot be stopped")
    job.stop_requested = True
    job.hyper_parameter_tuning_job_status = "Stopping"
    jobs.job_changed()
    return EmptyResult()


def create_transform_job(self: Any) -> Any:
    request = _request(self)
    name = request["TransformJobName"]
    existing = self.sagemaker_backend.transform_jobs.get(name)
    if existing is not None:
        raise ResourceInUseException(
            "Transform job names must be unique within an AWS account and region, and a transform job with this "
            f"name already exists ({existing.arn})"
        )
    result = _original_transform(self)
    job = self.sagemaker_backend.transform_jobs[name]
    if _cloud is None:
        return result
    job.transform_job_status = "InProgress"
    job.transform_end_time = None
    journal.record("transform-job", job=name, model=job.model_name, status="InProgress")

    def execute() -> None:
        from localcloud.runtime import transform

        job.transform_start_time = job.last_modified_time = datetime.now(UTC)
        timeout = float(
            (request.get("ModelClientConfig") or {}).get(
                "InvocationsTimeoutInSeconds", transform.DEFAULT_TIMEOUT_SECONDS
            )
        )
        writer = None
        try:
            container = _cloud.endpoints.container(job.model_name, transform.container_environment(request))
        except Exception as error:  # the model cannot be served: the job fails, as SageMaker's would
            outcome = transform.TransformResult(False, f"ClientError: {getattr(error, 'message', error)}"[:1024])
        else:
            role = _cloud.endpoints.execution_role(job.model_name)
            clients, _, writer = _as_role(role)
            outcome = transform.run_transform(clients.s3, request, transform.http_invoke(container.port, timeout))
        job.transform_end_time = job.last_modified_time = datetime.now(UTC)
        _cloud.job_logs(
            "/aws/sagemaker/TransformJobs", f"{name}/local-data-log", outcome.log or outcome.reason, role=writer
        )
        job.transform_job_status = _final_status(job, outcome)
        jobs.job_changed()
        journal.record(
            "transform-job",
            job=name,
            model=job.model_name,
            status=job.transform_job_status,
            seconds=round(outcome.seconds, 2),
            objects=len(outcome.objects),
            records=outcome.records,
            requests=outcome.requests,
            outputs=[o["output"] for o in outcome.objects],
            reason=outcome.reason or None,
        )

    _cloud.dispatcher.submit(execute)
    return result


def install() -> None:
    global _installed
    if _installed:
        return
    sm_responses.SageMakerResponse.create_training_job = create_training_job  # type: ignore[method-assign]
    sm_responses.SageMakerResponse.create_processing_job = create_processing_job  # type: ignore[method-assign]
    sm_responses.SageMakerResponse.create_transform_job = create_transform_job  # type: ignore[method-assign]
    responses = sm_responses.SageMakerResponse
    responses.create_hyper_parameter_tuning_job = create_hyper_parameter_tuning_job  # type: ignore[method-assign]
    responses.describe_hyper_parameter_tuning_job = describe_hyper_parameter_tuning_job  # type: ignore[method-assign]
    responses.describe_training_job = describe_training_job  # type: ignore[method-assign]
    responses.list_training_jobs = list_training_jobs  # type: ignore[method-assign]
    responses.update_training_job = update_training_job  # type: ignore[attr-defined]
    # not in moto 5.2.5: added
    responses.list_training_jobs_for_hyper_parameter_tuning_job = list_training_jobs_for_hyper_parameter_tuning_job  # type: ignore[attr-defined]
    responses.stop_hyper_parameter_tuning_job = stop_hyper_parameter_tuning_job  # type: ignore[attr-defined]
    _installed = True


__all__ = ["install", "set_cloud", "sm_models"]
