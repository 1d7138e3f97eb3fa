"""The lifecycle benchmark's bookkeeping: state timings from an execution history, and its one-line summary."""

from __future__ import annotations

from datetime import UTC, datetime

from localcloud import bench


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(1_800_000_000 + seconds, UTC)


def test_states_are_timed_from_entry_to_exit_relative_to_the_upload() -> None:
    # Given a history (two task states) and the upload time
    history = [
        {"timestamp": _at(0.5), "type": "ExecutionStarted"},
        {"timestamp": _at(0.6), "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "RunEtl"}},
        {"timestamp": _at(4.1), "type": "TaskStateExited", "stateExitedEventDetails": {"name": "RunEtl"}},
        {"timestamp": _at(4.1), "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "TrainModel"}},
        {"timestamp": _at(6.6), "type": "TaskStateExited", "stateExitedEventDetails": {"name": "TrainModel"}},
    ]
    # When the states are timed
    states = bench._states(history, origin=1_800_000_000.0)
    # Then each has its entry after the upload and its duration
    assert states == [
        {"state": "RunEtl", "entered_s": 0.6, "seconds": 3.5},
        {"state": "TrainModel", "entered_s": 4.1, "seconds": 2.5},
    ]


def test_summary_names_the_trigger_and_every_state_that_took_time_with_its_job() -> None:
    # Given a measurement's breakdown
    measured = {
        "breakdown": {
            "trigger_seconds": 0.72,
            "states": [
                {"state": "NeedsEtl", "entered_s": 0.72, "seconds": 0.001},
                {"state": "RunEtl", "entered_s": 0.72, "seconds": 5.19, "job_seconds": 5.17},
                {"state": "PrepareTraining", "entered_s": 5.9, "seconds": 0.26},
            ],
        }
    }
    # When summarised / Then instant states are left out and job time is shown next to its state
    assert bench.summary(measured) == ("upload->first state 0.72 s; RunEtl 5.19 s (job 5.17 s); PrepareTraining 0.26 s")


def test_summary_leads_with_the_floor_the_jobs_thread_count_sets() -> None:
    # Given a measurement whose direct work, at the jobs' thread count, took 1.43x the reference
    measured = {
        "thread_floor_ratio": 1.43,
        "outside_jobs_seconds": 1.34,
        "breakdown": {"trigger_seconds": 0.3, "states": []},
    }
    # When summarised / Then the floor comes first (no pipeline on this machine can score below it) and the time
    # outside the jobs' own runs (the orchestration proper) last
    assert bench.summary(measured) == (
        "the direct work at the jobs' thread count alone is 1.43x; upload->first state 0.30 s; outside the jobs 1.34 s"
    )
