"""A dataset's retrain schedule firing (``retrain: {schedule: "rate(7 days)"}`` in its declaration): the alarm path's
guard and data policy, minus the alarm-only checks.

The schedule is an EventBridge rule ``<prefix>-<dataset>-retrain`` whose target is this function, with the
"Scheduled Event" as input and the dataset as its ``detail`` (``models.ScheduledRetrain``). Guards, in order, each
returned as the decision's reason:

1. ``unknown_dataset``: the dataset must be declared in this stage (the platform document).
2. ``not_scheduled``: the declaration must still declare a schedule (an event of a schedule removed since, delivered
   late or retried, starts nothing).
3. ``no_data``, ``running``, ``cooldown`` and ``budget``: ``logic.guarded_start``, the claim the alarm path and
   ``mlops retrain`` make (one DynamoDB transaction per dataset), never forced: a schedule that fires inside an
   alarm's cooldown, or past the daily budget, is suppressed with the reason.

"Now" is the slot the rule fired for (the event's ``time``), so a retried delivery is judged at that moment. The
execution name is derived from the dataset and the slot: a duplicate delivery cannot start a second execution, and
the function decides once per slot (``handler.schedule_once``). The execution input names the trigger
(``{"source": "schedule", "schedule": <expression>, "rule", "time", "reason"}``) and the data plan the dataset's
data policy made, as an alarm's and an operator's retrain do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from lambdas.retrain.logic import Clients, Decision, Settings, Transition, decision_maker, guarded_start, parse_time
from lambdas.retrain.models import ScheduledRetrain


def execution_name(event: ScheduledRetrain) -> str:
    """Deterministic per dataset and slot, at most 80 characters of ``[A-Za-z0-9-_]``."""
    digest = hashlib.sha256(f"{event.detail.dataset}|{event.time}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", event.detail.dataset)[:40]
    return f"retrain-schedule-{slug}-{digest}"


def transition_of(event: ScheduledRetrain, expression: str) -> Transition:
    """The slot in the shape the guard table records (the ``alarm`` column names the rule)."""
    return Transition(
        alarm=f"schedule:{event.rule_name}"[:200],
        alarm_arn=event.resources[0],
        state="SCHEDULE",
        previous_state=None,
        reason=f"scheduled retrain ({expression or 'no schedule declared'})",
        reason_data=None,
        timestamp=parse_time(event.time),
        timestamp_text=event.time,
        period_seconds=None,
    )


def pipeline_input(
    manifest: dict[str, Any], event: ScheduledRetrain, expression: str, plan: dict[str, Any] | None
) -> dict[str, Any]:
    trigger = {
        "source": "schedule",
        "schedule": expression,
        "rule": event.rule_name,
        "time": event.time,
        "reason": f"scheduled retrain ({expression}), slot {event.time}",
    }
    return {
        "dataset": event.detail.dataset,
        "curated": manifest,
        "trigger": trigger,
        **({"data_plan": plan} if plan is not None else {}),
    }


def decide(clients: Clients, settings: Settings, event: ScheduledRetrain, declared: Sequence[str]) -> Decision:
    """Apply the guards to one slot of a dataset's schedule; start the pipeline when they pass. ``settings`` are
    the dataset's (its manifest, guard, schedule and data policy)."""
    dataset = event.detail.dataset
    expression = settings.guard.schedule
    transition = transition_of(event, expression)
    decision = decision_maker(transition, dataset, "schedule")

    known = sorted(declared)
    if dataset not in known or settings.dataset != dataset:
        return decision("suppressed", "unknown_dataset", f"dataset {dataset!r} is not one of {known}")
    if not expression:
        return decision(
            "suppressed", "not_scheduled", f"{dataset} declares no retrain.schedule now: {event.rule_name} is stale"
        )
    outcome = guarded_start(
        clients,
        settings,
        transition,
        execution_name(event),
        lambda manifest, plan: pipeline_input(manifest, event, expression, plan),
    )
    if not outcome.started:
        return decision("suppressed", outcome.guard, outcome.reason)
    reason = "already started for this slot" if outcome.again else f"{expression} slot {event.time}"
    return decision("started", "started", reason, outcome.execution_name, outcome.execution_arn)
