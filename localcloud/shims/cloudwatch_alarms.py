"""CloudWatch alarms evaluate their metric and run their actions (moto 5.2.5 does neither).

- ``evaluate_all(now)`` (called by the local cloud's ticker) evaluates every alarm against moto's stored
  datapoints (``localcloud.runtime.alarms``) and moves its state through ``update_state``: metric alarms on their
  statistic, metric-math alarms on their expression (``localcloud.runtime.metric_math``), then composite alarms
  on their ``AlarmRule`` (composites of composites in order).
- Patch point ``moto.cloudwatch.models.Alarm.update_state``: on a state change (also one made through the
  SetAlarmState API, as in CloudWatch) the actions for the new state run when ``ActionsEnabled``: a Lambda
  ARN is invoked asynchronously with the CloudWatch alarm event, an SNS topic gets the alarm message.
- Permissions, as CloudWatch needs them: a Lambda action runs only if the function's resource-based policy allows
  ``lambda.alarms.cloudwatch.amazonaws.com`` with the alarm as ``aws:SourceArn``
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-actions);
  an SNS action needs the topic policy to allow ``cloudwatch.amazonaws.com`` ``sns:Publish`` and, for an encrypted
  topic, the key policy to allow it ``kms:GenerateDataKey*`` and ``kms:Decrypt``
  (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
- Patch point ``moto.cloudwatch.models.CloudWatchBackend.put_metric_alarm`` (PutMetricAlarm, and the
  CloudFormation alarm types): a new alarm starts in ``INSUFFICIENT_DATA`` ("Unchecked: Initial alarm creation")
  as CloudWatch's do (moto starts it in OK); an update keeps the alarm's state (PutMetricAlarm API reference);
  a metric-math alarm the local cloud cannot evaluate is refused with the reason.
- ``PutCompositeAlarm`` (moto has no such action): the rule is checked (its syntax, the alarms it names exist,
  no cycle) and the alarm stored as moto stores composites (``rule``), so DescribeAlarms lists it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.utilities.arns import parse_arn

from localcloud.clock import clock
from localcloud.runtime import alarms, metric_math
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
    """Evaluate every alarm (metric, metric math, then composite); returns alarm name -> state."""
    backend = cw_models.cloudwatch_backends[account_id][region]
    moment = clock.time() if now is None else now
    states = {}
    with _lock:
        datums = list(backend.metric_data)
        composites = []
        for alarm in list(backend.alarms.values()):
            if alarm.rule is not None:
                composites.append(alarm)
                continue
            result = _evaluation(alarm, datums, moment)
            if result is None:
                continue
            if result.state != alarm.state_value:
                alarm.update_state(result.reason, json.dumps(result.reason_data), result.state)
            states[alarm.name] = alarm.state_value
        states.update(_evaluate_composites(backend.alarms, composites, moment))
    return states


def _evaluation(alarm: Any, datums: list[Any], moment: float) -> alarms.Evaluation | None:
    if alarm.metric_data_queries:
        try:
            plan = alarms.math_plan(alarm.metric_data_queries, alarm.threshold_metric_id)
            values = alarms.evaluate_math(plan, datums, moment, int(alarm.evaluation_periods))
        except metric_math.MathError as error:  # refused at PutMetricAlarm; one stored behind the shim's back
            journal.record("alarm-refused", alarm=alarm.name, error=str(error))
            return None
        return alarms.judge(alarm, values, moment, plan.period, None)
    if not alarm.metric_name:
        return None
    dimensions = {str(d.name): str(d.value) for d in alarm.dimensions}
    points = alarms.matching(datums, alarm.namespace, alarm.metric_name, dimensions)
    return alarms.evaluate(alarm, points, moment)


def _evaluate_composites(every: dict[str, Any], composites: list[Any], moment: float) -> dict[str, str]:
    """Composite alarms, each after the composites its rule names (their new state counts at once)."""
    states: dict[str, str] = {}
    pending = {alarm.name: alarm for alarm in composites}
    while pending:
        ready = [a for a in pending.values() if not (alarms.parse_rule(a.rule).alarms() & set(pending) - {a.name})]
        for alarm in ready or list(pending.values()):  # a cycle (refused at creation) is evaluated as it stands
            result = alarms.composite_evaluation(alarm, alarms.parse_rule(alarm.rule), every, moment)
            if result.state != alarm.state_value:
                alarm.update_state(result.reason, json.dumps(result.reason_data), result.state)
            states[alarm.name] = alarm.state_value
            pending.pop(alarm.name)
    return states


# ---- PutMetricAlarm / PutCompositeAlarm ------------------------------------------------------------------

_original_put_metric_alarm = cw_models.CloudWatchBackend.put_metric_alarm
INITIAL_REASON = "Unchecked: Initial alarm creation"


def put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """PutMetricAlarm as CloudWatch answers it: a new alarm is INSUFFICIENT_DATA, an update keeps the state, a
    metric-math alarm the local cloud cannot evaluate is refused with the reason."""
    from moto.cloudwatch.exceptions import ValidationError

    queries = kwargs.get("metric_data_queries")
    if queries:
        try:
            alarms.math_plan(queries, kwargs.get("threshold_metric_id"))
        except metric_math.MathError as error:
            raise ValidationError(f"alarm {name}: {error}") from None
    previous = self.alarms.get(name)
    alarm = _original_put_metric_alarm(self, name, *args, **kwargs)
    if previous is None:
        alarm.state_value, alarm.state_reason, alarm.state_reason_data = "INSUFFICIENT_DATA", INITIAL_REASON, "{}"
    else:
        for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
            setattr(alarm, attribute, getattr(previous, attribute))
    return alarm


def put_composite_alarm(self: Any) -> Any:
    """PutCompositeAlarm (not in moto): the rule is checked, the alarm stored as moto stores composites."""
    from moto.cloudwatch.exceptions import ValidationError
    from moto.core.responses import EmptyResult

    name, rule = self._get_param("AlarmName"), self._get_param("AlarmRule")
    backend = self.cloudwatch_backend
    try:
        named = alarms.parse_rule(rule or "").alarms()
    except alarms.RuleError as error:
        raise ValidationError(f"composite alarm {name}: {error}") from None
    if _reaches(backend.alarms, named, name):
        raise ValidationError(f"composite alarm {name}: its AlarmRule would make a cycle through {name}")
    missing = sorted(n for n in named if n not in backend.alarms)
    if missing:
        raise ValidationError(f"Could not save the composite alarm as alarms {missing} in the alarm rule do not exist")
    if self._get_param("ActionsSuppressor"):
        raise ValidationError("ActionsSuppressor is not supported by the local cloud")
    backend.put_metric_alarm(
        name=name,
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        actions_enabled=self._get_bool_param("ActionsEnabled"),
        rule=rule,
        tags=self._get_param("Tags", []),
    )
    return EmptyResult()


def _reaches(every: dict[str, Any], names: set[str], target: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether the rules of ``names`` (and the composites they name, transitively) name ``target``."""
    for name in names - seen:
        if name == target:
            return True
        alarm = every.get(name)
        if (
            alarm is not None
            and alarm.rule
            and _reaches(every, alarms.parse_rule(alarm.rule).alarms(), target, seen | {name})
        ):
            return True
    return False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.cloudwatch.responses import CloudWatchResponse

    cw_models.Alarm.update_state = update_state  # type: ignore[method-assign]
    cw_models.CloudWatchBackend.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]
    CloudWatchResponse.put_composite_alarm = put_composite_alarm  # type: ignore[attr-defined]
    _installed = True
