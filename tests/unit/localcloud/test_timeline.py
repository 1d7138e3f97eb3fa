"""The critical-path walk on small hand-written definitions: known answers for Choice, a Wait polling loop,
Parallel and Map, and the refusal of a state the model cannot price."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud import durations
from localcloud import timeline as tl

MACHINE = "m"
LAMBDA = durations.typical("lambda.step")
GLUE = durations.typical("glue.job.run")


def task(next_state: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}
    return {**state, "Next": next_state} if next_state else {**state, "End": True}


def machine(start: str, **states: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": start, "States": states}


def test_a_choice_follows_the_branch_the_model_takes_and_skips_the_other() -> None:
    # Given a Choice between a slow branch (Glue) and a fast one (a Lambda)
    definition = machine(
        "Pick",
        Pick={"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Fast"}], "Default": "Slow"},
        Fast=task("End"),
        Slow=task("End"),
        End={"Type": "Succeed"},
    )
    model = {
        MACHINE: {"Pick": tl.Take("Slow"), "Fast": tl.LAMBDA, "Slow": tl.Rows(("glue.job.run",)), "End": tl.NO_TIME}
    }
    # When the path takes the slow branch
    end, steps, _ = tl.walk(definition, model, machine=MACHINE)
    # Then only the slow branch's row counts
    assert end == GLUE
    assert [s.name for s in steps] == ["Slow", "End"]
    # and a model that names a state the Choice cannot reach is refused
    with pytest.raises(tl.Uncovered, match="the model takes Elsewhere, not a branch of the Choice"):
        tl.walk(definition, {MACHINE: {**model[MACHINE], "Pick": tl.Take("Elsewhere")}}, machine=MACHINE)


def polling(poll_seconds: float) -> tuple[dict[str, Any], dict[str, dict[str, tl.Cost]]]:
    definition = machine(
        "Start",
        Start=task("Ready"),
        Ready={
            "Type": "Choice",
            "Choices": [{"Variable": "$.s", "StringEquals": "InProgress", "Next": "Wait"}],
            "Default": "After",
        },
        Wait={"Type": "Wait", "SecondsPath": "$.poll", "Next": "Check"},
        Check=task("Ready"),
        After=task(),
    )
    model: dict[str, dict[str, tl.Cost]] = {
        MACHINE: {
            "Start": tl.Rows(starts="job"),
            "Ready": tl.PollUntilDone("job", wait="Wait", done="After"),
            "Wait": tl.Setting("poll", lambda _: poll_seconds),
            "Check": tl.NO_TIME,
            "After": tl.NO_TIME,
        }
    }
    return definition, model


def job(seconds: float) -> dict[str, Any]:
    def plan(*_: Any) -> list[tl.Phase]:
        return [tl.Phase("half", seconds / 2, "test", "halfway"), tl.Phase("rest", seconds / 2, "test")]

    return {"job": plan}


@pytest.mark.parametrize(("work", "poll", "polls"), [(100, 30, 4), (90, 30, 3), (0, 30, 0), (1, 60, 1)])
def test_a_polling_loop_ends_at_the_first_poll_after_the_work_is_done(work: float, poll: float, polls: int) -> None:
    # Given a task that starts a job of `work` seconds and a loop that looks at it every `poll` seconds
    definition, model = polling(poll)
    # When the machine is walked
    end, steps, milestones = tl.walk(definition, model, machine=MACHINE, plans=job(work))
    # Then the loop takes the work rounded up to whole polls; the job's own milestone is not delayed by the poll
    assert end == polls * poll == poll * -(-work // poll)
    assert milestones == {"halfway": work / 2}
    loop = next(s for s in steps if s.name == "Wait + Check")
    assert loop.polls == polls


def test_a_polling_loop_needs_its_work_started_and_a_check_that_returns_to_the_choice() -> None:
    definition, model = polling(30)
    no_start = {MACHINE: {**model[MACHINE], "Start": tl.NO_TIME}}
    with pytest.raises(tl.Uncovered, match="polls 'job', which no state before it started"):
        tl.walk(definition, no_start, machine=MACHINE, plans=job(10))
    definition["States"]["Check"]["Next"] = "After"
    with pytest.raises(tl.Uncovered, match="Wait -> Check is not a Wait and a check back to Ready"):
        tl.walk(definition, model, machine=MACHINE, plans=job(10))


def test_parallel_branches_run_side_by_side_and_a_map_runs_its_processor_once() -> None:
    # Given a Parallel of a Glue branch and a Lambda branch, then a Map of one Lambda per item, then a literal Wait
    definition = machine(
        "Both",
        Both={
            "Type": "Parallel",
            "Branches": [machine("Long", Long=task()), machine("Short", Short=task())],
            "Next": "Each",
        },
        Each={"Type": "Map", "ItemProcessor": machine("Item", Item=task()), "Next": "Pause"},
        Pause={"Type": "Wait", "Seconds": 7, "End": True},
    )
    model = {MACHINE: {"Long": tl.Rows(("glue.job.run",)), "Short": tl.LAMBDA, "Item": tl.LAMBDA}}
    # When it is walked
    end, steps, _ = tl.walk(definition, model, machine=MACHINE)
    # Then the Parallel takes its longest branch, the Map one item, the Wait its own Seconds
    assert end == GLUE + LAMBDA + 7
    assert next(s for s in steps if s.name == "Both").end == GLUE
    assert tl.uncovered(MACHINE, definition, model) == []


def test_a_state_without_a_duration_is_named_by_the_coverage_check_and_stops_the_walk() -> None:
    # Given a machine with a state the model does not know, one priced with the wrong kind and an unknown row
    definition = machine("A", A=task("B"), B=task("C"), C={"Type": "Wait", "SecondsPath": "$.s", "End": True})
    model = {MACHINE: {"A": tl.Rows(("no.such.row",)), "C": tl.LAMBDA}}
    # Then the coverage check names each, and the walk refuses the first it meets
    problems = tl.uncovered(MACHINE, definition, model)
    assert problems == [
        "m.A: no delay 'no.such.row' in localcloud.durations (known: "
        + ", ".join(sorted(r.key for r in durations.TABLE))
        + ")",
        "m.B (Task) has no duration in localcloud.timeline.MODEL",
        "m.C (Wait) cannot be priced by Rows",
    ]
    with pytest.raises(tl.Uncovered, match=r"m\.B \(Task\) has no duration"):
        tl.walk(definition, {MACHINE: {"A": tl.LAMBDA}}, machine=MACHINE)


def test_an_update_bakes_after_every_traffic_step_then_waits_for_termination() -> None:
    # Given dev's canary (1 of 2 instances, then the rest) and its settings
    config = tl.stage_config("dev")
    serving = config.serving
    phases = tl.WORKS["rollout"](config, "update", "typical")
    provision = durations.typical(durations.ENDPOINT_UPDATE_PROVISION)
    # Then 100% comes after the provisioning and one bake; done after the final bake and the termination wait
    assert tl.traffic_steps(config) == [1, 2]
    assert [p.seconds for p in phases] == [
        provision,
        serving.bake_time_seconds,
        serving.bake_time_seconds,
        serving.termination_wait_seconds,
    ]
    assert [p.milestone for p in phases] == [None, tl.TRAFFIC_100, None, None]
