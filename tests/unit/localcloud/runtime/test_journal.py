"""The local cloud's journal: what happened, in order, stamped with cloud time."""

from __future__ import annotations

from localcloud.clock import Clock, clock
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
    assert isinstance(clock, Clock)
    # And clearing empties it
    book.clear()
    assert book.all() == [] and book.of("alarm") == []


def test_the_lists_returned_are_copies() -> None:
    book = Journal()
    book.record("x")
    book.all().clear()
    book.of("x").clear()
    assert len(book.all()) == 1
