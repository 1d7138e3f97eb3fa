"""The local cloud's clock: scaled time, sleeps on cloud time, fast-forward, continuous speed changes."""

from __future__ import annotations

import threading
import time
from datetime import UTC

import pytest

from localcloud.clock import DEFAULT_SCALE, Clock, clock


def bracket(subject: Clock) -> tuple[float, float, float, float, float, float]:
    """(real before, cloud, real after) twice: cloud deltas are bounded by the real deltas around them."""
    r0 = time.monotonic()
    c0 = subject.time()
    r1 = time.monotonic()
    time.sleep(0.01)
    r2 = time.monotonic()
    c1 = subject.time()
    r3 = time.monotonic()
    return r0, c0, r1, r2, c1, r3


def test_a_clock_runs_at_real_speed_on_the_wall_clock_until_told_otherwise() -> None:
    # Given a new clock, and the process-wide one while no LocalCloud runs (a stopped cloud sets it back)
    subject = Clock()
    # Then both run at real speed, on the wall clock
    assert clock.scale == DEFAULT_SCALE
    assert DEFAULT_SCALE == 1.0 and subject.scale == 1.0
    assert abs(subject.time() - time.time()) < 5.0


def test_cloud_time_runs_scale_times_faster_than_real_time() -> None:
    # Given a clock at 1000x
    subject = Clock(scale=1000.0)
    # When some real time passes
    r0, c0, r1, r2, c1, r3 = bracket(subject)
    # Then cloud time moved 1000 times as far, bounded by the real time measured around the readings
    assert 1000.0 * (r2 - r1) <= c1 - c0 <= 1000.0 * (r3 - r0)


def test_now_is_an_aware_utc_datetime_of_time() -> None:
    subject = Clock()
    subject.advance(86_400)
    moment = subject.now()
    assert moment.tzinfo is UTC
    assert abs(moment.timestamp() - subject.time()) < 1.0
    assert moment.timestamp() - time.time() > 86_000


def test_sleep_lets_the_cloud_time_pass() -> None:
    # Given a fast clock
    subject = Clock(scale=10_000.0)
    before = subject.time()
    # When a task sleeps a cloud minute
    subject.sleep(60)
    # Then at least a cloud minute has passed
    assert subject.time() - before >= 60


def test_sleep_of_nothing_or_less_returns_at_once() -> None:
    subject = Clock(scale=1.0)
    before = subject.time()
    subject.sleep(0)
    subject.sleep(-5)
    assert subject.time() - before < 1.0


def asleep(subject: Clock, seconds: float) -> threading.Thread:
    """A thread sleeping ``seconds`` of cloud time, returned once it sleeps (its wake-up time is set). Advancing
    right after ``start()`` would race the thread: an advance before it reads the clock is not part of its wait."""
    already = subject.sleepers
    sleeper = threading.Thread(target=subject.sleep, args=(seconds,), daemon=True)
    sleeper.start()
    deadline = time.monotonic() + 30
    while subject.sleepers == already:
        assert time.monotonic() < deadline, "the sleeper never went to sleep"
        time.sleep(0.001)
    return sleeper


def test_advance_jumps_forward_and_wakes_a_sleeper() -> None:
    # Given a real-time clock and a task sleeping a cloud hour
    subject = Clock(scale=1.0)
    before = subject.time()
    sleeper = asleep(subject, 3600)
    # When the clock is fast-forwarded an hour
    subject.advance(3600)
    # Then the sleeper wakes up (long before a real hour) and cloud time jumped by the hour
    sleeper.join(timeout=10)
    assert not sleeper.is_alive()
    assert subject.time() - before >= 3600


def test_advance_short_of_the_target_keeps_the_sleeper_waiting() -> None:
    subject = Clock(scale=1.0)
    sleeper = asleep(subject, 3600)
    subject.advance(1800)
    sleeper.join(timeout=0.2)
    assert sleeper.is_alive()  # half an hour is still missing
    subject.advance(1800)
    sleeper.join(timeout=10)
    assert not sleeper.is_alive()


def test_the_clock_never_goes_back() -> None:
    subject = Clock()
    with pytest.raises(ValueError, match="the clock never goes back"):
        subject.advance(-1)


def test_set_scale_keeps_cloud_time_continuous() -> None:
    # Given a clock that was fast-forwarded a day
    subject = Clock(scale=1.0)
    subject.advance(86_400)
    before = subject.time()
    # When its speed changes
    subject.set_scale(500.0)
    after = subject.time()
    # Then cloud time neither jumps nor goes back, and runs at the new speed from now on
    assert 0.0 <= after - before < 1.0
    assert subject.scale == 500.0
    r0, c0, r1, r2, c1, r3 = bracket(subject)
    assert 500.0 * (r2 - r1) <= c1 - c0 <= 500.0 * (r3 - r0)
    # And back at real speed, the day ahead is kept
    subject.set_scale(1.0)
    assert subject.time() - time.time() > 86_000


def test_set_scale_wakes_a_sleeper_onto_the_new_speed() -> None:
    # Given a task sleeping a cloud hour at real speed
    subject = Clock(scale=1.0)
    sleeper = asleep(subject, 3600)
    # When the clock is sped up a million times
    subject.set_scale(1_000_000.0)
    # Then the sleeper finishes its hour at the new speed
    sleeper.join(timeout=10)
    assert not sleeper.is_alive()


@pytest.mark.parametrize("scale", [0.0, -2.0])
def test_a_speed_must_be_positive(scale: float) -> None:
    with pytest.raises(ValueError, match="scale must be positive"):
        Clock().set_scale(scale)


def test_reset_realigns_with_the_wall_clock_and_keeps_the_speed() -> None:
    subject = Clock(scale=3.0)
    subject.advance(1_000_000)
    subject.reset()
    assert abs(subject.time() - time.time()) < 1.0
    assert subject.scale == 3.0


def test_sleepers_counts_the_threads_asleep_on_the_clock() -> None:
    # Given a clock nobody sleeps on / When two tasks sleep an hour / Then it counts them, and none once woken
    subject = Clock(scale=1.0)
    assert subject.sleepers == 0
    sleepers = [asleep(subject, 3600), asleep(subject, 3600)]
    assert subject.sleepers == 2
    subject.advance(3600)
    for sleeper in sleepers:
        sleeper.join(timeout=10)
    assert subject.sleepers == 0
