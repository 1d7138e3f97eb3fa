"""The timeline benchmark row carries issue 25's budget on dev's update (upload -> 100% traffic, typical)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import bench_timeline
from localcloud import timeline


def fake_pairs(traffic_minutes: float) -> Any:
    def pairs(template: Any, stage: str) -> dict[str, tuple[timeline.Timeline, timeline.Timeline]]:
        def one(scenario: timeline.Scenario, figure: timeline.Figure, scale: float) -> timeline.Timeline:
            milestones = {
                timeline.TRAFFIC_100: traffic_minutes * 60 * scale,
                timeline.DONE: (traffic_minutes + 5) * 60 * scale,
            }
            return timeline.Timeline(stage, scenario, figure, (), milestones)

        return {s: (one(s, "typical", 1.0), one(s, "upper", 2.0)) for s in timeline.SCENARIOS}

    return pairs


def fake_glue_path(traffic_minutes: float) -> Any:
    def glue_path(template: Any, stage: str) -> tuple[timeline.Timeline, timeline.Timeline]:
        def one(figure: timeline.Figure, scale: float) -> timeline.Timeline:
            milestones = {timeline.TRAFFIC_100: traffic_minutes * 60 * scale, timeline.DONE: 0.0}
            return timeline.Timeline(stage, "update", figure, (), milestones)

        return one("typical", 1.0), one("upper", 2.0)

    return glue_path


@pytest.mark.parametrize(("minutes", "status"), [(29.4, "fail"), (15.0, "pass")])
def test_the_budget_row_reads_dev_update_at_the_typical_figure(
    monkeypatch: pytest.MonkeyPatch, minutes: float, status: str
) -> None:
    # Given a timeline whose dev update reaches 100% after `minutes` (twice that at the upper figures)
    monkeypatch.setattr(timeline, "pairs", fake_pairs(minutes))
    monkeypatch.setattr(timeline, "glue_path", fake_glue_path(minutes + 2.5))  # an upload above the Lambda ETL's size
    # When the benchmark's rows are built for dev and prod
    (row,) = bench_timeline.rows({"dev": {}, "prod": {}})
    # Then the budget (<= 15 min) applies to the typical figure, every figure is in the details
    assert (row.name, row.figure, row.unit, row.status) == ("timeline_dev_update", minutes, "min", status)
    assert row.details["dev_update"] == {
        "traffic_100_typical": minutes,
        "traffic_100_upper": round(2 * minutes, 1),
        "done_typical": minutes + 5,
        "done_upper": round(2 * (minutes + 5), 1),
    }
    assert set(row.details) == {
        "dev_first",
        "dev_update",
        "prod_first",
        "prod_update",
        "dev_update_glue_etl",
        "prod_update_glue_etl",
    }
    glue = round(minutes + 2.5, 1)
    assert row.details["dev_update_glue_etl"] == {"traffic_100_typical": glue, "traffic_100_upper": round(2 * glue, 1)}
    assert f"on Glue: {glue} min" in row.note


def test_a_busy_host_does_not_flag_a_modelled_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the timeline row computed while the host is busy / Then no "timings are pessimistic" note: it is a model
    from bench.harness import annotate_load

    monkeypatch.setattr(timeline, "pairs", fake_pairs(20.0))
    monkeypatch.setattr(timeline, "glue_path", fake_glue_path(22.0))
    (row,) = annotate_load(bench_timeline.rows({"dev": {}}), before=8.0, after=8.0, cpus=2)
    assert "busy host" not in row.note
    assert row.details["load_before"] == 8.0
