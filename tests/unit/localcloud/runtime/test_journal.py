"""The local cloud's journal: what happened, in order, stamped with cloud time."""

from __future__ import annotations

import time

from localcloud.clock import clock
from localcloud.runtime.journal import Journal


def test_entries_are_kept_in_order_with_their_cloud_time_and_filtered_by_kind() -> None:
    # Given a journal
    book = Journal()
    before = clock.time()
    # When entries of two kinds are recorded
    first = book.record("alarm", alarm="drift", state="ALARM")
    book.record("invoke-async", target="retrain")
    third = book.record("alarm", alarm="drift", state="OK")
    # Then they come back in order, each kind on its own, stamped with the cloud clock
    assert [e.kind for e in book.all()] == ["alarm", "invoke-async", "alarm"]
    assert book.of("alarm") == [first, third]
    assert [e.detail["state"] for e in book.of("alarm")] == ["ALARM", "OK"]
    assert before <= first.at <= third.at <= clock.time()
    # And clearing empties it
    book.clear()
    assert book.all() == [] and book.of("alarm") == []


def test_entries_are_stamped_with_the_cloud_clock_not_the_wall_clock() -> None:
    # Given cloud time two hours ahead of the wall clock (as after the demo lets drift hours pass)
    book = Journal()
    clock.reset()
    clock.advance(7200)
    try:
        # When an entry is recorded
        entry = book.record("alarm")
        # Then it carries the cloud's time
        assert 7199 < entry.at - time.time() < 7200 + 60
    finally:
        clock.reset()


def test_the_lists_returned_are_copies() -> None:
    book = Journal()
    book.record("x")
    book.all().clear()
    book.of("x").clear()
    assert len(book.all()) == 1
