"""What synth prints per dataset (``stacks/footprint.py``, printed by ``app.py``): the CloudFormation resources each
declared dataset adds and its endpoint's idle cost per day at the on-demand price of ``stacks/pricing.py``; a
low-traffic dataset declaring ALL_AT_ONCE on one instance costs half of a canary's two."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.app import build_app
from stacks.datasets import DATASETS_DIR
from stacks.footprint import footprints, table
from stacks.mlops_stack import MlopsStack
from stacks.pricing import ENDPOINT_HOURLY_USD

LOW_TRAFFIC = """
serving:   # low traffic: one instance, the new model takes all traffic at once (a canary needs two instances)
  strategy: ALL_AT_ONCE
  initial_instance_count: 1
  min_capacity: 1
  max_capacity: 1
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> MlopsStack:
    """The dev stack with churn as declared and energy overridden to a single instance, all at once."""
    folder = tmp_path_factory.mktemp("declared")
    (folder / "churn.yaml").write_text((DATASETS_DIR / "churn.yaml").read_text())
    (folder / "energy.yaml").write_text((DATASETS_DIR / "energy.yaml").read_text() + LOW_TRAFFIC)
    app = build_app(stage="dev", outdir=str(tmp_path_factory.mktemp("cdk.out")), datasets_dir=Path(folder))
    built = app.node.find_child("mlops-dev")
    assert isinstance(built, MlopsStack)
    return built


def test_each_dataset_costs_its_idle_endpoint_instances_and_adds_its_own_resources(stack: MlopsStack) -> None:
    # Given churn on the stage's canary fleet (2 x ml.m5.large) and energy declared low-traffic (1 instance)
    # When synth's footprint is computed
    found = {f.dataset: f for f in footprints(stack)}

    # Then each idle cost is its instances x the hourly on-demand price x 24, and each adds the same resources
    hourly = ENDPOINT_HOURLY_USD["ml.m5.large"]
    assert (found["churn"].instances, found["churn"].usd_per_day) == (2, pytest.approx(2 * hourly * 24))
    assert (found["energy"].instances, found["energy"].usd_per_day) == (1, pytest.approx(hourly * 24))
    assert found["churn"].resources == found["energy"].resources > 0
    assert stack.dataset_configs["energy"].serving.strategy == "ALL_AT_ONCE"


def test_the_printed_table_names_every_dataset_its_cost_and_the_totals(stack: MlopsStack) -> None:
    # When synth prints the table / Then one line per dataset and a total, with the price's region and date
    printed = table(stack)
    lines = printed.splitlines()
    assert "us-east-1 on-demand, 2026-11; stacks/pricing.py" in lines[0]
    churn = next(line for line in lines if line.strip().startswith("churn"))
    energy = next(line for line in lines if line.strip().startswith("energy"))
    assert "2 x ml.m5.large" in churn and churn.rstrip().endswith("5.52")
    assert "1 x ml.m5.large" in energy and energy.rstrip().endswith("2.76")
    assert lines[-1].strip().startswith("2 dataset(s): ") and lines[-1].rstrip().endswith("idle endpoints $8.28/day")
