"""``mlops local up``: another process drives the served local cloud with the AWS CLI and plain boto3, like an
account; Ctrl-C and SIGTERM stop it cleanly, also with work in flight."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud.cloud import free_port
from pipelines.data.generator import generate, to_csv_bytes

ROOT = Path(__file__).resolve().parents[2]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    table = _processes()
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, (ppid, _) in table.items() if ppid == parent}
        todo += children - found
        found |= children
    return found


def running(pids: set[int]) -> set[int]:
    """The pids still running (a zombie waiting for init to reap it has exited)."""
    table = _processes()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


@dataclass
class Served:
    """``mlops local up`` in its own process group (as a shell runs a foreground job)."""

    process: subprocess.Popen[str]
    stderr_path: Path
    endpoint_url: str = ""
    verify: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    banner: str = ""

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            verify=self.verify,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 2}),
        )

    def stop(self, how: str) -> tuple[int, str, str, set[int]]:
        """Ctrl-C in the terminal (SIGINT to the whole foreground process group) or ``kill <pid>`` (SIGTERM to
        the command alone); returns (exit code, rest of stdout, stderr, processes of the cloud still running)."""
        cloud_processes = descendants(self.process.pid)
        if how == "ctrl-c":
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=120)
        time.sleep(0.5)  # let the kernel finish the kills
        return self.process.returncode, out, self.stderr_path.read_text(), running(cloud_processes)


@pytest.fixture
def served(assembly: Path, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "localcloud.cli", "local", "up", "--port", str(port), "--assembly", str(assembly)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    served = Served(process, stderr_path)
    try:
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
        assert ca_bundle, text + stderr_path.read_text()
        outputs_text = text[text.index("outputs:") + len("outputs:") :]
        for line in process.stdout:  # the outputs' JSON ends with a closing brace on its own line
            outputs_text += line
            if line.rstrip() == "}":
                break
        served.endpoint_url, served.verify = f"https://127.0.0.1:{port}", ca_bundle[1]
        served.outputs, served.banner = json.loads(outputs_text), text
        yield served
    finally:
        if process.poll() is None:
            leftovers = descendants(process.pid)
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
            for pid in running(leftovers):
                os.kill(pid, signal.SIGKILL)


def aws(served: Served, *args: str) -> str:
    """The pinned AWS CLI against the served cloud, configured only by the environment the banner prints."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": served.endpoint_url,
        "AWS_CA_BUNDLE": served.verify,
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


def _executions(served: Served, machine: str) -> list[dict[str, Any]]:
    return list(served.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"])


def _wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


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
        runs = _executions(served, machine)
        return bool(runs) and all(r["status"] != "RUNNING" for r in runs)

    _wait_until(
        lambda: finished(outputs["TrainingStateMachine"]) and finished(outputs["DeploymentStateMachine"]),
        240,
        "the pipeline and the deployment",
    )
    # Then the pipeline ran and the approved model was deployed: Step Functions and SageMaker show it
    assert [r["status"] for r in _executions(served, outputs["TrainingStateMachine"])] == ["SUCCEEDED"]
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
    _wait_until(
        lambda: any(r["status"] == "RUNNING" for r in _executions(served, outputs["TrainingStateMachine"])),
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
    _wait_until(lambda: _executions(served, served.outputs["TrainingStateMachine"]), 60, "the run to start")
    # When the command alone gets SIGTERM (`kill <pid>`, a service manager)
    # Then it exits 0 without a traceback, and no process of the local cloud outlives it
    _assert_stopped_cleanly(served, "sigterm")
