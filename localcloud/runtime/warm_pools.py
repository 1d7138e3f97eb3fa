"""SageMaker managed warm pools of the local cloud's training jobs, on the cloud clock (moto 5.2.5 has none: it
ignores ``ResourceConfig.KeepAlivePeriodInSeconds`` and reports no ``WarmPoolStatus``).

The rules, from SageMaker's developer guide ("Train using SageMaker managed warm pools": lifecycle, creation,
matching training jobs, maximum duration, billing, resource limits) and its API reference (``WarmPoolStatus``,
``ResourceConfig``, ``ResourceConfigForUpdate``):

- a job with ``KeepAlivePeriodInSeconds`` > 0 (0-21600) that ends Completed, or Failed for an algorithm or client
  error, leaves its instances ``Available`` for that many seconds; a job that failed for another reason leaves none
  (``Terminated``);
- a pool is kept only within the account's warm pool quota for its instance type (default 0: the job runs and ends
  as usual, no pool is kept, its status is ``Terminated``); retained instances of ``Available`` pools count against
  it, a pool that moved to a job does not;
- a later job reuses an ``Available`` pool when its ``RoleArn``, ``InstanceCount``, ``InstanceType``,
  ``VolumeKmsKeyId``, ``VolumeSizeInGB``, ``VpcConfig`` (security groups, subnets),
  ``EnableInterContainerTrafficEncryption`` and ``EnableNetworkIsolation`` are the same: the old job's pool becomes
  ``Reused`` (``ReusedByJob``), the new job's ``InUse``; when the new job ends the pool is ``Available`` for the
  new job's keep-alive (none: ``Terminated``); a cluster moves from job to job for at most 28 days;
- an ``Available`` pool past its keep-alive is ``Terminated``; ``UpdateTrainingJob`` changes the keep-alive of an
  ``Available`` pool (0 terminates it);
- ``ResourceRetainedBillableTimeInSeconds`` is the wall-clock time the pool was retained (Available), billed times
  ``InstanceCount``.

Not modelled: the persistent cache directory, patch updates that end a pool, heterogeneous clusters and spot
instances (refused with a keep-alive: the guide says warm pools cannot be used with them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.clock import clock

MAX_KEEP_ALIVE_SECONDS = 21_600
MAX_CLUSTER_SECONDS = 28 * 24 * 3600
HEALTHY_FAILURES = ("AlgorithmError", "ClientError")
"""A training job that fails for one of these still leaves its pool (the cluster is healthy)."""

_lock = threading.RLock()
_quota: dict[str, int] = {}


@dataclass
class Pool:
    """The warm pool a training job holds or held (``job.warm_pool``)."""

    key: tuple[Any, ...]
    instance_type: str
    instances: int
    keep_alive: int
    cluster_started: float  # cloud time: when the cluster was provisioned (cold start)
    status: str = "InUse"
    available_since: float | None = None
    billable: float = 0.0
    reused_by: str | None = None


class WarmPoolRefused(ValueError):
    """A request the warm pool rules refuse (the API's ValidationException)."""


def set_quota(quota: Mapping[str, int] | None) -> None:
    """The account's warm pool quota: instances per training instance type (absent: 0, a new account's)."""
    with _lock:
        _quota.clear()
        _quota.update(quota or {})


def keep_alive(resource_config: Mapping[str, Any] | None) -> int:
    return int((resource_config or {}).get("KeepAlivePeriodInSeconds") or 0)


def check_request(request: Mapping[str, Any]) -> None:
    """CreateTrainingJob's warm pool rules (``WarmPoolRefused`` says which)."""
    resources = request.get("ResourceConfig") or {}
    seconds = resources.get("KeepAlivePeriodInSeconds")
    if seconds is None:
        return
    if not 0 <= int(seconds) <= MAX_KEEP_ALIVE_SECONDS:
        raise WarmPoolRefused(
            f"1 validation error detected: Value '{seconds}' at 'resourceConfig.keepAlivePeriodInSeconds' failed to "
            f"satisfy constraint: Member must have value less than or equal to {MAX_KEEP_ALIVE_SECONDS} and greater "
            "than or equal to 0"
        )
    if int(seconds) and request.get("EnableManagedSpotTraining"):
        raise WarmPoolRefused("KeepAlivePeriodInSeconds: warm pools cannot be used with managed spot training")
    if int(seconds) and resources.get("InstanceGroups"):
        raise WarmPoolRefused("KeepAlivePeriodInSeconds: warm pools cannot be used with heterogeneous clusters")


def match_key(job: Any) -> tuple[Any, ...]:
    """What must be identical for a job to reuse another's pool (the guide's "Matching training jobs")."""
    resources = job.resource_config or {}
    vpc = job.vpc_config or {}
    return (
        job.role_arn,
        resources.get("InstanceCount"),
        resources.get("InstanceType"),
        resources.get("VolumeKmsKeyId"),
        resources.get("VolumeSizeInGB"),
        tuple(sorted(vpc.get("SecurityGroupIds") or ())),
        tuple(sorted(vpc.get("Subnets") or ())),
        bool(job.enable_inter_container_traffic_encryption),
        bool(job.enable_network_isolation),
    )


def _refresh(pool: Pool | None, now: float) -> None:
    """An Available pool past its keep-alive is Terminated, billed for the whole keep-alive."""
    if (
        pool is not None
        and pool.status == "Available"
        and pool.available_since is not None
        and now >= pool.available_since + pool.keep_alive
    ):
        pool.status, pool.billable = "Terminated", float(pool.keep_alive)


def claim(job: Any, others: Iterable[Any]) -> Pool | None:
    """A new job takes the longest-waiting Available pool that matches it (None: it starts cold)."""
    now = clock.time()
    key = match_key(job)
    with _lock:
        candidates = []
        for other in others:
            pool = getattr(other, "warm_pool", None)
            if other is job or pool is None:
                continue
            _refresh(pool, now)
            if pool.status == "Available" and pool.key == key and now - pool.cluster_started < MAX_CLUSTER_SECONDS:
                candidates.append((pool.available_since or 0.0, other.training_job_name, pool))
        if not candidates:
            return None
        _, _, old = min(candidates)
        old.status, old.reused_by = "Reused", job.training_job_name
        old.billable = now - (old.available_since or now)
        job.warm_pool = Pool(
            key,
            old.instance_type,
            old.instances,
            keep_alive(job.resource_config),
            cluster_started=old.cluster_started,
        )
        return job.warm_pool


def release(job: Any, reason: str | None, others: Iterable[Any], started: float) -> None:
    """A job ended (``reason`` None: Completed; else its FailureReason): its instances stay as a warm pool, or not.
    ``started``: cloud time the job was created (its cluster's start when it reused no pool)."""
    seconds = keep_alive(job.resource_config)
    pool: Pool | None = getattr(job, "warm_pool", None)
    if not seconds and pool is None:
        return  # no warm pool asked for, none used: the job reports no WarmPoolStatus
    now = clock.time()
    resources = job.resource_config or {}
    if pool is None:
        pool = Pool(
            match_key(job), resources.get("InstanceType", ""), int(resources.get("InstanceCount", 1)), 0, started
        )
        job.warm_pool = pool
    pool.keep_alive = seconds
    healthy = reason is None or reason.startswith(HEALTHY_FAILURES)
    with _lock:
        retained = 0
        for other in others:
            held = getattr(other, "warm_pool", None)
            if other is job or held is None:
                continue
            _refresh(held, now)
            if held.status == "Available" and held.instance_type == pool.instance_type:
                retained += held.instances
        within_quota = retained + pool.instances <= _quota.get(pool.instance_type, 0)
        young = now - pool.cluster_started < MAX_CLUSTER_SECONDS
        if seconds and healthy and within_quota and young:
            pool.status, pool.available_since = "Available", now
        else:
            pool.status, pool.billable = "Terminated", 0.0


def update_keep_alive(job: Any, seconds: int) -> None:
    """UpdateTrainingJob's ``ResourceConfig.KeepAlivePeriodInSeconds``: only for an Available pool; 0 ends it."""
    if not 0 <= seconds <= MAX_KEEP_ALIVE_SECONDS:
        raise WarmPoolRefused(f"KeepAlivePeriodInSeconds {seconds}: must be from 0 to {MAX_KEEP_ALIVE_SECONDS}")
    now = clock.time()
    pool: Pool | None = getattr(job, "warm_pool", None)
    with _lock:
        _refresh(pool, now)
        if pool is None or pool.status != "Available" or pool.available_since is None:
            status = pool.status if pool is not None else "none"
            raise WarmPoolRefused(
                f"The warm pool of training job {job.training_job_name} is {status}: only an Available warm pool's "
                "KeepAlivePeriodInSeconds can be updated"
            )
        if seconds == 0:
            pool.status, pool.billable = "Terminated", now - pool.available_since
        else:
            pool.keep_alive = seconds
            _refresh(pool, now)
        job.resource_config = {**(job.resource_config or {}), "KeepAlivePeriodInSeconds": seconds}


def status(job: Any) -> dict[str, Any] | None:
    """DescribeTrainingJob's ``WarmPoolStatus`` of ``job`` (None: the job has none)."""
    pool: Pool | None = getattr(job, "warm_pool", None)
    if pool is None:
        return None
    now = clock.time()
    with _lock:
        _refresh(pool, now)
        described: dict[str, Any] = {"Status": pool.status}
        if pool.status == "Available" and pool.available_since is not None:
            described["ResourceRetainedBillableTimeInSeconds"] = int(now - pool.available_since)
        elif pool.status in ("Reused", "Terminated"):
            described["ResourceRetainedBillableTimeInSeconds"] = int(pool.billable)
        if pool.reused_by:
            described["ReusedByJob"] = pool.reused_by
        return described
