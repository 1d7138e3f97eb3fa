"""Managed-job state changes wake ``.sync`` waiters at once instead of at the next poll."""

from __future__ import annotations

import threading

from localcloud.runtime import jobs


def test_a_change_after_the_seen_generation_wakes_the_waiter() -> None:
    # Given a waiter that read the generation before looking at its job
    seen = jobs.job_generation()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(jobs.wait_for_job_change(seen, timeout=30.0)))
    waiter.start()
    # When a job changes state
    jobs.job_changed()
    waiter.join(timeout=30.0)
    # Then the waiter returns, reporting the change, and the generation moved on
    assert woke == [True]
    assert jobs.job_generation() != seen


def test_a_change_before_the_wait_is_not_missed_and_no_change_times_out() -> None:
    # Given a change that happened between reading the generation and waiting
    seen = jobs.job_generation()
    jobs.job_changed()
    # When waiting / Then it returns at once with the change; with nothing new it gives up after its timeout
    assert jobs.wait_for_job_change(seen, timeout=30.0) is True
    assert jobs.wait_for_job_change(jobs.job_generation(), timeout=0.0) is False
