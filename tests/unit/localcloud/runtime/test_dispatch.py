"""The local cloud's dispatcher: asynchronous work, idleness, and failures that are recorded, not lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from localcloud.runtime.dispatch import Dispatcher
from localcloud.runtime.journal import journal


@pytest.fixture
def dispatcher(clean_journal: None) -> Iterator[Dispatcher]:
    work = Dispatcher(workers=2)
    yield work
    work.stop()


def test_submitted_work_runs_and_wait_idle_waits_for_it(dispatcher: Dispatcher) -> None:
    # Given work that blocks until released
    release, done = threading.Event(), []

    def job(name: str) -> str:
        release.wait(timeout=30)
        done.append(name)
        return name

    future = dispatcher.submit(job, "etl")
    # Then it is pending, and the dispatcher is not idle
    assert dispatcher.pending == 1
    assert dispatcher.wait_idle(timeout=0.05) is False
    # When it is released
    release.set()
    # Then it finishes, with its result, and the dispatcher is idle
    assert dispatcher.wait_idle(timeout=30) is True
    assert (future.result(timeout=1), done, dispatcher.pending) == ("etl", ["etl"], 0)


def test_a_failing_work_is_recorded_in_the_journal_and_its_future(dispatcher: Dispatcher) -> None:
    def deliver() -> None:
        raise ValueError("target gone")

    future = dispatcher.submit(deliver)
    assert dispatcher.wait_idle(timeout=30)
    with pytest.raises(ValueError, match="target gone"):
        future.result(timeout=1)
    [entry] = journal.of("internal-error")
    assert (entry.detail["work"], entry.detail["error"]) == ("deliver", "ValueError('target gone')")
    assert "raise ValueError" in entry.detail["trace"]
    assert len(dispatcher.errors) == 1 and dispatcher.pending == 0
