"""The local cloud's heartbeat: scheduled EventBridge rules fire, alarms are evaluated, capture is flushed.

moto stores scheduled rules but never fires them. The ticker fires each enabled scheduled rule with targets on
the cloud clock: a ``rate`` rule first one period after the ticker first sees it (like EventBridge: deployment +
rate), then every period; a ``cron`` rule at every UTC minute its expression names
(``pipelines.schedules``). Each firing delivers a "Scheduled Event" whose ``time`` is the slot it stands
for (slots skipped by a clock ``advance`` are fired in order, at most ``MAX_CATCH_UP`` per tick). An expression
the local cloud cannot fire is refused when the rule is created (``events_targets``); one that slipped through
is journaled as ``schedule-refused`` and never fires. The ticker also evaluates the CloudWatch alarms and writes
buffered data capture, every ``interval`` real seconds.
"""

from __future__ import annotations

import math
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends

from localcloud.clock import clock
from localcloud.runtime.journal import journal
from pipelines import schedules

MAX_CATCH_UP = 48


def rate_seconds(expression: str) -> int | None:
    """The period of a valid ``rate(...)`` expression; None for anything else."""
    try:
        schedule = schedules.parse(expression)
    except schedules.ScheduleError:
        return None
    return schedule.seconds if isinstance(schedule, schedules.Rate) else None


class Ticker:
    def __init__(self, cloud: Any, interval: float = 0.1) -> None:
        self.cloud = cloud
        self.interval = interval
        self._next: dict[str, float] = {}
        self._anchor: dict[str, float] = {}  # when a rate rule's period started
        self._refused: set[str] = set()
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

    def _schedule(self, rule: Any) -> schedules.Rate | schedules.Cron | None:
        expression = getattr(rule, "scheduled_expression", None)
        if not expression:
            return None
        try:
            return schedules.parse(expression)
        except schedules.ScheduleError as error:
            if rule.arn not in self._refused:
                self._refused.add(rule.arn)
                journal.record("schedule-refused", rule=rule.name, expression=expression, error=str(error))
            return None

    def _following(self, schedule: schedules.Rate | schedules.Cron, arn: str, after: float) -> float | None:
        if isinstance(schedule, schedules.Rate):
            return schedule.next_after(after, self._anchor.setdefault(arn, after))
        return schedule.next_after(after)

    def align(self) -> None:
        """Restart every scheduled rule's schedule now: a rate's next slot is one full period away, a cron's is
        the next minute it names."""
        backend = events_backends[self.cloud.account_id][self.cloud.region]
        now = clock.time()
        with self._lock:
            for bus in backend.event_buses.values():
                for rule in bus.rules.values():
                    schedule = self._schedule(rule)
                    if schedule is None:
                        continue
                    self._anchor[rule.arn] = now
                    following = self._following(schedule, rule.arn, now)
                    if following is not None:
                        self._next[rule.arn] = following

    def fire_schedules(self) -> int:
        backend = events_backends[self.cloud.account_id][self.cloud.region]
        now = clock.time()
        fired = 0
        for bus in backend.event_buses.values():
            for rule in list(bus.rules.values()):
                schedule = self._schedule(rule)
                if schedule is None or rule.state != "ENABLED" or not rule.targets:
                    continue
                due: float | None = self._next.get(rule.arn)
                if due is None:
                    due = self._following(schedule, rule.arn, now)
                slots: list[dict[str, Any]] = []
                while due is not None and due <= now and len(slots) < MAX_CATCH_UP:
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
                    due = self._following(schedule, rule.arn, due)
                self._next[rule.arn] = math.inf if due is None else due  # None: no later minute (past 2199)
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
