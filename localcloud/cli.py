"""``mlops``: the local cloud from the command line.

- ``mlops demo [--rows N] [--summary PATH] [--report PATH]``: the whole lifecycle offline (see localcloud.demo).
- ``mlops local up [--port P] [--stage dev]``: synthesize, deploy into a local cloud on 127.0.0.1 and serve it
  until interrupted, so the AWS CLI and boto3 (``endpoint_url``) drive it like an account: uploads to the raw
  zone start pipelines, approved models are deployed, ``sagemaker-runtime invoke-endpoint`` answers.
- ``mlops dataset init|check``: declare a dataset from a sample and test a file against it (``cli.dataset``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from cli.dataset import add_commands as add_dataset_commands
from localcloud import provision
from localcloud.cloud import DEFAULT_TIME_SCALE, DEMO_TIME_SCALE, LocalCloud


def _demo(args: argparse.Namespace) -> int:
    from localcloud.demo import DemoOptions, run

    options = DemoOptions(
        rows=args.rows,
        summary=args.summary,
        report=args.report,
        stage=args.stage,
        assembly=args.assembly,
        time_scale=args.time_scale,
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


def _up(args: argparse.Namespace) -> int:
    cloud = LocalCloud(port=args.port, time_scale=args.time_scale)
    cloud.start()
    try:
        assembly = args.assembly or provision.synth(args.stage, cloud.workdir / "cdk.out")
        deployment = cloud.deploy(args.stage, assembly=assembly)
        endpoint = cloud.endpoint_url
        print(f"local cloud: {endpoint}  (stack {deployment.stack_name}, {len(deployment.resources)} resources)")
        print("use it from another shell:")
        print(f"  export AWS_ENDPOINT_URL={endpoint} AWS_CA_BUNDLE={cloud.ca_bundle}")
        print(f"  export AWS_DEFAULT_REGION={cloud.region} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
        raw = deployment.outputs["RawBucket"]
        print(f"  aws s3 cp data.csv s3://{raw}/datasets/{args.dataset}/data.csv     # starts the pipeline")
        print(f"  aws stepfunctions list-executions --state-machine-arn {deployment.outputs['TrainingStateMachine']}")
        print(
            f"  aws sagemaker-runtime invoke-endpoint --endpoint-name {deployment.outputs['EndpointName']} "
            "--content-type text/csv --body fileb://row.csv out.json"
        )
        print("outputs:", json.dumps(deployment.outputs, indent=2))
        sys.stdout.flush()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
        print("stopping the local cloud")
    finally:
        cloud.stop()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mlops", description="The MLOps stack's local cloud (offline, on moto).")
    commands = root.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole lifecycle offline and summarize it")
    demo.add_argument("--rows", type=int, default=None, help="rows of the first upload (default: the 5,000-row sample)")
    demo.add_argument("--summary", type=Path, default=None, help="write the summary as JSON here")
    demo.add_argument(
        "--report", type=Path, default=Path("demo-report.html"), help="the HTML report (default %(default)s)"
    )
    demo.add_argument("--stage", default="dev", choices=["dev", "prod"])
    demo.add_argument("--assembly", type=Path, default=None, help="reuse a synthesized cloud assembly (cdk.out)")
    demo.add_argument("--time-scale", type=float, default=DEMO_TIME_SCALE, help="cloud seconds per real second")
    demo.add_argument(
        "--iam-report", type=Path, default=None, help="write every principal's calls and IAM decisions here (Markdown)"
    )
    demo.set_defaults(func=_demo)
    local = commands.add_parser("local", help="the local cloud")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="serve the deployed stack on 127.0.0.1 until interrupted")
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--stage", default="dev", choices=["dev", "prod"])
    up.add_argument("--dataset", default="churn")
    up.add_argument("--assembly", type=Path, default=None)
    up.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    up.set_defaults(func=_up)
    add_dataset_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
