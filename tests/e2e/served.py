"""``mlops local up`` served in another process, driven as an account is: the AWS CLI and plain boto3 configured
by the environment its banner prints (shared by the end-to-end modules that use it)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcloud.cloud import free_port

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


@contextmanager
def serving(assembly: Path, tmp_path: Path) -> Iterator[Served]:
    """``mlops local up --assembly <assembly>`` in its own process group, until the block ends (then Ctrl-C)."""
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


def executions(served: Served, machine: str) -> list[dict[str, Any]]:
    return list(served.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"])


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
