"""What happened in the local cloud, in order: deliveries, job runs, alarms, deployments, invocations.

The demo's summary and HTML report are built from this journal; tests assert on it too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from localcloud.clock import clock


@dataclass
class Entry:
    kind: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)


class Journal:
    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._lock = threading.Lock()

    def record(self, kind: str, **detail: Any) -> Entry:
        entry = Entry(kind, clock.time(), detail)
        with self._lock:
            self._entries.append(entry)
        return entry

    def of(self, kind: str) -> list[Entry]:
        with self._lock:
            return [e for e in self._entries if e.kind == kind]

    def all(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


journal = Journal()
