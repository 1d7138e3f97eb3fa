"""Contract and behaviour of the Glue job-run shim (the job's script really runs; the run reports its state)."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.glue import models as glue_models
from moto.moto_api._internal.managed_state_model import ManagedState

from localcloud.runtime import jobs
from localcloud.runtime.glue_modules import PREFIX
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


def test_a_bundles_warm_driver_starts_with_its_first_run_not_with_the_job(cloud: Any) -> None:
    # Given a job of a code bundle no earlier test ran (its own script), just created (a stack's provisioning)
    glue = cloud.clients.glue
    cloud.clients.s3.put_object(
        Bucket="glue-test-bucket", Key="code/lazy.py", Body=(source(SCRIPT) + "# lazy\n").encode()
    )
    before = set(jobs.glue_drivers._drivers)
    name = create_job(glue, "s3://glue-test-bucket/code/lazy.py", DefaultArguments={"--bucket": "glue-test-bucket"})
    time.sleep(0.5)
    # Then no Spark driver started for it
    assert set(jobs.glue_drivers._drivers) == before and not jobs.glue_drivers._starting
    # When it runs twice
    runs, finished = [], []
    for dataset in ("first", "second"):  # one at a time (the job's MaxConcurrentRuns is 1)
        runs.append(glue.start_job_run(JobName=name, Arguments={"--dataset": dataset})["JobRunId"])
        finished.append(_finished(cloud, name, runs[-1]))
    # Then the first run started the bundle's driver and ran on it, and the second ran on the same one
    assert [run["JobRunState"] for run in finished] == ["SUCCEEDED", "SUCCEEDED"]
    warm = {
        e.detail["run_id"]: e.detail.get("warm_driver") for e in journal.of("glue-run") if "warm_driver" in e.detail
    }
    assert [warm.get(run_id) for run_id in runs] == [True, True]
    assert len(set(jobs.glue_drivers._drivers) - before) == 1


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


# ---- --additional-python-modules: the install before the script (localcloud/runtime/glue_modules.py) ----------

WHEEL_NAME = "six-1.17.0-py2.py3-none-any.whl"
NO_INDEX = {"--python-modules-installer-option": "--no-index"}


def _wheel() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("six.py", "# six\n")
    return buffer.getvalue()


def _finished(cloud: Any, name: str, run_id: str) -> dict[str, Any]:
    cloud.settle()
    return dict(cloud.clients.glue.get_job_run(JobName=name, RunId=run_id)["JobRun"])


def _glue_role(cloud: Any, *objects: str) -> str:
    """A role Glue may assume that may read only ``objects`` (bucket/key) of the test bucket."""
    name = unique("glue-role")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam = cloud.clients.iam
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::{o}" for o in objects]}
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="reads", PolicyDocument=json.dumps(policy))
    return str(arn)


def test_a_run_installs_readable_glue_wheels_without_an_index_then_runs_the_script(cloud: Any) -> None:
    # Given a job whose module is a wheel in S3 for Glue 5.0, installed with --no-index
    cloud.clients.s3.put_object(Bucket="glue-test-bucket", Key=f"wheels/{WHEEL_NAME}", Body=_wheel())
    modules = {"--additional-python-modules": f"s3://glue-test-bucket/wheels/{WHEEL_NAME}", **NO_INDEX}
    name = create_job(
        cloud.clients.glue,
        "s3://glue-test-bucket/code/etl.py",
        DefaultArguments={"--bucket": "glue-test-bucket", **modules},
    )
    # When it runs
    run_id = cloud.clients.glue.start_job_run(JobName=name, Arguments={"--dataset": "wheels"})["JobRunId"]
    run = _finished(cloud, name, run_id)
    # Then the install passes and the script runs
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")


@pytest.mark.parametrize(
    ("module", "put", "error"),
    [
        (  # a wheel that was never published
            f"s3://glue-test-bucket/wheels/missing/{WHEEL_NAME}",
            False,
            f"s3://glue-test-bucket/wheels/missing/{WHEEL_NAME}: NoSuchKey: the module's object does not exist",
        ),
        (  # a wheel for Python 3.12
            "s3://glue-test-bucket/wheels/numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl",
            True,
            "ERROR: numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl is not a supported wheel on this platform.",
        ),
        (  # a requirement, which needs the index
            "pandas==2.3.3",
            False,
            "ERROR: Could not find a version that satisfies the requirement pandas==2.3.3 (from versions: none)\n"
            "ERROR: No matching distribution found for pandas==2.3.3",
        ),
    ],
)
def test_a_module_pip_cannot_install_without_an_index_fails_the_run_before_the_script(
    cloud: Any, module: str, put: bool, error: str
) -> None:
    # Given a job with --no-index and a module that cannot be installed so
    if put:
        key = module.split("/", 3)[3]
        cloud.clients.s3.put_object(Bucket="glue-test-bucket", Key=key, Body=_wheel())
    name = create_job(
        cloud.clients.glue,
        "s3://glue-test-bucket/code/etl.py",
        DefaultArguments={"--bucket": "glue-test-bucket", "--additional-python-modules": module, **NO_INDEX},
    )
    # When it runs
    run_id = cloud.clients.glue.start_job_run(JobName=name, Arguments={"--dataset": "never"})["JobRunId"]
    run = _finished(cloud, name, run_id)
    # Then it FAILED with pip's error, logged, and the script never ran (it would have written etl/args.json)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == PREFIX + error
    events = cloud.clients.logs.get_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=run_id)["events"]
    assert error.splitlines()[-1] in "\n".join(e["message"] for e in events)
    assert not any(e.detail.get("run_id") == run_id and e.detail.get("warm_driver") for e in journal.of("glue-run"))


def test_a_wheel_the_jobs_role_may_not_read_fails_the_run(cloud: Any) -> None:
    # Given a role that may read the job's script but not its wheel
    cloud.clients.s3.put_object(Bucket="glue-test-bucket", Key=f"private/{WHEEL_NAME}", Body=_wheel())
    role = _glue_role(cloud, "glue-test-bucket/code/etl.py")
    uri = f"s3://glue-test-bucket/private/{WHEEL_NAME}"
    name = unique("etl")
    cloud.clients.glue.create_job(
        Name=name,
        Role=role,
        Command={"Name": "glueetl", "ScriptLocation": "s3://glue-test-bucket/code/etl.py", "PythonVersion": "3"},
        GlueVersion="5.0",
        DefaultArguments={"--additional-python-modules": uri, **NO_INDEX},
    )
    # When it runs
    run = _finished(cloud, name, cloud.clients.glue.start_job_run(JobName=name)["JobRunId"])
    # Then IAM denied the read, and the run FAILED naming the module and the action
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith(f"{PREFIX}{uri}: AccessDenied: the job's role cannot read the module")
    assert f"s3:GetObject on resource: arn:aws:s3:::glue-test-bucket/private/{WHEEL_NAME}" in run["ErrorMessage"]


def _subnet(cloud: Any, *, internet: bool) -> str:
    ec2 = cloud.clients.ec2
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    if internet:
        gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    return str(subnet)


@pytest.mark.parametrize("internet", [False, True])
def test_a_pypi_module_installs_only_where_the_jobs_subnet_has_a_route_out(cloud: Any, internet: bool) -> None:
    # Given a job that installs pandas from PyPI, running through a NETWORK connection on a subnet
    connection = unique("etl-network")
    cloud.clients.glue.create_connection(
        ConnectionInput={
            "Name": connection,
            "ConnectionType": "NETWORK",
            "ConnectionProperties": {},
            "PhysicalConnectionRequirements": {"SubnetId": _subnet(cloud, internet=internet)},
        }
    )
    name = create_job(
        cloud.clients.glue,
        "s3://glue-test-bucket/code/etl.py",
        DefaultArguments={"--bucket": "glue-test-bucket", "--additional-python-modules": "pandas==2.3.3"},
        Connections={"Connections": [connection]},
    )
    # When it runs
    run = _finished(
        cloud, name, cloud.clients.glue.start_job_run(JobName=name, Arguments={"--dataset": "x"})["JobRunId"]
    )
    # Then with an internet gateway route it installs and runs; in an isolated subnet pip cannot reach the index
    if internet:
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    else:
        assert run["JobRunState"] == "FAILED"
        assert "Network is unreachable" in run["ErrorMessage"]
        assert run["ErrorMessage"].endswith("ERROR: No matching distribution found for pandas==2.3.3")


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
