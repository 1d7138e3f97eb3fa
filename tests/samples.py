"""The declared sample datasets as the tests use them (``datasets/<name>.yaml`` through the stack's loader)."""

from __future__ import annotations

from stacks.datasets import dataset_schema

CHURN_SCHEMA = dataset_schema("churn")
TICKETS_SCHEMA = dataset_schema("tickets")  # multiclass, string labels, no key
ENERGY_SCHEMA = dataset_schema("energy")  # regression
