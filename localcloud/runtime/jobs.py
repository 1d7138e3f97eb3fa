"""Managed-job runners of the local cloud: Glue job runs, SageMaker training and processing jobs.

Each run executes the job's real code in its own process, laid out the way the managed service lays it out:

- Glue: the job's ``ScriptLocation`` and ``--extra-py-files`` are downloaded from S3; the script runs with
  the job's default arguments overridden by the run's (``--JOB_NAME``, ``--JOB_RUN_ID`` added) on local
  pyspark (Glue 5.0 runs Spark 3.5), with the extra files on ``PYTHONPATH``. A warm driver per code bundle
  (``GlueDriver``, ``glue_driver.py``: a process keeping the Spark session and its Python workers, started by the
  bundle's first run) runs the script when it is idle, so later runs do not pay Spark's start-up (~5 s here).
- SageMaker training: an ``/opt/ml`` tree under ``SAGEMAKER_BASE_DIR`` (``input/config/*.json``, channels
  downloaded into ``input/data/<channel>``), then the SageMaker training toolkit's own entry point
  (``sagemaker_training.cli.train``), which downloads ``sagemaker_submit_directory`` and runs the script in
  script mode. ``/opt/ml/model`` is packed into ``<S3OutputPath>/<job>/output/model.tar.gz``; the job's
  ``MetricDefinitions`` are applied to its log; a failure's reason comes from ``/opt/ml/output/failure``.
- SageMaker processing: inputs downloaded to their ``LocalPath``, the container entrypoint and arguments run,
  outputs uploaded. Container paths under ``/opt/ml`` are relocated into the job's directory.

Job processes get ``OMP_NUM_THREADS`` = cores - 1 (``job_threads``): the local cloud runs beside them.
The container image itself is replaced by this environment's libraries, pinned to the versions of the images the
stack names (scikit-learn container 1.9-0, Glue 5.0; docs/local-cloud.md lists them against the real images').
Every job process runs the image interpreter of ``localcloud.runtime.image`` (``python3`` first on its ``PATH``):
it sees the job's shipped code and those libraries, never this checkout (the editable install), so a job that
imports a module it did not ship fails here with ModuleNotFoundError, as it would in AWS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.runtime import image
from localcloud.runtime.protocol import JsonLines

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GLUE_DRIVER = Path(__file__).with_name("glue_driver.py")
GLUE_DRIVER_START_TIMEOUT = 180.0
GLUE_DRIVER_BUSY_WAIT = 60.0
"""How long a Glue run waits for its bundle's warm driver while another run uses it, before it starts a Spark
session of its own: three runs uploaded together on a shared 2-core host took 16 s on the warm driver and 43 s
and 50 s cold beside it (a cold session starts a JVM and its Python workers next to the running job); queued on the
warm driver, each pays only for its own work (5-15 s)."""
SPARK_S3_STAGING = "LOCAL_SPARK_S3_STAGING"
"""Where a Glue run's Spark finds its staged ``s3://`` paths (read by ``pipelines.etl.spark_paths.STAGING_ENV``)."""
LOG_TAIL = 40


@dataclass
class JobResult:
    ok: bool
    reason: str = ""
    log: str = ""
    seconds: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)


# SageMaker's S3Uri shape (botocore data/sagemaker/2017-07-24/service-2.json, shape S3Uri: pattern
# "(https|s3)://([^/]+)/?(.*)", max 1024): whatever follows the scheme up to the first "/" is the bucket, for https
# too. An S3 HTTPS URL (https://s3.<region>.amazonaws.com/<bucket>/...) therefore names the bucket
# "s3.<region>.amazonaws.com", and the job fails on it as it does on SageMaker.
S3_URI = re.compile(r"(https|s3)://([^/]+)/?(.*)", re.DOTALL)
S3_URI_MAX = 1024


class S3UriError(ValueError):
    """A URI SageMaker's request validation refuses (ValidationException)."""


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key) of a SageMaker S3Uri, read as SageMaker reads it (see ``S3_URI``)."""
    match = S3_URI.fullmatch(uri)
    if match is None or len(uri) > S3_URI_MAX:
        raise S3UriError(
            f"ValidationException: Value '{uri}' failed to satisfy constraint: Member must satisfy regular "
            f"expression pattern: {S3_URI.pattern} (and have length <= {S3_URI_MAX})"
        )
    return match[2], match[3]


def download(s3: Any, uri: str, destination: Path) -> list[Path]:
    """An object, or every object under a prefix, into ``destination`` (keys relative to the prefix)."""
    bucket, key = split_s3(uri)
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    paginator = s3.get_paginator("list_objects_v2")
    objects = [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=key) for o in page.get("Contents", [])]
    if key in objects and not key.endswith("/"):
        objects = [key]  # an exact object: not every key that merely starts with it
    for object_key in objects:
        if object_key.endswith("/"):
            continue
        relative = Path(object_key).name if object_key == key else object_key[len(key) :].lstrip("/")
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, object_key, str(target))
        written.append(target)
    return written


def upload_directory(s3: Any, directory: Path, uri: str, kms_key: str | None = None) -> list[str]:
    bucket, prefix = split_s3(uri)
    uploaded = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}".lstrip("/")
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra or None)
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


def _run(command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float) -> tuple[int, str]:
    try:
        completed = subprocess.run(
            list(command),
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        out = (expired.stdout or "") if isinstance(expired.stdout, str) else ""
        return -9, out + f"\nstopped: MaxRuntimeInSeconds ({timeout:.0f} s) exceeded"
    return completed.returncode, completed.stdout + completed.stderr


def base_environment(
    endpoint_url: str, region: str, workdir: Path, credentials: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What every job process gets: the local cloud's endpoint, credentials, region and the image's interpreter
    (``python3`` on ``PATH``; no ``PYTHONPATH`` but what the job itself sets). ``credentials`` are the job role's
    temporary ones (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), as Glue and SageMaker
    hand them to a job."""
    venv_bin = image.bin_dir(workdir)
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME", "AWS_CA_BUNDLE")
    }
    return {
        **keep,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local-job",
        "AWS_SECRET_ACCESS_KEY": "local-job",
        **dict(credentials or {}),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(job_threads()),
    }


def job_threads() -> int:
    """OpenMP threads of a job process: one core is left to the local cloud that runs beside the job (a managed
    job has its instance to itself). libgomp spin-waits at every barrier, so a job with a thread per core
    collapses when anything else runs: training on 100,000 rows took 6-37 s instead of 1.3 s with two threads
    on two busy cores, and a steady 1.6 s with one. A job's own ``OMP_NUM_THREADS`` (its Environment) wins."""
    return max(1, (os.cpu_count() or 1) - 1)


def tail(text: str, lines: int = LOG_TAIL) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---- Glue ----------------------------------------------------------------------------------------------


def glue_arguments(job: Mapping[str, Any], run_arguments: Mapping[str, str], job_name: str, run_id: str) -> list[str]:
    """The script's command line: default arguments, overridden by the run's, plus what Glue adds."""
    merged = {**dict(job.get("DefaultArguments") or {}), **dict(run_arguments or {})}
    merged.update({"--JOB_NAME": job_name, "--JOB_ID": f"j_{run_id[3:]}", "--JOB_RUN_ID": run_id})
    argv: list[str] = []
    for name, value in merged.items():
        argv += [name, str(value)]
    return argv


def run_glue(
    s3: Any,
    job: Mapping[str, Any],
    run_arguments: Mapping[str, str],
    job_name: str,
    run_id: str,
    workdir: Path,
    endpoint_url: str,
    region: str,
    credentials: Mapping[str, str] | None = None,
) -> JobResult:
    started = time.time()
    root = workdir / "glue" / run_id
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    script = download(s3, job["Command"]["ScriptLocation"], root / "script")[0]
    argv = glue_arguments(job, run_arguments, job_name, run_id)
    merged = dict(zip(argv[::2], argv[1::2], strict=True))
    files, python_path = _extra_py_files(s3, merged.get("--extra-py-files") or "", root / "extra-py-files")
    env = glue_environment(endpoint_url, region, python_path, workdir, credentials)
    env[SPARK_S3_STAGING] = str(root / "spark-s3")  # the run's mapping of Spark's s3:// paths (docs/local-cloud.md)
    timeout = float(job.get("Timeout") or 2880) * 60
    digest = _bundle_digest(script, files)
    driver = glue_drivers.get(digest)
    if driver is None and glue_drivers.enabled and not glue_drivers.known(digest):
        # the bundle's first run starts its warm driver (Spark's start-up, once per bundle) and runs on it: a cloud
        # whose uploads all take the Lambda ETL never starts a JVM
        glue_drivers.prepare(s3, job, workdir, endpoint_url, region)
        driver = glue_drivers.get(digest)
    if driver is not None:
        code, log = driver.run(str(script), argv, env, root, timeout)
    else:
        code, log = _run([str(image.image_python(workdir)), str(script), *argv], env, root, timeout)
    seconds = time.time() - started
    outputs = {"warm_driver": driver is not None}
    if code == 0:
        return JobResult(True, log=log, seconds=seconds, outputs=outputs)
    reason = _python_error(log) or f"exit code {code}"
    return JobResult(False, reason=reason, log=log, seconds=seconds, outputs=outputs)


def _extra_py_files(s3: Any, uris: str, destination: Path) -> tuple[list[Path], list[str]]:
    """Download ``--extra-py-files``; (the files, their ``PYTHONPATH`` entries)."""
    files: list[Path] = []
    python_path: list[str] = []
    for uri in filter(None, uris.split(",")):
        for path in download(s3, uri.strip(), destination):
            files.append(path)
            entry = str(path.parent if path.suffix == ".py" else path)  # a .py module: its folder; a zip: itself
            if entry not in python_path:
                python_path.append(entry)
    return files, python_path


def glue_environment(
    endpoint_url: str,
    region: str,
    python_path: Sequence[str],
    workdir: Path,
    credentials: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = base_environment(endpoint_url, region, workdir, credentials)
    python = str(image.image_python(workdir))
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYSPARK_PYTHON": python,
            "PYSPARK_DRIVER_PYTHON": python,
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
    )
    return env


def _bundle_digest(script: Path, files: Sequence[Path]) -> str:
    """The identity of a Glue job's code: its script and ``--extra-py-files`` (names and content, in order)."""
    digest = hashlib.sha256(script.read_bytes())
    for path in files:
        digest.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class GlueDriver:
    """A warm Glue driver process for one code bundle (``glue_driver.py``): the Spark session and Python
    workers outlive a run, so a run pays for its own work, not for starting Spark. One run at a time; a run
    that times out kills the driver (the next run starts cold)."""

    def __init__(self, digest: str, python_path: Sequence[str], env: Mapping[str, str], directory: Path) -> None:
        self.digest = digest
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._stderr = (directory / "driver.log").open("ab")
        self.process = subprocess.Popen(
            [env.get("PYSPARK_DRIVER_PYTHON", sys.executable), "-u", str(GLUE_DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=directory,
            env=dict(env),
            text=True,
            bufsize=1,
        )
        self._protocol = JsonLines(self.process, f"glue-driver-{digest}")
        self.ready = self._protocol.read(GLUE_DRIVER_START_TIMEOUT) == {"ready": True}
        if not self.ready:
            self.stop()

    def alive(self) -> bool:
        return self.ready and self.process.poll() is None

    def run(
        self, script: str, argv: Sequence[str], env: Mapping[str, str], root: Path, timeout: float
    ) -> tuple[int, str]:
        """Run ``script`` with ``argv`` and ``env`` in the driver; (exit code, log), like ``_run``."""
        log = root / "driver-run.log"
        self._protocol.send({"script": script, "argv": list(argv), "env": dict(env), "log": str(log)})
        answer = self._protocol.read(timeout)
        text = log.read_text(errors="replace") if log.exists() else ""
        if answer is None:
            code = self.process.poll()
            self.stop()
            if code is None:
                return -9, text + f"\nstopped: Timeout ({timeout:.0f} s) exceeded"
            return code, text + f"\nthe Glue driver exited with code {code}"
        return int(answer.get("code", 1)), text

    def stop(self) -> None:
        self.ready = False
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        self._stderr.close()


class GlueDrivers:
    """Warm Glue drivers by code bundle. ``prepare`` starts one (``run_glue`` calls it for a bundle's first run);
    ``get`` hands out an idle, ready one (waiting for one that is still starting, or busy for up to
    ``GLUE_DRIVER_BUSY_WAIT``) and marks it busy until its run ends; a run that finds none (another bundle, or
    busy for longer) starts its own process as before.
    ``LOCALCLOUD_WARM_GLUE=0`` turns warm drivers off."""

    def __init__(self) -> None:
        self._drivers: dict[str, GlueDriver] = {}
        self._starting: set[str] = set()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by stop(): a driver that finishes starting after a stop is not kept
        self.enabled = os.environ.get("LOCALCLOUD_WARM_GLUE", "1") != "0"

    def prepare(self, s3: Any, job: Mapping[str, Any], workdir: Path, endpoint_url: str, region: str) -> bool:
        """Download the job's code and start its driver, unless one exists or is starting; True if one is up."""
        if not self.enabled:
            return False
        epoch = self._epoch
        staging = workdir / "glue-drivers" / f"staging-{uuid.uuid4().hex[:8]}"
        script = download(s3, job["Command"]["ScriptLocation"], staging / "script")[0]
        extra = str((job.get("DefaultArguments") or {}).get("--extra-py-files") or "")
        files, python_path = _extra_py_files(s3, extra, staging / "extra-py-files")
        digest = _bundle_digest(script, files)
        with self._lock:
            if self._known(digest):
                shutil.rmtree(staging, ignore_errors=True)
                return digest in self._drivers
            self._starting.add(digest)
        directory = workdir / "glue-drivers" / digest
        try:
            if not directory.exists():
                staging.rename(directory)
            python_path = [str(directory / Path(p).relative_to(staging)) for p in python_path]
            environment = glue_environment(endpoint_url, region, python_path, workdir)
            driver = GlueDriver(digest, python_path, environment, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with self._lock:
                self._starting.discard(digest)
        with self._lock:
            keep = driver.alive() and epoch == self._epoch
            if keep:
                self._drivers[digest] = driver
        if not keep:
            driver.stop()
        return keep

    def known(self, digest: str) -> bool:
        """Whether this bundle has a driver, alive or starting (a busy one is waited for by ``get``, not doubled)."""
        with self._lock:
            return self._known(digest)

    def _known(self, digest: str) -> bool:  # with the lock held
        return digest in self._starting or (digest in self._drivers and self._drivers[digest].alive())

    def wait_started(self, timeout: float = GLUE_DRIVER_START_TIMEOUT) -> bool:
        """Wait until no driver is starting; True if none is."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                if not self._starting:
                    return True
            time.sleep(0.1)
        return False

    def get(
        self, digest: str, wait: float = GLUE_DRIVER_START_TIMEOUT, busy_wait: float = GLUE_DRIVER_BUSY_WAIT
    ) -> _LeasedDriver | None:
        """An idle driver of this bundle; a run that arrives while the bundle's driver is still starting waits
        for it (the rest of a start-up costs less than a cold Spark session of its own), and one that finds it
        busy with another run waits up to ``busy_wait`` seconds for it to be free (see ``GLUE_DRIVER_BUSY_WAIT``)."""
        deadline = time.time() + wait
        while time.time() < deadline:
            with self._lock:
                if digest not in self._starting:
                    break
            time.sleep(0.05)
        with self._lock:
            driver = self._drivers.get(digest)
        if driver is None or not driver.alive() or not driver._lock.acquire(timeout=busy_wait):
            return None
        if not driver.alive():  # stopped while this run waited (a timed-out run, the cloud's stop)
            driver._lock.release()
            return None
        return _LeasedDriver(driver)

    def stop(self) -> None:
        with self._lock:
            self._epoch += 1
            drivers = list(self._drivers.values())
            self._drivers.clear()
        for driver in drivers:
            driver.stop()


class _LeasedDriver:
    """A driver held for one run (released when the run ends)."""

    def __init__(self, driver: GlueDriver) -> None:
        self.driver = driver

    def run(
        self, script: str, argv: Sequence[str], env: Mapping[str, str], root: Path, timeout: float
    ) -> tuple[int, str]:
        try:
            return self.driver.run(script, argv, env, root, timeout)
        finally:
            self.driver._lock.release()


glue_drivers = GlueDrivers()
"""The local cloud's warm Glue drivers (one process-wide set, like the moto backends)."""


_ERROR_LINE = re.compile(r"^(?:[\w.]+(?:Error|Exception|Exit)|[\w.]+\.\w+Error)(?::\s?(.*))?$")


def _python_error(log: str) -> str:
    """The last ``SomethingError: message`` line of a Python traceback in ``log`` (Glue's ErrorMessage)."""
    for line in reversed(log.strip().splitlines()):
        line = line.strip()
        if _ERROR_LINE.match(line):
            name, _, message = line.partition(":")
            short = name.rsplit(".", 1)[-1]
            return f"{short}: {message.strip()}" if message else short
    return ""


# ---- SageMaker training --------------------------------------------------------------------------------


def metric_values(log: str, definitions: Sequence[Mapping[str, str]]) -> dict[str, float]:
    """The last value of each metric definition's regex in the job log (SageMaker's FinalMetricDataList)."""
    values: dict[str, float] = {}
    for definition in definitions:
        for match in re.finditer(definition["Regex"], log):
            try:
                values[definition["Name"]] = float(match.group(1))
            except (IndexError, ValueError):
                continue
    return values


def _pack(directory: Path, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return archive


def run_training(
    s3: Any,
    request: Mapping[str, Any],
    workdir: Path,
    endpoint_url: str,
    region: str,
    credentials: Mapping[str, str] | None = None,
) -> JobResult:
    started = time.time()
    name = request["TrainingJobName"]
    try:  # SageMaker refuses such a request at CreateTrainingJob: fail before running anything
        out_bucket, out_prefix = split_s3(request["OutputDataConfig"]["S3OutputPath"])
    except S3UriError as error:
        return JobResult(False, reason=str(error)[:1024], outputs={"metrics": {}})
    root = workdir / "training" / name
    shutil.rmtree(root, ignore_errors=True)
    opt_ml = root / "opt" / "ml"
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    for folder in ("model", "output/data", "code"):
        (opt_ml / folder).mkdir(parents=True, exist_ok=True)
    # a container path (the source archive of a network-isolated job, in its code channel) under the job's tree
    hyperparameters = {k: relocate(str(v), root) for k, v in (request.get("HyperParameters") or {}).items()}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
    )
    channels = {}
    for channel in request.get("InputDataConfig") or []:
        source = channel["DataSource"]["S3DataSource"]
        channels[channel["ChannelName"]] = {
            "ContentType": channel.get("ContentType", ""),
            "TrainingInputMode": channel.get("InputMode", "File"),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        download(s3, source["S3Uri"], opt_ml / "input" / "data" / channel["ChannelName"])
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    env = base_environment(endpoint_url, region, workdir, credentials)
    env.update({str(k): str(v) for k, v in (request.get("Environment") or {}).items()})
    env.update({"SAGEMAKER_BASE_DIR": str(opt_ml), "TRAINING_JOB_NAME": name, "SAGEMAKER_REGION": region})
    # The toolkit waits for the cluster's hostnames (algo-1...) to resolve unless it runs in local mode.
    env["SM_STUDIO_LOCAL_MODE"] = "true"
    timeout = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
    code, log = _run([str(image.image_python(workdir)), "-m", "sagemaker_training.cli.train"], env, root, timeout)
    seconds = time.time() - started
    definitions = (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    metrics = metric_values(log, definitions)
    if code != 0:
        failure = opt_ml / "output" / "failure"
        detail = failure.read_text().strip() if failure.exists() else tail(log, 5)
        # the toolkit's failure file says ExecuteUserScriptError with an empty ErrorMessage (this toolkit entry
        # point does not capture stderr, the scikit-learn container's does): the script's error is in the log
        summary = (
            _python_error(log) or _python_error(detail) or (detail.splitlines()[-1] if detail else f"exit code {code}")
        )
        reason = f"AlgorithmError: {summary}"
        return JobResult(False, reason=reason[:1024], log=log, seconds=seconds, outputs={"metrics": metrics})
    kms = request["OutputDataConfig"].get("KmsKeyId")
    bucket, key = out_bucket, f"{out_prefix.rstrip('/')}/{name}/output/model.tar.gz".lstrip("/")
    model_uri = f"s3://{bucket}/{key}"
    archive = _pack(opt_ml / "model", root / "model.tar.gz")
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else None
    try:
        s3.upload_file(str(archive), bucket, key, ExtraArgs=extra)
    except Exception as error:  # boto3 S3UploadFailedError / ClientError: the job fails, as SageMaker's does
        reason = f"ClientError: Artifact upload failed:Unable to upload file to {model_uri} ({error})"
        return JobResult(False, reason=reason[:1024], log=log, seconds=seconds, outputs={"metrics": metrics})
    output_data = opt_ml / "output" / "data"
    if any(output_data.iterdir()):
        s3.upload_file(
            str(_pack(output_data, root / "output.tar.gz")),
            bucket,
            key.replace("model.tar.gz", "output.tar.gz"),
            ExtraArgs=extra,
        )
    return JobResult(True, log=log, seconds=seconds, outputs={"model_uri": model_uri, "metrics": metrics})


# ---- SageMaker processing ------------------------------------------------------------------------------

CONTAINER_ROOT = "/opt/ml/"


def relocate(value: str, root: Path) -> str:
    """A container path (or a command containing them) under the job's directory."""
    return value.replace(CONTAINER_ROOT, f"{root.as_posix()}{CONTAINER_ROOT}")


def run_processing(
    s3: Any,
    request: Mapping[str, Any],
    workdir: Path,
    endpoint_url: str,
    region: str,
    credentials: Mapping[str, str] | None = None,
) -> JobResult:
    started = time.time()
    name = request["ProcessingJobName"]
    root = workdir / "processing" / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for item in request.get("ProcessingInputs") or []:
        source = item.get("S3Input")
        if source:
            download(s3, source["S3Uri"], Path(relocate(source["LocalPath"], root)))
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for item in outputs:
        Path(relocate(item["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
    spec = request["AppSpecification"]
    command = [
        relocate(part, root) for part in [*spec.get("ContainerEntrypoint", []), *spec.get("ContainerArguments", [])]
    ]
    env = base_environment(endpoint_url, region, workdir, credentials)
    env.update({str(k): relocate(str(v), root) for k, v in (request.get("Environment") or {}).items()})
    timeout = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
    code, log = _run(command, env, root, timeout)
    seconds = time.time() - started
    if code != 0:
        reason = f"AlgorithmError: {_python_error(log) or tail(log, 3)} (exit code {code}; {shlex.join(command)[:200]})"
        return JobResult(False, reason=reason[:1024], log=log, seconds=seconds)
    kms = (request.get("ProcessingOutputConfig") or {}).get("KmsKeyId")
    uploaded = []
    for item in outputs:
        local = Path(relocate(item["S3Output"]["LocalPath"], root))
        uploaded += upload_directory(s3, local, item["S3Output"]["S3Uri"], kms)
    return JobResult(True, log=log, seconds=seconds, outputs={"uploaded": uploaded})


# ---- job state changes -----------------------------------------------------------------------------------

_changes = threading.Condition()
_generation = 0


def job_generation() -> int:
    """A counter of managed-job state changes (read it before looking at a job's state)."""
    return _generation


def job_changed() -> None:
    """A managed job reached a new state: wake whoever waits for one (Step Functions ``.sync`` tasks learn of
    SageMaker job state changes from EventBridge events rather than only by polling)."""
    global _generation
    with _changes:
        _generation += 1
        _changes.notify_all()


def wait_for_job_change(seen: int, timeout: float) -> bool:
    """Wait up to ``timeout`` real seconds for a change after generation ``seen``; True if one happened."""
    with _changes:
        return _changes.wait_for(lambda: _generation != seen, timeout=max(0.0, timeout))
