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
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ResourceInUseException

from localcloud.runtime import jobs
from localcloud.runtime.journal import journal

_installed = False
_cloud: Any = None
_original_training = sm_responses.SageMakerResponse.create_training_job
_original_processing = sm_responses.SageMakerResponse.create_processing_job
_original_transform = sm_responses.SageMakerResponse.create_transform_job


def set_cloud(cloud: Any) -> None:
    global _cloud
    _cloud = cloud


def _request(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.body or "{}"))


def _final_status(job: Any, outcome: Any) -> str:
    """``Completed``, or ``Failed`` with the job's ``FailureReason`` taken from the outcome."""
    if outcome.ok:
        return "Completed"
    job.failure_reason = outcome.reason
    return "Failed"


def create_training_job(self: Any) -> Any:
    result = _original_training(self)
    request = _request(self)
    job = self.sagemaker_backend.training_jobs[request["TrainingJobName"]]
    job.algorithm_specification = copy.deepcopy(request["AlgorithmSpecification"])
    job.environment = request.get("Environment") or {}
    if _cloud is None:
        return result
    job.training_job_status = "InProgress"
    job.secondary_status = "Starting"
    job.final_metric_data_list = []
    job.model_artifacts = None
    job.training_end_time = None
    journal.record("training-job", job=job.training_job_name, status="InProgress")

    def execute() -> None:
        job.secondary_status = "Training"
        job.training_start_time = datetime.now(UTC)
        outcome = jobs.run_training(_cloud.clients.s3, request, _cloud.workdir, _cloud.endpoint_url, _cloud.region)
        now = datetime.now(UTC)
        job.training_end_time = job.last_modified_time = now
        job.final_metric_data_list = (
            [
                {"MetricName": name, "Value": value, "Timestamp": now}
                for name, value in outcome.outputs["metrics"].items()
            ]
            if outcome.outputs.get("metrics")
            else []
        )
        job.training_time_in_seconds = job.billable_time_in_seconds = max(1, int(outcome.seconds))
        _cloud.job_logs("/aws/sagemaker/TrainingJobs", f"{job.training_job_name}/algo-1", outcome.log)
        _publish_training_metrics(job.training_job_name, outcome.outputs.get("metrics") or {})
        if outcome.ok:
            job.model_artifacts = {"S3ModelArtifacts": outcome.outputs["model_uri"]}
        job.training_job_status = job.secondary_status = _final_status(job, outcome)
        jobs.job_changed()
        journal.record(
            "training-job",
            job=job.training_job_name,
            status=job.training_job_status,
            seconds=round(outcome.seconds, 2),
            metrics=outcome.outputs.get("metrics"),
            reason=getattr(job, "failure_reason", None),
        )

    _cloud.dispatcher.submit(execute)
    return result


def _publish_training_metrics(job_name: str, metrics: dict[str, float]) -> None:
    if not metrics:
        return
    _cloud.clients.cloudwatch.put_metric_data(
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
        outcome = jobs.run_processing(_cloud.clients.s3, request, _cloud.workdir, _cloud.endpoint_url, _cloud.region)
        job.processing_end_time = job.last_modified_time = datetime.now(UTC)
        _cloud.job_logs("/aws/sagemaker/ProcessingJobs", f"{job.processing_job_name}/algo-1", outcome.log)
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
        try:
            container = _cloud.endpoints.container(job.model_name, transform.container_environment(request))
        except Exception as error:  # the model cannot be served: the job fails, as SageMaker's would
            outcome = transform.TransformResult(False, f"ClientError: {getattr(error, 'message', error)}"[:1024])
        else:
            outcome = transform.run_transform(
                _cloud.clients.s3, request, transform.http_invoke(container.port, timeout)
            )
        job.transform_end_time = job.last_modified_time = datetime.now(UTC)
        _cloud.job_logs("/aws/sagemaker/TransformJobs", f"{name}/local-data-log", outcome.log or outcome.reason)
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
    _installed = True


__all__ = ["install", "set_cloud", "sm_models"]
