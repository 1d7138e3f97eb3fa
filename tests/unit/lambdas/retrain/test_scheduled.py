"""A dataset's retrain schedule under moto: a slot starts a run through the alarm path's guard (no overlap, the
cooldown and daily budget the alarms and operators share) with the dataset's data policy, records the schedule as
its trigger, starts one execution per slot however often it is delivered, and every refusal carries its reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.retrain import handler as retrain_handler
from lambdas.retrain import logic, scheduled
from lambdas.retrain.models import ScheduledRetrain
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
RULE = "arn:aws:events:us-east-1:123456789012:rule/mlops-dev-churn-retrain"
WEEKLY = "rate(7 days)"


def slot_event(at: datetime = T0, dataset: str = "churn") -> dict[str, Any]:
    """The event the rule's input transformer delivers (``stacks.constructs.dataset.scheduled_event_for``)."""
    return {
        "version": "0",
        "id": f"event-{at:%H%M}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [RULE],
        "detail": {"dataset": dataset},
    }


@pytest.fixture
def weekly(settings: logic.Settings) -> logic.Settings:
    return replace(settings, guard=replace(settings.guard, schedule=WEEKLY))


def fire(settings: logic.Settings, at: datetime = T0, dataset: str = "churn") -> logic.Decision:
    return scheduled.decide(clients(), settings, ScheduledRetrain.model_validate(slot_event(at, dataset)), ("churn",))


def test_a_slot_starts_the_pipeline_and_records_the_schedule_as_its_trigger(weekly: logic.Settings) -> None:
    # Given a curated dataset with a weekly retrain schedule and nothing running
    # When the schedule fires
    decision = fire(weekly)
    # Then the pipeline starts, and its input names the schedule, the rule and the slot
    assert (decision.decision, decision.trigger, decision.alarm) == (
        "started",
        "schedule",
        "schedule:mlops-dev-churn-retrain",
    )
    (execution,) = executions(weekly)
    assert execution["name"] == decision.execution_name and execution["name"].startswith("retrain-schedule-churn-")
    assert started_input(weekly) == {
        "dataset": "churn",
        "curated": MANIFEST,
        "trigger": {
            "source": "schedule",
            "schedule": WEEKLY,
            "rule": "mlops-dev-churn-retrain",
            "time": "2026-11-27T10:05:12Z",
            "reason": "scheduled retrain (rate(7 days)), slot 2026-11-27T10:05:12Z",
        },
    }


def test_a_slot_applies_the_datasets_data_policy_as_of_the_slot(weekly: logic.Settings) -> None:
    # Given a dataset with a data policy and no labelled production rows yet
    with_policy = replace(weekly, schema=replace(CHURN_SCHEMA, data_policy=POLICY))
    # When the schedule fires
    assert fire(with_policy).decision == "started"
    # Then the execution input records the plan the policy made at the slot, and why it uses no labels
    plan = started_input(with_policy)["data_plan"]
    assert plan["decided_at"] == "2026-11-27T10:05:12Z" and plan["mode"] == "upload_only"
    assert plan["reason"].startswith("0 labelled production rows in the last 7 days")


def test_a_slot_inside_an_alarms_cooldown_is_suppressed_with_the_reason(weekly: logic.Settings) -> None:
    # Given a retrain the drift alarm started and that finished
    assert decide(weekly, alarm_event()).decision == "started"
    finish_all(weekly)
    # When the schedule fires an hour later (cooldown 360 min)
    decision = fire(weekly, T0 + timedelta(hours=1))
    # Then the shared guard refuses it, naming the alarm's start
    assert (decision.decision, decision.guard) == ("suppressed", "cooldown")
    assert "(mlops-dev-churn-drift)" in decision.reason and len(executions(weekly)) == 1


def test_the_daily_budget_counts_scheduled_starts(weekly: logic.Settings) -> None:
    no_cooldown = replace(weekly, guard=replace(weekly.guard, cooldown_minutes=0, max_per_day=2))
    # Given two slots that started today (budget 2)
    for hours in (0, 1):
        assert fire(no_cooldown, T0 + timedelta(hours=hours)).decision == "started"
        finish_all(no_cooldown)
    # When a third slot fires the same UTC day
    third = fire(no_cooldown, T0 + timedelta(hours=2))
    # Then the budget refuses it
    assert (
        third.guard == "budget" and third.reason == "daily budget: 2 of 2 retrains already started on 2026-11-27 (UTC)"
    )


def test_no_start_while_a_run_of_the_dataset_is_running(weekly: logic.Settings) -> None:
    assert fire(weekly).decision == "started"
    # a week later, the first run still running
    decision = fire(weekly, T0 + timedelta(days=7))
    assert decision.guard == "running" and decision.reason.startswith("execution retrain-schedule-churn-")


def test_a_slot_delivered_twice_starts_one_execution(weekly: logic.Settings) -> None:
    first, again = fire(weekly), fire(weekly)
    assert first.execution_name == again.execution_name and again.reason == "already started for this slot"
    assert len(executions(weekly)) == 1


def test_unknown_dataset_removed_schedule_and_missing_data_are_refused(
    weekly: logic.Settings, settings: logic.Settings
) -> None:
    assert fire(weekly, dataset="nope").guard == "unknown_dataset"
    # the declaration dropped its schedule, a late delivery of the old rule's slot
    stale = fire(settings)
    assert stale.guard == "not_scheduled" and "mlops-dev-churn-retrain is stale" in stale.reason
    missing = fire(replace(weekly, manifest_key="manifests/churn/none.json"))
    assert missing.guard == "no_data" and missing.reason.startswith("no curated dataset to retrain on")
    assert executions(weekly) == []


def test_the_event_must_be_a_scheduled_event_naming_a_dataset() -> None:
    for broken in ({"detail": {}}, {"detail-type": "Object Created"}, {"resources": []}):
        with pytest.raises(ValidationError):
            ScheduledRetrain.model_validate({**slot_event(), **broken})


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # the duplicate publishes nothing
def test_the_handler_routes_a_slot_decides_once_and_notifies(
    aws: dict[str, Any], environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given churn's declaration with a schedule (the platform document's guard for churn)
    real = retrain_handler.Settings.dataset_settings

    def with_schedule(self: retrain_handler.Settings, name: str) -> logic.Settings:
        found = real(self, name)
        return replace(found, guard=replace(found.guard, schedule=WEEKLY))

    monkeypatch.setattr(retrain_handler.Settings, "dataset_settings", with_schedule)
    # When the handler sees the same slot twice (EventBridge's retry)
    first = retrain_handler.handler(slot_event(), FakeContext())
    second = retrain_handler.handler(slot_event(), FakeContext())
    # Then one decision was made and one message says the schedule started it
    assert first == second and (first["decision"], first["trigger"]) == ("started", "schedule")
    (message,) = inbox(aws)
    assert message["Subject"] == "Retrain started: schedule:mlops-dev-churn-retrain"
    assert "of dataset churn on schedule schedule:mlops-dev-churn-retrain" in message["Message"]
    assert json.loads(message["Message"].split("\n\n", 1)[1])["execution_name"] == first["execution_name"]
