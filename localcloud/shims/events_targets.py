"""EventBridge rules deliver to Lambda functions and Step Functions state machines.

moto 5.2.5 delivers only to log groups, archives, SQS and event buses; a Lambda or Step Functions target
raises NotImplementedError (and stops delivery to later rules of the same event). Patch point:
``moto.events.models.Rule.send_to_targets``. Targets of those two kinds are delivered asynchronously on
the local cloud's dispatcher, as EventBridge does: the input transformer of the target applies, Lambda
targets are invoked asynchronously (a function error is retried twice, after 1 and 2 minutes of cloud
time, like Lambda's asynchronous invocation), state machine targets start an execution with a generated
name. Every other target still goes through moto. S3's EventBridge events get a unique id per event
(moto reuses one constant id) and every event's ``time`` is rendered as ISO 8601, as EventBridge sends it.

Permissions, as EventBridge needs them (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html):
a Lambda target is invoked only if the function's resource-based policy allows ``events.amazonaws.com``
``lambda:InvokeFunction`` (with the rule as ``aws:SourceArn``); a Step Functions target is started with the rule
target's ``RoleArn`` (assumed by ``events.amazonaws.com``), whose policy must allow ``states:StartExecution``. A
denied delivery is dropped (EventBridge counts a failed invocation) and recorded by the local cloud's IAM.

Schedules (patch point ``moto.events.models.EventsBackend.put_rule``): moto accepts any ``cron(...)`` and a
loose ``rate(...)``; a rule's ``ScheduleExpression`` is checked as EventBridge checks it
(``pipelines.schedules``) when the rule is created, through the API or CloudFormation, so an invalid
expression, or one the local cloud's ticker cannot fire, fails the deployment with the reason.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events import models as events_models
from moto.events.utils import _BASE_EVENT_MESSAGE
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
    """The event as EventBridge delivers it: a unique id and an ISO ``time`` on the cloud clock (moto stamps
    the events it generates with the real time of the host)."""
    event = dict(event)
    if event.get("id") in (None, "", _BASE_EVENT_MESSAGE["id"]):
        event["id"] = str(uuid.uuid4())
    stamp = event.get("time")
    event["time"] = _iso(clock.time() if stamp in (None, "") or isinstance(stamp, int | float) else stamp)
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
        return transform(transformer.get("InputTemplate") or "", transformer.get("InputPathsMap") or {}, event)
    return event


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def transform(template: str, paths: dict[str, str], event: dict[str, Any]) -> Any:
    """EventBridge's input transformer. A placeholder outside a JSON string is replaced by the value as JSON
    (strings quoted); inside a string literal, by its text. (moto always inserts the raw text, so a string
    value in ``{"arn": <arn>}`` becomes invalid JSON.)"""
    from jsonpath_ng.ext import parse

    values: dict[str, Any] = {"aws.events.event": event, "aws.events.event.json": event}
    for name, path in paths.items():
        matches = parse(path).find(event)
        values[name] = matches[0].value if matches else None
    out, in_string, escaped, index = [], False, False, 0
    while index < len(template):
        char = template[index]
        if not in_string or not escaped:
            match = _PLACEHOLDER.match(template, index)
            if match and match[1] in values:
                value = values[match[1]]
                if in_string:
                    out.append(
                        json.dumps("" if value is None else value if isinstance(value, str) else json.dumps(value))[
                            1:-1
                        ]
                    )
                else:
                    out.append(json.dumps(value))
                index = match.end()
                continue
        out.append(char)
        if in_string:
            if char == '"' and not escaped:  # an escaped quote (\") does not end the string
                in_string = False
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        index += 1
    text = "".join(out)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a plain-text template is delivered as text


def service_may_invoke(function_arn: str, service: str, source_arn: str, call: str) -> bool:
    """Whether the function's resource-based policy lets ``service`` invoke it for ``source_arn`` (the rule or
    alarm); the decision is recorded, and a denial refuses the delivery when IAM is enforced."""
    from localcloud.iam.enforcer import AccessDenied

    enforcer = getattr(_cloud, "iam", None)
    if enforcer is None:
        return True
    context = {"aws:sourcearn": [source_arn], "aws:sourceaccount": [_cloud.account_id]}
    try:
        enforcer.check(enforcer.service(service), "lambda:InvokeFunction", function_arn, context, call=call)
    except AccessDenied as denied:
        journal.record("invoke-async", source=call, target=function_arn, outcome="access-denied", error=str(denied))
        return False
    return True


def invoke_async(function_arn: str, payload: Any, source: str) -> bool:
    """An asynchronous Lambda invocation: a function error is retried twice (after 1 and 2 minutes of cloud
    time), as Lambda does for asynchronous events, then goes to the function's dead-letter queue (``dead_letter``).
    Returns whether an attempt succeeded."""
    clients = _cloud.clients
    for attempt in range(1 + len(ASYNC_RETRY_DELAYS)):
        response = clients.lambda_.invoke(
            FunctionName=function_arn, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
        body = response["Payload"].read().decode()
        if not response.get("FunctionError"):
            journal.record(
                "invoke-async",
                source=source,
                target=function_arn,
                outcome="ok",
                attempt=attempt + 1,
                result=body[:2000],
            )
            return True
        journal.record(
            "invoke-async",
            source=source,
            target=function_arn,
            outcome="function-error",
            attempt=attempt + 1,
            error=body[:2000],
        )
        if attempt < len(ASYNC_RETRY_DELAYS):
            clock.sleep(ASYNC_RETRY_DELAYS[attempt])
    dead_letter(function_arn, payload, str(response.get("ResponseMetadata", {}).get("RequestId", "")), body, source)
    return False


def dead_letter(function_arn: str, payload: Any, request_id: str, error: str, source: str) -> bool:
    """After the last retry Lambda sends the event to the function's ``DeadLetterConfig`` queue, with the
    function's execution role, the event as the body and ``RequestID``, ``ErrorCode`` and ``ErrorMessage`` as
    message attributes (AWS Lambda Developer Guide, "Asynchronous invocation", dead-letter queues:
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq); the role
    needs ``sqs:SendMessage`` and, for an SSE-KMS queue, ``kms:GenerateDataKey`` and ``kms:Decrypt`` on its key.
    Without a queue (or a denied send) the event is dropped. Returns whether the event was kept."""
    from moto.awslambda.models import lambda_backends
    from moto.sqs.models import sqs_backends

    function = lambda_backends[_cloud.account_id][_cloud.region].get_function(function_arn)
    queue_arn = str(getattr(function, "local_dead_letter_arn", "") or "")
    if not queue_arn:
        journal.record("dead-letter", source=source, target=function_arn, outcome="dropped")
        return False
    queue_name = queue_arn.rsplit(":", 1)[-1]
    enforcer = getattr(_cloud, "iam", None)
    if enforcer is not None and function.role:
        from localcloud.iam.enforcer import AccessDenied

        caller = enforcer.caller_of(
            _cloud.credentials(str(function.role), "lambda.amazonaws.com", function.function_name)["AWS_ACCESS_KEY_ID"]
        )
        queue = sqs_backends[_cloud.account_id][_cloud.region].queues.get(queue_name)
        key_id = getattr(queue, "kms_master_key_id", None) if queue is not None else None
        key_arn = enforcer.world.key_arn(str(key_id)) if key_id else None
        via = {
            "kms:viaservice": [f"sqs.{_cloud.region}.amazonaws.com"],
            "kms:encryptioncontext:aws:sqs:arn": [queue_arn],
        }
        modelled = frozenset({"kms:viaservice", "kms:encryptioncontext:*"})
        call = "lambda: dead-letter SendMessage"
        try:
            if caller is not None:
                enforcer.check(caller, "sqs:SendMessage", queue_arn, call=call)
                for action in ("kms:GenerateDataKey", "kms:Decrypt") if key_arn else ():
                    enforcer.check(
                        caller, action, str(key_arn), via, call=call, via="sqs:SendMessage (SSE-KMS)", modelled=modelled
                    )
        except AccessDenied as denied:
            journal.record("dead-letter", source=source, target=function_arn, outcome="dropped", error=str(denied))
            return False
    sqs = _cloud.clients.sqs
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
        MessageBody=json.dumps(payload),
        MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": request_id or str(uuid.uuid4())},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": error[:1024] or "function error"},
        },
    )
    journal.record("dead-letter", source=source, target=function_arn, outcome="dead-lettered", queue=queue_arn)
    return True


def _rule_arn(rule_name: str) -> str:
    """The ARN of a rule of the default bus (a scheduled rule's delivery names only the rule)."""
    return f"arn:aws:events:{_cloud.region}:{_cloud.account_id}:rule/{rule_name}"


def deliver(rule_name: str, target: dict[str, Any], payload: Any, rule_arn: str = "") -> None:
    arn = target["Arn"]
    rule_arn = rule_arn or _rule_arn(rule_name)
    if parse_arn(arn).service == "states":
        name = str(uuid.uuid4())
        role = target.get("RoleArn")
        enforcer = getattr(_cloud, "iam", None)
        clients = (
            _cloud.clients_for(role, "events.amazonaws.com", "EventBridge", source_arn=rule_arn)
            if role and enforcer is not None
            else _cloud.clients
        )
        if enforcer is not None and not role:
            enforcer.check(
                enforcer.service("events.amazonaws.com"), "states:StartExecution", arn, call=f"rule {rule_name}"
            )
        response = clients.stepfunctions.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
        journal.record(
            "event-delivery",
            rule=rule_name,
            target=arn,
            outcome="execution-started",
            execution=response["executionArn"],
        )
        return
    if service_may_invoke(arn, "events.amazonaws.com", rule_arn, f"rule {rule_name}"):
        invoke_async(arn, payload, source=f"rule {rule_name}")


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
            _original_send(self, original_event, transform_input)  # type: ignore[arg-type]
        finally:
            self.targets = saved
    if not ours:
        return
    if _cloud is None:
        raise RuntimeError("EventBridge delivery to Lambda/Step Functions needs a running LocalCloud")
    event = normalise(original_event)
    for target in ours:
        _cloud.dispatcher.submit(deliver, self.name, target, target_input(target, event), self.arn)


_original_put_rule = events_models.EventsBackend.put_rule


def put_rule(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """PutRule, with the schedule expression checked as EventBridge checks it (and refused if it cannot fire)."""
    from moto.events.exceptions import ValidationException

    from pipelines import schedules

    expression = kwargs.get("scheduled_expression")
    if expression:
        try:
            schedules.parse(expression)
        except schedules.ScheduleError as error:
            raise ValidationException(f"{error} (rule {name}: {expression})") from None
    return _original_put_rule(self, name, *args, **kwargs)


def install() -> None:
    global _installed
    if _installed:
        return
    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
    events_models.EventsBackend.put_rule = put_rule  # type: ignore[method-assign]
    _installed = True
