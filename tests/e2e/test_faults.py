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
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from localcloud.clock import clock
from localcloud.lifecycle import Lifecycle
from localcloud.runtime.alarms import iso
from localcloud.runtime.journal import journal
from pipelines.data.generator import generate, to_csv_bytes
from tests.e2e.conftest import Cloud, state_of

ROW = b"12,70.5,846.0,2,40.0,45,month-to-month,electronic-check,fiber\n"


def _notifications(lc: Lifecycle, outcome: str) -> list[dict[str, Any]]:
    return [n for n in lc.read_notifications() if n["attributes"].get("outcome") == outcome]


def _unchanged_except_raw(before: dict[str, Any], after: dict[str, Any], new_raw: int = 1) -> None:
    assert before["raw"] <= after["raw"], "a raw object version disappeared"
    assert len(after["raw"]) == len(before["raw"]) + new_raw
    assert after["endpoint_config"] == before["endpoint_config"]
    assert after["serving"] == before["serving"]


def test_a_malformed_upload_is_quarantined_and_the_champion_keeps_serving(champion: Cloud) -> None:
    lc = champion.lc
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
    failed = [n for n in _notifications(lc, "failed") if "MalformedFile" in (n["message"] or "")]
    assert failed, lc.notifications
    # And nothing else changed: raw kept, registry and endpoint untouched
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"] == before["packages"]
    assert (key, version) in after["raw"]


def test_a_training_failure_ends_in_the_failure_path_with_the_real_reason(champion: Cloud) -> None:
    lc = champion.lc
    before = state_of(lc)
    known = {e.name for e in lc.executions(lc.training_machine)}
    # Given clean data in which nobody churned (the ETL passes it; a classifier cannot learn from it)
    lc.upload(generate(1500, seed=32).assign(churned=0), "no-churners.csv")
    # When the pipeline runs
    run = lc.wait_for_new_execution(lc.training_machine, known)
    # Then the training job's own failure reason ends the execution, not just "States.TaskFailed"
    assert run.status == "FAILED"
    assert "single class" in (run.cause or ""), run.cause
    notes = [n for n in _notifications(lc, "failed") if "single class" in (n["message"] or "")]
    assert notes and notes[-1]["attributes"].get("stage") == "training"
    # And the registry and the endpoint are unchanged
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"] == before["packages"]


def test_a_worse_challenger_is_rejected_and_recorded(champion: Cloud) -> None:
    lc = champion.lc
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
    assert _notifications(lc, "rejected")
    # And the champion keeps serving
    after = state_of(lc)
    _unchanged_except_raw(before, after)
    assert after["packages"][:-1] == before["packages"]


def test_the_same_s3_event_twice_starts_one_execution(champion: Cloud) -> None:
    lc = champion.lc
    known = {e.name for e in lc.executions(lc.training_machine)}
    # Given an upload (its event starts one execution)
    body = to_csv_bytes(generate(200, seed=34)).replace(b",", b"|")  # fails fast in the ETL: keeps the test short
    key, version = lc.upload(body, "twice.csv")
    run = lc.wait_for_new_execution(lc.training_machine, known)
    # When EventBridge delivers the same Object Created event twice more (at-least-once delivery)
    function = next(f for f in lc.clients.lambda_.list_functions()["Functions"] if "StartPipeline" in f["FunctionName"])
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": champion.cloud.account_id,
        "time": "2026-11-27T10:00:00Z",
        "region": champion.cloud.region,
        "resources": [f"arn:aws:s3:::{lc.raw_bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": lc.raw_bucket},
            "object": {"key": key, "size": len(body), "etag": "x", "version-id": version, "sequencer": "1"},
            "request-id": "r",
            "requester": champion.cloud.account_id,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }
    answers = []
    for _ in range(2):
        response = lc.clients.lambda_.invoke(FunctionName=function["FunctionArn"], Payload=json.dumps(event).encode())
        assert "FunctionError" not in response
        answers.append(json.loads(response["Payload"].read()))
    # Then each duplicate gets the first delivery's answer back (Powertools idempotency on the object version)
    assert all(a["execution_name"] == run.name for a in answers), answers
    # And no second execution exists for that object version
    champion.cloud.settle()
    mine = [e for e in lc.executions(lc.training_machine) if e.input.get("dataset", {}).get("key") == key]
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


def test_alarm_flapping_starts_one_retrain(champion: Cloud) -> None:
    lc = champion.lc
    cloudwatch = lc.clients.cloudwatch
    alarm = next(a for a in cloudwatch.describe_alarms()["MetricAlarms"] if a["AlarmName"].endswith("-drift"))
    known = {e.name for e in lc.executions(lc.training_machine)}
    now = clock.time()
    reason_data = {
        "version": "1.0",
        "statistic": "Maximum",
        "period": alarm["Period"],
        "threshold": alarm["Threshold"],
        "recentDatapoints": [0.9, 0.8, 0.7],
        "evaluatedDatapoints": [
            {"timestamp": iso(now - (i + 1) * alarm["Period"]), "value": v} for i, v in enumerate((0.9, 0.8, 0.7))
        ],
    }
    # Given a drift alarm that flaps: ALARM, OK, ALARM, OK, ALARM within minutes
    for state in ("ALARM", "OK", "ALARM", "OK", "ALARM"):
        cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"],
            StateValue=state,
            StateReason=f"test: {state}",
            StateReasonData=json.dumps(reason_data),
        )
        champion.cloud.settle()
    # Then exactly one retraining run was started; the other transitions were suppressed with a reason
    retrains = [e for e in lc.executions(lc.training_machine) if e.name not in known]
    assert len(retrains) == 1, [e.name for e in retrains]
    assert retrains[0].input["trigger"]["alarm"] == alarm["AlarmName"]
    decisions = [
        json.loads(e.detail["result"])
        for e in journal.of("invoke-async")
        if "Retrain" in e.detail["target"] and e.detail["outcome"] == "ok"
    ]
    started = [d for d in decisions if d["decision"] == "started"]
    suppressed = {d["guard"] for d in decisions if d["decision"] == "suppressed"}
    assert len(started) == 1
    assert {"cooldown", "running"} & suppressed, decisions
    lc.wait_for(lambda: all(e.stopped for e in lc.executions(lc.training_machine)), what="the retrain to finish")


def _broken_archive(lc: Lifecycle, model_data: str, workdir: Path) -> bytes:
    """The champion's model archive with inference code that fails on batches of more than 8 rows: the golden
    payloads (8 rows) pass the smoke test, live traffic does not."""
    bucket, key = model_data[5:].split("/", 1)
    original = lc.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    source = workdir / "model"
    with tarfile.open(fileobj=io.BytesIO(original)) as tar:
        tar.extractall(source, filter="data")
    code = source / "code" / "inference.py"
    code.write_text(
        code.read_text()
        + "\n\n_predict_fn = predict_fn\n\n\ndef predict_fn(input_data, model):\n"
        + "    if len(input_data.items) > 8:\n"
        + "        raise RuntimeError('broken build: batches over 8 rows crash')\n"
        + "    return _predict_fn(input_data, model)\n"
    )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    return out.getvalue()


def test_a_canary_with_a_broken_model_rolls_back_and_the_champion_keeps_all_traffic(
    champion: Cloud, tmp_path: Path
) -> None:
    lc = champion.lc
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
    assert _notifications(lc, "deploy-failed")
    assert before["raw"] <= after["raw"]
