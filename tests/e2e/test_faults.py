"""Fault cases, end to end on the synthesized stack in the local cloud (issue 7).

Each case starts from a serving champion and ends with: no raw object lost, the registry and the endpoint
in the expected state, and a notification that says what happened.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from localcloud.clock import clock
from localcloud.lifecycle import Lifecycle
from localcloud.runtime.journal import journal
from pipelines.data.generator import generate, to_csv_bytes
from stacks.config import load_config
from tests.e2e.conftest import Cloud, state_of

ROW = b"12,70.5,846.0,2,40.0,45,month-to-month,electronic-check,fiber\n"


def _notifications(lc: Lifecycle, outcome: str, since: int) -> list[dict[str, Any]]:
    """Notifications with ``outcome`` that arrived after the first ``since`` (the cloud is shared by the cases)."""
    return [n for n in lc.read_notifications()[since:] if n["attributes"].get("outcome") == outcome]


def _unchanged_except_raw(before: dict[str, Any], after: dict[str, Any], new_raw: int = 1) -> None:
    assert before["raw"] <= after["raw"], "a raw object version disappeared"
    assert len(after["raw"]) == len(before["raw"]) + new_raw
    assert after["endpoint_config"] == before["endpoint_config"]
    assert after["serving"] == before["serving"]


def test_a_malformed_upload_is_quarantined_and_the_champion_keeps_serving(champion: Cloud) -> None:
    lc = champion.lc
    seen = len(lc.read_notifications())
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.training_machine)}
    # Given a CSV written with semicolons instead of commas
    body = to_csv_bytes(generate(300, seed=31)).replace(b",", b";")
    key, version = lc.upload(body, "semicolons.csv")
    # When the pipeline runs on it
    run = lc.wait_for_new_execution(lc.training_machine, known)
    # Then it fails in the ETL with the machine-readable reason
    assert run.status == "FAILED"
    assert "MalformedFile" in (run.cause or "")
    # And the whole file is quarantined next to its reason
    version_label = run.name
    quarantined = lc.keys(lc.curated_bucket, f"quarantine/dataset=churn/version={version_label}/")
    assert any(k.endswith("semicolons.csv") for k in quarantined), quarantined
    reason = lc.read_json(lc.curated_bucket, f"quarantine/dataset=churn/version={version_label}/_reason.json")
    assert reason["reason"] == "malformed_file"
    assert reason["source"]["version_id"] == version
    # And the failure notification carries the reason
    failed = [n for n in _notifications(lc, "failed", seen) if "MalformedFile" in (n["message"] or "")]
    assert failed, lc.notifications
    # And nothing else changed: raw kept, registry and endpoint untouched
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"] == before["packages"]
    assert (key, version) in after["raw"]


def test_a_single_class_upload_is_stopped_by_the_etl_gate_with_the_reason(champion: Cloud) -> None:
    lc = champion.lc
    seen = len(lc.read_notifications())
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.training_machine)}
    # Given clean rows in which nobody churned (each row is valid; a classifier cannot learn from the file)
    lc.upload(generate(1500, seed=32).assign(churned=0), "no-churners.csv")
    # When the pipeline runs
    run = lc.wait_for_new_execution(lc.training_machine, known)
    # Then the ETL's quality gate ends it before any training job starts, naming the class and the splits
    assert run.status == "FAILED"
    assert "QualityGateFailed: class '1' has no rows in the train split" in (run.cause or ""), run.cause
    notes = [n for n in _notifications(lc, "failed", seen) if "has no rows in the train split" in (n["message"] or "")]
    assert notes and notes[-1]["attributes"].get("stage") == "etl"
    assert not [
        j for j in lc.clients.sagemaker.list_training_jobs()["TrainingJobSummaries"] if run.name in j["TrainingJobName"]
    ]
    # And the file, at its size, ran in the Lambda ETL; the same upload above etl.lambda_max_bytes (the S3 event's
    # object.size is all the Choice reads) runs in the Glue job and stops with the same reason, in the same stage
    steps = _entered_states(lc, run.arn)
    assert "RunEtlInLambda" in steps and "RunEtl" not in steps, steps
    large = {**run.input, "upload": {**run.input["upload"], "size": load_config("dev").etl.lambda_max_bytes + 1}}
    lc.clients.stepfunctions.start_execution(
        stateMachineArn=lc.training_machine, name=f"{run.name[:70]}-glue", input=json.dumps(large)
    )
    on_glue = lc.wait_for_new_execution(lc.training_machine, {*known, run.name})
    assert on_glue.status == "FAILED" and "RunEtl" in _entered_states(lc, on_glue.arn)
    assert "QualityGateFailed: class '1' has no rows in the train split" in (on_glue.cause or ""), on_glue.cause
    glue_notes = [n for n in _notifications(lc, "failed", seen) if on_glue.name in (n["message"] or "")]
    assert glue_notes and glue_notes[-1]["attributes"].get("stage") == "etl"
    # And the registry and the endpoint are unchanged
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"] == before["packages"]


def _entered_states(lc: Lifecycle, execution_arn: str) -> list[str]:
    history = lc.clients.stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def _submit_directory(lc: Lifecycle) -> tuple[str, str]:
    """(bucket, key) of the training code the deployed state machine hands to SageMaker."""
    definition = json.loads(
        lc.clients.stepfunctions.describe_state_machine(stateMachineArn=lc.training_machine)["definition"]
    )
    states = [s for s in _all_states(definition) if s.get("Parameters", {}).get("HyperParameters")]
    [train] = [s for s in states if "sagemaker_submit_directory" in s["Parameters"]["HyperParameters"]]
    uri = json.loads(train["Parameters"]["HyperParameters"]["sagemaker_submit_directory"])
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _all_states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in (definition.get("States") or {}).values():
        found.append(state)
        for branch in state.get("Branches") or []:
            found += _all_states(branch)
        if "Iterator" in state or "ItemProcessor" in state:
            found += _all_states(state.get("ItemProcessor") or state["Iterator"])
    return found


def test_a_training_failure_ends_in_the_failure_path_with_the_real_reason(champion: Cloud) -> None:
    lc = champion.lc
    seen = len(lc.read_notifications())
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.training_machine)}
    s3 = lc.clients.s3
    # Given a broken training script published over the deployed one in the code archive
    bucket, key = _submit_directory(lc)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    broken = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(original), mode="r:gz") as source,
        tarfile.open(fileobj=broken, mode="w:gz") as out,
    ):
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name.endswith("pipelines/training/train.py"):
                text = b'raise MemoryError("the feature matrix does not fit in the instance\'s memory")\n'
                member.size = len(text)
                data = io.BytesIO(text)
            out.addfile(member, data)
    s3.put_object(Bucket=bucket, Key=key, Body=broken.getvalue())
    try:
        # When clean data is uploaded and the pipeline runs
        lc.upload(generate(1500, seed=34), "clean-but-code-broken.csv")
        run = lc.wait_for_new_execution(lc.training_machine, known)
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)  # the deployed code again, for the next cases
    # Then the training job's own failure reason ends the execution, not just "States.TaskFailed"
    assert run.status == "FAILED"
    assert "AlgorithmError: MemoryError: the feature matrix does not fit" in (run.cause or ""), run.cause
    notes = [n for n in _notifications(lc, "failed", seen) if "MemoryError" in (n["message"] or "")]
    assert notes and notes[-1]["attributes"].get("stage") == "training"
    # And the registry and the endpoint are unchanged
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"] == before["packages"]


def test_a_worse_challenger_is_rejected_and_recorded(champion: Cloud) -> None:
    lc = champion.lc
    seen = len(lc.read_notifications())
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.training_machine)}
    # Given data whose labels carry no signal
    noise = generate(3000, seed=33)
    noise["churned"] = np.random.default_rng(0).permutation(noise["churned"].to_numpy())
    lc.upload(noise, "noisy-labels.csv")
    # When the pipeline runs
    run = lc.wait_for_new_execution(lc.training_machine, known)
    # Then the execution succeeds, the challenger is recorded as Rejected with the gate's reason
    assert run.status == "SUCCEEDED", run.cause
    packages = lc.packages()
    newest = packages[-1]
    assert newest["ModelApprovalStatus"] == "Rejected"
    assert "below the absolute floor" in newest["ApprovalDescription"]
    assert newest["CustomerMetadataProperties"]["execution_id"] == run.name
    assert _notifications(lc, "rejected", seen)
    # And the champion keeps serving
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"][:-1] == before["packages"]


def _start_pipeline_answers(after: int = 0) -> list[dict[str, Any]]:
    """What the start Lambda answered to each event the bus delivered to it (the journal of deliveries)."""
    entries = [
        e.detail
        for e in journal.of("invoke-async")
        if "StartPipeline" in str(e.detail.get("target")) and e.detail.get("outcome") == "ok"
    ]
    return [json.loads(d["result"]) for d in entries[after:]]


def test_the_bus_delivering_the_same_upload_event_twice_starts_one_execution(champion: Cloud) -> None:
    """EventBridge delivers at least once: the same "Object Created" event can reach the start Lambda again.
    The test puts the same S3 event on the default bus twice (AWS reserves ``aws.*`` sources for its services,
    so only a test can: here it stands in for the bus's redelivery); the rule delivers both to the Lambda."""
    lc = champion.lc
    known = {e.name for e in lc.executions(lc.training_machine)}
    # Given an upload (its S3 event starts one execution through the bus)
    body = to_csv_bytes(generate(200, seed=34)).replace(b",", b"|")  # fails fast in the ETL: keeps the test short
    key, version = lc.upload(body, "twice.csv")
    run = lc.wait_for_new_execution(lc.training_machine, known)
    champion.cloud.settle()
    delivered = len(_start_pipeline_answers())
    # When the bus delivers the same Object Created event (same bucket, key and version) twice more
    detail = {
        "version": "0",
        "bucket": {"name": lc.raw_bucket},
        "object": {"key": key, "size": len(body), "etag": "x", "version-id": version, "sequencer": "1"},
        "request-id": "r",
        "requester": champion.cloud.account_id,
        "source-ip-address": "127.0.0.1",
        "reason": "PutObject",
    }
    for _ in range(2):
        response = lc.clients.events.put_events(
            Entries=[
                {
                    "Source": "aws.s3",
                    "DetailType": "Object Created",
                    "Resources": [f"arn:aws:s3:::{lc.raw_bucket}"],
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert response["FailedEntryCount"] == 0, response
    champion.cloud.settle()
    # Then the rule delivered both to the start Lambda, which answered each with the first delivery's execution
    # (Powertools idempotency on the object version)
    answers = _start_pipeline_answers(after=delivered)
    assert len(answers) == 2, answers
    assert all(a["execution_name"] == run.name for a in answers), answers
    # And no second execution exists for that object version
    mine = [e for e in lc.executions(lc.training_machine) if e.input.get("upload", {}).get("key") == key]
    assert [e.name for e in mine] == [run.name]


def test_a_bad_endpoint_payload_gets_a_4xx_that_says_what_is_wrong(champion: Cloud) -> None:
    lc = champion.lc
    before = state_of(lc)
    runtime = lc.clients.sagemaker_runtime
    cases = [
        (b"12,70.5,846.0\n", "text/csv", "expected 9 columns, got 3"),
        (b"12,abc,846.0,2,40.0,45,month-to-month,electronic-check,fiber\n", "text/csv", "monthly_charges"),
        (b"", "text/csv", "empty"),
        (b'{"instances": "nope"}', "application/json", "instances"),
        (ROW, "application/x-unknown", "Content-Type"),
    ]
    for body, content_type, expected in cases:
        # When a client sends a bad request
        with pytest.raises(ClientError) as error:
            runtime.invoke_endpoint(EndpointName=lc.endpoint_name, ContentType=content_type, Body=body)
        # Then InvokeEndpoint answers ModelError with the container's 4xx status and its message
        response = error.value.response
        assert response["Error"]["Code"] == "ModelError"
        assert 400 <= response["OriginalStatusCode"] < 500, response
        assert expected.lower() in response["OriginalMessage"].lower(), (expected, response["OriginalMessage"])
    # And an unknown endpoint is a ValidationError, not a fake answer
    with pytest.raises(ClientError) as unknown:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=ROW)
    assert unknown.value.response["Error"]["Code"] == "ValidationError"
    # And the endpoint still serves good requests, with the 4xx counted for its variant
    good = runtime.invoke_endpoint(EndpointName=lc.endpoint_name, ContentType="text/csv", Body=ROW)
    assert json.loads(good["Body"].read())["predictions"][0]["label"] in (0, 1)
    assert state_of(lc) == before


def test_a_flapping_drift_alarm_starts_one_retrain(champion: Cloud) -> None:
    """The drift metric crosses the threshold and back, hour after hour; the local alarm evaluator moves the
    alarm (3 breaching hours of 3 -> ALARM, one quiet hour -> OK, ...) and its actions reach the retrain guard."""
    lc = champion.lc
    cloudwatch = lc.clients.cloudwatch
    alarm = next(a for a in cloudwatch.describe_alarms()["MetricAlarms"] if a["AlarmName"].endswith("-drift"))
    period, threshold = alarm["Period"], alarm["Threshold"]
    known = {e.name for e in lc.executions(lc.training_machine)}
    transitions = len([e for e in journal.of("alarm") if e.detail["alarm"] == alarm["AlarmName"]])
    decided = len(_retrain_decisions())

    def an_hour_of_drift(value: float) -> None:
        """One datapoint of the drift monitor's metric in the current period; then the period completes."""
        start = clock.time() // period * period
        cloudwatch.put_metric_data(
            Namespace=alarm["Namespace"],
            MetricData=[
                {
                    "MetricName": alarm["MetricName"],
                    "Dimensions": alarm["Dimensions"],
                    "Timestamp": datetime.fromtimestamp(start + period / 2, UTC),
                    "Value": value,
                }
            ],
        )
        lc.pass_time_until(start + period + 60)

    # Given drift above the threshold for three hours (ALARM), below it for one (OK), above it for three more
    # (ALARM again, four hours after the first) and below it again (OK)
    for value in [3 * threshold] * 3 + [threshold / 4] + [3 * threshold] * 3 + [threshold / 4]:
        an_hour_of_drift(value)
    lc.wait_for(lambda: all(e.stopped for e in lc.executions(lc.training_machine)), what="the retrain to finish")
    # Then the evaluator moved the alarm on the datapoints: ALARM, OK, ALARM, OK
    moves = [e.detail for e in journal.of("alarm") if e.detail["alarm"] == alarm["AlarmName"]][transitions:]
    assert [m["state"] for m in moves] == ["ALARM", "OK", "ALARM", "OK"], moves
    assert all("Threshold Crossed" in m["reason"] for m in moves), moves
    # And exactly one retraining run was started; the second ALARM was suppressed by the cooldown, with a reason
    retrains = [e for e in lc.executions(lc.training_machine) if e.name not in known]
    assert len(retrains) == 1, [e.name for e in retrains]
    assert retrains[0].input["trigger"]["alarm"] == alarm["AlarmName"]
    decisions = _retrain_decisions()[decided:]
    assert [d["guard"] for d in decisions] == ["started", "not_alarm", "cooldown", "not_alarm"], decisions
    assert "cooldown" in decisions[2]["reason"], decisions[2]


def _retrain_decisions() -> list[dict[str, Any]]:
    return [
        json.loads(e.detail["result"])
        for e in journal.of("invoke-async")
        if "Retrain" in e.detail["target"] and e.detail["outcome"] == "ok"
    ]


def _broken_archive(lc: Lifecycle, model_data: str, workdir: Path) -> bytes:
    """The champion's model archive with inference code that fails on batches of more than 8 rows: the golden
    payloads (8 rows) pass the smoke test, live traffic does not."""
    return _patched_archive(
        lc,
        model_data,
        workdir,
        "\n\n_predict = predict\n\n\ndef predict(request, model):\n"
        + "    if len(request.items) > 8:\n"
        + "        raise RuntimeError('broken build: batches over 8 rows crash')\n"
        + "    return _predict(request, model)\n",
    )


def _patched_archive(lc: Lifecycle, model_data: str, workdir: Path, appended: str) -> bytes:
    """The champion's model archive with ``appended`` at the end of its inference code."""
    bucket, key = model_data[5:].split("/", 1)
    original = lc.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    source = workdir / "model"
    with tarfile.open(fileobj=io.BytesIO(original)) as tar:
        tar.extractall(source, filter="data")
    code = source / "code" / "inference.py"
    code.write_text(code.read_text() + appended)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    return out.getvalue()


def test_a_canary_with_a_broken_model_rolls_back_and_the_champion_keeps_all_traffic(
    champion: Cloud, tmp_path: Path
) -> None:
    lc = champion.lc
    seen = len(lc.read_notifications())
    sm = lc.clients.sagemaker
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.deployment_machine)}
    # Given an approved package whose model passes the golden payloads but crashes on real traffic
    package = lc.champion()
    assert package is not None
    container = dict(package["InferenceSpecification"]["Containers"][0])
    key = f"models/broken-{uuid.uuid4().hex[:6]}/model.tar.gz"
    lc.clients.s3.put_object(
        Bucket=lc.artifacts_bucket, Key=key, Body=_broken_archive(lc, container["ModelDataUrl"], tmp_path)
    )
    container["ModelDataUrl"] = f"s3://{lc.artifacts_bucket}/{key}"
    spec = {**package["InferenceSpecification"], "Containers": [container]}
    arn = sm.create_model_package(
        ModelPackageGroupName=lc.group,
        ModelPackageDescription="a broken build (fault test)",
        InferenceSpecification=spec,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=package["CustomerMetadataProperties"],
    )["ModelPackageArn"]
    stop = threading.Event()
    traffic = threading.Thread(
        target=lambda: [
            lc.send_traffic(generate(100, seed=40 + i), stop=stop.is_set) for i in range(10_000) if not stop.is_set()
        ],
        daemon=True,
    )
    traffic.start()
    try:
        # When it is approved (the deployment starts) while traffic flows
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        run = lc.wait_for_new_execution(lc.deployment_machine, known)
    finally:
        stop.set()
        traffic.join(timeout=30)
    # Then the canary's errors trip a rollback alarm, SageMaker rolls back, and the deployment fails saying so
    assert run.status == "FAILED"
    assert "rolled back" in (run.cause or ""), run.cause
    alarms = [e.detail for e in journal.of("alarm") if e.detail["state"] == "ALARM"]
    assert any("-rollback-" in a["alarm"] for a in alarms), alarms
    # And the champion serves all traffic again, on the same endpoint config
    after = state_of(lc)
    assert after["endpoint_config"] == before["endpoint_config"]
    assert after["serving"] == before["serving"]
    routes = [r for r in lc.routes() if r.role == "production"]
    assert [(r.model_name, r.weight) for r in routes] == [(routes[0].model_name, 1.0)]
    # And the broken package is Rejected with the reason, so it never becomes the champion
    broken = sm.describe_model_package(ModelPackageName=arn)
    assert broken["ModelApprovalStatus"] == "Rejected"
    assert "rolled back" in broken["ApprovalDescription"]
    assert lc.champion()["ModelPackageArn"] == package["ModelPackageArn"]
    assert _notifications(lc, "deploy-failed", seen)
    assert before["raw"] <= after["raw"]


def test_a_model_that_cannot_load_fails_the_update_before_any_traffic_and_the_champion_keeps_serving(
    champion: Cloud, tmp_path: Path
) -> None:
    lc = champion.lc
    seen = len(lc.read_notifications())
    sm = lc.clients.sagemaker
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.deployment_machine)}
    # Given an approved package whose model cannot load (model_fn raises, as a pickle of another scikit-learn would),
    # registered by hand: it never went through the pipeline's smoke test
    package = lc.champion()
    assert package is not None
    container = dict(package["InferenceSpecification"]["Containers"][0])
    key = f"models/unloadable-{uuid.uuid4().hex[:6]}/model.tar.gz"
    appended = "\n\ndef model_fn(model_dir):\n    raise RuntimeError('model.joblib: incompatible scikit-learn')\n"
    archive = _patched_archive(lc, container["ModelDataUrl"], tmp_path, appended)
    lc.clients.s3.put_object(Bucket=lc.artifacts_bucket, Key=key, Body=archive)
    container["ModelDataUrl"] = f"s3://{lc.artifacts_bucket}/{key}"
    arn = sm.create_model_package(
        ModelPackageGroupName=lc.group,
        ModelPackageDescription="a model that cannot load (fault test)",
        InferenceSpecification={**package["InferenceSpecification"], "Containers": [container]},
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=package["CustomerMetadataProperties"],
    )["ModelPackageArn"]
    # When it is approved (the deployment starts)
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    run = lc.wait_for_new_execution(lc.deployment_machine, known)
    # Then the blue/green update's green fleet fails on the container's ping, as in SageMaker (not a first invoke):
    # SageMaker keeps the blue fleet, and the deployment state machine ends FAILED with SageMaker's reason
    ping = "did not pass the ping health check"
    assert run.status == "FAILED"
    assert ping in (run.cause or "") and "SageMaker's update failed: " in (run.cause or ""), run.cause
    fleets = [e.detail for e in journal.of("endpoint-fleet") if e.detail["failure"]]
    assert fleets and all(ping in f["failure"] for f in fleets), fleets
    # And the failure notification carries the reason
    assert any(ping in (n["message"] or "") for n in _notifications(lc, "deploy-failed", seen)), lc.notifications
    # And the champion keeps serving, on the same endpoint config; the package is Rejected with the reason
    after = state_of(lc)
    assert (after["endpoint_config"], after["serving"]) == (before["endpoint_config"], before["serving"])
    good = lc.clients.sagemaker_runtime.invoke_endpoint(EndpointName=lc.endpoint_name, ContentType="text/csv", Body=ROW)
    assert json.loads(good["Body"].read())["predictions"][0]["label"] in (0, 1)
    unloadable = sm.describe_model_package(ModelPackageName=arn)
    assert unloadable["ModelApprovalStatus"] == "Rejected" and ping in unloadable["ApprovalDescription"]
    assert lc.champion()["ModelPackageArn"] == package["ModelPackageArn"]
