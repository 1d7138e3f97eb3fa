"""Asynchronous work of the local cloud (event deliveries, job runs) on a small thread pool.

``wait_idle`` lets a demo or a test wait until nothing is in flight: no pending delivery, no running job.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Dispatcher:
    def __init__(self, workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="localcloud")
        self._pending = 0
        self._idle = threading.Condition()
        self.errors: list[str] = []

    def submit(self, work: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1

        def run() -> Any:
            try:
                return work(*args)
            except Exception as error:
                from localcloud.runtime.journal import journal

                self.errors.append(traceback.format_exc())
                journal.record(
                    "internal-error",
                    work=getattr(work, "__name__", str(work)),
                    error=repr(error),
                    trace=traceback.format_exc()[-3000:],
                )
                raise
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        return self._pool.submit(run)

    @property
    def pending(self) -> int:
        return self._pending

    def wait_idle(self, timeout: float = 300.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
