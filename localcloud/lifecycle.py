"""What a user of the deployed stack does, through the public AWS APIs of the local cloud.

Upload data to the raw zone, watch executions, read the registry and the endpoint, send traffic to the
endpoint, upload ground truth, subscribe to the notifications topic, let cloud time pass. The demo, the
end-to-end tests and the lifecycle benchmark are written with these operations only; nothing here reaches
into moto's internals (the clock and the ticker are the local cloud's own).
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from localcloud.clock import clock
from localcloud.provision import Deployment
from pipelines.data.generator import to_csv_bytes
from pipelines.schema import DatasetSchema

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
SAMPLES = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "sample"
"""The shipped sample of each declared sample dataset: ``<name>.csv``."""


@dataclass
class Execution:
    machine: str
    name: str
    arn: str
    status: str
    started: float
    stopped: float | None
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.stopped is None else self.stopped - self.started


@dataclass
class Traffic:
    requests: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    by_variant: dict[str, int] = field(default_factory=dict)
    labels: dict[str, list[Any]] = field(default_factory=dict)  # inference id -> true labels of its rows
    # what answered each request, as the data plane told the client: the InvokedProductionVariant header and
    # the model version in the container's answer, at the cloud time the answer came back
    answers: list[dict[str, Any]] = field(default_factory=list)


def dataset_resources(outputs: dict[str, str]) -> dict[str, dict[str, str]]:
    """The stack output ``DatasetResources``: dataset -> endpoint, model package group, raw upload prefix."""
    return dict(json.loads(outputs["DatasetResources"]))


def dataset_of(execution_input: dict[str, Any], groups: dict[str, str]) -> str | None:
    """The dataset an execution works for: the training pipeline's input names it (``dataset``); a deployment's
    input is the approved package and its model package group, which is the dataset's (``groups``: group ->
    dataset)."""
    if isinstance(execution_input.get("dataset"), str):
        return str(execution_input["dataset"])
    group = execution_input.get("model_package_group")
    return groups.get(group) if isinstance(group, str) else None


def _label(value: Any) -> Any:
    """A true label as ground truth carries it: an integer class stays an integer, a string label a string, a
    regression target a float."""
    if isinstance(value, str):
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


HOLD_LIMIT = 60.0
"""Real seconds a traffic step may hold cloud time at real speed waiting for answers from both models
(``Lifecycle.slowed_during_traffic_steps``); past it the step runs at the slowed speed whatever the clients saw."""


def interleaved(answers: list[str | None]) -> bool:
    """Whether ``answers`` (model versions, in order) show two models taking turns: one's answer, the other's, then
    the first's again (whichever fleet is the old one, its answers then surround one of the new one's)."""
    seen: list[str | None] = []
    for model in answers:
        if model is None or (seen and seen[-1] == model):
            continue
        if len(seen) >= 2 and seen[-2] == model:
            return True
        seen.append(model)
    return False


def traffic_step(routes: Iterable[Any]) -> bool:
    """Whether an endpoint's routes (``Lifecycle.routes``) are those of a traffic step of a blue/green update: the
    production traffic is split between the old fleet's config and the new one's (both answer)."""
    return len({route.config_name for route in routes if route.role == "production"}) > 1


class Lifecycle:
    """One declared dataset's lifecycle (``schema``) on the deployed stack: its uploads, its executions, its
    registry group and endpoint (``for_dataset`` gives another dataset's, sharing the notifications inbox)."""

    def __init__(self, cloud: Any, deployment: Deployment, schema: DatasetSchema) -> None:
        self.cloud = cloud
        self.clients = cloud.clients
        self.deployment = deployment
        self.schema = schema
        out = deployment.outputs
        self.raw_bucket = out["RawBucket"]
        self.curated_bucket = out["CuratedBucket"]
        self.artifacts_bucket = out["ArtifactsBucket"]
        self.training_machine = out["TrainingStateMachine"]
        self.deployment_machine = out["DeploymentStateMachine"]
        resources = dataset_resources(out)
        if schema.name not in resources:
            raise KeyError(f"dataset {schema.name!r} is not deployed (declared: {', '.join(sorted(resources))})")
        self.endpoint_name = resources[schema.name]["endpoint"]
        self.group = resources[schema.name]["model_package_group"]
        self.raw_prefix = resources[schema.name]["raw_upload_prefix"]
        self._groups = {r["model_package_group"]: name for name, r in resources.items()}
        self.topic = out["NotificationsTopic"]
        self._queue_url: str | None = None
        self.notifications: list[dict[str, Any]] = []
        self._described: dict[str, Execution] = {}  # execution ARN -> the execution as last described
        self.answered: list[str | None] = []  # the model version of every answer ``send_traffic`` got, in order

    def for_dataset(self, schema: DatasetSchema) -> Lifecycle:
        """The lifecycle of another declared dataset on the same stack (the same notifications inbox)."""
        other = Lifecycle(self.cloud, self.deployment, schema)
        other._queue_url, other.notifications, other._described = self._queue_url, self.notifications, self._described
        return other

    # ---- data ----
    def upload(self, data: pd.DataFrame | bytes, name: str, prefix: str | None = None) -> tuple[str, str]:
        """Put a file into the raw zone (the dataset's ``datasets/<dataset>/`` by default); returns (key, version)."""
        body = data if isinstance(data, bytes) else to_csv_bytes(data)
        key = f"{prefix or self.raw_prefix}{name}"
        response = self.clients.s3.put_object(Bucket=self.raw_bucket, Key=key, Body=body)
        return key, str(response.get("VersionId"))

    def raw_versions(self) -> list[tuple[str, str]]:
        """Every (key, version id) in the raw zone: the stack must never lose one."""
        versions = []
        paginator = self.clients.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.raw_bucket):
            versions += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
            if page.get("DeleteMarkers"):
                versions += [(d["Key"], f"DELETE-MARKER:{d['VersionId']}") for d in page["DeleteMarkers"]]
        return sorted(versions)

    def read_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self, bucket: str, prefix: str) -> list[str]:
        paginator = self.clients.s3.get_paginator("list_objects_v2")
        return [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]

    # ---- executions ----
    def executions(self, machine: str | None = None) -> list[Execution]:
        """This dataset's executions (of ``machine``, else of both state machines), oldest first."""
        return [e for e in self.all_executions(machine) if dataset_of(e.input, self._groups) == self.schema.name]

    def all_executions(self, machine: str | None = None) -> list[Execution]:
        """Every dataset's executions (of ``machine``, else of both state machines), oldest first."""
        sfn = self.clients.stepfunctions
        out = []
        for arn in [machine] if machine else [self.training_machine, self.deployment_machine]:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                for item in page["executions"]:
                    # described again only when its listed status changes (its input never does): a running
                    # execution once when listed, once when it has finished (and once more if redriven)
                    known = self._described.get(item["executionArn"])
                    if known is not None and known.status == item["status"]:
                        out.append(known)
                        continue
                    described = sfn.describe_execution(executionArn=item["executionArn"])
                    stopped = described.get("stopDate")
                    execution = Execution(
                        machine=arn.rsplit(":", 1)[-1],
                        name=item["name"],
                        arn=item["executionArn"],
                        status=described["status"],
                        started=described["startDate"].timestamp(),
                        stopped=stopped.timestamp() if stopped else None,
                        input=json.loads(described.get("input") or "{}"),
                        output=json.loads(described["output"]) if described.get("output") else None,
                        error=described.get("error"),
                        cause=described.get("cause"),
                    )
                    self._described[execution.arn] = execution
                    out.append(execution)
        return sorted(out, key=lambda e: e.started)

    def wait_for(
        self,
        condition: Callable[[], Any],
        timeout: float = 300.0,
        what: str = "the condition",
    ) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_for_new_execution(self, machine: str, known: Iterable[str], timeout: float = 300.0) -> Execution:
        """The first execution of ``machine`` not in ``known``, once it has finished."""
        seen = set(known)

        def finished() -> Execution | None:
            fresh = [e for e in self.executions(machine) if e.name not in seen]
            return fresh[0] if fresh and fresh[0].status in TERMINAL else None

        return self.wait_for(finished, timeout, f"a new execution of {machine.rsplit(':', 1)[-1]}")

    # ---- registry and endpoint ----
    def packages(self) -> list[dict[str, Any]]:
        sm = self.clients.sagemaker
        summaries = []
        for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=self.group):
            summaries += page["ModelPackageSummaryList"]
        described = [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]
        return sorted(described, key=lambda p: p.get("ModelPackageVersion", 0))

    def package_of(self, execution_name: str) -> dict[str, Any] | None:
        """The package a pipeline execution registered (its ``execution_id`` metadata), if any."""
        mine = [
            p
            for p in self.packages()
            if (p.get("CustomerMetadataProperties") or {}).get("execution_id") == execution_name
        ]
        return mine[-1] if mine else None

    def approve(self, package_arn: str, description: str) -> None:
        """Approve a package as the approver does in a stage with manual approval (``aws sagemaker
        update-model-package --model-approval-status Approved``); the registry's state-change event starts
        the deployment."""
        self.clients.sagemaker.update_model_package(
            ModelPackageArn=package_arn, ModelApprovalStatus="Approved", ApprovalDescription=description
        )

    def champion(self) -> dict[str, Any] | None:
        approved = [p for p in self.packages() if p.get("ModelApprovalStatus") == "Approved"]
        return approved[-1] if approved else None

    def endpoint(self) -> dict[str, Any] | None:
        sagemaker = self.clients.sagemaker
        try:
            return dict(sagemaker.describe_endpoint(EndpointName=self.endpoint_name))
        except sagemaker.exceptions.ClientError as error:
            if "Could not find endpoint" in str(error):
                return None
            raise

    def routes(self) -> list[Any]:
        from localcloud.shims import sagemaker_endpoints

        try:
            return sagemaker_endpoints.routes(self.cloud.account_id, self.cloud.region, self.endpoint_name)
        except sagemaker_endpoints.EndpointNotFound:
            return []

    def served_model_version(self) -> str | None:
        """The model version the production variant answers with (one probe request)."""
        answer = self.probe()
        return None if answer is None else answer.get("model_version")

    def probe(self) -> dict[str, Any] | None:
        """The endpoint's JSON answer to one row of the dataset's sample (None when it does not answer)."""
        row = self.sample_row()
        try:
            response = self.clients.sagemaker_runtime.invoke_endpoint(
                EndpointName=self.endpoint_name, ContentType="text/csv", Accept="application/json", Body=row.encode()
            )
            return dict(json.loads(response["Body"].read()))
        except Exception:
            return None

    def sample_row(self) -> str:
        """The features of the first row of the dataset's shipped sample (``pipelines/data/sample/<name>.csv``),
        as a CSV line (missing values empty)."""
        first = pd.read_csv(SAMPLES / f"{self.schema.name}.csv", nrows=1, keep_default_na=False, dtype=str)
        return ",".join(first[list(self.schema.feature_names)].iloc[0])

    # ---- traffic ----
    def send_traffic(
        self, frame: pd.DataFrame, batch_rows: int = 20, stop: Callable[[], bool] | None = None
    ) -> Traffic:
        """Score ``frame``'s features in CSV batches with an InferenceId each (labels kept for ground truth)."""
        traffic = Traffic()
        runtime = self.clients.sagemaker_runtime
        features = self.schema.feature_names
        for start in range(0, len(frame), batch_rows):
            if stop is not None and stop():
                break
            batch = frame.iloc[start : start + batch_rows]
            buffer = io.StringIO()
            batch[features].to_csv(buffer, header=False, index=False)
            inference_id = uuid.uuid4().hex
            try:
                response = runtime.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    ContentType="text/csv",
                    Accept="application/json",
                    InferenceId=inference_id,
                    Body=buffer.getvalue().encode(),
                )
                variant = response.get("InvokedProductionVariant", "?")
                answer = json.loads(response["Body"].read())
                traffic.by_variant[variant] = traffic.by_variant.get(variant, 0) + 1
                traffic.labels[inference_id] = [_label(v) for v in batch[self.schema.target]]
                traffic.answers.append({"at": clock.time(), "variant": variant, "model": answer.get("model_version")})
                self.answered.append(answer.get("model_version"))
            except Exception as error:
                traffic.errors.append(str(error)[:300])
            traffic.requests += 1
            traffic.rows += len(batch)
        return traffic

    def upload_ground_truth(self, labels: dict[str, list[Any]], name: str) -> str:
        lines = [
            json.dumps(
                {
                    "groundTruthData": {"data": ",".join(str(v) for v in values), "encoding": "CSV"},
                    "eventMetadata": {"eventId": inference_id},
                    "eventVersion": "0",
                }
            )
            for inference_id, values in labels.items()
        ]
        key, _ = self.upload(("\n".join(lines) + "\n").encode(), name, prefix=f"ground-truth/{self.schema.name}/")
        return key

    # ---- time ----
    def pass_time(self, seconds: float) -> None:
        """Let cloud time pass (scheduled rules due in between fire), then wait for what they started."""
        clock.advance(seconds)
        time.sleep(self.cloud.ticker.interval * 3)
        self.cloud.settle()

    def pass_time_until(self, moment: float) -> None:
        """Let cloud time pass up to ``moment`` (no-op if it already has), then wait like ``pass_time``."""
        self.pass_time(max(0.0, moment - clock.time()))

    @contextmanager
    def real_time(self) -> Iterator[None]:
        """Cloud time at real speed inside the block (e.g. while traffic is sent: an hour of traffic should not
        cost an hour of cloud time because the host is slow); the previous speed afterwards."""
        with self.cloud_speed(1.0):
            yield

    @contextmanager
    def cloud_speed(self, scale: float) -> Iterator[None]:
        """Cloud time at ``scale`` times real time inside the block; the previous speed afterwards."""
        previous = clock.scale
        clock.set_scale(scale)
        try:
            yield
        finally:
            clock.set_scale(previous)

    @contextmanager
    def slowed_during_traffic_steps(
        self, scale: float, poll: float = 0.02, hold: float = 1.0, hold_limit: float = HOLD_LIMIT
    ) -> Iterator[None]:
        """Inside the block, cloud time runs at ``scale`` while an update of the endpoint has part, not all, of the
        production traffic on its new fleet, and at the block's starting speed otherwise: each traffic step (a
        canary, a linear step) lasts long enough in real time for the clients to be answered by both fleets, while
        the green fleet's provisioning, the final bake and the termination wait pass at full speed. (A fleet whose
        local containers take real seconds to start does not spend the update's MaximumExecutionTimeoutInSeconds:
        the endpoint shim does not count that wait, ``sagemaker_endpoints._Deployment.deadline_at``.)

        At the start of each traffic step cloud time runs at ``hold`` (real speed) until the clients of this
        lifecycle (``send_traffic``) have seen the two fleets interleave since the step began (one model's answer,
        the other's, then the first's again: the shift the demo's canary check reads, ``report.canary_shift``), for
        at most ``hold_limit`` real seconds: on a loaded 2-core host the clients once got no answer for ~12 real
        seconds, and at 40x the canary's whole 5-minute bake passed in between, so the clients saw the switch but
        no canary. A watcher reads the endpoint's routes (``routes``: where the data plane sends a request now)
        every ``poll`` real seconds, in this process: a DescribeEndpoint over HTTPS took up to seconds on a host at
        load 27, and at 240x a second of lag is four of the canary's five baking minutes."""
        base = clock.scale
        stop = threading.Event()

        def watch() -> None:
            step_began: tuple[int, float] | None = None  # (answers so far, real time) when the current step began
            while not stop.is_set():
                try:
                    in_step = traffic_step(self.routes())
                    if not in_step:
                        step_began = None
                    elif step_began is None:
                        step_began = (len(self.answered), time.monotonic())
                    holding = step_began is not None and (
                        not interleaved(self.answered[step_began[0] :])
                        and time.monotonic() - step_began[1] < hold_limit
                    )
                    wanted = hold if holding else scale if in_step else base
                except Exception:  # a look that fails keeps the current speed; the next one decides
                    wanted = clock.scale
                if clock.scale != wanted:
                    clock.set_scale(wanted)
                stop.wait(poll)

        watcher = threading.Thread(target=watch, daemon=True, name="traffic-step-watcher")
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=30)
            clock.set_scale(base)

    def align_schedules(self) -> None:
        """Restart every schedule's period now, so the next slot is one full period away."""
        self.cloud.ticker.align()

    # ---- notifications ----
    def subscribe(self) -> None:
        """Subscribe a queue to the notifications topic, as an operator subscribes an inbox."""
        sqs = self.clients.sqs
        self._queue_url = sqs.create_queue(QueueName=f"notifications-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.clients.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)

    def read_notifications(self) -> list[dict[str, Any]]:
        if self._queue_url is None:
            return self.notifications
        sqs = self.clients.sqs
        while True:
            messages = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                envelope = json.loads(message["Body"])
                attributes = {k: v.get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()}
                self.notifications.append(
                    {
                        "subject": envelope.get("Subject"),
                        "message": envelope.get("Message"),
                        "attributes": attributes,
                        "at": clock.now().isoformat(timespec="seconds"),
                    }
                )
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return self.notifications
