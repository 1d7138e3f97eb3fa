"""``mlops retrain`` under moto: an operator's request passes the alarm path's guard (no overlap, cooldown, daily
budget, shared with alarm starts), ``force`` bypasses cooldown and budget and says so, a retried request starts
one execution, and every refusal carries its reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from lambdas.retrain import handler as retrain_handler
from lambdas.retrain import logic, manual
from lambdas.retrain.models import ManualRetrain
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.retrain.test_retrain import (
    MANIFEST,
    POLICY,
    T0,
    alarm_event,
    aws,
    clients,
    decide,
    environment,
    executions,
    finish_all,
    inbox,
    settings,
    started_input,
)
from tests.unit.lambdas.support import FakeContext

__all__ = ["aws", "environment", "settings"]  # fixtures


def request(request_id: str = "r1", *, force: bool = False, dataset: str = "churn") -> ManualRetrain:
    return ManualRetrain(
        source="mlops.cli",
        dataset=dataset,
        reason="new labels reviewed",
        requested_by="arn:aws:iam::123456789012:user/ops",
        request_id=request_id,
        force=force,
    )


def ask(settings: logic.Settings, req: ManualRetrain, minutes: int = 0) -> logic.Decision:
    return manual.decide(clients(), settings, req, T0 + timedelta(minutes=minutes), ("churn",))


def test_a_request_starts_the_pipeline_on_the_curated_data_with_who_and_why(settings: logic.Settings) -> None:
    # Given a curated dataset and nothing running
    # When an operator asks for a retrain
    decision = ask(settings, request())
    # Then the pipeline starts, and its input records the dataset, the data and a manual trigger
    assert (decision.decision, decision.trigger, decision.forced) == ("started", "manual", False)
    (execution,) = executions(settings)
    assert execution["name"] == decision.execution_name and execution["name"].startswith("retrain-manual-churn-")
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "dataset": "churn",
        "curated": MANIFEST,
        "trigger": {
            "source": "manual",
            "reason": "new labels reviewed",
            "requested_by": "arn:aws:iam::123456789012:user/ops",
            "forced": False,
        },
    }


def test_a_request_applies_the_datasets_data_policy_as_the_alarm_path_does(settings: logic.Settings) -> None:
    # Given a dataset with a data policy and no labelled production rows yet
    with_policy = replace(settings, schema=replace(CHURN_SCHEMA, data_policy=POLICY))
    # When an operator asks for a retrain
    assert ask(with_policy, request(), minutes=3).decision == "started"
    # Then the execution input records the plan the policy made (as of the request) and why it uses no labels
    plan = started_input(with_policy)["data_plan"]
    assert plan["decided_at"] == "2026-11-27T10:08:12Z" and plan["mode"] == "upload_only"
    assert plan["reason"].startswith("0 labelled production rows in the last 7 days")


def test_a_second_request_inside_the_cooldown_is_refused_with_the_reason(settings: logic.Settings) -> None:
    # Given a manual retrain that started and finished
    ask(settings, request("r1"))
    finish_all(settings)
    # When a second one is asked for an hour later (cooldown 360 min)
    second = ask(settings, request("r2"), minutes=60)
    # Then it is refused by the cooldown, naming the last start and when the next is allowed
    assert (second.decision, second.guard) == ("suppressed", "cooldown")
    assert second.reason == (
        "cooldown: the last retrain started at 2026-11-27T10:05:12Z (manual:arn:aws:iam::123456789012:user/ops), "
        "less than 360 min before 2026-11-27T11:05:12Z; next start allowed from 2026-11-27T16:05:12Z "
        "(--force bypasses it)"
    )
    assert len(executions(settings)) == 1


def test_an_alarm_start_opens_the_cooldown_for_a_manual_request_too(settings: logic.Settings) -> None:
    # Given a retrain the drift alarm started
    assert decide(settings, alarm_event()).decision == "started"
    finish_all(settings)
    # When an operator asks ten minutes later
    decision = ask(settings, request(), minutes=10)
    # Then the shared guard refuses it
    assert decision.guard == "cooldown" and "(mlops-dev-churn-drift)" in decision.reason


def test_force_bypasses_cooldown_and_budget_and_is_recorded(settings: logic.Settings) -> None:
    # Given two starts today (the daily budget is 2), the last one a minute ago
    ask(settings, request("r1"))
    finish_all(settings)
    ask(settings, request("r2", force=True), minutes=1)
    finish_all(settings)
    # When a third is forced
    forced = ask(settings, request("r3", force=True), minutes=2)
    # Then it starts, the decision and the execution input say it was forced
    assert (forced.decision, forced.forced) == ("started", True)
    assert forced.reason.endswith("(forced: cooldown and daily budget bypassed)")
    arn = forced.execution_arn
    described = boto3.client("stepfunctions").describe_execution(executionArn=arn)
    assert json.loads(described["input"])["trigger"]["forced"] is True
    # and without force the budget still counts the forced starts
    finish_all(settings)
    later = ask(settings, request("r4"), minutes=8 * 60)  # 18:05 UTC: the cooldown is over, the budget spent
    assert (later.guard, later.reason) == (
        "budget",
        "daily budget: 3 of 2 retrains already started on 2026-11-27 (UTC) (--force bypasses it)",
    )


def test_force_never_overlaps_a_running_execution(settings: logic.Settings) -> None:
    # Given a run in progress
    first = ask(settings, request("r1"))
    # When a forced request arrives
    decision = ask(settings, request("r2", force=True), minutes=1)
    # Then it is refused: no overlap, whatever the flag
    assert (decision.decision, decision.guard, decision.forced) == ("suppressed", "running", False)
    assert decision.reason == f"execution {first.execution_name} of the pipeline is RUNNING for churn"


def test_unknown_dataset_and_no_data_are_refused(settings: logic.Settings, aws: dict[str, Any]) -> None:
    # Given a dataset this function does not retrain
    unknown = ask(settings, request(dataset="tickets"))
    # Then
    assert (unknown.guard, unknown.reason) == ("unknown_dataset", "dataset 'tickets' is not one of ['churn']")
    # And without a curated manifest nothing can train
    boto3.client("s3").delete_object(Bucket="curated-bucket", Key="manifests/churn/latest.json")
    empty = ask(settings, request())
    assert empty.guard == "no_data" and empty.reason.endswith("upload one first")
    assert executions(settings) == []


def test_a_retried_request_starts_one_execution(settings: logic.Settings) -> None:
    # Given a request that started its run
    first = ask(settings, request("same"))
    # When the same request arrives again while its run is still going
    again = ask(settings, request("same"), minutes=1)
    # Then it reports the same start and nothing else runs
    assert (again.decision, again.execution_name) == ("started", first.execution_name)
    assert again.reason == "already started for this request"
    assert len(executions(settings)) == 1


def test_a_request_with_an_unknown_field_or_bad_id_is_refused() -> None:
    # Given requests the model must refuse
    good = request().model_dump()
    # Then an unknown key or a request id outside [A-Za-z0-9_.-] fails validation, naming the field
    with pytest.raises(ValidationError, match="forse"):
        ManualRetrain.model_validate({**good, "forse": True})
    with pytest.raises(ValidationError, match="request_id"):
        ManualRetrain.model_validate({**good, "request_id": "a b"})


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_handler_routes_an_operator_request_and_notifies_it(aws: dict[str, Any], environment: None) -> None:
    # Given the direct invocation `mlops retrain --force` sends
    event = {**request("h1", force=True).model_dump()}
    # When the handler sees it twice (a retried invocation)
    first = retrain_handler.handler(event, FakeContext())
    second = retrain_handler.handler(event, FakeContext())
    # Then one forced start, and its notification says who asked and that it was forced
    assert first == second and (first["decision"], first["forced"], first["trigger"]) == ("started", True, "manual")
    (message,) = inbox(aws)
    assert message["Subject"].startswith("Retrain started (forced: cooldown and budget bypassed): manual:")
    assert "asked by manual:arn:aws:iam::123456789012:user/ops" in message["Message"]
