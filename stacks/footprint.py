"""What each declared dataset costs: the CloudFormation resources it adds and its endpoint's idle cost per day.

``cdk synth`` (``app.py``) prints one line per dataset and a total: the resources under the dataset's
``DatasetResources`` construct, and ``min_capacity`` endpoint
instances of its serving ``instance_type`` at the on-demand price of ``stacks/pricing.py`` (what its endpoint costs
with no traffic, autoscaled down; nothing before its first deployment). A low-traffic dataset can declare
``serving: {strategy: ALL_AT_ONCE, initial_instance_count: 1, min_capacity: 1, max_capacity: 1}`` to halve it.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

from stacks.pricing import PRICE_DATE, PRICE_REGION, idle_cost_per_day, interface_endpoints_cost_per_day


@dataclass(frozen=True)
class Footprint:
    dataset: str
    resources: int  # CloudFormation resources the dataset adds
    instance_type: str
    instances: int  # min_capacity: the idle fleet
    usd_per_day: float

    def line(self) -> str:
        return (
            f"dataset {self.dataset}: {self.resources} resources; idle endpoint {self.instances} x "
            f"{self.instance_type} = ${self.usd_per_day:.2f}/day ({PRICE_REGION} on-demand, {PRICE_DATE})"
        )


def resources_under(scope: IConstruct) -> int:
    """The CloudFormation resources defined under ``scope``."""
    return sum(1 for node in scope.node.find_all() if isinstance(node, cdk.CfnResource))


def footprints(stack: cdk.Stack) -> list[Footprint]:
    """One ``Footprint`` per declared dataset of an ``MlopsStack``, by name."""
    found = []
    for name, resources in getattr(stack, "datasets", {}).items():
        serving = resources.config.serving
        found.append(
            Footprint(
                dataset=name,
                resources=resources_under(resources),
                instance_type=serving.instance_type,
                instances=serving.min_capacity,
                usd_per_day=idle_cost_per_day(serving.instance_type, serving.min_capacity),
            )
        )
    return found


def table(stack: cdk.Stack) -> str:
    """The footprint of every dataset of ``stack`` and the total, as the lines synth prints."""
    found = footprints(stack)
    total = resources_under(stack)
    per_dataset = sum(f.resources for f in found)
    width = max([len("dataset"), *(len(f.dataset) for f in found)])
    lines = [
        f"{stack.stack_name}: idle cost per day of each dataset's endpoint ({PRICE_REGION} on-demand, {PRICE_DATE}; "
        "stacks/pricing.py) and the CloudFormation resources it adds",
        f"  {'dataset':<{width}}  {'resources':>9}  {'idle endpoint':<22}  {'$/day':>7}",
    ]
    for f in found:
        fleet = f"{f.instances} x {f.instance_type}"
        lines.append(f"  {f.dataset:<{width}}  {f.resources:>9}  {fleet:<22}  {f.usd_per_day:>7.2f}")
    lines.append(
        f"  {len(found)} dataset(s): {per_dataset} per-dataset + {total - per_dataset} shared = {total} resources; "
        f"idle endpoints ${sum(f.usd_per_day for f in found):.2f}/day"
    )
    network = getattr(stack, "network", None)
    if network is not None:  # network: private
        endpoints, zones = len(network.interface_endpoints), len(network.subnet_ids)
        lines.append(
            f"  network: private: {endpoints} interface endpoints x {zones} AZs = "
            f"${interface_endpoints_cost_per_day(endpoints, zones):.2f}/day idle (gateway endpoints free)"
        )
    return "\n".join(lines)
