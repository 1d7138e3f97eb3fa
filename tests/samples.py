"""The declared sample datasets as the tests use them (``datasets/<name>.yaml`` through the stack's loader)."""

from __future__ import annotations

from stacks.datasets import dataset_schema

CHURN_SCHEMA = dataset_schema("churn")
