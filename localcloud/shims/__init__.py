"""Patches that close the gaps of the pinned moto (see docs/local-cloud.md and ../shared/notes/moto.md).

Each shim module exposes ``install()`` (idempotent) and has a contract test under
``tests/unit/localcloud/shims/`` that fails if the pinned moto changes underneath it. Shims that need the
running local cloud (its dispatcher, clients, work directory) get it through ``set_cloud``.
"""

from __future__ import annotations

from typing import Any


def install_all(cloud: Any = None) -> None:
    """Install every shim into this process's moto (the moto server runs in this process)."""
    from localcloud.shims import (
        cloudformation,
        cloudwatch_alarms,
        events_targets,
        glue_jobs,
        lambda_invoke,
        s3_chunked,
        s3_policy,
        sagemaker_endpoints,
        sagemaker_jobs,
        sagemaker_registry,
        sagemaker_runtime,
        stepfunctions,
    )

    installed = (
        cloudformation,
        s3_chunked,
        s3_policy,
        lambda_invoke,
        events_targets,
        glue_jobs,
        sagemaker_jobs,
        sagemaker_endpoints,
        sagemaker_registry,
        sagemaker_runtime,
        stepfunctions,
        cloudwatch_alarms,
    )
    for shim in installed:
        shim.install()
    for shim in (events_targets, glue_jobs, sagemaker_jobs, cloudwatch_alarms):
        shim.set_cloud(cloud)
