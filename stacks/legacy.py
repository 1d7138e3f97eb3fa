"""Logical ids deployed before per-dataset resources existed, pinned so that a deployed stack upgrades in place.

Before datasets were declared, the stack had one model package group, ``Registry/Group`` (logical id
``RegistryGroupF9A457C4`` in every stage), for the churn sample. It now lives in the churn dataset's construct
(``Dataset-churn/Group``), whose path would give it a new logical id: CloudFormation would create a second group
under the same name (which fails) and delete the old one with its model history. So the churn group keeps the id
it was deployed with. A group of a dataset declared later gets the id of its own path.

tests/infrastructure/test_stateful_ids.py snapshots the logical id of every stateful resource (KMS key, buckets,
DynamoDB tables, model package groups) of both stages: a change to one fails there first.
"""

from __future__ import annotations

MODEL_PACKAGE_GROUP_LOGICAL_IDS: dict[str, str] = {
    "churn": "RegistryGroupF9A457C4",  # Registry/Group, the only group before issue 16 (dev and prod)
}
"""Dataset name -> the logical id its model package group was first deployed with."""
