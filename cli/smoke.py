"""``mlops smoke [--stage dev] [--dataset churn] [--timeout S]``: the deployed stack works end to end.

Against whatever the default credential chain reaches (an account, or ``mlops local up`` through
``AWS_ENDPOINT_URL`` / ``AWS_CA_BUNDLE``): read the stack's outputs (CloudFormation DescribeStacks), upload the
dataset's shipped sample under the raw prefix as ``smoke-<time>.csv``, wait for the training run it starts, and for
the deployment its approval starts (none when the gate rejects the model or the stage approves by hand), wait for
the endpoint to be InService, invoke it with sample rows and check the answer: one prediction per row, of the
task's shape, from the model the run deployed (else from the serving champion). Each step prints its duration.

Exit status 0 when every check passes, 1 when one fails (the message says which and why), 2 on bad input.
The calls are exactly those the smoke-run role of ``stacks/delivery_stack.py`` allows.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.schema import DatasetSchema
from stacks.config import load_config
from stacks.datasets import DATASETS_DIR, read_schema

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "sample"
ROWS = 5
"""Sample rows sent to the endpoint in one request."""
T = TypeVar("T")


class SmokeError(Exception):
    """A check failed; the message names the step and the reason."""


@dataclass
class Smoke:
    """One smoke run: clients from one boto3 session, a deadline and the steps' durations."""

    stage: str
    dataset: str
    timeout: float
    poll: float = 10.0
    session: Any = None
    log: Callable[[str], None] = print
    steps: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = load_config(self.stage)
        path = DATASETS_DIR / f"{self.dataset}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown dataset {self.dataset!r}: no {path.relative_to(DATASETS_DIR.parent)}")
        self.schema: DatasetSchema = read_schema(path)
        self.sample = SAMPLES_DIR / f"{self.dataset}.csv"
        if not self.sample.is_file():
            raise ValueError(f"dataset {self.dataset!r} ships no sample ({self.sample.name} in {SAMPLES_DIR})")
        self.session = self.session or boto3.Session(region_name=_region(self.config.region))
        self.deadline = time.monotonic() + self.timeout

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def run(self) -> dict[str, Any]:
        outputs = self.step("stack outputs", self.outputs)
        machines = outputs["TrainingStateMachine"], outputs["DeploymentStateMachine"]
        before = {machine: self.execution_arns(machine) for machine in machines}
        key = self.step("upload", lambda: self.upload(outputs["UploadPrefix"]))
        training = self.step("training run", lambda: self.wait_for_execution(machines[0], before[machines[0]]))
        registration = json.loads(training.get("output") or "{}").get("registration") or {}
        expected = None
        if registration.get("approval_status") == "Approved":
            self.step("deployment", lambda: self.wait_for_execution(machines[1], before[machines[1]]))
            expected = registration.get("model_version")
        else:
            self.log(
                f"  no deployment: the package is {registration.get('approval_status')} ({registration.get('message')})"
            )
        self.step("endpoint in service", lambda: self.wait_for_endpoint(outputs["EndpointName"]))
        answer = self.step("invoke", lambda: self.invoke(outputs["EndpointName"], expected))
        return {
            "stack": self.config.stack_name,
            "upload": key,
            "registration": registration,
            "answer": answer,
            "steps": self.steps,
        }

    def step(self, name: str, action: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            result = action()
        except (SmokeError, ClientError, BotoCoreError) as error:  # a refused call fails the step, with AWS's message
            raise SmokeError(f"{name}: {error}") from None
        self.steps[name] = round(time.monotonic() - started, 1)
        self.log(f"  {name}: ok ({self.steps[name]:.1f} s)")
        return result

    # ---- the steps ----
    def outputs(self) -> dict[str, str]:
        cloudformation = self.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=self.config.stack_name)["Stacks"]
        except cloudformation.exceptions.ClientError as error:
            raise SmokeError(f"stack {self.config.stack_name} not found: {error}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        needed = ("UploadPrefix", "TrainingStateMachine", "DeploymentStateMachine", "EndpointName")
        missing = [name for name in needed if name not in outputs]
        if missing:
            raise SmokeError(f"stack {self.config.stack_name} has no output {', '.join(missing)}")
        return outputs

    def upload(self, upload_prefix: str) -> str:
        bucket, _, prefix = upload_prefix.removeprefix("s3://").partition("/")
        served = prefix.rstrip("/").rsplit("/", 1)[-1]
        if served != self.dataset:
            raise SmokeError(f"stack {self.config.stack_name} serves dataset {served!r}, not {self.dataset!r}")
        key = f"{prefix}smoke-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.csv"
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=self.sample.read_bytes())
        self.log(f"  uploaded s3://{bucket}/{key}")
        return key

    def execution_arns(self, machine: str) -> set[str]:
        pages = self.client("stepfunctions").get_paginator("list_executions").paginate(stateMachineArn=machine)
        return {execution["executionArn"] for page in pages for execution in page["executions"]}

    def wait_for_execution(self, machine: str, before: set[str]) -> dict[str, Any]:
        """The first execution of ``machine`` that was not there before, once it has finished: SUCCEEDED."""
        name = machine.rsplit(":", 1)[-1]
        new = self.wait(lambda: sorted(self.execution_arns(machine) - before), f"an execution of {name} to start")
        stepfunctions = self.client("stepfunctions")

        def finished() -> dict[str, Any] | None:
            described: dict[str, Any] = stepfunctions.describe_execution(executionArn=new[0])
            return None if described["status"] == "RUNNING" else described

        described = self.wait(finished, f"execution {new[0].rsplit(':', 1)[-1]} of {name} to finish")
        if described["status"] != "SUCCEEDED":
            cause = described.get("cause") or described.get("error") or "no cause given"
            raise SmokeError(f"execution {described['name']} of {name} ended {described['status']}: {cause}")
        return described

    def wait_for_endpoint(self, endpoint: str) -> None:
        sagemaker = self.client("sagemaker")

        def in_service() -> bool:
            try:
                status = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
            except sagemaker.exceptions.ClientError:
                return False
            if status == "Failed":
                raise SmokeError(f"endpoint {endpoint} is Failed")
            return bool(status == "InService")

        self.wait(in_service, f"endpoint {endpoint} to be InService")

    def invoke(self, endpoint: str, expected_version: str | None) -> dict[str, Any]:
        rows = pd.read_csv(self.sample, dtype=str, keep_default_na=False).head(ROWS)
        body = io.StringIO()
        rows[self.schema.feature_names].to_csv(body, header=False, index=False)
        response = self.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body.getvalue().encode()
        )
        answer: dict[str, Any] = json.loads(response["Body"].read())
        check_answer(answer, self.schema, len(rows), expected_version)
        return answer

    def wait(self, condition: Callable[[], T | None], what: str) -> T:
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() + self.poll > self.deadline:
                raise SmokeError(f"timed out after {self.timeout:.0f} s waiting for {what}")
            time.sleep(self.poll)


def check_answer(answer: dict[str, Any], schema: DatasetSchema, rows: int, expected_version: str | None) -> None:
    """One prediction per row, of the task's shape (docs/contracts.md), from ``expected_version`` when given."""
    predictions = answer.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != rows:
        count = len(predictions) if isinstance(predictions, list) else "no"
        raise SmokeError(f"expected {rows} predictions, got {count}: {json.dumps(answer)[:300]}")
    version = answer.get("model_version")
    if not version or (expected_version is not None and version != expected_version):
        raise SmokeError(f"the endpoint answers with model {version!r}, expected {expected_version or 'a version'!r}")
    labels = {str(label) for label in schema.labels} if schema.labels else {"0", "1"}
    for index, prediction in enumerate(predictions):
        problem = _prediction_problem(prediction, schema.task, labels)
        if problem:
            raise SmokeError(f"prediction {index} {json.dumps(prediction)}: {problem}")


def _prediction_problem(prediction: Any, task: str, labels: set[str]) -> str | None:
    if not isinstance(prediction, dict):
        return "not an object"
    if task == "regression":
        value = prediction.get("value")
        ok = isinstance(value, int | float) and math.isfinite(value)
        return None if ok else "value is not a finite number"
    if str(prediction.get("label")) not in labels:
        return f"label is not one of {sorted(labels)}"
    if task == "binary":
        probability = prediction.get("probability")
        ok = isinstance(probability, int | float) and 0.0 <= probability <= 1.0
        return None if ok else "probability is not within [0, 1]"
    probabilities = prediction.get("probabilities")
    if not isinstance(probabilities, dict) or abs(sum(probabilities.values()) - 1.0) > 1e-6:
        return "probabilities do not sum to 1"
    return None


def _region(default: str) -> str:
    """The credential chain's region (AWS_REGION / AWS_DEFAULT_REGION / profile) or else the stage's."""
    return boto3.Session().region_name or default


def _smoke(args: argparse.Namespace) -> int:
    try:
        smoke = Smoke(stage=args.stage, dataset=args.dataset, timeout=args.timeout, poll=args.poll)
    except ValueError as error:
        print(f"mlops smoke: {error}", file=sys.stderr)
        return 2
    print(f"smoke run against {smoke.config.stack_name} ({args.dataset}), timeout {args.timeout:.0f} s")
    try:
        result = smoke.run()
    except SmokeError as error:
        print(f"smoke run FAILED at {error}", file=sys.stderr)
        return 1
    if args.summary is not None:
        args.summary.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"smoke run passed in {sum(smoke.steps.values()):.0f} s")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    smoke = commands.add_parser("smoke", help="upload the sample to a deployed stack, wait, invoke, check the answer")
    smoke.add_argument("--stage", default="dev", choices=["dev", "prod"])
    smoke.add_argument("--dataset", default="churn", help="its sample is uploaded (default %(default)s)")
    smoke.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole run (default %(default)s)")
    smoke.add_argument("--poll", type=float, default=10.0, help="seconds between status checks (default %(default)s)")
    smoke.add_argument("--summary", type=Path, default=None, help="write the steps and the answer here (JSON)")
    smoke.set_defaults(func=_smoke)
