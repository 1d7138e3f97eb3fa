"""The CloudWatch alarm Lambda-action event (Powertools has a data class for it, no parser model).

Shape (docs: "Invoke a Lambda function from an alarm"): ``{"source": "aws.cloudwatch", "alarmArn", "accountId",
"time", "region", "alarmData": {"alarmName", "state": {"value", "reason", "reasonData", "timestamp"},
"previousState": {...}, "configuration": {"description", "metrics": [{"id", "metricStat": {"metric":
{"namespace", "name", "dimensions"}, "period", "stat"}, "returnData"}]}}}``. ``reasonData`` is a JSON string;
for a metric alarm it holds ``threshold``, ``period`` and ``evaluatedDatapoints`` (``timestamp`` and, when
there was data, ``value``), newest first.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class AlarmState(BaseModel):
    value: StateValue
    reason: str = ""
    reason_data: str | None = Field(default=None, alias="reasonData")
    timestamp: str

    def reason_data_decoded(self) -> dict[str, Any] | None:
        if not self.reason_data:
            return None
        try:
            decoded = json.loads(self.reason_data)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None


class AlarmData(BaseModel):
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState
    previous_state: AlarmState | None = Field(default=None, alias="previousState")
    configuration: dict[str, Any] = Field(default_factory=dict)

    def period_seconds(self) -> int | None:
        """The metric period from the alarm configuration (first metric with a metricStat)."""
        for metric in self.configuration.get("metrics") or []:
            period = (metric.get("metricStat") or {}).get("period")
            if period:
                return int(period)
        return None


class AlarmEvent(BaseModel):
    source: Literal["aws.cloudwatch"]
    alarm_arn: str = Field(alias="alarmArn")
    account_id: str = Field(alias="accountId")
    time: str
    region: str
    alarm_data: AlarmData = Field(alias="alarmData")


MANUAL_SOURCE = "mlops.cli"


class ManualRetrain(BaseModel):
    """A retrain an operator asks for by invoking the function directly (``mlops retrain``)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["mlops.cli"]
    dataset: str = Field(min_length=1, max_length=63)
    reason: str = Field(min_length=1, max_length=500)
    requested_by: str = Field(min_length=1, max_length=200)
    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    force: bool = False


SCHEDULE_SOURCE = "aws.events"


class ScheduledDetail(BaseModel):
    dataset: str = Field(min_length=1, max_length=63)


class ScheduledRetrain(BaseModel):
    """A dataset's retrain schedule firing: EventBridge's "Scheduled Event" as the rule's input transformer passes
    it (``stacks.constructs.dataset.scheduled_event_for``: the event's fields, the dataset as ``detail``)."""

    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    id: str = Field(min_length=1)
    time: str = Field(min_length=1)  # the slot the rule fired for (ISO-8601, UTC)
    resources: list[str] = Field(min_length=1)  # the rule's ARN
    detail: ScheduledDetail

    @property
    def rule_name(self) -> str:
        return self.resources[0].rsplit("/", 1)[-1]
