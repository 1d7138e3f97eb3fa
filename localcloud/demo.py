"""``mlops demo``: the whole lifecycle, offline, on the synthesized stack.

1. Synthesize the CDK app and deploy the cloud assembly into the local cloud.
2. Upload the sample datasets to the raw zone, each under its own prefix (churn: binary; tickets: multiclass;
   energy: regression): EventBridge -> start Lambda -> the shared training state machine, per dataset (the ETL in a
   Lambda for these small uploads, in Glue above etl.lambda_max_bytes -> SageMaker training -> evaluation -> the
   dataset's registry group). Each package is approved (dev: auto), which
   starts the shared deployment state machine: the dataset's endpoint (the evaluation job already sent the golden
   payloads to the image's serving stack on the new archive).
   Churn carries on with the loop below; the others stay serving (the summary shows every dataset).
3. An hour of traffic from the training distribution, with ground truth: quality metrics, no drift.
4. Three hours of drifted traffic; each hour's labels arrive within the hour through the ground-truth path (the
   ground-truth Lambda joins them with the captured requests and writes labelled production rows to the curated
   zone). The drift monitor measures PSI/KS every hour.
5. The drift alarm fires after three breaching hours; its action (the retrain Lambda) passes the guards and starts
   a retraining run with the dataset's data plan (``data_policy`` in ``datasets/churn.yaml``): the upload's train
   split plus the labelled drifted rows train, the most recent labelled rows test. No one uploads anything: the
   challenger beats the champion on the world it will serve, is approved, and the deployment shifts traffic with a
   canary while clients send traffic, then verifies. The registry records the training and test data (lineage).
6. A summary (printed, JSON at ``--summary``) and an HTML report. Its checks are computed from what was
   recorded (APIs, journal, the answers the clients got), see ``localcloud.report.CHECKS``. A challenger that ties
   its champion and is rejected (a retrain without labelled rows: the same data) is shown by
   ``tests/e2e/test_feedback_loop.py``, not here.

In a stage with manual approval (prod), a package that passes the gate waits as ``PendingManualApproval``;
the demo approves it through the registry API as the approver would (``update-model-package``) and says so.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from localcloud import provision, report
from localcloud.clock import clock
from localcloud.cloud import DEMO_TIME_SCALE, LocalCloud
from localcloud.lifecycle import SAMPLES, Lifecycle
from localcloud.runtime.journal import journal
from pipelines.data.generator import generate
from stacks.config import load_config
from stacks.datasets import dataset_schema

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pipelines" / "data" / "sample" / "churn.csv"
HOUR = 3600.0
CANARY_TIME_SCALE = 40.0
"""Cloud speed for a canary whose guardrail alarms must judge the clients' requests minute by minute: the 5-minute
bake lasts 7.5 real seconds (tests/e2e/test_client_errors.py)."""
CANARY_BAKE_TIME_SCALE = 120.0
"""The demo's cloud speed during the canary's traffic step once the clients saw both fleets answer in turn
(``Lifecycle.slowed_during_traffic_steps`` holds real speed until then): the rest of the 5-minute bake lasts at most
2.5 real seconds."""
CAPTURED_ROWS_PER_HOUR = 600  # the drift monitor judges an hour from at least 200 captured rows (DRIFT_MIN_ROWS)
# Ground truth joins captured requests only: each drifted hour's captured rows are its labelled production rows.
# The retrain after three such hours tests on the newest 500 (churn.yaml's test_from_production_rows) and trains on
# the rest up to the policy's share of the training rows (3,500 beside the sample's 3,500-row train split): at 600 an
# hour 1,300 drifted rows trained and the challenger won by 0.015 AUC (the gate asks 0.005); at 1,500 an hour the
# newest drifted rows fill the share (3,507) and it won by 0.082 (both measured in the demo, dev)
LABELLED_ROWS_PER_DRIFT_HOUR = 1500
DRIFT_BATCH_ROWS = 50  # rows per request in the drifted hours: prod samples 20% of the requests, 150 per hour


def hourly_rows(capture_percent: int, captured: int = CAPTURED_ROWS_PER_HOUR) -> int:
    """Rows of traffic per hour so that about ``captured`` of them are captured (prod captures 20%)."""
    return math.ceil(captured * 100 / max(1, capture_percent))


@dataclass
class DemoOptions:
    rows: int | None = None  # None: the shipped sample (5,000 rows)
    summary: Path | None = None
    report: Path | None = None
    stage: str = "dev"
    drift: float = 1.0
    traffic_rows: int | None = None  # per hour of traffic (None: enough for the stage's data capture, see below)
    assembly: Path | None = None  # a synthesized cloud assembly to reuse (default: synthesize now)
    workdir: Path | None = None
    time_scale: float = DEMO_TIME_SCALE


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class Progress:
    out: TextIO = sys.stdout
    stages: list[Stage] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def say(self, text: str) -> None:
        """A line of its own, at once (e.g. an action the demo takes for a human)."""
        self.out.write(f"     {text}\n")
        self.out.flush()

    @contextmanager
    def stage(self, name: str) -> Iterator[Callable[[str], None]]:
        number = len(self.stages) + 1
        self.out.write(f"[{number:2d}] {name} ...\n")
        self.out.flush()
        began = time.time()
        notes: list[str] = []
        yield notes.append
        seconds = time.time() - began
        detail = "; ".join(notes)
        self.stages.append(Stage(name, seconds, detail))
        self.out.write(f"     done in {seconds:5.1f} s{(': ' + detail) if detail else ''}\n")
        self.out.flush()


def _model_version(package: dict[str, Any] | None) -> str:
    if not package:
        return "-"
    return str((package.get("CustomerMetadataProperties") or {}).get("model_version", package["ModelPackageVersion"]))


def run(options: DemoOptions, out: TextIO = sys.stdout, cloud: LocalCloud | None = None) -> dict[str, Any]:
    """The whole demo; returns the summary. With ``cloud`` (started, nothing deployed) the demo runs on it and
    leaves it running (a test can go on from the demo's end state); without, it starts and stops its own."""
    progress = Progress(out)
    config = load_config(options.stage)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="mlops-demo-"))
    report_path = options.report or workdir / "report.html"
    journal.clear()
    own = cloud is None
    with progress.stage("Synthesize the CDK app (cdk-nag AwsSolutions runs inside)") as note:
        # the synth runs in its own process; the local cloud starts meanwhile (nothing in it depends on the assembly)
        synth = None if options.assembly else provision.start_synth(options.stage, workdir / "cdk.out")
        try:
            if cloud is None:
                cloud = LocalCloud(workdir=workdir / "cloud", time_scale=options.time_scale).start()
            assembly = synth.wait() if synth is not None else Path(str(options.assembly))
        except BaseException:
            if synth is not None:
                synth.cancel()
            if own and cloud is not None:
                cloud.stop()
            raise
        template = json.loads((assembly / f"{config.stack_name}.template.json").read_text())
        note(
            f"{len(template['Resources'])} resources in {config.stack_name}"
            + ("; the local cloud started meanwhile" if own else "")
        )
    try:
        summary = _scenario(cloud, assembly, options, progress, config, report_path)
    finally:
        iam = cloud.iam.report()  # every IAM decision of the run (localcloud.iam), read before the cloud stops
        if own:
            cloud.stop()
    summary["iam"] = iam
    summary["duration_seconds"] = round(time.time() - progress.started, 1)
    summary["stages"] = [{"name": s.name, "seconds": round(s.seconds, 2), "detail": s.detail} for s in progress.stages]
    report.write(summary, options.summary, report_path)
    report.print_summary(summary, out)
    if options.workdir is None:  # the demo's own scratch: what the user reads (the reports) stays
        kept = report_path.resolve().is_relative_to(workdir.resolve())
        remove_in_background(workdir / "cloud" if kept else workdir)
    return summary


def remove_in_background(path: Path) -> None:
    """Delete ``path`` from a detached process: the cloud's directory holds thousands of files (the Lambda
    workers' unpacked layers, the model archives) that took seconds to delete after the summary was printed."""
    subprocess.Popen(
        [sys.executable, "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _scenario(
    cloud: LocalCloud, assembly: Path, options: DemoOptions, progress: Progress, config: Any, report_path: Path
) -> dict[str, Any]:
    with progress.stage("Provision the synthesized template into the local cloud") as note:
        deployment = cloud.deploy(options.stage, assembly=assembly)
        note(f"{len(deployment.resources)} resources, {len(deployment.assets)} assets published")
    lc = Lifecycle(cloud, deployment, config.dataset)
    lc.subscribe()
    training, deploying = lc.training_machine, lc.deployment_machine
    others = tuple(lc.for_dataset(dataset_schema(name)) for name in other_samples(deployment, lc.schema.name))

    with progress.stage("Upload each sample to the raw zone -> pipeline -> registry -> endpoint (per dataset)") as note:
        first = pd.read_csv(SAMPLE) if options.rows is None else generate(options.rows, seed=1)
        key, _ = lc.upload(first, "customers-2026-11.csv")
        for other in others:  # the other samples' lifecycles run beside churn's, on the same shared machinery
            other.upload((SAMPLES / f"{other.schema.name}.csv").read_bytes(), f"{other.schema.name}-2026-11.csv")
        run1 = lc.wait_for_new_execution(training, [])
        note(f"s3://{lc.raw_bucket}/{key}: execution {run1.status} in {run1.seconds:.1f} s")
        if run1.status != "SUCCEEDED":
            raise RuntimeError(f"the first pipeline run failed: {run1.cause}")
        _approve_if_manual(lc, config, run1, progress)
        deploy1 = lc.wait_for_new_execution(deploying, [])
        note(f"model {_model_version(lc.champion())} approved; deployment {deploy1.status}")
        if deploy1.status != "SUCCEEDED":
            raise RuntimeError(f"the first deployment failed: {deploy1.cause}")
        for other in others:
            _bring_to_service(other, config, progress, note)

    with progress.stage("An hour of traffic from the training distribution, then its ground truth") as note:
        lc.align_schedules()  # the drift monitor's next run closes this hour, not the middle of the traffic
        hour_start = clock.time()
        rows = options.traffic_rows or hourly_rows(config.serving.data_capture_percent)
        steady = generate(rows, seed=11)
        with lc.real_time():
            traffic = lc.send_traffic(steady)
        lc.pass_time_until(hour_start + HOUR)
        lc.upload_ground_truth(traffic.labels, "labels-hour-1.jsonl")  # labels come in after the fact
        cloud.settle()
        note(f"{traffic.requests} requests / {traffic.rows} rows, {len(traffic.errors)} errors")

    with progress.stage("Three hours of drifted traffic, each hour's ground truth -> labelled production rows") as note:
        # start just before the top of an hour: each hourly run then lands in its own CloudWatch hour (the alarm
        # evaluates complete, aligned periods) and the third hour completes a minute after its run
        top = (clock.time() // HOUR + 1) * HOUR
        lc.pass_time_until(top - 120)
        lc.align_schedules()
        start = clock.time()
        labelled = 0
        drift_rows = options.traffic_rows or hourly_rows(
            config.serving.data_capture_percent, LABELLED_ROWS_PER_DRIFT_HOUR
        )
        for hour in range(3):  # three consecutive hours: the drift monitor runs at the end of each
            drifted = generate(drift_rows, seed=20 + hour, drift=options.drift)
            # the hour's labels arrive within the hour, through the ground-truth path (S3 -> the ground-truth
            # Lambda joins them with the captured requests and writes labelled rows to the curated zone); at real
            # speed, so a slow join on a loaded host does not spend the hour
            with lc.real_time():
                traffic = lc.send_traffic(drifted, batch_rows=DRIFT_BATCH_ROWS)
                lc.pass_time(0)  # the capture's last records reach S3 (SageMaker writes them within minutes)
                lc.upload_ground_truth(traffic.labels, f"labels-drift-hour-{hour + 1}.jsonl")
                cloud.settle()
            labelled += traffic.rows
            if hour < 2:  # the third hour ends in the next stage, while the clients send traffic
                lc.pass_time_until(start + (hour + 1) * HOUR)
        files = lc.keys(lc.curated_bucket, f"production/{lc.schema.name}/")
        note(
            f"{labelled} rows of drifted traffic sent and their labels uploaded; {len(files)} files of labelled "
            "production rows in the curated zone"
        )

    with progress.stage(
        "Drift alarm -> retrain on the labelled drifted traffic -> challenger vs champion -> canary"
    ) as note:
        known = {e.name for e in lc.executions(training)}
        deployments_before = {e.name for e in lc.executions(deploying)}
        stop = threading.Event()
        answers: list[dict[str, Any]] = []
        background = threading.Thread(
            target=lambda: _steady_traffic(lc, stop, options.drift, answers), daemon=True, name="demo-traffic"
        )
        # The third hour ends: its drift monitor run, the drift alarm, the retrain Lambda's run and, when the
        # challenger wins, its canary follow on their own; no upload. Once the run has finished, clients send
        # traffic until the rollout is over; cloud time runs at real speed when a traffic step of the canary begins,
        # until the clients have been answered by both models in turn, then at CANARY_BAKE_TIME_SCALE for the rest
        # of the bake, so the clients see the canary even on a busy host (the check reads their answers, see
        # report.CHECKS); the green fleet's provisioning, the final bake and the termination wait pass at the demo's
        # speed. Nothing here waits for the cloud to settle: the rollout must happen under the clients.
        # No traffic while the run trains: on a loaded host a run lasts many cloud hours at 240x, and drifted
        # traffic in them kept the drift monitor measuring, so the alarm fired again after the guard's cooldown and
        # started a second retrain (on the same labelled rows: a tie) during the rollout.
        with lc.slowed_during_traffic_steps(min(options.time_scale, CANARY_BAKE_TIME_SCALE)):
            clock.advance(max(0.0, start + 3 * HOUR - clock.time()))
            try:
                retrain = lc.wait_for_new_execution(training, known, timeout=600)
                alarms = [e.detail for e in journal.of("alarm") if e.detail["state"] == "ALARM"]
                note(f"alarms: {', '.join(sorted({a['alarm'] for a in alarms})) or 'none'}")
                trigger = retrain.input.get("trigger", {})
                note(f"retraining run {retrain.name} started by {trigger.get('alarm') or trigger.get('source')}")
                note(f"data plan: {(retrain.input.get('data_plan') or {}).get('reason', 'none')}")
                note(f"retraining run: {retrain.status}")
                if retrain.status != "SUCCEEDED":
                    raise RuntimeError(f"the retraining run failed: {retrain.cause}")
                background.start()
                _approve_if_manual(lc, config, retrain, progress)
                package = lc.package_of(retrain.name) or {}
                status = package.get("ModelApprovalStatus")
                note(f"challenger {_model_version(package)}: {status}: {package.get('ApprovalDescription')}")
                if status != "Approved":
                    raise RuntimeError(f"the retrain's challenger was not promoted ({status}): nothing to roll out")
                deploy2 = lc.wait_for(
                    lambda: next(
                        (e for e in lc.executions(deploying) if e.name not in deployments_before and e.stopped), None
                    ),
                    timeout=300,
                    what="the canary deployment",
                )
                answers += lc.send_traffic(generate(100, seed=99, drift=options.drift)).answers  # after the rollout
            finally:
                stop.set()
                if background.ident is not None:  # started
                    background.join(timeout=30)
        note(f"deployment {deploy2.status}; serving {lc.served_model_version()}")
    cloud.settle()
    summary = report.collect(cloud, lc, sorted(answers, key=lambda a: a["at"]), options, others)
    report.keep_drift_report(lc, summary, report_path.with_suffix(".drift.html"))
    return summary


def other_samples(deployment: provision.Deployment, loop: str) -> list[str]:
    """The declared datasets of the deployed stack with a shipped sample, besides ``loop`` (the demo's loop)."""
    declared = json.loads(deployment.outputs["Datasets"])
    return [name for name in declared if name != loop and (SAMPLES / f"{name}.csv").exists()]


def _bring_to_service(lc: Lifecycle, config: Any, progress: Progress, note: Callable[[str], None]) -> None:
    """Wait for the dataset's first run (approving it in a manual stage) and its deployment, and say how it went.
    A failure is noted with its cause, not raised: churn's loop goes on, and the summary's
    ``every_dataset_serving_its_task`` check fails naming what the dataset's endpoint did."""
    name = lc.schema.name
    run = lc.wait_for_new_execution(lc.training_machine, [])
    if run.status != "SUCCEEDED":
        note(f"{name} ({lc.schema.task}): pipeline run {run.status}: {(run.cause or '')[:300]}")
        return
    _approve_if_manual(lc, config, run, progress)
    deployed = lc.wait_for_new_execution(lc.deployment_machine, [])
    if deployed.status != "SUCCEEDED":
        note(f"{name} ({lc.schema.task}): deployment {deployed.status}: {(deployed.cause or '')[:300]}")
        return
    endpoint = lc.endpoint() or {}
    note(f"{name} ({lc.schema.task}): run {run.seconds:.1f} s, {lc.endpoint_name} {endpoint.get('EndpointStatus')}")


def _approve_if_manual(lc: Lifecycle, config: Any, execution: Any, progress: Progress) -> None:
    """In a stage with manual approval, approve the package ``execution`` registered, as the approver would."""
    if config.approval != "manual":
        return
    package = lc.package_of(execution.name)
    if package is None or package.get("ModelApprovalStatus") != "PendingManualApproval":
        status = package.get("ModelApprovalStatus") if package else "no package"
        raise RuntimeError(f"run {execution.name} left nothing to approve ({status})")
    arn = package["ModelPackageArn"]
    progress.say(f"stage {config.stage} approves by hand; as the approver, the demo runs:")
    progress.say(f"  aws sagemaker update-model-package --model-package-arn {arn} --model-approval-status Approved")
    lc.approve(arn, f"approved by the demo, acting as the {config.stage} approver")


def _steady_traffic(lc: Lifecycle, stop: threading.Event, drift: float, answers: list[dict[str, Any]]) -> None:
    seed = 100
    while not stop.is_set():
        traffic = lc.send_traffic(generate(60, seed=seed, drift=drift), batch_rows=20, stop=stop.is_set)
        answers += traffic.answers
        seed += 1
