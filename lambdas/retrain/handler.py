"""CloudWatch alarm Lambda action -> the retrain guard's decision: logged, metered, notified, once per transition.

The alarm's name finds its dataset in the platform document (every declared dataset's retrain alarms, with their
comparison operators); the dataset's guard settings and manifest come from there too.

A direct invocation with ``{"source": "mlops.cli", ...}`` (``mlops retrain``) is an operator's request: the same
guard without the alarm-only checks (``lambdas.retrain.manual``), decided once per request id.

A dataset's retrain schedule (an EventBridge "Scheduled Event", ``source`` ``aws.events``, the dataset as its
``detail``) gets the same guard and data policy (``lambdas.retrain.scheduled``), decided once per slot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lambdas.retrain import logic, manual, scheduled
from lambdas.retrain.models import MANUAL_SOURCE, SCHEDULE_SOURCE, AlarmEvent, ManualRetrain, ScheduledRetrain
from lambdas.shared.aws import client
from lambdas.shared.idempotency import once_per
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.settings import from_environment
from pipelines.platform import platform

DECISION_METRIC = "RetrainDecision"


def _once_per(key: str, argument: str) -> Any:
    """``once_per`` with the idempotency records in the guard table (pk/sk)."""
    return once_per(key, argument=argument, table=lambda: settings().GUARD_TABLE, key_attr="pk", sort_key_attr="sk")


class Settings(BaseModel):
    """Parsed at first use: a missing variable fails loudly with its name."""

    STATE_MACHINE_ARN: str
    GUARD_TABLE: str
    TOPIC_ARN: str
    CURATED_BUCKET: str
    POWERTOOLS_SERVICE_NAME: str = "retrain"  # the dashboard reads RetrainDecision{decision, service=retrain}

    def logic_settings(self, alarm: str) -> logic.Settings:
        """The guard's settings for ``alarm``: its dataset's (an alarm of no declared dataset gets every known
        alarm, for the ``unknown_alarm`` refusal to list)."""
        document = platform()
        return self._for(document.by_alarm(alarm), document.retrain_alarms)

    def dataset_settings(self, name: str) -> logic.Settings:
        """The guard's settings for an operator's request about dataset ``name`` (empty when it is not declared)."""
        return self._for(platform().datasets.get(name), {})

    def _for(self, dataset: Any, every_alarm: dict[str, str]) -> logic.Settings:
        return logic.Settings(
            guard_table=self.GUARD_TABLE,
            state_machine_arn=self.STATE_MACHINE_ARN,
            topic_arn=self.TOPIC_ARN,
            curated_bucket=self.CURATED_BUCKET,
            manifest_key=dataset.names.manifest_key if dataset else "",
            alarms=dict(dataset.names.retrain_alarms) if dataset else every_alarm,
            guard=logic.Guard(**dataset.retrain) if dataset else logic.Guard(),
            dataset=dataset.name if dataset else "",
            schema=dataset.schema if dataset else None,
        )


settings = from_environment(Settings)


@lru_cache(maxsize=1)
def _clients() -> logic.Clients:
    return logic.Clients(
        dynamodb=client("dynamodb"),
        sfn=client("stepfunctions"),
        s3=client("s3"),
        sns=client("sns"),
    )


@_once_per("[alarm_arn, state, timestamp_text]", "transition")
def decide_once(transition: dict[str, Any]) -> dict[str, Any]:
    """One decision per alarm transition."""
    parsed = logic.Transition(**{**transition, "timestamp": logic.parse_time(transition["timestamp_text"])})
    return _record(logic.decide(_clients(), settings().logic_settings(parsed.alarm), parsed))


def _record(decision: logic.Decision) -> dict[str, Any]:
    logger.info(f"retrain {decision.decision}: {decision.reason}", extra=decision.to_dict())
    metrics.add_dimension(name="decision", value=decision.decision)
    metrics.add_dimension(name="service", value=settings().POWERTOOLS_SERVICE_NAME)
    metrics.add_metric(name=DECISION_METRIC, unit=MetricUnit.Count, value=1)
    logic.notify(_clients().sns, settings().TOPIC_ARN, decision)
    return decision.to_dict()


@_once_per("[dataset, request_id]", "request")
def request_once(request: dict[str, Any]) -> dict[str, Any]:
    """One decision per operator request (a retried invocation answers with the recorded decision)."""
    parsed = ManualRetrain.model_validate(request)
    decision = manual.decide(
        _clients(), settings().dataset_settings(parsed.dataset), parsed, datetime.now(UTC), platform().names
    )
    return _record(decision)


@_once_per("[dataset, time]", "slot")
def schedule_once(slot: dict[str, Any]) -> dict[str, Any]:
    """One decision per slot of a dataset's retrain schedule (a retried delivery answers with the recorded one)."""
    parsed = ScheduledRetrain.model_validate(slot["event"])
    decision = scheduled.decide(
        _clients(), settings().dataset_settings(parsed.detail.dataset), parsed, platform().names
    )
    return _record(decision)


@event_parser(model=AlarmEvent)
def _on_alarm(event: AlarmEvent, context: LambdaContext) -> dict[str, Any]:
    transition = logic.Transition.from_event(event)
    payload = {k: v for k, v in transition.__dict__.items() if k != "timestamp"}
    return decide_once(payload, context)


@event_parser(model=ManualRetrain)
def _on_request(event: ManualRetrain, context: LambdaContext) -> dict[str, Any]:
    return request_once(event.model_dump(), context)


@event_parser(model=ScheduledRetrain)
def _on_schedule(event: ScheduledRetrain, context: LambdaContext) -> dict[str, Any]:
    slot = {"dataset": event.detail.dataset, "time": event.time, "event": event.model_dump(by_alias=True)}
    return schedule_once(slot, context)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("source") == MANUAL_SOURCE:
        return _on_request(event, context)
    if isinstance(event, dict) and event.get("source") == SCHEDULE_SOURCE:
        return _on_schedule(event, context)
    return _on_alarm(event, context)
