"""The retrain guard: decide whether an alarm transition starts the training pipeline, race-free.

Guards, in order (the first that says no decides; every decision is returned with its reason):

1. ``unknown_alarm``: only the retrain alarms of a declared dataset (name -> comparison operator, from the platform
   document); the alarm's dataset is the one retrained, and the following guards are per dataset.
2. ``stale``: a transition older than the last one recorded for the alarm (out-of-order delivery) is ignored.
3. ``not_alarm``: only a transition INTO ``ALARM`` acts. Every transition updates the alarm's breach record in
   the guard table; leaving ``ALARM`` clears it.
4. ``breaches``: at least ``consecutive_breaches`` consecutive breaching periods, ending at the newest
   evaluated period. Breaching periods come from the state's ``reasonData`` (each evaluated datapoint
   compared with the threshold using the alarm's operator) and accumulate in the alarm's breach record until
   the alarm leaves ``ALARM``: an alarm that flaps ALARM/OK with short breaches never acts.
5. ``no_data``: there must be a curated dataset (``manifests/<dataset>/latest.json``) to retrain on.
6. ``running``: no execution of the pipeline for the same dataset may be ``RUNNING`` (one started for this very
   transition counts as this decision having been made already); other datasets' runs do not block it.
7. ``cooldown`` and ``budget``: one DynamoDB transaction claims the start: the ``retrain#<dataset>/last`` item
   (condition: the dataset's last start is at least ``cooldown_minutes`` before now) and the
   ``retrain#<dataset>/day#<UTC date>`` item (condition: fewer than ``max_per_day`` transitions in its set). A retry
   of the same transition passes both conditions again without counting twice, so a crash between claim and start
   cannot lose the start.

"Now" is the alarm state's timestamp, so a late or retried delivery is judged at the moment the alarm changed.
The execution name is derived from the alarm ARN and that timestamp: a duplicate delivery can never start a
second execution (``ExecutionAlreadyExists``). In a stage that reserves concurrency (prod) the function also runs
with reserved concurrency 1, so decisions never overlap; without (dev, ``stacks.config.ConcurrencySettings``), two
concurrent decisions can both pass ``running``, and the claim's cooldown condition refuses the second start.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from lambdas.retrain.models import AlarmEvent
from lambdas.shared.production_data import plan_retrain
from pipelines.schema import DatasetSchema

Comparison = Literal[
    "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
]
COMPARE: dict[str, Any] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
MAX_REMEMBERED_BREACHES = 48
OPTIMISTIC_RETRIES = 3


class DynamoDBClient(Protocol):
    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def update_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]: ...


class StepFunctionsClient(Protocol):
    def list_executions(self, **kwargs: Any) -> dict[str, Any]: ...
    def describe_execution(self, **kwargs: Any) -> dict[str, Any]: ...
    def start_execution(self, **kwargs: Any) -> dict[str, Any]: ...


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...


class SnsClient(Protocol):
    def publish(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Guard:
    """``stacks.config.RetrainGuard`` as the Lambda sees it (the dataset's ``retrain`` in the platform document)."""

    cooldown_minutes: int = 360
    max_per_day: int = 2
    consecutive_breaches: int = 3
    schedule: str = ""  # the dataset's retrain schedule ("" for none): named in a scheduled run's trigger


@dataclass(frozen=True)
class Clients:
    dynamodb: DynamoDBClient
    sfn: StepFunctionsClient
    s3: S3Client
    sns: SnsClient


@dataclass(frozen=True)
class Settings:
    guard_table: str
    state_machine_arn: str
    topic_arn: str
    curated_bucket: str
    manifest_key: str
    alarms: Mapping[str, str]  # alarm name -> comparison operator
    guard: Guard
    dataset: str = ""  # the alarm's dataset ("" for an alarm of no declared dataset: alarms are then all known)
    schema: DatasetSchema | None = None  # the dataset's declaration: its data policy decides the training data


@dataclass(frozen=True)
class Transition:
    """One alarm state change, as the guard needs it."""

    alarm: str
    alarm_arn: str
    state: str
    previous_state: str | None
    reason: str
    reason_data: dict[str, Any] | None
    timestamp: datetime
    timestamp_text: str
    period_seconds: int | None

    @property
    def key(self) -> str:
        """Identifies this transition across deliveries."""
        return f"{self.alarm_arn}|{self.state}|{self.timestamp_text}"

    @classmethod
    def from_event(cls, event: AlarmEvent) -> Transition:
        data = event.alarm_data
        return cls(
            alarm=data.alarm_name,
            alarm_arn=event.alarm_arn,
            state=data.state.value,
            previous_state=data.previous_state.value if data.previous_state else None,
            reason=data.state.reason,
            reason_data=data.state.reason_data_decoded(),
            timestamp=parse_time(data.state.timestamp),
            timestamp_text=data.state.timestamp,
            period_seconds=data.period_seconds(),
        )


@dataclass(frozen=True)
class Decision:
    decision: Literal["started", "suppressed"]
    guard: str
    reason: str
    alarm: str
    transition_time: str
    execution_name: str | None = None
    execution_arn: str | None = None
    consecutive_breaches: int | None = None
    dataset: str | None = None
    trigger: Literal["alarm", "manual", "schedule"] = "alarm"
    forced: bool = False  # a manual start that bypassed cooldown and budget (``mlops retrain --force``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(text: str) -> datetime:
    """CloudWatch timestamps (``2023-08-04T12:36:15.490+0000``) and ISO-8601 as aware UTC datetimes."""
    moment = datetime.fromisoformat(text.strip())
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def execution_name(transition: Transition) -> str:
    """Deterministic per alarm transition, <= 80 characters of ``[A-Za-z0-9-_]``."""
    digest = hashlib.sha256(transition.key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", transition.alarm)[:50]
    return f"retrain-{slug}-{digest}"


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


# ---- breach record per alarm --------------------------------------------------------------------------


@dataclass(frozen=True)
class BreachUpdate:
    consecutive: int
    stale: bool
    detail: str


def _evaluated(transition: Transition, comparison: str) -> tuple[set[int], set[int], int | None, int | None]:
    """(breaching period starts, non-breaching ones, newest evaluated, period) from ``reasonData``."""
    data = transition.reason_data or {}
    threshold = data.get("threshold")
    period = data.get("period") or transition.period_seconds
    breaching: set[int] = set()
    clear: set[int] = set()
    points = data.get("evaluatedDatapoints") or []
    for point in points:
        try:
            moment = int(parse_time(str(point["timestamp"])).timestamp())
        except (KeyError, ValueError):
            continue
        value = point.get("value")
        if value is not None and threshold is not None and COMPARE[comparison](float(value), float(threshold)):
            breaching.add(moment)
        else:
            clear.add(moment)  # no data counts as not breaching (the alarms treat missing data so)
    newest = max(breaching | clear) if breaching or clear else None
    return breaching, clear, newest, int(period) if period else None


def _run_length(breaches: set[int], newest: int | None, period: int | None) -> int:
    if not breaches or not period:
        return 0
    end = max(breaches)
    if newest is not None and newest > end:
        return 0  # the newest evaluated period did not breach
    count = 0
    while end - count * period in breaches:
        count += 1
    return count


def update_breaches(dynamodb: DynamoDBClient, table: str, transition: Transition, comparison: str) -> BreachUpdate:
    """Record the transition in the alarm's breach item (optimistic concurrency on ``version``)."""
    key = {"pk": _s(f"alarm#{transition.alarm}"), "sk": _s("breaches")}
    moment = int(transition.timestamp.timestamp())
    for _ in range(OPTIMISTIC_RETRIES):
        item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
        version = int(item["version"]["N"]) if "version" in item else 0
        stored_time = int(item["state_time"]["N"]) if "state_time" in item else None
        if stored_time is not None and moment < stored_time:
            newer = datetime.fromtimestamp(stored_time, UTC)
            return BreachUpdate(0, True, f"a newer transition (at {newer:%Y-%m-%dT%H:%M:%SZ}) is recorded")
        stored = {int(x["N"]) for x in item.get("breaches", {}).get("L", [])}
        stored_period = int(item["period"]["N"]) if "period" in item else None
        breaching, clear, newest, period = _evaluated(transition, comparison)
        period = period or stored_period
        breaches = ((stored - clear) | breaching) if transition.state == "ALARM" else set()
        kept = sorted(breaches)[-MAX_REMEMBERED_BREACHES:]
        consecutive = _run_length(set(kept), newest, period) if transition.state == "ALARM" else 0
        values: dict[str, Any] = {
            ":b": {"L": [_n(v) for v in kept]},
            ":s": _s(transition.state),
            ":t": _n(moment),
            ":nv": _n(version + 1),
            ":tk": _s(transition.key),
            ":p": _n(period or 0),
        }
        condition = "attribute_not_exists(pk)"
        if item:
            condition = "version = :v"
            values[":v"] = _n(version)
        try:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET breaches = :b, alarm_state = :s, state_time = :t, version = :nv, "
                "transition_key = :tk, period = :p",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except Exception as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                continue  # another writer got in between: read again
            raise
        if not breaching and not clear and transition.state == "ALARM":
            detail = "the alarm state carries no evaluated datapoints (reasonData)"
        else:
            detail = f"{len(breaching)} of {len(breaching) + len(clear)} evaluated periods breaching"
        return BreachUpdate(consecutive, False, detail)
    raise RuntimeError(f"breach record of {transition.alarm} kept changing; giving up after {OPTIMISTIC_RETRIES} tries")


# ---- the start slot: cooldown + daily budget in one transaction -----------------------------------------


def guard_key(dataset: str) -> str:
    """The partition of a dataset's cooldown and budget items (``retrain#<dataset>``)."""
    return f"retrain#{dataset}"


def claim_start(
    dynamodb: DynamoDBClient,
    table: str,
    guard: Guard,
    transition: Transition,
    name: str,
    dataset: str,
    *,
    force: bool = False,
) -> tuple[bool, str, str]:
    """(claimed, guard, reason): one transaction over the dataset's cooldown item and today's budget item.
    ``force`` (an operator's ``mlops retrain --force``) records the start in both items without their
    conditions, so the start counts against the budget and opens a new cooldown like any other."""
    pk = guard_key(dataset)
    now = int(transition.timestamp.timestamp())
    day = transition.timestamp.strftime("%Y-%m-%d")
    cutoff = now - guard.cooldown_minutes * 60
    expiration = int((transition.timestamp + timedelta(days=3)).timestamp())
    last: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": _s(pk), "sk": _s("last")},
        "UpdateExpression": "SET started_at = :now, transition_key = :tk, alarm = :alarm, execution_name = :name",
        "ConditionExpression": "attribute_not_exists(started_at) OR started_at <= :cutoff OR transition_key = :tk",
        "ExpressionAttributeValues": {
            ":now": _n(now),
            ":tk": _s(transition.key),
            ":alarm": _s(transition.alarm),
            ":name": _s(name),
            ":cutoff": _n(cutoff),
        },
    }
    budget: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": _s(pk), "sk": _s(f"day#{day}")},
        "UpdateExpression": "ADD transitions :tks SET expiration = :exp",
        "ConditionExpression": "attribute_not_exists(transitions) OR size(transitions) < :max "
        "OR contains(transitions, :tk)",
        "ExpressionAttributeValues": {
            ":tks": {"SS": [transition.key]},
            ":tk": _s(transition.key),
            ":max": _n(guard.max_per_day),
            ":exp": _n(expiration),
        },
    }
    if force:
        for update in (last, budget):
            del update["ConditionExpression"]
        del last["ExpressionAttributeValues"][":cutoff"]
        for placeholder in (":tk", ":max"):  # DynamoDB refuses values no expression uses
            budget["ExpressionAttributeValues"].pop(placeholder)
    try:
        dynamodb.transact_write_items(TransactItems=[{"Update": last}, {"Update": budget}])
    except Exception as error:
        if _error_code(error) != "TransactionCanceledException":
            raise
        return (False, *_explain_refusal(dynamodb, table, guard, transition, day, cutoff, pk))
    return True, "started", "claimed"


def _explain_refusal(
    dynamodb: DynamoDBClient, table: str, guard: Guard, transition: Transition, day: str, cutoff: int, pk: str
) -> tuple[str, str]:
    last = dynamodb.get_item(TableName=table, Key={"pk": _s(pk), "sk": _s("last")}, ConsistentRead=True).get("Item", {})
    started = int(last["started_at"]["N"]) if "started_at" in last else None
    if started is not None and started > cutoff:
        at = datetime.fromtimestamp(started, UTC)
        return (
            "cooldown",
            f"cooldown: the last retrain started at {at:%Y-%m-%dT%H:%M:%SZ} "
            f"({last.get('alarm', {}).get('S', '?')}), less than {guard.cooldown_minutes} min before "
            f"{transition.timestamp:%Y-%m-%dT%H:%M:%SZ}; next start allowed from "
            f"{at + timedelta(minutes=guard.cooldown_minutes):%Y-%m-%dT%H:%M:%SZ}",
        )
    budget = dynamodb.get_item(TableName=table, Key={"pk": _s(pk), "sk": _s(f"day#{day}")}, ConsistentRead=True).get(
        "Item", {}
    )
    used = len(budget.get("transitions", {}).get("SS", []))
    return "budget", f"daily budget: {used} of {guard.max_per_day} retrains already started on {day} (UTC)"


# ---- the decision ---------------------------------------------------------------------------------------


def _running(sfn: StepFunctionsClient, state_machine_arn: str, dataset: str) -> list[str]:
    """The RUNNING executions of the training state machine that train ``dataset`` (their input says which)."""
    page = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=100)
    names = []
    for execution in page.get("executions", []):
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        try:
            trains = json.loads(described.get("input") or "{}").get("dataset")
        except (ValueError, AttributeError):
            trains = None
        if trains == dataset:
            names.append(execution["name"])
    return names


def _manifest(s3: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except Exception as error:
        if _error_code(error) in ("NoSuchKey", "404"):
            return None
        raise


def data_plan(clients: Clients, settings: Settings, manifest: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """What the retrain trains and tests on (``pipelines.data_policy``), None for a dataset without a declaration."""
    if settings.schema is None:
        return None
    return plan_retrain(clients.s3, settings.curated_bucket, settings.schema, manifest, now)


def decision_maker(
    transition: Transition, dataset: str, trigger: Literal["manual", "schedule"], force: bool = False
) -> Callable[..., Decision]:
    """``decision(verdict, guard, reason, name=None, arn=None)`` about one operator request or schedule slot
    (``transition``, as the guard table records it); ``forced`` is set on a start made with ``force``."""

    def decision(verdict: str, guard: str, reason: str, name: str | None = None, arn: str | None = None) -> Decision:
        return Decision(
            verdict,  # type: ignore[arg-type]
            guard,
            reason,
            transition.alarm,
            transition.timestamp_text,
            name,
            arn,
            None,
            dataset=dataset,
            trigger=trigger,
            forced=force and verdict == "started",
        )

    return decision


@dataclass(frozen=True)
class Outcome:
    """What ``guarded_start`` did: started (or found started) an execution, or which guard refused and why."""

    started: bool
    guard: str
    reason: str
    execution_name: str | None = None
    execution_arn: str | None = None
    again: bool = False  # the execution had already been started for this very request or slot


def guarded_start(
    clients: Clients,
    settings: Settings,
    transition: Transition,
    name: str,
    execution_input: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]],
    *,
    force: bool = False,
) -> Outcome:
    """The guards an operator's and a schedule's retrain share, after their own: ``no_data``, ``running`` (never
    bypassed), then ``cooldown`` and ``budget`` (``claim_start``, bypassed with ``force``); then the start, its
    input made by ``execution_input(manifest, data plan)``. ``name`` is deterministic per request or slot, so a
    retried decision finds its own execution instead of starting a second."""
    manifest = _manifest(clients.s3, settings.curated_bucket, settings.manifest_key)
    if manifest is None:
        where = f"s3://{settings.curated_bucket}/{settings.manifest_key}"
        return Outcome(False, "no_data", f"no curated dataset to retrain on ({where})")
    arn = settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    running = _running(clients.sfn, settings.state_machine_arn, settings.dataset)
    if name in running:
        return Outcome(True, "started", "already started", name, arn, again=True)
    if running:
        return Outcome(False, "running", f"execution {running[0]} of the pipeline is RUNNING for {settings.dataset}")
    claimed, guard, reason = claim_start(
        clients.dynamodb, settings.guard_table, settings.guard, transition, name, settings.dataset, force=force
    )
    if not claimed:
        return Outcome(False, guard, reason)
    plan = data_plan(clients, settings, manifest, transition.timestamp)
    try:
        response = clients.sfn.start_execution(
            stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps(execution_input(manifest, plan))
        )
    except Exception as error:
        if _error_code(error) != "ExecutionAlreadyExists":
            raise
        return Outcome(True, "started", "already started", name, arn, again=True)
    return Outcome(True, "started", "started", name, response.get("executionArn") or arn)


def pipeline_input(
    dataset: str, manifest: Mapping[str, Any], transition: Transition, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The execution input (docs/contracts.md): the dataset, its latest curated version, the trigger, and the data
    plan its policy made (``data_plan``: which production rows train and test, or why none do)."""
    reason = transition.reason or f"alarm {transition.alarm} in ALARM"
    return {
        "dataset": dataset,
        "curated": dict(manifest),
        "trigger": {"source": "alarm", "alarm": transition.alarm, "reason": reason},
        **({"data_plan": plan} if plan is not None else {}),
    }


def decide(clients: Clients, settings: Settings, transition: Transition) -> Decision:
    """Apply the guards to one transition; start the pipeline when they all pass."""

    dataset = settings.dataset or None

    def suppressed(guard: str, reason: str, breaches: int | None = None) -> Decision:
        return Decision(
            "suppressed", guard, reason, transition.alarm, transition.timestamp_text, None, None, breaches, dataset
        )

    comparison = settings.alarms.get(transition.alarm)
    if comparison not in COMPARE or not settings.dataset:
        return suppressed("unknown_alarm", f"alarm {transition.alarm!r} is not one of {sorted(settings.alarms)}")
    needed = settings.guard.consecutive_breaches
    breaches = update_breaches(clients.dynamodb, settings.guard_table, transition, comparison)
    if breaches.stale:
        return suppressed("stale", f"out-of-order delivery ignored: {breaches.detail}")
    if transition.state != "ALARM":
        return suppressed("not_alarm", f"{transition.alarm} moved to {transition.state}: breach record cleared")
    if transition.previous_state == "ALARM":
        return suppressed("not_alarm", f"{transition.alarm} was already in ALARM: not a transition into ALARM")
    if breaches.consecutive < needed:
        return suppressed(
            "breaches",
            f"{breaches.consecutive} of {needed} consecutive breaching periods ({breaches.detail})",
            breaches.consecutive,
        )
    manifest = _manifest(clients.s3, settings.curated_bucket, settings.manifest_key)
    if manifest is None:
        return suppressed(
            "no_data", f"no curated dataset to retrain on (s3://{settings.curated_bucket}/{settings.manifest_key})"
        )
    name = execution_name(transition)
    running = _running(clients.sfn, settings.state_machine_arn, settings.dataset)
    if name in running:
        return _started(settings, transition, name, breaches.consecutive, "already started for this transition")
    if running:
        return suppressed(
            "running", f"execution {running[0]} of the pipeline is RUNNING for {settings.dataset}", breaches.consecutive
        )
    claimed, guard, reason = claim_start(
        clients.dynamodb, settings.guard_table, settings.guard, transition, name, settings.dataset
    )
    if not claimed:
        return suppressed(guard, reason, breaches.consecutive)
    try:
        response = clients.sfn.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=name,
            input=json.dumps(
                pipeline_input(
                    settings.dataset, manifest, transition, data_plan(clients, settings, manifest, transition.timestamp)
                )
            ),
        )
    except Exception as error:
        if _error_code(error) != "ExecutionAlreadyExists":
            raise
        return _started(settings, transition, name, breaches.consecutive, "already started for this transition")
    note = f"{breaches.consecutive} consecutive breaching periods: {transition.reason}"
    return _started(settings, transition, name, breaches.consecutive, note, response.get("executionArn"))


def _started(
    settings: Settings, transition: Transition, name: str, breaches: int, reason: str, arn: str | None = None
) -> Decision:
    arn = arn or settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    return Decision(
        "started", "started", reason, transition.alarm, transition.timestamp_text, name, arn, breaches, settings.dataset
    )


ROUTINE_GUARDS = frozenset({"not_alarm", "stale"})
"""Decisions nobody needs a message for: an alarm going back to OK (or staying in ALARM) and an out-of-order
delivery. They are still logged and counted in the RetrainDecision metric; with a few datasets, each alarm's
every recovery as an e-mail would bury the decisions that matter."""


def notify(sns: SnsClient, topic_arn: str, decision: Decision) -> None:
    """Publish the decision and its reason, unless it is routine (``ROUTINE_GUARDS``)."""
    if decision.guard in ROUTINE_GUARDS:
        return
    verb = "Retrain started" if decision.decision == "started" else f"Retrain suppressed ({decision.guard})"
    if decision.forced:
        verb += " (forced: cooldown and budget bypassed)"
    subject = f"{verb}: {decision.alarm}"[:100]  # the alarm's name starts with <prefix>-<dataset>-
    source = {"alarm": "on alarm", "schedule": "on schedule"}.get(decision.trigger, "asked by")
    of_dataset = f" of dataset {decision.dataset}" if decision.dataset else ""
    body = f"{verb}{of_dataset} {source} {decision.alarm} at {decision.transition_time}.\nReason: {decision.reason}\n\n"
    sns.publish(TopicArn=topic_arn, Subject=subject, Message=body + json.dumps(decision.to_dict(), indent=1))
