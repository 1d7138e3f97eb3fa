"""Issue 25's cloud timeline on paper: upload -> 100% traffic -> deployment done in a real account.

Not a measurement of this machine: ``localcloud.timeline`` walks the synthesized training and deployment state
machines of dev and prod (each synthesized once here, cdk-nag included, ~20 s a stage) and prices every state with
the rows of ``localcloud.durations`` (typical and upper figures) and the stage's settings (bakes, termination
waits, poll intervals). The timelines are printed step by step; one row carries the issue's budget: dev's update,
upload -> 100% traffic at the typical figures, <= 15 minutes (the other figures are in the row's details).
``python -m bench timeline`` runs it; ``python -m localcloud.timeline`` prints the same timelines alone.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from bench.harness import Budget, Result

BUDGET = Budget(on="figure", op="<=", limit=15.0, unit="min")


def figures(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Minutes of every stage and scenario: ``<stage>_<scenario>`` -> traffic/done at typical/upper."""
    from localcloud import timeline

    out = {}
    for stage, template in templates.items():
        for scenario, (typical, upper) in timeline.pairs(template, stage).items():
            out[f"{stage}_{scenario}"] = {
                "traffic_100_typical": round(typical.traffic_100 / 60, 1),
                "traffic_100_upper": round(upper.traffic_100 / 60, 1),
                "done_typical": round(typical.done / 60, 1),
                "done_upper": round(upper.done / 60, 1),
            }
        # an update whose upload is above etl.lambda_max_bytes: the Glue job runs its ETL (the Choice's other branch)
        typical, upper = timeline.glue_path(template, stage)
        out[f"{stage}_update_glue_etl"] = {
            "traffic_100_typical": round(typical.traffic_100 / 60, 1),
            "traffic_100_upper": round(upper.traffic_100 / 60, 1),
        }
    return out


def rows(templates: Mapping[str, Mapping[str, Any]]) -> list[Result]:
    """The budget row of issue 25, with every figure in its details."""
    found = figures(templates)
    dev = found["dev_update"]
    return [
        Result.measured(
            "timeline_dev_update",
            figure=dev["traffic_100_typical"],
            unit="min",
            budget=BUDGET,
            note=f"upload -> 100% traffic, dev update, typical ({dev['traffic_100_upper']} min upper; an upload above "
            f"etl.lambda_max_bytes, on Glue: {found['dev_update_glue_etl']['traffic_100_typical']} min); "
            f"deployment done {dev['done_typical']} / {dev['done_upper']} min (model, not measured)",
            details=found,
        )
    ]


def run(quick: bool = False) -> list[Result]:
    from localcloud import timeline

    templates = timeline.synthesized()
    print(timeline.report(templates), file=sys.stdout, flush=True)
    return rows(templates)
