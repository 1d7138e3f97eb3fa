"""Issue 25's critical path on the synthesized dev and prod templates: every state of both machines is priced by
the model (``localcloud.timeline``, rows of ``localcloud.durations``), the figures it computes today, and the
budget the issue sets (dev, update, upload -> 100% traffic <= 15 minutes at the typical figures)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from localcloud import timeline as tl

STAGES = ("dev", "prod")
DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
# upload -> 100% traffic and upload -> deployment done, seconds: (typical, upper), as computed on 2026-12-07 after
# dev's training job keeps a warm pool (training.keep_alive_seconds = 3600) and dev's update is priced as an
# iteration on it; the sample-sized upload's ETL runs in the Lambda; the smoke test's server starts while the
# evaluation runs. Before these (evaluation and smoke test inside the training job, the Glue wheels from S3): dev
# update 1076.5 / 2085.0 to 100% traffic (with the evaluation job on the path: 1381.5 / 2625.0; with the smoke
# endpoint before that: 1765.5 / 3265.0)
EXPECTED = {
    ("dev", "first"): {"traffic_100": (623.5, 1385.0), "done": (630.7, 1442.0)},
    ("dev", "update"): {"traffic_100": (763.5, 1445.0), "done": (1202.7, 1917.0)},
    ("prod", "first"): {"traffic_100": (623.5, 1385.0), "done": (630.7, 1442.0)},
    ("prod", "update"): {"traffic_100": (1223.5, 1985.0), "done": (1972.7, 2742.0)},
}
COLD = {"dev": {"traffic_100": (923.5, 1685.0), "done": (1362.7, 2157.0)}}
"""dev's update with its training job started cold (the next upload later than the keep-alive, or no quota)."""
# an update whose upload is above etl.lambda_max_bytes: the Glue job's ETL, upload -> 100% traffic (typical, upper)
EXPECTED_GLUE_PATH = {"dev": (903.5, 1815.0), "prod": (1363.5, 2355.0)}


@pytest.mark.parametrize("stage", STAGES)
def test_every_state_of_both_synthesized_machines_has_a_duration(
    stage: str, stage_templates: dict[str, dict[str, Any]]
) -> None:
    machines = tl.state_machines(stage_templates[stage])
    assert set(machines) == {tl.TRAINING, tl.DEPLOYMENT}
    for machine, definition in machines.items():
        assert tl.uncovered(machine, definition) == []
    # and no entry of the model names a state the machines no longer have
    for machine, definition in machines.items():
        assert set(tl.MODEL[machine]) - set(definition["States"]) == set()


def test_a_state_added_to_a_machine_without_a_duration_fails(stage_templates: dict[str, dict[str, Any]]) -> None:
    # Given the dev template with a new Task between the evaluation and the registration
    template = copy.deepcopy(stage_templates["dev"])
    for resource in template["Resources"].values():
        if resource.get("Properties", {}).get("StateMachineName", "").endswith("-training-pipeline"):
            text = tl.render_intrinsics(resource["Properties"]["DefinitionString"])
            added = text.replace('"EvaluateModels":{"Next":"RegisterModel"', '"EvaluateModels":{"Next":"Explain"')
            added = added.replace(
                '"RegisterModel":{',
                '"Explain":{"Type":"Task","Resource":"arn:x","Next":"RegisterModel"},"RegisterModel":{',
            )
            assert added != text
            resource["Properties"]["DefinitionString"] = added
    # Then the coverage check and the computation both name it
    machines = tl.state_machines(template)
    assert tl.uncovered(tl.TRAINING, machines[tl.TRAINING]) == [
        "training.Explain (Task) has no duration in localcloud.timeline.MODEL"
    ]
    with pytest.raises(tl.Uncovered, match=r"training\.Explain \(Task\) has no duration"):
        tl.timeline(template, "dev", "update", "typical")


@pytest.mark.parametrize(("stage", "scenario"), list(EXPECTED))
def test_the_computed_figures(stage: str, scenario: tl.Scenario, stage_templates: dict[str, dict[str, Any]]) -> None:
    typical, upper = tl.pairs(stage_templates[stage], stage)[scenario]
    expected = EXPECTED[(stage, scenario)]
    assert (typical.traffic_100, upper.traffic_100) == pytest.approx(expected["traffic_100"])
    assert (typical.done, upper.done) == pytest.approx(expected["done"])


def test_the_cold_update_beside_the_warm_one(stage_templates: dict[str, dict[str, Any]]) -> None:
    colds = tl.cold_updates({stage: stage_templates[stage] for stage in STAGES})
    assert colds["prod"] is None  # prod keeps no pool: its update is the one above
    typical, upper = colds["dev"] or ()
    assert (typical.traffic_100, upper.traffic_100) == pytest.approx(COLD["dev"]["traffic_100"])
    assert (typical.done, upper.done) == pytest.approx(COLD["dev"]["done"])


def test_only_an_update_of_a_pool_stage_starts_its_training_job_warm(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    def startup(path: tl.Timeline) -> tuple[str, ...]:
        (job,) = [s for s in path.steps if s.machine == tl.TRAINING and s.name == tl.TRAINING_JOB]
        return tuple(key for key in job.sources if key.startswith("sagemaker.training.startup"))

    # Given dev (a one-hour pool) and prod (none), at both figures
    for figure in tl.FIGURES:
        update = tl.timeline(stage_templates["dev"], "dev", "update", figure)
        # Then dev's update reuses the previous iteration's pool: the gap between the two training jobs (the next
        # upload at the previous deployment's end) is within the keep-alive (18.6 min typical, 25.9 min upper)
        assert update.pool and startup(update) == ("sagemaker.training.startup.warm",)
        assert update.iteration_gap is not None and update.iteration_gap <= 3600
        # and a first deployment, and prod's every path, start cold
        for stage, scenario in (("dev", "first"), ("prod", "first"), ("prod", "update")):
            path = tl.timeline(stage_templates[stage], stage, scenario, figure)  # type: ignore[arg-type]
            assert not path.pool and startup(path) == ("sagemaker.training.startup",)


def test_an_iteration_slower_than_the_keep_alive_is_priced_cold(
    stage_templates: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given dev with a 25-minute pool: shorter than the upper gap between two iterations (25.9 min), longer than the
    # typical one (18.6 min)
    dev = tl.stage_config("dev")
    short = replace(dev, training=replace(dev.training, keep_alive_seconds=1500))
    monkeypatch.setattr(tl, "stage_config", lambda stage: short)
    typical, upper = tl.pairs(stage_templates["dev"], "dev")["update"]
    # Then the typical update is warm and the upper one cold: the pool has expired when the next job starts
    assert (typical.pool, upper.pool) == (True, False)
    assert typical.traffic_100 == pytest.approx(EXPECTED[("dev", "update")]["traffic_100"][0])
    assert upper.traffic_100 == pytest.approx(COLD["dev"]["traffic_100"][1])


@pytest.mark.parametrize("stage", STAGES)
def test_the_choice_of_etl_engine_is_priced_on_both_branches(
    stage: str, stage_templates: dict[str, dict[str, Any]]
) -> None:
    # Given the sample's upload (390 KB, under etl.lambda_max_bytes) and one above the threshold
    small = tl.timeline(stage_templates[stage], stage, "update", "typical")
    typical, upper = tl.glue_path(stage_templates[stage], stage)
    # Then the sample's path runs the Lambda ETL, the large upload's the Glue job, and nothing else differs
    assert "RunEtlInLambda" in [s.name for s in small.steps] and "RunEtl" not in [s.name for s in small.steps]
    assert "RunEtl" in [s.name for s in typical.steps] and "RunEtlInLambda" not in [s.name for s in typical.steps]
    assert (typical.traffic_100, upper.traffic_100) == pytest.approx(EXPECTED_GLUE_PATH[stage])
    glue_cost = tl.MODEL[tl.TRAINING]["RunEtl"]
    assert isinstance(glue_cost, tl.Rows)
    glue_etl = sum(tl._row(k, "typical") for k in glue_cost.keys)
    assert typical.traffic_100 - small.traffic_100 == pytest.approx(glue_etl - tl._row("lambda.etl", "typical"))


def test_an_update_reaches_100_percent_before_its_final_bake_and_the_poll_does_not_delay_it(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    # Given dev's update at the typical figures
    config = tl.stage_config("dev")
    path = tl.timeline(stage_templates["dev"], "dev", "update", "typical")
    rollout = [s for s in path.steps if s.machine == "sagemaker" and s.name == "rollout"]
    start_rollout = next(s for s in path.steps if s.name == "StartRollout")
    # Then 100% is the green fleet plus one bake after StartRollout, whatever the poll interval
    assert rollout[0].start == start_rollout.end
    assert path.traffic_100 == rollout[0].end + config.serving.bake_time_seconds
    # and SageMaker is done only after the final bake and the termination wait; the machine notices at a poll
    finished = path.traffic_100 + config.serving.bake_time_seconds + config.serving.termination_wait_seconds
    assert rollout[-1].end == finished
    loop = next(s for s in path.steps if s.name == "WaitForRollout + CheckRollout")
    assert finished <= loop.end < finished + 2 * 60


def test_dev_update_reaches_100_percent_within_15_minutes(stage_templates: dict[str, dict[str, Any]]) -> None:
    path = tl.timeline(stage_templates["dev"], "dev", "update", "typical")
    assert path.traffic_100 <= tl.BUDGET_SECONDS, tl.minutes(path.traffic_100)


def test_the_documented_timeline_is_the_one_the_model_computes(stage_templates: dict[str, dict[str, Any]]) -> None:
    # Given docs/performance.md / Then its generated tables are what `python -m localcloud.timeline --markdown` prints
    generated = tl.report({stage: stage_templates[stage] for stage in STAGES}, markdown=True)
    assert generated in DOC.read_text(), "regenerate with .venv/bin/python -m localcloud.timeline --markdown"
