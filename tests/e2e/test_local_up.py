"""``mlops local up``: another process drives the served local cloud with the AWS CLI and plain boto3, like an
account; Ctrl-C and SIGTERM stop it cleanly, also with work in flight."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.data.generator import generate, to_csv_bytes
from tests.e2e.served import Served, aws, executions, serving, wait_until


@pytest.fixture
def served(assembly: Path, tmp_path: Path) -> Iterator[Served]:
    with serving(assembly, tmp_path) as started:
        yield started


def _assert_stopped_cleanly(served: Served, how: str) -> None:
    code, out, stderr, left = served.stop(how)
    assert code == 0, (code, stderr)
    assert "Traceback" not in stderr, stderr
    assert out.rstrip().endswith("stopped"), out
    assert left == set(), f"processes of the local cloud outlived `mlops local up`: {sorted(left)}"


def test_local_up_serves_the_stack_to_boto3_in_another_process(served: Served, tmp_path: Path) -> None:
    outputs = served.outputs
    # Given the banner that tells a user how to reach the local cloud
    assert "export AWS_ENDPOINT_URL=https://127.0.0.1:" in served.banner
    # When a user uploads data to the raw zone with the AWS CLI, as the README's deploy section does
    data = tmp_path / "data.csv"
    data.write_bytes(to_csv_bytes(generate(3000, seed=3)))
    copied = aws(served, "s3", "cp", str(data), f"s3://{outputs['RawBucket']}/datasets/churn/from-the-cli.csv")
    assert "upload: " in copied, copied
    sm = served.client("sagemaker")

    def finished(machine: str) -> bool:
        runs = executions(served, machine)
        return bool(runs) and all(r["status"] != "RUNNING" for r in runs)

    wait_until(
        lambda: finished(outputs["TrainingStateMachine"]) and finished(outputs["DeploymentStateMachine"]),
        240,
        "the pipeline and the deployment",
    )
    # Then the pipeline ran and the approved model was deployed: Step Functions and SageMaker show it
    assert [r["status"] for r in executions(served, outputs["TrainingStateMachine"])] == ["SUCCEEDED"]
    packages = sm.list_model_packages(ModelPackageGroupName=outputs["ModelPackageGroup"])["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["Approved"]
    assert sm.describe_endpoint(EndpointName=outputs["EndpointName"])["EndpointStatus"] == "InService"
    described = json.loads(aws(served, "sagemaker", "describe-endpoint", "--endpoint-name", outputs["EndpointName"]))
    assert described["EndpointStatus"] == "InService"
    # And sagemaker-runtime answers with real predictions from the served model, naming its variant
    answer = served.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=outputs["EndpointName"],
        ContentType="application/json",
        Body=json.dumps({"instances": [[12, 70.5, 846.0, 2, 40.0, 45, "month-to-month", "electronic-check", "fiber"]]}),
    )
    body = json.loads(answer["Body"].read())
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert 0.0 <= body["predictions"][0]["probability"] <= 1.0
    assert body["model_version"].startswith("churn-")
    # When a second upload starts a run and Ctrl-C arrives while it runs (the terminal signals the whole group)
    served.client("s3").put_object(
        Bucket=outputs["RawBucket"], Key="datasets/churn/second.csv", Body=to_csv_bytes(generate(3000, seed=4))
    )
    wait_until(
        lambda: any(r["status"] == "RUNNING" for r in executions(served, outputs["TrainingStateMachine"])),
        60,
        "the second run to start",
    )
    # Then the command exits 0 without a traceback, and no process of the local cloud outlives it
    _assert_stopped_cleanly(served, "ctrl-c")


def test_sigterm_stops_local_up_cleanly_while_a_pipeline_runs(served: Served) -> None:
    # Given a served cloud whose pipeline has just started on an upload (Lambdas, Glue at work)
    served.client("s3").put_object(
        Bucket=served.outputs["RawBucket"], Key="datasets/churn/data.csv", Body=to_csv_bytes(generate(3000, seed=5))
    )
    wait_until(lambda: executions(served, served.outputs["TrainingStateMachine"]), 60, "the run to start")
    # When the command alone gets SIGTERM (`kill <pid>`, a service manager)
    # Then it exits 0 without a traceback, and no process of the local cloud outlives it
    _assert_stopped_cleanly(served, "sigterm")
