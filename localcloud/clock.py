"""The local cloud's clock: real time plus an offset that a demo or a test can advance.

Time-driven behaviour of the local cloud (Step Functions Wait states, canary bake times, alarm periods,
scheduled rules) reads this clock instead of ``time.time()``, so an hour of cloud time can pass in
milliseconds while every timestamp stays consistent. ``scale`` divides real sleeps: a Wait of 300 s
sleeps ``300 / scale`` real seconds and advances the clock by the rest.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

DEFAULT_SCALE = 1000.0


class Clock:
    def __init__(self, scale: float = DEFAULT_SCALE) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self.scale = scale

    def time(self) -> float:
        """Seconds since the epoch on the cloud's clock."""
        return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move cloud time forward (never backward)."""
        if seconds < 0:
            raise ValueError("the clock never goes back")
        with self._lock:
            self._offset += seconds

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of cloud time pass: sleep ``seconds / scale`` and advance by the remainder."""
        if seconds <= 0:
            return
        real = seconds / self.scale
        time.sleep(real)
        self.advance(seconds - real)

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


clock = Clock()
"""The process-wide clock (the moto server and every shim run in one process)."""
