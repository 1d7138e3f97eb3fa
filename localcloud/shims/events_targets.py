"""EventBridge rules deliver to Lambda functions and Step Functions state machines.

moto 5.2.5 delivers only to log groups, archives, SQS and event buses; a Lambda or Step Functions target
raises NotImplementedError (and stops delivery to later rules of the same event). Patch point:
``moto.events.models.Rule.send_to_targets``. Targets of those two kinds are delivered asynchronously on
the local cloud's dispatcher, as EventBridge does: the input transformer of the target applies, Lambda
targets are invoked asynchronously (a function error is retried twice, after 1 and 2 minutes of cloud
time, like Lambda's asynchronous invocation), state machine targets start an execution with a generated
name. Every other target still goes through moto. S3's EventBridge events get a unique id per event
(moto reuses one constant id) and every event's ``time`` is rendered as ISO 8601, as EventBridge sends it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events import models as events_models
from moto.events.utils import _BASE_EVENT_MESSAGE, EventTemplateParser
from moto.utilities.arns import parse_arn

from localcloud.clock import clock
from localcloud.runtime.journal import journal

_installed = False
_cloud: Any = None
ASYNC_RETRY_DELAYS = (60.0, 120.0)
HANDLED_SERVICES = ("lambda", "states")


def set_cloud(cloud: Any) -> None:
    global _cloud
    _cloud = cloud


def _iso(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def normalise(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it: a unique id and an ISO ``time``."""
    event = dict(event)
    if event.get("id") in (None, "", _BASE_EVENT_MESSAGE["id"]):
        event["id"] = str(uuid.uuid4())
    event["time"] = _iso(event.get("time") or clock.time())
    event.pop("ingestion-time", None)
    return event


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives: Input, InputPath or InputTransformer applied to ``event``."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**event, "ingestion-time": event.get("time")},
        )
    return event


def deliver(rule_name: str, target: dict[str, Any], payload: Any) -> None:
    arn = target["Arn"]
    service = parse_arn(arn).service
    clients = _cloud.clients
    if service == "states":
        name = str(uuid.uuid4())
        response = clients.stepfunctions.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
        journal.record(
            "event-delivery",
            rule=rule_name,
            target=arn,
            outcome="execution-started",
            execution=response["executionArn"],
        )
        return
    attempts = 1 + len(ASYNC_RETRY_DELAYS)
    for attempt in range(attempts):
        response = clients.lambda_.invoke(
            FunctionName=arn, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read().decode()
        if not response.get("FunctionError"):
            journal.record(
                "event-delivery", rule=rule_name, target=arn, outcome="invoked", attempt=attempt + 1, result=body[:2000]
            )
            return
        journal.record(
            "event-delivery",
            rule=rule_name,
            target=arn,
            outcome="function-error",
            attempt=attempt + 1,
            error=body[:2000],
        )
        if attempt < len(ASYNC_RETRY_DELAYS):
            clock.sleep(ASYNC_RETRY_DELAYS[attempt])


_original_send = events_models.Rule.send_to_targets


def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    if getattr(self, "scheduled_expression", None) and not self.event_pattern.get_pattern():
        return  # a schedule rule has no event pattern: events never match it (moto's empty pattern matches all)
    if not self.event_pattern.matches_event(original_event):
        return
    ours = [t for t in self.targets if parse_arn(t["Arn"]).service in HANDLED_SERVICES]
    others = [t for t in self.targets if t not in ours]
    if others:
        saved = self.targets
        self.targets = others
        try:
            _original_send(self, original_event, transform_input)
        finally:
            self.targets = saved
    if not ours:
        return
    if _cloud is None:
        raise RuntimeError("EventBridge delivery to Lambda/Step Functions needs a running LocalCloud")
    event = normalise(original_event)
    for target in ours:
        _cloud.dispatcher.submit(deliver, self.name, target, target_input(target, event))


def install() -> None:
    global _installed
    if _installed:
        return
    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    _installed = True
