"""The local cloud's clock: cloud time runs ``scale`` times faster than real time, and can be fast-forwarded.

Time-driven behaviour of the local cloud (Step Functions Wait states and ``.sync`` polling, canary bake
times, alarm periods, scheduled rules, asynchronous retries, metric and capture timestamps) reads this
clock, so every component sees one coherent cloud time: with ``scale=120`` a 5-minute canary bake takes
2.5 real seconds and a 1-minute alarm period half a second. ``advance`` jumps forward (an hour of drift
monitoring in an instant); whatever is scheduled in between is then due.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

DEFAULT_SCALE = 1.0
"""Real time until a LocalCloud sets its speed (``LocalCloud(time_scale=...)``); tests freeze it or advance it."""


class Clock:
    def __init__(self, scale: float = DEFAULT_SCALE) -> None:
        self._lock = threading.Condition()
        self._origin_wall = time.time()
        self._origin_real = time.monotonic()
        self._offset = 0.0
        self._sleepers = 0
        self.scale = scale

    def time(self) -> float:
        """Seconds since the epoch on the cloud's clock."""
        return self._origin_wall + (time.monotonic() - self._origin_real) * self.scale + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of cloud time pass (``seconds / scale`` real seconds, or less after an advance)."""
        target = self.time() + max(0.0, seconds)
        with self._lock:
            self._sleepers += 1
            try:
                while (remaining := target - self.time()) > 0:
                    self._lock.wait(timeout=remaining / self.scale)
            finally:
                self._sleepers -= 1

    @property
    def sleepers(self) -> int:
        """How many threads sleep on this clock now (their wake-up time is set: an advance from now counts)."""
        with self._lock:
            return self._sleepers

    def advance(self, seconds: float) -> None:
        """Jump forward (never backward); sleepers whose time has come wake up."""
        if seconds < 0:
            raise ValueError("the clock never goes back")
        with self._lock:
            self._offset += seconds
            self._lock.notify_all()

    def set_scale(self, scale: float) -> None:
        """Change the speed from now on (cloud time stays continuous)."""
        if scale <= 0:
            raise ValueError("scale must be positive")
        with self._lock:
            now = self.time()
            self._origin_wall, self._origin_real, self._offset = now, time.monotonic(), 0.0
            self.scale = scale
            self._lock.notify_all()

    def reset(self) -> None:
        with self._lock:
            self._origin_wall, self._origin_real, self._offset = time.time(), time.monotonic(), 0.0
            self._lock.notify_all()


clock = Clock()
"""The process-wide clock (the moto server and every shim run in one process)."""
