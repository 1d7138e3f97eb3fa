"""Where Spark reads and writes an ``s3://`` location: the job is written for S3, one hook maps it.

On AWS Glue, Spark reads and writes ``s3://`` itself (EMRFS), so ``S3Paths`` hands the URIs through and
``publish`` has nothing to do. Local PySpark has no S3 connector (the pyspark wheel ships no S3A and there is no
Maven here): the local Glue runner sets ``LOCAL_SPARK_S3_STAGING`` (``localcloud.runtime.jobs.glue_environment``)
to a folder of the run, and ``StagedPaths`` maps each location to a ``file://`` folder there, as an S3 connector
would see it: a read gets the object's *current* version, downloaded with the job's own S3 client (its role,
``s3:GetObject``); a write goes to a local folder whose files ``publish`` uploads under the S3 prefix afterwards
(minus the local file system's ``.crc`` checksums, which S3 has not), replacing what was there. The job code
calls the same four methods either way (docs/local-cloud.md, "Spark's S3 paths").

Neither connector can read an older version of an object: the job copies a requested version that is no longer
the current one to a staging key first (``pipelines.etl.spark_etl.readable_raw``), on AWS as locally.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Protocol

STAGING_ENV = "LOCAL_SPARK_S3_STAGING"


def _transfer_config() -> Any:
    """s3transfer with bounded memory (2 threads of 8 MiB parts, a short queue): the local connector must not
    grow the driver with the file (its defaults queue up to 100 parts)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_chunksize=8 << 20, max_concurrency=2, max_io_queue=4)


_TRANSFER = _transfer_config()


class SparkPaths(Protocol):
    def read(self, bucket: str, key: str) -> str:
        """The URI Spark reads the object ``s3://bucket/key`` (its current version) from."""
        ...

    def write(self, bucket: str, prefix: str) -> str:
        """The URI Spark writes the folder ``s3://bucket/prefix`` to."""
        ...

    def publish(self, bucket: str, prefix: str) -> None:
        """Make what Spark wrote at ``write(bucket, prefix)`` the content of ``s3://bucket/prefix``."""
        ...

    def cleanup(self) -> None:
        """Forget the run's local copies (none on AWS)."""
        ...


class S3Paths:
    """AWS Glue: Spark's own ``s3://`` file system."""

    def read(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def write(self, bucket: str, prefix: str) -> str:
        return f"s3://{bucket}/{prefix.rstrip('/')}"

    def publish(self, bucket: str, prefix: str) -> None:
        return None

    def cleanup(self) -> None:
        return None


class StagedPaths:
    """Local PySpark: ``s3://`` locations mapped to ``file://`` folders under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, s3: Any) -> None:
        self.root = root
        self.s3 = s3

    def _local(self, kind: str, bucket: str, key: str) -> Path:
        return self.root / kind / bucket / key.strip("/")

    def read(self, bucket: str, key: str) -> str:
        path = self._local("read", bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(bucket, key, str(path), Config=_TRANSFER)  # streamed to disk, bounded buffers
        return f"file://{path}"  # not as_uri(): Hadoop reads a percent-encoded "=" literally

    def write(self, bucket: str, prefix: str) -> str:
        path = self._local("write", bucket, prefix)
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"file://{path}"  # not as_uri(): Hadoop reads a percent-encoded "=" literally

    def publish(self, bucket: str, prefix: str) -> None:
        folder = self._local("write", bucket, prefix)
        base = prefix.strip("/")
        written = set()
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.endswith(".crc"):
                key = f"{base}/{path.relative_to(folder).as_posix()}"
                self.s3.upload_file(str(path), bucket, key, Config=_TRANSFER)
                written.add(key)
        stale = [
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{base}/")
            for item in page.get("Contents", [])
            if item["Key"] not in written
        ]
        for start in range(0, len(stale), 1000):
            chunk = stale[start : start + 1000]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk]})
        shutil.rmtree(folder, ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def spark_paths(s3: Any, environ: dict[str, str] | None = None) -> SparkPaths:
    """``StagedPaths`` when the local Glue runner set ``LOCAL_SPARK_S3_STAGING``, else ``S3Paths``."""
    root = (os.environ if environ is None else environ).get(STAGING_ENV)
    return StagedPaths(Path(root), s3) if root else S3Paths()
