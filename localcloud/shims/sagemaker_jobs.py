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

Jobs act with their execution role, as SageMaker does
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html): inputs are read and outputs written with it,
the job process gets its temporary credentials, the image is pulled with it (``ecr:GetAuthorizationToken``,
``ecr:BatchGetImage``, ``ecr:GetDownloadUrlForLayer``; the repository policy of the image's account is not
modelled), logs and training metrics are written with it. A transform job uses its model's execution role.
"""

from __future__ import annotations

import contextlib
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
            [
                {"MetricName": name, "Value": value, "Timestamp": now}
                for name, value in outcome.outputs["metrics"].items()
            ]
            if outcome.outputs.get("metrics")
            else []
        )
        job.training_time_in_seconds = job.billable_time_in_seconds = max(1, int(outcome.seconds))
        _cloud.job_logs("/aws/sagemaker/TrainingJobs", f"{job.training_job_name}/algo-1", outcome.log, role=writer)
        _publish_training_metrics(clients, job.training_job_name, outcome.outputs.get("metrics") or {})
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
    _installed = True


__all__ = ["install", "set_cloud", "sm_models"]
