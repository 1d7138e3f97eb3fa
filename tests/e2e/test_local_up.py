"""``mlops local up``: another process drives the served local cloud with the AWS CLI and plain boto3, like an
account."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud.cloud import free_port
from pipelines.data.generator import generate, to_csv_bytes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(assembly: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud.cli", "local", "up", "--port", str(port), "--assembly", str(assembly)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.time() + 180
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("outputs:"):
            break
    text = "".join(lines)
    ca_bundle = re.search(r"AWS_CA_BUNDLE=(\S+)", text)
    assert ca_bundle, text
    outputs_text = text[text.index("outputs:") + len("outputs:") :]
    for line in process.stdout:  # the outputs' JSON ends with a closing brace on its own line
        outputs_text += line
        if line.rstrip() == "}":
            break
    try:
        yield {
            "endpoint_url": f"https://127.0.0.1:{port}",
            "verify": ca_bundle[1],
            "outputs": json.loads(outputs_text),
            "banner": text,
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def aws(served: dict[str, Any], *args: str) -> str:
    """The pinned AWS CLI against the served cloud, configured only by the environment the banner prints."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": served["endpoint_url"],
        "AWS_CA_BUNDLE": served["verify"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("aws")), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_local_up_serves_the_stack_to_boto3_in_another_process(served: dict[str, Any], tmp_path: Path) -> None:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=served["endpoint_url"],
            verify=served["verify"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 2}),
        )

    outputs = served["outputs"]
    # Given the banner that tells a user how to reach the local cloud
    assert "export AWS_ENDPOINT_URL=https://127.0.0.1:" in served["banner"]
    # When a user uploads data to the raw zone with the AWS CLI, as the README's deploy section does
    data = tmp_path / "data.csv"
    data.write_bytes(to_csv_bytes(generate(3000, seed=3)))
    copied = aws(served, "s3", "cp", str(data), f"s3://{outputs['RawBucket']}/datasets/churn/from-the-cli.csv")
    assert "upload: " in copied, copied
    sfn, sm = client("stepfunctions"), client("sagemaker")

    def finished(machine: str) -> list[dict[str, Any]]:
        runs = sfn.list_executions(stateMachineArn=machine)["executions"]
        return runs if runs and all(r["status"] != "RUNNING" for r in runs) else []

    deadline = time.time() + 240
    while time.time() < deadline and not (
        finished(outputs["TrainingStateMachine"]) and finished(outputs["DeploymentStateMachine"])
    ):
        time.sleep(0.5)
    # Then the pipeline ran and the approved model was deployed: Step Functions and SageMaker show it
    assert [
        r["status"] for r in sfn.list_executions(stateMachineArn=outputs["TrainingStateMachine"])["executions"]
    ] == ["SUCCEEDED"]
    packages = sm.list_model_packages(ModelPackageGroupName=outputs["ModelPackageGroup"])["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["Approved"]
    assert sm.describe_endpoint(EndpointName=outputs["EndpointName"])["EndpointStatus"] == "InService"
    described = json.loads(aws(served, "sagemaker", "describe-endpoint", "--endpoint-name", outputs["EndpointName"]))
    assert described["EndpointStatus"] == "InService"
    # And sagemaker-runtime answers with real predictions from the served model, naming its variant
    answer = client("sagemaker-runtime").invoke_endpoint(
        EndpointName=outputs["EndpointName"],
        ContentType="application/json",
        Body=json.dumps({"instances": [[12, 70.5, 846.0, 2, 40.0, 45, "month-to-month", "electronic-check", "fiber"]]}),
    )
    body = json.loads(answer["Body"].read())
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert 0.0 <= body["predictions"][0]["probability"] <= 1.0
    assert body["model_version"].startswith("churn-")
