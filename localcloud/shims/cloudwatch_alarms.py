"""CloudWatch alarms evaluate their metric and run their actions (moto 5.2.5 does neither).

- ``evaluate_all(now)`` (called by the local cloud's ticker) evaluates every metric alarm against moto's
  stored datapoints (``localcloud.runtime.alarms``) and moves its state through ``update_state``.
- Patch point ``moto.cloudwatch.models.Alarm.update_state``: on a state change (also one made through the
  SetAlarmState API, as in CloudWatch) the actions for the new state run when ``ActionsEnabled``: a Lambda
  ARN is invoked asynchronously with the CloudWatch alarm event, an SNS topic gets the alarm message.
- Permissions, as CloudWatch needs them: a Lambda action runs only if the function's resource-based policy allows
  ``lambda.alarms.cloudwatch.amazonaws.com`` with the alarm as ``aws:SourceArn``
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-actions);
  an SNS action needs the topic policy to allow ``cloudwatch.amazonaws.com`` ``sns:Publish`` and, for an encrypted
  topic, the key policy to allow it ``kms:GenerateDataKey*`` and ``kms:Decrypt``
  (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.utilities.arns import parse_arn

from localcloud.clock import clock
from localcloud.runtime import alarms
from localcloud.runtime.journal import journal

_installed = False
_cloud: Any = None
_lock = threading.RLock()
_original_update = cw_models.Alarm.update_state


def set_cloud(cloud: Any) -> None:
    global _cloud
    _cloud = cloud


def update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
    previous = {
        "value": self.state_value,
        "reason": self.state_reason,
        "reasonData": self.state_reason_data,
        "timestamp": alarms.iso(alarms.epoch(self.state_updated_timestamp)),
    }
    _original_update(self, reason, reason_data, state_value)
    if previous["value"] == state_value:
        return
    now = clock.time()
    journal.record("alarm", alarm=self.name, state=state_value, previous=previous["value"], reason=reason)
    if _cloud is None or not self.actions_enabled:
        return
    actions = {"ALARM": self.alarm_actions, "OK": self.ok_actions, "INSUFFICIENT_DATA": self.insufficient_data_actions}
    account_id, region = _cloud.account_id, _cloud.region
    for arn in actions.get(state_value) or []:
        service = parse_arn(arn).service
        if service == "lambda":
            event = alarms.alarm_event(self, previous, account_id, region, now)
            _cloud.dispatcher.submit(_invoke, arn, event, self.name)
        elif service == "sns":
            message = alarms.sns_message(self, previous["value"], account_id, region, now)
            _cloud.dispatcher.submit(_publish, arn, message, self.name, state_value)


def _alarm_arn(alarm_name: str) -> str:
    return f"arn:aws:cloudwatch:{_cloud.region}:{_cloud.account_id}:alarm:{alarm_name}"


def _invoke(function_arn: str, event: dict[str, Any], alarm_name: str) -> None:
    from localcloud.shims.events_targets import invoke_async, service_may_invoke

    source = f"alarm {alarm_name}"
    if service_may_invoke(function_arn, "lambda.alarms.cloudwatch.amazonaws.com", _alarm_arn(alarm_name), source):
        invoke_async(function_arn, event, source=source)


def _publish(topic_arn: str, message: str, alarm_name: str, state: str) -> None:
    enforcer = getattr(_cloud, "iam", None)
    if enforcer is not None:
        from localcloud.iam import calls
        from localcloud.iam.enforcer import AccessDenied

        account = [_cloud.account_id]  # SNS's default topic policy matches aws:SourceOwner, set to the alarm's account
        context = {"aws:sourcearn": [_alarm_arn(alarm_name)], "aws:sourceaccount": account, "aws:sourceowner": account}
        try:
            caller = enforcer.service("cloudwatch.amazonaws.com")
            enforcer.check_call(caller, calls.Call("sns", "Publish", {"TopicArn": topic_arn}), context)
        except AccessDenied as denied:
            journal.record(
                "alarm-action", alarm=alarm_name, target=topic_arn, outcome="access-denied", error=str(denied)
            )
            return
    _cloud.clients.sns.publish(
        TopicArn=topic_arn, Subject=f'{state}: "{alarm_name}" in {_cloud.region}'[:100], Message=message
    )
    journal.record("alarm-action", alarm=alarm_name, target=topic_arn, outcome="published")


def evaluate_all(account_id: str, region: str, now: float | None = None) -> dict[str, str]:
    """Evaluate every metric alarm; returns alarm name -> state."""
    backend = cw_models.cloudwatch_backends[account_id][region]
    moment = clock.time() if now is None else now
    states = {}
    with _lock:
        datums = list(backend.metric_data)
        for alarm in list(backend.alarms.values()):
            if not alarm.metric_name or alarm.metric_data_queries:
                continue  # metric-math and composite alarms are not evaluated locally
            dimensions = {str(d.name): str(d.value) for d in alarm.dimensions}
            points = alarms.matching(datums, alarm.namespace, alarm.metric_name, dimensions)
            result = alarms.evaluate(alarm, points, moment)
            if result.state != alarm.state_value:
                alarm.update_state(result.reason, json.dumps(result.reason_data), result.state)
            states[alarm.name] = alarm.state_value
    return states


def install() -> None:
    global _installed
    if _installed:
        return
    cw_models.Alarm.update_state = update_state  # type: ignore[method-assign]
    _installed = True
