"""The SageMaker endpoint data plane of the local cloud: InvokeEndpoint routed to real model containers.

- Routing: ``localcloud.shims.sagemaker_endpoints.routes`` says which model serves which share of the
  production traffic now (during a canary both fleets serve) and which shadow variants get copies.
  ``TargetVariant`` pins a variant. Shadow copies are sent after the production response, off the request path.
- Containers: one model server process per model (``model_server.py``), started from the model's
  ``ModelDataUrl`` archive with the model's container environment, and healthy once ``GET /ping`` answers 200.
- Provisioning: the control plane (``localcloud.shims.sagemaker_endpoints``) asks ``check_fleet`` to start a new
  fleet's containers when an endpoint is created or updated; the endpoint is InService only once they answer
  their ping. A model that cannot be served fails that operation with SageMaker's ``FailureReason``: its archive
  cannot be downloaded or extracted, or its container does not pass the ping (e.g. ``model_fn`` raises); the
  container's output goes to the endpoint's log group, as the reason says.
- Metrics: ``AWS/SageMaker`` per EndpointName and VariantName, timestamped on the cloud clock, in CloudWatch,
  as SageMaker defines them (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html, endpoint
  invocation metrics): ``Invocations`` 1 per request; ``Invocation4XXErrors`` / ``Invocation5XXErrors`` 1 when the
  model answered 4xx / 5xx, else 0; ``InvocationModelErrors`` 1 when the request did not end in a 2xx answer
  (4xx and 5xx included, and no answer at all: connection errors, the 60 s timeout), else 0; ``ModelLatency``
  (microseconds: sending the request to the container, the inference, fetching the response) and
  ``OverheadLatency`` (the rest of the request's time here) for every request the container answered.
- Data capture: the endpoint config's ``DataCaptureConfig`` (sampling, input/output, content types, KMS) is
  applied; records are buffered per variant and written as SageMaker's JSON-lines capture files under
  ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<uuid>.jsonl``.

A container answering non-2xx becomes a ``ModelError`` (HTTP 424) carrying ``OriginalStatusCode`` and
``OriginalMessage`` (the container's response body), as InvokeEndpoint does; a container that does not answer
within InvokeEndpoint's 60 s is a ``ModelError`` with status 0 and SageMaker's timeout message.

SageMaker acts with the model's execution role (``ExecutionRoleArn``): it reads the model artifact, the container
gets the role's temporary credentials, data capture is written with it (``role_clients``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.sagemaker.models import sagemaker_backends

from localcloud.clock import clock
from localcloud.runtime import image
from localcloud.runtime.jobs import split_s3
from localcloud.runtime.journal import journal

SERVER_SCRIPT = Path(__file__).with_name("model_server.py")
PING_FAILED = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)
DOWNLOAD_FAILED = (
    'Failed to download model data for container "container_1" from URL: "{url}". Please ensure that there is '
    "an object located at the URL and that the role passed to CreateModel has permissions to download the object."
)
EXTRACT_FAILED = (
    'Failed to extract model data archive for container "container_1" from URL "{url}". Please ensure that the '
    "object located at the URL is a valid tar.gz archive."
)
"""SageMaker's FailureReasons for an endpoint whose model cannot be served (the first two as SageMaker words them,
seen in aws/sagemaker-python-sdk#155 and aws-solutions-library-samples/fraud-detection-using-machine-learning#9;
the third after the heading of the AWS knowledge-center article "Failed to extract model data archive for
container", re:Post sagemaker-endpoint-creation-fail)."""
CAPTURE_FLUSH_RECORDS = 200
CSV, JSON = "text/csv", "application/json"
INVOCATION_TIMEOUT_SECONDS = 60
TIMED_OUT = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency metrics "
    "for each container in Amazon CloudWatch, resolve the issue, and try again."
)


class EndpointError(Exception):
    """An InvokeEndpoint failure: ``code`` is the API error, ``status`` its HTTP status."""

    def __init__(self, code: str, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.extra = code, status, message, extra


@dataclass
class Invocation:
    body: bytes
    content_type: str
    variant: str
    model_name: str
    status: int
    latency_us: int
    overhead_us: int

    @property
    def ok(self) -> bool:
        """A 2xx answer (status 0: the container did not answer)."""
        return 200 <= self.status < 300


@dataclass
class _Container:
    model_name: str
    model_dir: Path
    port: int
    process: subprocess.Popen[str]

    def alive(self) -> bool:
        return self.process.poll() is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EndpointRuntime:
    def __init__(self, cloud: Any, seed: int = 7) -> None:
        self.cloud = cloud
        self.account_id = cloud.account_id
        self.region = cloud.region
        self._containers: dict[str, _Container] = {}
        self._lock = threading.RLock()
        self._container_locks: dict[str, threading.Lock] = {}
        self._rng = random.Random(seed)
        self._capture: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._capture_lock = threading.Lock()
        self.counts: dict[tuple[str, str, str], dict[str, int]] = {}  # (endpoint, variant, model)
        from localcloud.shims import sagemaker_endpoints

        sagemaker_endpoints.set_fleet_check(self.check_fleet)

    # ---- provisioning ----
    def check_fleet(self, endpoint_name: str, variants: list[tuple[str, str]]) -> Future[str | None]:
        """Start the containers of a new fleet in the background; the future says None once every one answered
        GET /ping with 200, else the FailureReason SageMaker gives (the control plane waits for it)."""
        return self.cloud.dispatcher.submit(self._check_fleet, endpoint_name, variants)

    def _check_fleet(self, endpoint_name: str, variants: list[tuple[str, str]]) -> str | None:
        for variant, model in variants:
            reason = self._provision(endpoint_name, variant, model)
            journal.record("endpoint-fleet", endpoint=endpoint_name, variant=variant, model=model, failure=reason)
            if reason is not None:
                return reason
        return None

    def _provision(self, endpoint_name: str, variant: str, model_name: str) -> str | None:
        try:
            data_url, _ = self._container_spec(model_name)
        except EndpointError as error:
            return error.message
        try:
            self._unpack(data_url)
        except (tarfile.TarError, EOFError, OSError) as error:  # downloaded, but not a .tar.gz archive
            self._endpoint_log(endpoint_name, variant, f"extracting {data_url}: {type(error).__name__}: {error}")
            return EXTRACT_FAILED.format(url=data_url)
        except Exception as error:  # the object is missing or cannot be read (S3's error)
            self._endpoint_log(endpoint_name, variant, f"downloading {data_url}: {error}")
            return DOWNLOAD_FAILED.format(url=data_url)
        try:
            self.container(model_name)
        except EndpointError as error:
            self._endpoint_log(endpoint_name, variant, error.message)
            return PING_FAILED.format(variant=variant)
        return None

    def _endpoint_log(self, endpoint_name: str, variant: str, text: str) -> None:
        if self.cloud.sink is not None:
            self.cloud.sink.write(f"/aws/sagemaker/Endpoints/{endpoint_name}", f"{variant}/local", text)

    # ---- containers ----
    def _container_spec(self, model_name: str) -> tuple[str, dict[str, str]]:
        try:
            model = sagemaker_backends[self.account_id][self.region].describe_model(model_name)
        except Exception as error:
            raise EndpointError("ModelError", 424, f"model {model_name}: {error}") from None
        container = model.primary_container or (model.containers or [{}])[0]
        data_url = container.get("ModelDataUrl")
        if not data_url:
            raise EndpointError("ModelError", 424, f"model {model_name} has no ModelDataUrl")
        return str(data_url), {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}

    def execution_role(self, model_name: str) -> str | None:
        try:
            model = sagemaker_backends[self.account_id][self.region].describe_model(model_name)
        except Exception:
            return None
        return str(model.execution_role_arn) if getattr(model, "execution_role_arn", None) else None

    def role_clients(self, model_name: str) -> Any:
        """Clients acting as the model's execution role (the local cloud's own when IAM is not running)."""
        role = self.execution_role(model_name)
        clients_for = getattr(self.cloud, "clients_for", None)
        if role and clients_for is not None and getattr(self.cloud, "iam", None) is not None:
            return clients_for(role, "sagemaker.amazonaws.com", "SageMaker")
        return self.cloud.clients

    def container(self, model_name: str, extra_environment: dict[str, str] | None = None) -> _Container:
        """The running container of ``model_name`` (started on first use). ``extra_environment`` (e.g. what a
        batch transform job sets) gives a separate container with those variables on top of the model's."""
        key = model_name
        if extra_environment:
            key += "#" + hashlib.sha256(json.dumps(extra_environment, sort_keys=True).encode()).hexdigest()[:12]
        with self._lock:
            existing = self._containers.get(key)
            if existing is not None and existing.alive():
                return existing
            lock = self._container_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                existing = self._containers.get(key)
                if existing is not None and existing.alive():
                    return existing
            started = time.time()
            data_url, environment = self._container_spec(model_name)
            environment = {**environment, **(extra_environment or {})}
            clients = self.role_clients(model_name)
            model_dir = self._unpack(data_url, clients)
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "TMPDIR")}
            env.update(getattr(clients, "credentials", {}))
            env.update({k: v.replace("/opt/ml/model", str(model_dir)) for k, v in environment.items()})
            env["LOCAL_LAYER_PATHS"] = os.pathsep.join(image.site_packages())  # the image's libraries only
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            process = subprocess.Popen(
                [sys.executable, "-S", "-u", str(SERVER_SCRIPT), str(model_dir), str(port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
            )
            log = self._wait_ready(process, model_name)
            self._ping(process, port, model_name, log)
            container = _Container(model_name, model_dir, port, process)
            threading.Thread(target=self._drain, args=(container,), daemon=True).start()
            with self._lock:
                self._containers[key] = container
            journal.record("model-container", model=model_name, seconds=round(time.time() - started, 2), log=log[-500:])
            return container

    def _wait_ready(self, process: subprocess.Popen[str], model_name: str) -> str:
        assert process.stdout is not None
        lines = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith('{"ready"'):
                return "".join(lines)
        process.kill()
        tail = "".join(lines[-15:]).strip()
        raise EndpointError("ModelError", 424, f"the container of model {model_name} failed to start: {tail[-1500:]}")

    @staticmethod
    def _ping(process: subprocess.Popen[str], port: int, model_name: str, log: str) -> None:
        """GET /ping must answer 200 (the hosting contract's health check) before the container serves."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/ping")
            response = connection.getresponse()
            status, body = response.status, response.read().decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException) as error:
            status, body = 0, f"{type(error).__name__}: {error}"
        finally:
            connection.close()
        if status == 200:
            return
        process.kill()
        with contextlib.suppress(Exception):
            process.wait(timeout=10)
        detail = f"{log.strip()[-1200:]}\nGET /ping: {status or 'no answer'} {body[:300]}"
        raise EndpointError("ModelError", 424, f"the container of model {model_name} failed its ping: {detail}")

    def _drain(self, container: _Container) -> None:
        assert container.process.stdout is not None
        for line in container.process.stdout:
            if line.strip() and self.cloud.sink is not None:
                stream = f"{container.model_name}/local"
                self.cloud.sink.write(f"/aws/sagemaker/Endpoints/{container.model_name}", stream, line)

    def _unpack(self, data_url: str, clients: Any = None) -> Path:
        digest = hashlib.sha256(data_url.encode()).hexdigest()[:16]
        target = self.cloud.workdir / "models" / digest
        if target.exists():
            return target
        archive = self.cloud.workdir / "models" / f"{digest}.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        bucket, key = split_s3(data_url)
        (clients or self.cloud.clients).s3.download_file(bucket, key, str(archive))
        staging = target.with_suffix(".staging")
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        staging.rename(target)
        return target

    def stop(self) -> None:
        from localcloud.shims import sagemaker_endpoints

        sagemaker_endpoints.set_fleet_check(None)
        self.flush_capture()
        with self._lock:
            containers = list(self._containers.values())
            self._containers.clear()
        for container in containers:
            container.process.kill()

    # ---- requests ----
    def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str | None,
        accept: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
    ) -> Invocation:
        from localcloud.shims import sagemaker_endpoints

        arrived = time.perf_counter()
        try:
            routes = sagemaker_endpoints.routes(self.account_id, self.region, endpoint_name)
        except sagemaker_endpoints.EndpointNotFound:
            raise EndpointError(
                "ValidationError",
                400,
                f"Endpoint {endpoint_name} of account {self.account_id} not found.",
            ) from None
        production = [r for r in routes if r.role == "production"]
        if not production:
            raise EndpointError("ValidationError", 400, f"Endpoint {endpoint_name} has no variant in service.")
        if target_variant:
            chosen = [r for r in production if r.variant_name == target_variant]
            if not chosen:
                raise EndpointError(
                    "ValidationError", 400, f"Target variant {target_variant} is not in endpoint {endpoint_name}."
                )
            route = chosen[0]
        else:
            route = self._pick(production)
        result = self._call(endpoint_name, route.variant_name, route.model_name, body, content_type, accept, arrived)
        self._capture_record(endpoint_name, result, body, content_type, inference_id)
        for shadow in (r for r in routes if r.role == "shadow"):
            if self._rng.random() < shadow.weight:
                self.cloud.dispatcher.submit(
                    self._shadow, endpoint_name, shadow, body, content_type, accept, inference_id
                )
        if not result.ok:
            kind = "client" if 400 <= result.status < 500 else "server"
            message = result.body.decode("utf-8", "replace")
            raise EndpointError(
                "ModelError",
                424,
                f'Received {kind} error ({result.status}) from primary with message "{message}". '
                f"See https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
                f"#logEventViewer:group=/aws/sagemaker/Endpoints/{endpoint_name} in account {self.account_id} "
                "for more information.",
                OriginalStatusCode=result.status,
                OriginalMessage=message,
                LogStreamArn=f"arn:aws:logs:{self.region}:{self.account_id}:log-group:/aws/sagemaker/Endpoints/"
                f"{endpoint_name}",
            )
        return result

    def _pick(self, production: list[Any]) -> Any:
        point, total = self._rng.random(), 0.0
        for route in production:
            total += route.weight
            if point < total:
                return route
        return production[-1]

    def _shadow(
        self,
        endpoint: str,
        route: Any,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        inference_id: str | None,
    ) -> None:
        result = self._call(
            endpoint, route.variant_name, route.model_name, body, content_type, accept, time.perf_counter()
        )
        self._capture_record(endpoint, result, body, content_type, inference_id)

    def _call(
        self,
        endpoint: str,
        variant: str,
        model_name: str,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        arrived: float,
    ) -> Invocation:
        try:
            container = self.container(model_name)
        except EndpointError as error:
            self._metrics(endpoint, variant, model_name, 0, None, 0)  # no container answered
            raise EndpointError("ModelError", 424, error.message, OriginalStatusCode=500) from None
        headers = {"Content-Type": content_type or "application/octet-stream"}
        if accept:
            headers["Accept"] = accept
        connection = http.client.HTTPConnection("127.0.0.1", container.port, timeout=INVOCATION_TIMEOUT_SECONDS)
        sent = time.perf_counter()
        latency_us: int | None = None
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            latency_us = int((time.perf_counter() - sent) * 1e6)
            status = response.status
            response_type = response.getheader("Content-Type") or "application/octet-stream"
        except TimeoutError:
            status, payload, response_type = 0, TIMED_OUT.encode(), "text/plain"
        except (OSError, http.client.HTTPException) as error:
            status, payload, response_type = 0, f"container error: {error}".encode(), "text/plain"
        finally:
            connection.close()
        total_us = int((time.perf_counter() - arrived) * 1e6)
        overhead_us = max(0, total_us - (latency_us or 0))
        self._metrics(endpoint, variant, model_name, status, latency_us, overhead_us)
        return Invocation(payload, response_type, variant, model_name, status, latency_us or 0, overhead_us)

    def _metrics(
        self, endpoint: str, variant: str, model: str, status: int, latency_us: int | None, overhead_us: int
    ) -> None:
        """One request's datapoints (status 0 and no latency: the container did not answer)."""
        counts = self.counts.setdefault((endpoint, variant, model), {"invocations": 0, "4xx": 0, "5xx": 0})
        counts["invocations"] += 1
        if 400 <= status < 500:
            counts["4xx"] += 1
        elif 500 <= status < 600:
            counts["5xx"] += 1
        now = clock.now()
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        data = [
            {"MetricName": "Invocations", "Value": 1.0, "Unit": "None"},
            {"MetricName": "Invocation4XXErrors", "Value": float(400 <= status < 500), "Unit": "None"},
            {"MetricName": "Invocation5XXErrors", "Value": float(500 <= status < 600), "Unit": "None"},
            {"MetricName": "InvocationModelErrors", "Value": float(not 200 <= status < 300), "Unit": "None"},
        ]
        if latency_us is not None:
            data += [
                {"MetricName": "ModelLatency", "Value": float(latency_us), "Unit": "Microseconds"},
                {"MetricName": "OverheadLatency", "Value": float(overhead_us), "Unit": "Microseconds"},
            ]
        for datum in data:
            datum.update({"Dimensions": dims, "Timestamp": now})
        cloudwatch_backends[self.account_id][self.region].put_metric_data("AWS/SageMaker", data)

    # ---- data capture ----
    def _capture_config(self, endpoint_name: str) -> dict[str, Any] | None:
        backend = sagemaker_backends[self.account_id][self.region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            return None
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
        capture = getattr(config, "data_capture_config", None) or {}
        return capture if capture.get("EnableCapture") else None

    def _capture_record(
        self, endpoint: str, result: Invocation, body: bytes, content_type: str | None, inference_id: str | None
    ) -> None:
        capture = self._capture_config(endpoint)
        if capture is None or not result.ok:
            return
        if self._rng.random() * 100 >= float(capture.get("InitialSamplingPercentage", 100)):
            return
        modes = {o.get("CaptureMode") for o in capture.get("CaptureOptions", [])} or {"Input", "Output"}
        header = capture.get("CaptureContentTypeHeader") or {}
        record: dict[str, Any] = {"captureData": {}, "eventVersion": "0"}
        if "Input" in modes:
            record["captureData"]["endpointInput"] = _captured(body, content_type or "", "INPUT", header)
        if "Output" in modes:
            record["captureData"]["endpointOutput"] = _captured(result.body, result.content_type, "OUTPUT", header)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if inference_id:
            metadata["inferenceId"] = inference_id
        record["eventMetadata"] = metadata
        key = (endpoint, result.variant)
        with self._capture_lock:
            buffer = self._capture.setdefault(key, [])
            buffer.append(record)
            full = len(buffer) >= CAPTURE_FLUSH_RECORDS
        if full:
            self.flush_capture(key)

    def flush_capture(self, only: tuple[str, str] | None = None) -> list[str]:
        """Write buffered capture records to S3 (SageMaker writes them within minutes); returns the URIs."""
        with self._capture_lock:
            keys = [only] if only else list(self._capture)
            batches = {k: self._capture.pop(k) for k in keys if self._capture.get(k)}
        written = []
        for (endpoint, variant), records in batches.items():
            capture = self._capture_config(endpoint)
            if capture is None:
                continue
            bucket, prefix = split_s3(capture["DestinationS3Uri"])
            stamp = clock.now()
            name = f"{stamp:%M-%S-%f}-{uuid.uuid4().hex[:8]}.jsonl"
            key = f"{prefix.rstrip('/')}/{endpoint}/{variant}/{stamp:%Y/%m/%d/%H}/{name}"
            extra = (
                {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": capture["KmsKeyId"]}
                if capture.get("KmsKeyId")
                else {}
            )
            from botocore.exceptions import ClientError

            try:
                self._variant_clients(endpoint, variant).s3.put_object(
                    Bucket=bucket,
                    Key=key.lstrip("/"),
                    Body="\n".join(json.dumps(r) for r in records).encode() + b"\n",
                    **extra,
                )
            except ClientError as error:  # SageMaker drops capture it cannot write; the invocation is not affected
                journal.record("data-capture", endpoint=endpoint, variant=variant, outcome="failed", error=str(error))
                continue
            written.append(f"s3://{bucket}/{key.lstrip('/')}")
            journal.record("data-capture", endpoint=endpoint, variant=variant, records=len(records), uri=written[-1])
        return written

    def _variant_clients(self, endpoint_name: str, variant: str) -> Any:
        """Clients of the execution role of the model a variant serves (data capture is written with it)."""
        backend = sagemaker_backends[self.account_id][self.region]
        endpoint = backend.endpoints.get(endpoint_name)
        config = backend.endpoint_configs.get(endpoint.endpoint_config_name) if endpoint is not None else None
        variants = [
            *(getattr(config, "production_variants", None) or []),
            *(getattr(config, "shadow_production_variants", None) or []),
        ]
        model = next((v.get("ModelName") for v in variants if v.get("VariantName") == variant), None)
        return self.role_clients(str(model)) if model else self.cloud.clients


def _captured(body: bytes, content_type: str, mode: str, header: dict[str, Any]) -> dict[str, Any]:
    media = content_type.split(";")[0].strip().lower()
    if media in [c.lower() for c in header.get("CsvContentTypes", [CSV])]:
        encoding, data = "CSV", body.decode("utf-8", "replace")
    elif media in [c.lower() for c in header.get("JsonContentTypes", [JSON])]:
        encoding, data = "JSON", body.decode("utf-8", "replace")
    else:
        encoding, data = "BASE64", base64.b64encode(body).decode()
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}
