"""A retrain an operator asks for (``mlops retrain``): the alarm path's guard, minus the alarm-only checks.

The request is a direct Lambda invocation (``ManualRetrain``: ``{"source": "mlops.cli", "dataset", "reason",
"requested_by", "request_id", "force"}``). Guards, in order, each returned as the decision's reason:

1. ``unknown_dataset``: the dataset must be declared in this stage (the platform document).
2. ``no_data``: there must be a curated dataset version (``manifests/<dataset>/latest.json``) to train on; the
   run trains on what that manifest names plus the production rows the dataset's data policy adds, as the alarm
   path does (``logic.data_plan``: the execution input's ``data_plan``).
3. ``running``: no execution of the pipeline may be ``RUNNING`` for the dataset. Never bypassed, not even by
   ``force``: two runs of one dataset would register challengers against the same champion at once.
4. ``cooldown`` and ``budget``: the same DynamoDB transaction as the alarm path (``logic.claim_start``), so a
   manual start and an alarm's start see each other. ``force`` records the start without the two conditions;
   the decision, the notification and the execution input say it was forced.

"Now" is the Lambda's clock. The execution name is derived from the request id, so a retried invocation of the
same request cannot start a second execution.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lambdas.retrain.logic import Clients, Decision, Settings, Transition, decision_maker, guarded_start
from lambdas.retrain.models import ManualRetrain


def execution_name(request: ManualRetrain) -> str:
    """Deterministic per request, at most 80 characters of ``[A-Za-z0-9-_]``."""
    digest = hashlib.sha256(f"{request.dataset}|{request.request_id}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", request.dataset)[:40]
    return f"retrain-manual-{slug}-{digest}"


def transition_of(request: ManualRetrain, now: datetime) -> Transition:
    """The request in the shape the guard table records (the ``alarm`` column names who asked)."""
    text = now.astimezone(UTC).isoformat()
    return Transition(
        alarm=f"manual:{request.requested_by}"[:200],
        alarm_arn=f"mlops-cli:{request.dataset}:{request.request_id}",
        state="MANUAL",
        previous_state=None,
        reason=request.reason,
        reason_data=None,
        timestamp=now,
        timestamp_text=text,
        period_seconds=None,
    )


def pipeline_input(
    manifest: dict[str, Any], request: ManualRetrain, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    trigger = {
        "source": "manual",
        "reason": request.reason,
        "requested_by": request.requested_by,
        "forced": request.force,
    }
    return {
        "dataset": request.dataset,
        "curated": manifest,
        "trigger": trigger,
        **({"data_plan": plan} if plan is not None else {}),
    }


def decide(
    clients: Clients, settings: Settings, request: ManualRetrain, now: datetime, declared: Sequence[str]
) -> Decision:
    """Apply the guards to one request about a dataset of ``declared``; start the pipeline when they pass (or are
    forced past). ``settings`` are the dataset's (its manifest, guard and cooldown partition)."""
    transition = transition_of(request, now)
    decision = decision_maker(transition, request.dataset, "manual", request.force)

    known = sorted(declared)
    if request.dataset not in known or settings.dataset != request.dataset:
        return decision("suppressed", "unknown_dataset", f"dataset {request.dataset!r} is not one of {known}")
    outcome = guarded_start(
        clients,
        settings,
        transition,
        execution_name(request),
        lambda manifest, plan: pipeline_input(manifest, request, plan),
        force=request.force,
    )
    if not outcome.started:
        hint = {
            "no_data": ": upload one first",
            "cooldown": " (--force bypasses it)",
            "budget": " (--force bypasses it)",
        }
        return decision("suppressed", outcome.guard, outcome.reason + hint.get(outcome.guard, ""))
    if outcome.again:
        return decision(
            "started", "started", "already started for this request", outcome.execution_name, outcome.execution_arn
        )
    note = f"asked by {request.requested_by}: {request.reason}"
    if request.force:
        note += " (forced: cooldown and daily budget bypassed)"
    return decision("started", "started", note, outcome.execution_name, outcome.execution_arn)
