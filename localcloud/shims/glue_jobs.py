"""Glue job runs execute the job's script (moto 5.2.5 marks a run SUCCEEDED without running anything).

Patch points: ``moto.glue.models.GlueBackend.start_job_run`` (the run is started on the local cloud's
dispatcher, see ``localcloud.runtime.jobs.run_glue``: a code bundle's first run starts its warm Glue driver,
``localcloud.runtime.jobs.GlueDrivers``, and later runs skip Spark's start-up) and ``moto.glue.models.FakeJobRun``
(``status`` reports the real state; ``as_dict`` adds ``ErrorMessage``, ``ExecutionTime``, ``CompletedOn``).

A run acts with the job's role, as Glue does: the script and ``--extra-py-files`` are read with it, the job process
gets its temporary credentials, its logs are written with it (with a security configuration that encrypts
CloudWatch logs, also ``logs:AssociateKmsKey`` for the role and, in the key policy, the CloudWatch Logs service:
https://docs.aws.amazon.com/glue/latest/dg/encryption-security-configuration.html), and ``--enable-metrics`` job
metrics are put with it (``cloudwatch:PutMetricData``, namespace ``Glue``:
https://docs.aws.amazon.com/glue/latest/dg/monitoring-awsglue-with-cloudwatch-metrics.html).

Before the script, the run's ``--additional-python-modules`` go through the install rules of
``localcloud.runtime.glue_modules`` (wheels read with the role, their tags, ``--no-index``, a subnet without a route
to the internet): a failed install fails the run with pip's error, and the script does not run.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from moto.glue import models as glue_models
from moto.moto_api._internal.managed_state_model import ManagedState

from localcloud.runtime import glue_modules, jobs
from localcloud.runtime.journal import journal

_installed = False
_cloud: Any = None
_original_start = glue_models.GlueBackend.start_job_run
_original_as_dict = glue_models.FakeJobRun.as_dict


def set_cloud(cloud: Any) -> None:
    global _cloud
    _cloud = cloud
    on_stop = getattr(cloud, "on_stop", None)
    if callable(on_stop):
        on_stop(jobs.glue_drivers.stop)


GLUE = "glue.amazonaws.com"
SESSION = "GlueJobRunnerSession"


def _role_clients(job: Any) -> tuple[Any, dict[str, str] | None]:
    """(S3-capable clients, credentials) of the job's role; the harness's own when IAM is not running."""
    if getattr(_cloud, "iam", None) is None or not getattr(job, "role", None):
        return _cloud.clients, None
    return _cloud.clients_for(job.role, GLUE, SESSION), _cloud.credentials(job.role, GLUE, SESSION)


def _run_side_effects(backend: Any, job: Any, run_id: str, ok: bool, log: str) -> None:
    """What Glue does with the job's role around a run: metrics, then logs (encrypted per its security
    configuration)."""
    from localcloud.iam import calls
    from localcloud.iam.enforcer import AccessDenied

    enforcer = getattr(_cloud, "iam", None)
    group = log_group(backend, job, ok)
    if enforcer is None or not getattr(job, "role", None):
        _cloud.job_logs(group, run_id, log)
        return
    caller = enforcer.caller_of(_cloud.credentials(job.role, GLUE, SESSION)["AWS_ACCESS_KEY_ID"])
    if caller is None:  # a role that does not exist: reported by the enforcer, not evaluated
        _cloud.job_logs(group, run_id, log)
        return
    arguments = job.default_arguments or {}
    with contextlib.suppress(AccessDenied):  # job metrics are dropped; the run's outcome does not change
        if str(arguments.get("--enable-metrics", "false")).lower() != "false":
            enforcer.check_call(caller, calls.Call("cloudwatch", "PutMetricData", {"Namespace": "Glue"}))
    configuration = backend.security_configurations.get(getattr(job, "security_configuration", None) or "")
    encryption = ((configuration.configuration if configuration else {}) or {}).get("CloudWatchEncryption") or {}
    try:
        if encryption.get("CloudWatchEncryptionMode") == "SSE-KMS":
            key_arn = enforcer.world.key_arn(str(encryption.get("KmsKeyArn")))
            enforcer.check_call(caller, calls.Call("logs", "AssociateKmsKey", {"logGroupName": group}))
            enforcer.check_log_encryption(group, str(key_arn))
    except AccessDenied as denied:  # Glue cannot write the run's logs
        journal.record("glue-run", job=job.name, run_id=run_id, outcome="access-denied", error=str(denied))
        return
    _cloud.job_logs(group, run_id, log, role=(job.role, GLUE))


def log_group(backend: Any, job: Any, ok: bool) -> str:
    """Where Glue writes a run's driver output: ``/aws-glue/jobs/output|error``, or, for a job whose security
    configuration encrypts CloudWatch logs, ``/aws-glue/jobs/<configuration>-role/<role name>/output|error`` (the
    per-configuration log groups Glue creates so that each can be associated with its KMS key)."""
    stream = "output" if ok else "error"
    name = getattr(job, "security_configuration", None) or ""
    configuration = backend.security_configurations.get(name) if name else None
    encryption = ((configuration.configuration if configuration else {}) or {}).get("CloudWatchEncryption") or {}
    if encryption.get("CloudWatchEncryptionMode") != "SSE-KMS":
        return f"/aws-glue/jobs/{stream}"
    role_name = str(getattr(job, "role", "") or "").rsplit("/", 1)[-1]
    return f"/aws-glue/jobs/{name}-role/{role_name}/{stream}"


def _status(self: Any) -> str | None:
    local = getattr(self, "local_status", None)
    return local if local is not None else ManagedState.status.fget(self)  # type: ignore[attr-defined]


def _as_dict(self: Any) -> dict[str, Any]:
    result = _original_as_dict(self)
    if getattr(self, "local_status", None) is not None:
        result["JobRunState"] = self.local_status
        result["ExecutionTime"] = int(getattr(self, "execution_seconds", 0))
        result["GlueVersion"] = getattr(self, "glue_version", result.get("GlueVersion"))
        result["LogGroupName"] = "/aws-glue/jobs"
        if getattr(self, "local_completed_on", None) is None:
            result.pop("CompletedOn", None)
        else:
            result["CompletedOn"] = self.local_completed_on
        if getattr(self, "error_message", None):
            result["ErrorMessage"] = self.error_message
    return result


def start_job_run(self: Any, name: str, arguments: dict[str, str] | None, *args: Any, **kwargs: Any) -> str:
    run_id = _original_start(self, name, arguments, *args, **kwargs)
    if _cloud is None:
        return run_id
    job = self.get_job(name)
    run = job.get_job_run(run_id)
    run.local_status = "RUNNING"
    run.local_completed_on = None
    run.glue_version = getattr(job, "glue_version", None)
    definition = {
        "Command": job.command,
        "DefaultArguments": job.default_arguments,
        "Timeout": job.timeout,
    }
    journal.record("glue-run", job=name, run_id=run_id, status="RUNNING")

    def execute() -> None:
        clients, credentials = _role_clients(job)
        merged = {**dict(job.default_arguments or {}), **dict(arguments or {})}
        failure = glue_modules.install_failure(merged, _reader(clients.s3), _has_internet(self, job))
        if failure is not None:
            result = jobs.JobResult(False, reason=failure, log=failure + "\n")
        else:
            result = jobs.run_glue(
                clients.s3,
                definition,
                arguments or {},
                name,
                run_id,
                _cloud.workdir,
                _cloud.endpoint_url,
                _cloud.region,
                credentials,
            )
        run.execution_seconds = result.seconds
        run.error_message = None if result.ok else result.reason
        run.local_completed_on = datetime.now(UTC)
        run.local_status = "SUCCEEDED" if result.ok else "FAILED"
        jobs.job_changed()
        _run_side_effects(self, job, run_id, result.ok, result.log)
        journal.record(
            "glue-run",
            job=name,
            run_id=run_id,
            status=run.local_status,
            seconds=round(result.seconds, 2),
            error=run.error_message,
            warm_driver=result.outputs.get("warm_driver"),
        )

    _cloud.dispatcher.submit(execute)
    return run_id


def _reader(s3: Any) -> Any:
    """``read(bucket, key)`` of an object's first bytes with the job's role (``s3:GetObject``)."""

    def read(bucket: str, key: str) -> bytes:
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-3")["Body"].read())
        except s3.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise glue_modules.ObjectMissing(code) from error
            if code in ("AccessDenied", "403"):
                raise glue_modules.ReadDenied(str(error)) from error
            raise

    return read


def _has_internet(backend: Any, job: Any) -> bool:
    """Whether the job's workers reach the internet: its NETWORK connections' subnets and their route tables (the
    subnet's own table, else its VPC's main one)."""
    names = list((getattr(job, "connections", None) or {}).get("Connections") or [])
    ec2 = _cloud.clients.ec2

    def subnet_of(name: str) -> str | None:
        connection = backend.connections.get(name)
        if connection is None:
            return None
        requirements = connection.as_dict().get("PhysicalConnectionRequirements") or {}
        return requirements.get("SubnetId")

    def routes_of(subnet: str) -> list[dict[str, Any]]:
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
        if not tables["RouteTables"]:
            vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
            tables = ec2.describe_route_tables(
                Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
            )
        return [route for table in tables["RouteTables"] for route in table.get("Routes", [])]

    return glue_modules.job_has_internet(names, subnet_of, routes_of)


def install() -> None:
    global _installed
    if _installed:
        return
    glue_models.GlueBackend.start_job_run = start_job_run  # type: ignore[method-assign,assignment]
    glue_models.FakeJobRun.status = property(_status, ManagedState.status.fset)  # type: ignore[attr-defined,assignment]
    glue_models.FakeJobRun.as_dict = _as_dict  # type: ignore[method-assign]
    _installed = True
