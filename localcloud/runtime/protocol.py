"""The JSON-lines protocol of the local cloud's worker processes (Lambda workers, warm Glue drivers): one JSON
object per line on the worker's stdout, read by a pump thread; other lines (a library printing) are skipped."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any


class JsonLines:
    def __init__(self, process: subprocess.Popen[str], name: str = "worker") -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._process = process
        threading.Thread(target=self._pump, daemon=True, name=f"{name}-stdout").start()

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def read(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON object, or None when the process ended or ``timeout`` seconds passed."""
        deadline = time.time() + timeout
        while (remaining := deadline - time.time()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                return None
            line = line.strip()
            if line.startswith("{"):
                try:
                    return dict(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return None

    def send(self, request: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
