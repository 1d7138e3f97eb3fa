"""What CloudWatch does with Lambda output: log events into the function's log group, and Embedded Metric
Format (EMF) lines into CloudWatch metrics."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any


def emf_metric_data(line: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, PutMetricData entries) for one EMF log line; [] for any other line.

    EMF: ``{"_aws": {"Timestamp": ms, "CloudWatchMetrics": [{"Namespace", "Dimensions": [[names]],
    "Metrics": [{"Name", "Unit"}]}]}, "<dimension>": "value", "<metric>": number | [numbers]}``.
    """
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return []
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return []
    aws = document.get("_aws")
    if not isinstance(aws, dict):
        return []
    timestamp = datetime.fromtimestamp(float(aws.get("Timestamp", time.time() * 1000)) / 1000, UTC)
    out = []
    for directive in aws.get("CloudWatchMetrics", []):
        entries = []
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics", []):
            value = document.get(metric["Name"])
            if value is None:
                continue
            values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
            for names in dimension_sets:
                entry: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": [{"Name": n, "Value": str(document[n])} for n in names if n in document],
                    "Timestamp": timestamp,
                    "Values": values,
                }
                if metric.get("Unit"):
                    entry["Unit"] = metric["Unit"]
                entries.append(entry)
        if entries:
            out.append((str(directive["Namespace"]), entries))
    return out


class LogSink:
    """Writes Lambda output to CloudWatch Logs and EMF metrics to CloudWatch (through the local APIs).

    ``close()`` when the cloud stops: CloudWatch goes away with it, so output that work still in flight
    produces afterwards (a Lambda cut short, a job killed) has nowhere to go and is dropped, not raised."""

    def __init__(self, logs: Any, cloudwatch: Any) -> None:
        self.logs = logs
        self.cloudwatch = cloudwatch
        self.metrics_published = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def write(self, log_group: str, stream: str, text: str) -> None:
        if self.closed:
            return
        try:
            self._write(log_group, stream, text)
        except Exception:
            if not self.closed:
                raise  # the cloud is up: a real failure

    def _write(self, log_group: str, stream: str, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=log_group)
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
        now = int(time.time() * 1000)
        self.logs.put_log_events(
            logGroupName=log_group,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in lines],
        )
        for line in lines:
            for namespace, entries in emf_metric_data(line):
                for start in range(0, len(entries), 500):
                    self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=entries[start : start + 500])
                self.metrics_published += len(entries)
