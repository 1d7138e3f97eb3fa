"""Helpers for the local-cloud tests: packages built in memory, unique names, a LocalCloud that leaves no trace."""

from __future__ import annotations

import copy
import gzip
import io
import os
import tarfile
import textwrap
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/localcloud-test"


def unique(prefix: str) -> str:
    """A name no other test uses (moto state is process-wide in server mode)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip()


FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same files give the same bytes (as the stack's own asset zips)


def zip_package(files: dict[str, str]) -> bytes:
    """A Lambda deployment package; deterministic: a zip entry otherwise carries the time it was written (2-second
    resolution), so two packages of the same files made a moment apart could differ."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, source(text), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def tar_gz(files: dict[str, str]) -> bytes:
    """A model.tar.gz / sourcedir.tar.gz; deterministic (the gzip header carries no time)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for name, text in files.items():
            data = source(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextmanager
def running_cloud(**options: Any) -> Iterator[Any]:
    """A started ``LocalCloud``; afterwards the process is as before: environment variables, moto's user
    config, the shims' cloud/runtime references, the clock (scale 1.0, realigned) and the journal.

    ``LocalCloud.start`` exports AWS_ENDPOINT_URL & co. and turns on moto's state machine execution for the
    whole process, and ``stop`` undoes neither: without this, later decorator-mode tests in the same worker
    would send their calls to a stopped server."""
    from moto.core.config import default_user_config

    from localcloud.clock import clock
    from localcloud.cloud import LocalCloud
    from localcloud.runtime.journal import journal
    from localcloud.shims import (
        cloudwatch_alarms,
        events_targets,
        glue_jobs,
        lambda_invoke,
        sagemaker_jobs,
        sagemaker_runtime,
    )

    environment = dict(os.environ)
    user_config = copy.deepcopy(dict(default_user_config))
    journal.clear()
    clock.reset()  # a cloud stopped elsewhere leaves the clock fast-forwarded
    cloud = LocalCloud(**options)
    try:
        cloud.start()
        yield cloud
    finally:
        cloud.stop()
        os.environ.clear()
        os.environ.update(environment)
        default_user_config.clear()
        default_user_config.update(user_config)
        for shim in (events_targets, glue_jobs, sagemaker_jobs, cloudwatch_alarms):
            shim.set_cloud(None)
        sagemaker_runtime.set_runtime(None)
        lambda_invoke.set_runtime(None)
        clock.set_scale(1.0)
        clock.reset()
        journal.clear()


@contextmanager
def training_cloud(bucket: str, script: str) -> Iterator[Any]:
    """A running cloud with ``bucket`` holding a script-mode source archive (``code/sourcedir.tar.gz``: ``script``
    as ``train.py``) and one file in the ``data/train/`` channel."""
    with running_cloud() as local:
        s3 = local.clients.s3
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tar_gz({"train.py": script}))
        s3.put_object(Bucket=bucket, Key="data/train/part-0.csv", Body=b"1,0\n")
        yield local


IN_FLIGHT = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def wait_for_endpoint(sagemaker: Any, name: str, timeout: float = 120.0) -> dict[str, Any]:
    """DescribeEndpoint until ``name`` is no longer in flight (provisioning runs on the cloud clock and waits for
    the fleet's containers to answer their ping); returns the last description."""
    import time

    deadline = time.time() + timeout
    while True:
        described = dict(sagemaker.describe_endpoint(EndpointName=name))
        if described["EndpointStatus"] not in IN_FLIGHT or time.time() > deadline:
            return described
        time.sleep(0.05)


PINNED_MOTO = "5.2.5"


def revisit(shim: str) -> str:
    """The message of a contract assertion: which shim to revisit when the pinned moto changes."""
    return f"moto {PINNED_MOTO} behaviour changed under localcloud/shims/{shim}.py: revisit that shim"


def assert_pinned_moto(shim: str) -> None:
    from importlib.metadata import version

    assert version("moto") == PINNED_MOTO, revisit(shim)


class Handovers:
    """The dispatcher of a stand-in cloud: records the work a shim hands to the local cloud, runs none of it."""

    def __init__(self) -> None:
        self.work: list[str] = []

    def submit(self, work: Any, *args: Any) -> None:
        self.work.append(getattr(work, "__name__", repr(work)))


def stand_in_cloud() -> Any:
    """What a shim reads from a running LocalCloud (dispatcher, account, region), without starting one."""
    from types import SimpleNamespace

    return SimpleNamespace(dispatcher=Handovers(), account_id=ACCOUNT, region=REGION)


def install_again(shim: Any) -> None:
    """Install ``shim`` twice more, as LocalCloud.start and stop do each time (``shims.install_all``): a shim
    that wrapped whatever moto's attribute held at install time would now run two or three times per call."""
    shim.install()
    shim.install()
