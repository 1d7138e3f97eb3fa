"""The feedback loop on one local cloud (issue 17): drifted traffic -> its ground truth -> labelled production rows in
the curated zone -> the drift alarm's retrain trains on them under the dataset's data policy, is tested on the
newest labelled rows, beats the champion and is rolled out by canary, with lineage naming the production window;
and a dataset whose labels never arrive retrains on its upload only, with the reason recorded; trained on the same
data as its champion, that challenger ties and is rejected (the tie the demo showed before its retrain learned from
labelled production rows).

The stack declares two datasets with a data policy: ``churn`` (its traffic gets labels) and ``quiet`` (the same
declaration; its labels never arrive). Both start from the shipped churn sample, and both retrain daily on a schedule
(their periods restarted when a test needs them). Then a record of churn's labelled traffic is erased (``mlops data
erase``) and the scheduled retrain a day later does not see it, and quiet's scheduled retrain plans with its policy.

(A scheduled or alarm retrain plans as of the cloud clock: the slot or the alarm's timestamp. ``mlops retrain``
plans as of the retrain Lambda's own clock, which in the local cloud is the host's, behind the cloud clock once a
test has passed hours: its window would miss the production rows, so the erasure is checked on a scheduled run.)"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from localcloud import provision
from localcloud.cli import main
from localcloud.clock import clock
from localcloud.cloud import DEMO_TIME_SCALE, LocalCloud
from localcloud.lifecycle import Lifecycle
from pipelines.data.generator import generate
from stacks.datasets import DATASETS_DIR, read_schema
from tests.e2e.conftest import SAMPLE

HOUR = 3600.0
ROWS_PER_HOUR = 1500  # dev captures every request: 4,500 labelled drifted rows over the three hours
POLICY = (
    "data_policy: {production_window_days: 7, min_labelled_rows: 300, max_production_share: 0.8, "
    "test_from_production_rows: 1000}\n"
)

SCHEDULE = 'retrain: {schedule: "rate(1 day)"}\n'
DAY = 86400.0


@dataclass
class Loop:
    cloud: LocalCloud
    churn: Lifecycle
    quiet: Lifecycle


def without_data_policy(declaration: str) -> str:
    """``declaration`` without its ``data_policy:`` section (the last one of datasets/churn.yaml), so this module
    declares its own."""
    head, found, tail = declaration.partition("\ndata_policy:\n")
    assert found, "churn.yaml declares a data_policy"
    after = [line for line in tail.splitlines() if line and not line.startswith((" ", "#"))]
    assert not after, f"data_policy is not churn.yaml's last section: {after[:1]}"
    return head + "\n"


def _serving(lc: Lifecycle) -> None:
    """The dataset's first run and deployment, from the shipped sample."""
    run = lc.wait_for_new_execution(lc.training_machine, [])
    assert run.status == "SUCCEEDED", run.cause
    deployed = lc.wait_for_new_execution(lc.deployment_machine, [])
    assert deployed.status == "SUCCEEDED", deployed.cause


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    workdir = tmp_path_factory.mktemp("feedback")
    declarations = workdir / "datasets"
    declarations.mkdir()
    churn_yaml = without_data_policy((DATASETS_DIR / "churn.yaml").read_text())
    (declarations / "churn.yaml").write_text(churn_yaml + POLICY + SCHEDULE)
    (declarations / "quiet.yaml").write_text(churn_yaml.replace("name: churn", "name: quiet") + POLICY + SCHEDULE)
    assembly = provision.synth("dev", workdir / "assembly", declarations)
    cloud = LocalCloud(workdir=workdir / "cloud", time_scale=DEMO_TIME_SCALE).start()
    try:
        deployment = cloud.deploy("dev", assembly=assembly)
        churn = Lifecycle(cloud, deployment, read_schema(declarations / "churn.yaml"))
        quiet = churn.for_dataset(read_schema(declarations / "quiet.yaml"))
        churn.subscribe()
        churn.upload(pd.read_csv(SAMPLE), "customers-2026-11.csv")
        quiet.upload(SAMPLE.read_bytes(), "customers-2026-11.csv")
        _serving(churn)
        _serving(quiet)
        cloud.settle()
        yield Loop(cloud, churn, quiet)
    finally:
        cloud.stop()


def metadata(lc: Lifecycle, execution: str) -> dict[str, str]:
    package = lc.package_of(execution)
    assert package is not None, f"run {execution} registered no package"
    return dict(package.get("CustomerMetadataProperties") or {})


def test_drift_and_its_labels_retrain_on_production_data_and_the_better_challenger_serves(loop: Loop) -> None:
    lc = loop.churn
    training, deploying = lc.training_machine, lc.deployment_machine
    champion = lc.served_model_version()
    known = {e.name for e in lc.executions(training)}
    deployments_before = {e.name for e in lc.executions(deploying)}
    # Given three hours of drifted traffic, each hour's labels arriving within the hour
    top = (clock.time() // HOUR + 1) * HOUR
    lc.pass_time_until(top - 120)
    lc.align_schedules()
    start = clock.time()
    for hour in range(3):
        with lc.real_time():
            traffic = lc.send_traffic(generate(ROWS_PER_HOUR, seed=40 + hour, drift=1.0))
        assert not traffic.errors, traffic.errors[:3]
        lc.upload_ground_truth(traffic.labels, f"labels-drift-{hour}.jsonl")
        lc.pass_time_until(start + (hour + 1) * HOUR)
    # Then the labelled rows are in the curated zone, one file per capture hour and batch
    assert len(lc.keys(lc.curated_bucket, "production/churn/")) >= 3
    # And an alarm's retrain started, planning with the labelled production rows
    retrain = lc.wait_for(
        lambda: [e for e in lc.executions(training) if e.name not in known], timeout=300, what="the retraining run"
    )[0]
    assert retrain.input["trigger"]["source"] == "alarm", retrain.input["trigger"]
    plan = retrain.input["data_plan"]
    assert plan["mode"] == "with_production" and plan["test_from"] == "production", plan
    # (the alarm may fire before the last hour's labels are joined: at least the earlier hours' rows are there)
    part = plan["production"]
    assert part["rows_available"] >= 2 * ROWS_PER_HOUR * 0.9, part
    assert part["test_rows"] == 1000 and part["train_rows"] == part["rows_available"] - 1000, part
    # When the run finishes
    done = lc.wait_for(
        lambda: next((e for e in lc.executions(training) if e.name == retrain.name and e.stopped), None),
        timeout=600,
        what="the retraining run to finish",
    )
    assert done.status == "SUCCEEDED", done.cause
    # Then its challenger beat the champion on the newest labelled rows and was approved, with the data in lineage
    lineage = metadata(lc, retrain.name)
    package = lc.package_of(retrain.name) or {}
    assert package.get("ModelApprovalStatus") == "Approved", lineage.get("gate_reason")
    assert lineage["test_data"] == "production: the 1000 most recent labelled rows"
    assert lineage["training_data"].startswith("upload ") and " + production " in lineage["training_data"]
    assert plan["production"]["start"][:13] in lineage["training_data"]
    # And the canary rolled it out: the endpoint serves the challenger
    deployed = lc.wait_for(
        lambda: next((e for e in lc.executions(deploying) if e.name not in deployments_before and e.stopped), None),
        timeout=600,
        what="the challenger's deployment",
    )
    assert deployed.status == "SUCCEEDED", deployed.cause
    assert lc.served_model_version() == lineage["model_version"] != champion


def test_a_dataset_whose_labels_never_arrive_retrains_on_its_upload_with_the_reason(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    lc = loop.quiet
    # Given a dataset with a data policy and no labelled production row
    assert lc.keys(lc.curated_bucket, "production/quiet/") == []
    # When an operator retrains it
    code = main(["retrain", "--dataset", "quiet", "--reason", "e2e: no labels", "--wait", "--json"])
    started: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and started["decision"] == "started", started
    run = next(e for e in lc.executions(lc.training_machine) if e.name == started["execution_name"])
    # Then the run trained and was tested on the upload only, and its plan and the registry say why
    plan = run.input["data_plan"]
    assert plan["mode"] == "upload_only" and plan["test_from"] == "upload"
    assert plan["reason"] == (
        "0 labelled production rows in the last 7 days < min_labelled_rows 300: the latest upload only"
    )
    lineage = metadata(lc, run.name)
    assert (
        lineage["training_data"].startswith("upload ")
        and "only: 0 labelled production rows" in lineage["training_data"]
    )
    assert lineage["test_data"].endswith("test split")
    # And, trained and tested on the same data as its champion, the challenger ties and is rejected with the reason
    package = lc.package_of(run.name) or {}
    assert package.get("ModelApprovalStatus") == "Rejected", lineage.get("gate_reason")
    assert str(package.get("ApprovalDescription")).startswith("tie: "), package.get("ApprovalDescription")


def _parquet_column(lc: Lifecycle, key: str, column: str) -> list[Any]:
    body = lc.clients.s3.get_object(Bucket=lc.curated_bucket, Key=key)["Body"].read()
    return list(pd.read_parquet(io.BytesIO(body), columns=[column])[column])


def _text_holding(lc: Lifecycle, bucket: str, prefix: str, needle: str) -> list[str]:
    """The keys under ``prefix`` whose text holds ``needle``."""
    s3 = lc.clients.s3
    return [k for k in lc.keys(bucket, prefix) if needle in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode()]


def test_an_erased_record_leaves_the_production_data_and_a_retrain_afterwards_does_not_see_it(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    lc = loop.churn
    # Given churn's labelled production rows (the first test's drifted traffic and its labels)
    files = [k for k in lc.keys(lc.curated_bucket, "production/churn/") if k.endswith(".parquet")]
    record = str(_parquet_column(lc, files[0], "prod_inference_id")[0])
    key_column = lc.schema.key_column
    composed_before = set(lc.keys(lc.curated_bucket, "curated/composed/churn/"))
    # When an operator erases that request by its id
    code = main(["data", "erase", "--dataset", "churn", "--inference-id", record, "--json"])
    erased: dict[str, Any] = json.loads(capsys.readouterr().out)
    # Then its captured request, its joined labels and its production rows were removed
    assert code == 0 and erased["removed"]["captured_requests"] == 1, erased
    assert erased["removed"]["joined_labels"] >= 1 and erased["removed"]["production_rows"] >= 1, erased
    capture = f"data-capture/{lc.endpoint_name}/"
    assert _text_holding(lc, lc.artifacts_bucket, capture, record) == []
    assert _text_holding(lc, lc.artifacts_bucket, "monitoring/quality/churn/", record) == []
    for key in [k for k in lc.keys(lc.curated_bucket, "production/churn/") if k.endswith(".parquet")]:
        assert record not in _parquet_column(lc, key, "prod_inference_id"), key
    # And no version of a rewritten object holds it any more
    for place in erased["objects"]:
        listed = lc.clients.s3.list_object_versions(Bucket=place["bucket"], Prefix=place["key"])
        assert len([v for v in listed.get("Versions", []) if v["Key"] == place["key"]]) <= 1, place
    # When the daily scheduled retrain runs a day later (past the alarm retrain's cooldown)
    known = {e.name for e in lc.executions(lc.training_machine)}
    lc.align_schedules()
    lc.pass_time(DAY + 60)
    started = lc.wait_for(
        lambda: [e for e in lc.executions(lc.training_machine) if e.name not in known],
        timeout=120,
        what="churn's scheduled retrain",
    )[0]
    assert started.input["trigger"]["source"] == "schedule", started.input["trigger"]
    run = lc.wait_for(
        lambda: next((e for e in lc.executions(lc.training_machine) if e.name == started.name and e.stopped), None),
        timeout=600,
        what="the scheduled retrain to finish",
    )
    assert run.status == "SUCCEEDED", run.cause
    # Then it trained and was tested on production rows, none of them the erased record's
    assert run.input["data_plan"]["mode"] == "with_production", run.input["data_plan"]
    composed = [k for k in set(lc.keys(lc.curated_bucket, "curated/composed/churn/")) - composed_before]
    assert "split=train" in {k.rsplit("/", 2)[-2] for k in composed}, composed
    for key in lc.keys(lc.curated_bucket, "curated/composed/churn/"):
        keys = [str(v) for v in _parquet_column(lc, key, key_column)]
        assert not [v for v in keys if v.startswith(f"{record}:")], key


def test_a_schedule_starts_a_guarded_retrain_with_the_data_policy_and_records_its_trigger(loop: Loop) -> None:
    lc = loop.quiet

    def scheduled() -> list[Any]:
        return [e for e in lc.executions(lc.training_machine) if e.name.startswith("retrain-schedule-quiet-")]

    # Given quiet's daily retrain schedule (its operator's retrain over a day before the slot: no cooldown)
    if not scheduled():  # (the erasure test's day already fired it when it ran first)
        # When a day passes, its period restarted now
        lc.align_schedules()
        lc.pass_time(DAY + 60)
    # Then the schedule's slot started one retrain through the guard, recording the schedule and the data plan
    run = lc.wait_for(scheduled, timeout=120, what="quiet's scheduled retrain")[0]
    assert len(scheduled()) == 1
    trigger = run.input["trigger"]
    assert (trigger["source"], trigger["schedule"], trigger["rule"]) == (
        "schedule",
        "rate(1 day)",
        "mlops-dev-quiet-retrain",
    )
    plan = run.input["data_plan"]
    assert plan["mode"] == "upload_only" and plan["reason"].startswith("0 labelled production rows in the last 7 days")
    # And the decision was notified as a scheduled start
    subjects = [n["subject"] for n in loop.churn.read_notifications()]  # the inbox churn's lifecycle subscribed
    assert "Retrain started: schedule:mlops-dev-quiet-retrain" in subjects, subjects
