"""The local cloud's heartbeat: scheduled EventBridge rules fire, alarms are evaluated, capture is flushed.

moto stores ``rate(...)`` rules but never fires them. The ticker fires each enabled scheduled rule at every
``rate`` of cloud time (first at deployment + rate, like EventBridge), delivering a "Scheduled Event" whose
``time`` is the slot it stands for (slots skipped by a clock ``advance`` are fired in order). It also
evaluates the CloudWatch alarms and writes buffered data capture, every ``interval`` real seconds.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends

from localcloud.clock import clock
from localcloud.runtime.journal import journal

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
MAX_CATCH_UP = 48


def rate_seconds(expression: str) -> int | None:
    match = _RATE.match(expression.strip())
    return int(match[1]) * _UNIT[match[2]] if match else None


class Ticker:
    def __init__(self, cloud: Any, interval: float = 0.1) -> None:
        self.cloud = cloud
        self.interval = interval
        self._next: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="localcloud-ticker")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as error:  # the heartbeat must survive a bad tick; the journal says what broke
                journal.record("ticker-error", error=f"{type(error).__name__}: {error}")

    def tick(self) -> None:
        with self._lock:
            self.fire_schedules()
            from localcloud.shims import cloudwatch_alarms

            cloudwatch_alarms.evaluate_all(self.cloud.account_id, self.cloud.region)
            if self.cloud.endpoints is not None:
                self.cloud.endpoints.flush_capture()

    def align(self) -> None:
        """Restart every scheduled rule's period now (its next slot is one full period away)."""
        backend = events_backends[self.cloud.account_id][self.cloud.region]
        now = clock.time()
        with self._lock:
            for bus in backend.event_buses.values():
                for rule in bus.rules.values():
                    period = rate_seconds(getattr(rule, "scheduled_expression", None) or "")
                    if period:
                        self._next[rule.arn] = now + period

    def fire_schedules(self) -> int:
        backend = events_backends[self.cloud.account_id][self.cloud.region]
        now = clock.time()
        fired = 0
        for bus in backend.event_buses.values():
            for rule in list(bus.rules.values()):
                expression = getattr(rule, "scheduled_expression", None)
                period = rate_seconds(expression) if expression else None
                if period is None or rule.state != "ENABLED" or not rule.targets:
                    continue
                due = self._next.setdefault(rule.arn, now + period)
                slots: list[dict[str, Any]] = []
                while due <= now and len(slots) < MAX_CATCH_UP:
                    event = {
                        "version": "0",
                        "id": str(uuid.uuid4()),
                        "detail-type": "Scheduled Event",
                        "source": "aws.events",
                        "account": self.cloud.account_id,
                        "time": datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "region": self.cloud.region,
                        "resources": [rule.arn],
                        "detail": {},
                    }
                    slots.append(event)
                    journal.record("schedule", rule=rule.name, slot=event["time"])
                    due += period
                self._next[rule.arn] = due
                if slots:
                    fired += len(slots)
                    self.cloud.dispatcher.submit(self._deliver_in_order, rule.name, list(rule.targets), slots)
        return fired

    @staticmethod
    def _deliver_in_order(rule_name: str, targets: list[dict[str, Any]], slots: list[dict[str, Any]]) -> None:
        from localcloud.shims.events_targets import deliver, target_input

        for event in slots:
            for target in targets:
                deliver(rule_name, target, target_input(target, event))
