"""Contract and behaviour of the Glue job-run shim (the job's script really runs; the run reports its state)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.glue import models as glue_models
from moto.moto_api._internal.managed_state_model import ManagedState

from localcloud.runtime.journal import journal
from localcloud.shims import glue_jobs as shim
from tests.tiers import heavy_fixture
from tests.unit.localcloud import support
from tests.unit.localcloud.support import REGION, ROLE, assert_pinned_moto, revisit, running_cloud, source, unique

SHIM = "glue_jobs"


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    shim.install()
    monkeypatch.setattr(glue_models.GlueBackend, "start_job_run", shim._original_start)
    monkeypatch.setattr(glue_models.FakeJobRun, "as_dict", shim._original_as_dict)
    monkeypatch.delattr(glue_models.FakeJobRun, "status")  # back to ManagedState.status


def create_job(glue: Any, script: str, **extra: Any) -> str:
    name = unique("etl")
    glue.create_job(
        Name=name,
        Role=ROLE,
        Command={"Name": "glueetl", "ScriptLocation": script, "PythonVersion": "3"},
        GlueVersion="5.0",
        **extra,
    )
    return name


# ---- contract with the pinned moto ---------------------------------------------------------------------


def test_patch_points_still_exist_with_the_signatures_the_shim_implements() -> None:
    assert_pinned_moto(SHIM)
    parameters = list(inspect.signature(shim._original_start).parameters)
    assert parameters[:3] == ["self", "name", "arguments"], revisit(SHIM)
    assert list(inspect.signature(shim._original_as_dict).parameters) == ["self"], revisit(SHIM)
    assert issubclass(glue_models.FakeJobRun, ManagedState), revisit(SHIM)
    status = inspect.getattr_static(ManagedState, "status")
    assert isinstance(status, property) and status.fget and status.fset, revisit(SHIM)
    # the job attributes the shim hands to the runner
    job_init = inspect.getsource(glue_models.FakeJob.__init__)
    for attribute in ("self.command", "self.default_arguments", "self.timeout", "self.glue_version"):
        assert attribute in job_init, revisit(SHIM)


def test_pinned_moto_succeeds_a_run_at_once_without_running_anything(unpatched: None) -> None:
    # Given a job whose script does not even exist
    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        name = create_job(glue, "s3://nowhere/missing.py")
        # When a run starts
        run_id = glue.start_job_run(JobName=name, Arguments={"--dataset": "churn"})["JobRunId"]
        run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    # Then moto reports it SUCCEEDED, with a made-up execution time and log group
    assert run["JobRunState"] == "SUCCEEDED", revisit(SHIM)
    assert (run["ExecutionTime"], run["LogGroupName"]) == (123, "test/log"), revisit(SHIM)
    assert "ErrorMessage" not in run


def test_without_a_cloud_the_shim_leaves_moto_as_it_is() -> None:
    shim.install()
    shim.set_cloud(None)
    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        name = create_job(glue, "s3://nowhere/missing.py")
        run_id = glue.start_job_run(JobName=name)["JobRunId"]
        assert glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"] == "SUCCEEDED"


# ---- behaviour in a running local cloud ----------------------------------------------------------------

SCRIPT = """
    import json, os, sys, time
    import boto3

    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    gate = args.get("--gate")
    deadline = time.time() + 60
    while gate and not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.02)
    if args.get("--fail"):
        raise ValueError(f"3 rows of {args['--dataset']} fail the schema")
    boto3.client("s3").put_object(Bucket=args["--bucket"], Key="etl/args.json", Body=json.dumps(args))
    print("ETL done for", args["--dataset"])
"""


@heavy_fixture
def cloud() -> Iterator[Any]:
    with running_cloud() as local:
        local.clients.s3.create_bucket(Bucket="glue-test-bucket")
        local.clients.s3.put_object(Bucket="glue-test-bucket", Key="code/etl.py", Body=source(SCRIPT).encode())
        yield local


def test_a_run_executes_the_script_and_reports_its_state(cloud: Any, tmp_path: Path) -> None:
    # Given a job with default arguments, and a run that waits on a gate before doing its work
    glue = cloud.clients.glue
    name = create_job(
        glue,
        "s3://glue-test-bucket/code/etl.py",
        DefaultArguments={"--bucket": "glue-test-bucket", "--dataset": "default"},
    )
    gate = tmp_path / "go"
    run_id = glue.start_job_run(JobName=name, Arguments={"--dataset": "churn", "--gate": str(gate)})["JobRunId"]
    # When it is described while the script runs
    running = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    # Then it is RUNNING, not completed
    assert running["JobRunState"] == "RUNNING"
    assert "CompletedOn" not in running
    # When the script is let through and finishes
    gate.touch()
    cloud.settle()
    run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    # Then the run SUCCEEDED, the script saw the merged arguments plus Glue's own, and its output is logged
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["GlueVersion"] == "5.0" and "CompletedOn" in run and isinstance(run["ExecutionTime"], int)
    body = cloud.clients.s3.get_object(Bucket="glue-test-bucket", Key="etl/args.json")["Body"].read()
    args = json.loads(body)
    assert (args["--dataset"], args["--bucket"], args["--JOB_NAME"], args["--JOB_RUN_ID"]) == (
        "churn",
        "glue-test-bucket",
        name,
        run_id,
    )
    events = cloud.clients.logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)["events"]
    assert "ETL done for churn" in [e["message"] for e in events]
    assert [e.detail["status"] for e in journal.of("glue-run") if e.detail["run_id"] == run_id] == [
        "RUNNING",
        "SUCCEEDED",
    ]


def test_a_failing_script_fails_the_run_with_its_error(cloud: Any) -> None:
    # Given a run whose script raises
    glue = cloud.clients.glue
    name = create_job(glue, "s3://glue-test-bucket/code/etl.py", DefaultArguments={"--bucket": "glue-test-bucket"})
    run_id = glue.start_job_run(JobName=name, Arguments={"--dataset": "bad.csv", "--fail": "yes"})["JobRunId"]
    # When it ends
    cloud.settle()
    run = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    # Then it FAILED with the Python error as ErrorMessage, and the traceback is in the error log
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: 3 rows of bad.csv fail the schema"
    events = cloud.clients.logs.get_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=run_id)["events"]
    assert any(e["message"].startswith("Traceback") for e in events)


def test_installed_again_one_start_is_one_run_handed_to_the_cloud(clean_journal: None) -> None:
    # Given a job, a cloud to run it and the shim installed again
    shim.install()
    shim.set_cloud(None)
    with mock_aws():
        glue = boto3.client("glue", region_name=REGION)
        name = create_job(glue, "print('never runs here')")
        cloud = support.stand_in_cloud()
        support.install_again(shim)
        shim.set_cloud(cloud)
        try:
            # When the job is started once
            run_id = glue.start_job_run(JobName=name)["JobRunId"]
        finally:
            shim.set_cloud(None)
        # Then moto holds one run, RUNNING, and the shim handed one execution to the cloud
        runs = glue.get_job_runs(JobName=name)["JobRuns"]
        assert [(r["Id"], r["JobRunState"]) for r in runs] == [(run_id, "RUNNING")]
        assert cloud.dispatcher.work == ["execute"]
        assert [e.detail["status"] for e in journal.of("glue-run")] == ["RUNNING"]
