"""``mlops``: the local cloud from the command line.

- ``mlops demo [--rows N] [--summary PATH] [--report PATH] [--stage dev|prod]``: the whole lifecycle offline
  (see localcloud.demo). In prod, where approval is manual, the demo approves the pending packages through the
  registry API as the approver would.
- ``mlops local up [--port P] [--stage dev]``: synthesize, deploy into a local cloud on 127.0.0.1 and serve it
  until interrupted, so the AWS CLI and boto3 (``endpoint_url``) drive it like an account: uploads to the raw
  zone start pipelines, approved models are deployed, ``sagemaker-runtime invoke-endpoint`` answers.
- ``mlops dataset init|check``: declare a dataset from a sample and test a file against it (``cli.dataset``).
- ``mlops smoke [--stage] [--dataset] [--timeout]``: upload the sample to a deployed stack, wait, invoke, check
  (``cli.smoke``; against an account or ``local up``).
- ``mlops status|runs|models|approve|reject|rollback|retrain|promote|invoke|logs``: operate a deployed stack, in an
  account or in the local cloud alike (``cli.operations``; docs/operations.md).

Stopping ``local up`` (Ctrl-C, SIGINT or SIGTERM) stops the cloud and exits 0. The cloud runs in a child
process in its own session (``local serve``): a terminal's Ctrl-C reaches only ``local up``, which asks the
server to stop (SIGTERM) instead of killing the cloud's Lambda workers, model containers and job processes
under requests that are still in flight; once the server has stopped the cloud, whatever process of its
session is left (a worker that was still starting, a job's process) is killed, so nothing outlives the command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from cli.dataset import add_commands as add_dataset_commands
from cli.model import add_commands as add_model_commands
from cli.operations import add_commands as add_operation_commands
from cli.smoke import add_commands as add_smoke_commands

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.provision import Deployment

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE_SECONDS = 60.0  # how long `local up` waits for the server to stop the cloud before killing it


def _demo(args: argparse.Namespace) -> int:
    from localcloud.cloud import DEMO_TIME_SCALE
    from localcloud.demo import DemoOptions, run

    options = DemoOptions(
        rows=args.rows,
        summary=args.summary,
        report=args.report,
        stage=args.stage,
        assembly=args.assembly,
        time_scale=args.time_scale or DEMO_TIME_SCALE,
    )
    summary = run(options)
    iam = summary.get("iam") or {}
    if args.iam_report is not None:
        from localcloud.iam.report import write

        write(iam, args.iam_report)
    denials = iam.get("denials") or []
    for denial in denials:
        print(f"IAM denied: {denial['message'] or denial['statement']} (call {denial['call']})", file=sys.stderr)
    failed = [name for name, ok in summary["checks"].items() if not ok]
    if failed:
        print(f"demo checks failed: {', '.join(failed)}", file=sys.stderr)
    if denials:
        print(f"{len(denials)} call(s) denied by IAM (localcloud.iam)", file=sys.stderr)
    return 1 if failed or denials else 0


def _kill_session(session: int) -> None:
    """SIGKILL every process of ``session`` (the server's own session: the server, its workers and jobs)."""
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.getsid(pid) == session:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)  # without /proc: the server's process group


def _up(args: argparse.Namespace) -> int:
    """Start the server in its own session, forward a stop request to it, clean up its session afterwards."""
    command = [sys.executable, "-m", "localcloud.cli", "local", "serve", "--port", str(args.port)]
    command += ["--stage", args.stage, "--dataset", args.dataset]
    if args.assembly is not None:
        command += ["--assembly", str(args.assembly)]
    if args.time_scale is not None:
        command += ["--time-scale", str(args.time_scale)]
    server = subprocess.Popen(command, start_new_session=True)
    asked = threading.Event()

    def ask_to_stop(signum: int, frame: FrameType | None) -> None:
        if not asked.is_set():
            asked.set()
            with contextlib.suppress(ProcessLookupError):
                server.send_signal(signal.SIGTERM)

    for number in STOP_SIGNALS:
        signal.signal(number, ask_to_stop)
    deadline: float | None = None
    try:
        while (code := server.poll()) is None:
            if asked.is_set() and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_SECONDS
            if deadline is not None and time.monotonic() > deadline:
                print(f"the local cloud did not stop in {STOP_GRACE_SECONDS:.0f} s: killed", file=sys.stderr)
                code = 1
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.2)
    finally:
        _kill_session(server.pid)
        server.wait()
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


class _Stop(Exception):
    """A stop signal arrived before the cloud was serving."""


def _serve(args: argparse.Namespace) -> int:
    """Deploy and serve until SIGTERM or SIGINT; stop the cloud; exit without waiting for abandoned work."""
    from localcloud import provision
    from localcloud.cloud import DEFAULT_TIME_SCALE, LocalCloud

    stopped = threading.Event()
    serving = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()
        if not serving.is_set():
            raise _Stop  # interrupts the startup; the finally below stops what was started

    for number in STOP_SIGNALS:
        signal.signal(number, on_signal)
    cloud = LocalCloud(port=args.port, time_scale=args.time_scale or DEFAULT_TIME_SCALE)
    code = 0
    try:
        cloud.start()
        assembly = args.assembly or provision.synth(args.stage, cloud.workdir / "cdk.out")
        deployment = cloud.deploy(args.stage, assembly=assembly)
        _banner(cloud, deployment, args.dataset)
        serving.set()
        stopped.wait()
    except _Stop:
        pass
    except Exception:  # a real failure (e.g. the port is taken): shown, and the exit code says so
        traceback.print_exc()
        code = 1
    finally:
        serving.set()  # a second signal while stopping only sets the event
        print("stopping the local cloud", flush=True)
        cloud.stop()
        print("stopped", flush=True)
        sys.stderr.flush()
    # Work the stop abandoned (a retry sleeping on the cloud clock, a job's thread) belongs to a cloud that no
    # longer exists; `local up` kills what is left of this session. Do not wait for those threads.
    os._exit(code)


def _banner(cloud: LocalCloud, deployment: Deployment, dataset: str) -> None:
    import json

    endpoint = cloud.endpoint_url
    print(f"local cloud: {endpoint}  (stack {deployment.stack_name}, {len(deployment.resources)} resources)")
    print("use it from another shell:")
    print(f"  export AWS_ENDPOINT_URL={endpoint} AWS_CA_BUNDLE={cloud.ca_bundle}")
    print(f"  export AWS_DEFAULT_REGION={cloud.region} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
    raw = deployment.outputs["RawBucket"]
    resources = json.loads(deployment.outputs.get("DatasetResources", "{}"))
    for name in sorted(resources, key=lambda n: n != dataset):  # the chosen dataset first
        upload = f"s3://{raw}/{resources[name]['raw_upload_prefix']}data.csv"
        print(f"  aws s3 cp data.csv {upload}     # {name}: pipeline -> endpoint {resources[name]['endpoint']}")
    stage = deployment.stack_name.removeprefix("mlops-")
    print(f"  mlops status --stage {stage}     # runs, models, rollback, retrain, ... (docs/operations.md)")
    print(f"  aws stepfunctions list-executions --state-machine-arn {deployment.outputs['TrainingStateMachine']}")
    print(
        f"  aws sagemaker-runtime invoke-endpoint --endpoint-name {deployment.outputs['EndpointName']} "
        "--content-type text/csv --body fileb://row.csv out.json"
    )
    print("outputs:", json.dumps(deployment.outputs, indent=2))
    print("Ctrl-C stops it.", flush=True)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="mlops", description="Operate the MLOps stack, in an account or the local cloud."
    )
    commands = root.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole lifecycle offline and summarize it")
    demo.add_argument("--rows", type=int, default=None, help="rows of the first upload (default: the 5,000-row sample)")
    demo.add_argument("--summary", type=Path, default=None, help="write the summary as JSON here")
    demo.add_argument(
        "--report", type=Path, default=Path("demo-report.html"), help="the HTML report (default %(default)s)"
    )
    demo.add_argument(
        "--stage",
        default="dev",
        choices=["dev", "prod"],
        help="prod approves manually: the demo approves each pending package as the approver would",
    )
    demo.add_argument("--assembly", type=Path, default=None, help="reuse a synthesized cloud assembly (cdk.out)")
    demo.add_argument("--time-scale", type=float, default=None, help="cloud seconds per real second (default 240)")
    demo.add_argument(
        "--iam-report", type=Path, default=None, help="write every principal's calls and IAM decisions here (Markdown)"
    )
    demo.set_defaults(func=_demo)
    local = commands.add_parser("local", help="the local cloud")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    for name, function, text in (
        ("up", _up, "serve the deployed stack on 127.0.0.1 until interrupted"),
        ("serve", _serve, "(internal) the server process that `up` starts in its own session"),
    ):
        command = local_commands.add_parser(name, help=text)
        command.add_argument("--port", type=int, default=4566)
        command.add_argument("--stage", default="dev", choices=["dev", "prod"])
        command.add_argument("--dataset", default="churn")
        command.add_argument("--assembly", type=Path, default=None)
        command.add_argument("--time-scale", type=float, default=None, help="cloud seconds per real second (120)")
        command.set_defaults(func=function)
    add_dataset_commands(commands)
    add_model_commands(commands)
    add_smoke_commands(commands)
    add_operation_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
