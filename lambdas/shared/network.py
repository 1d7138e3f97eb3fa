"""The network settings of the SageMaker models a function creates (deploy, batch inference).

In a ``network: private`` stage the stack gives those functions ``MODEL_SUBNETS`` and ``MODEL_SECURITY_GROUPS``
(comma-separated ids, ``stacks/constructs/network.py``): every CreateModel then carries the ``VpcConfig`` and
``EnableNetworkIsolation``. The model's container needs no network: the inference code is inside the model
artifact (``/opt/ml/model/code``, ``SAGEMAKER_SUBMIT_DIRECTORY``), which SageMaker downloads for it through the VPC.
A public stage sets neither variable: models get neither setting.
"""

from __future__ import annotations

from typing import Any


def ids(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; empty -> ``()``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def model_network(subnets: tuple[str, ...], security_groups: tuple[str, ...]) -> dict[str, Any]:
    """CreateModel's ``VpcConfig`` and ``EnableNetworkIsolation`` for these ids (none without subnets)."""
    if not subnets:
        return {}
    if not security_groups:
        raise ValueError("MODEL_SUBNETS without MODEL_SECURITY_GROUPS: a model in a VPC needs a security group")
    return {
        "VpcConfig": {"Subnets": list(subnets), "SecurityGroupIds": list(security_groups)},
        "EnableNetworkIsolation": True,
    }
