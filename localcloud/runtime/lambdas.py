"""The local Lambda runtime: every function runs from its deployment package in warm worker processes.

The package is the zip the stack's ``Code`` points at (downloaded from the local S3, as Lambda does),
unpacked once per code hash. Each worker is a ``python -S`` process (see ``lambda_bootstrap``) with the
function's environment, the Lambda reserved variables and ``AWS_ENDPOINT_URL`` pointing at the local cloud.
Concurrency: one invocation per worker; a busy function starts another worker (up to its reserved
concurrency, if set). A function that exceeds its timeout has its worker killed, as Lambda does.

What the handler prints goes to CloudWatch Logs (the function's log group); Embedded Metric Format lines
become CloudWatch metrics, which is what CloudWatch does with EMF in Lambda logs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.runtime.protocol import JsonLines

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    code: bytes  # the deployment package (zip)
    environment: dict[str, str]
    timeout: int
    memory: int
    log_group: str
    reserved_concurrency: int | None = None
    role: str = ""  # the execution role: the worker calls AWS with its temporary credentials

    @property
    def code_hash(self) -> str:
        return hashlib.sha256(self.code).hexdigest()[:16]


@dataclass
class Invocation:
    function: str
    request_id: str
    ok: bool
    payload: str  # JSON text of the result, or of the error object
    logs: str
    duration_ms: float
    init_ms: float | None = None
    started_at: float = field(default_factory=time.time)


class _Worker:
    def __init__(
        self,
        spec: FunctionSpec,
        task_root: Path,
        environment: dict[str, str],
        track: Callable[[_Worker], None] = lambda worker: None,
    ) -> None:
        self.spec = spec
        self.started = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-u", str(BOOTSTRAP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=task_root,
            env=environment,
            text=True,
            bufsize=1,
        )
        track(self)  # from its start: a runtime that stops while the worker imports can still kill it
        self._protocol = JsonLines(self.process, f"lambda-{spec.name}")
        hello = self._protocol.read(timeout=120)
        if hello is None:
            self.stop()
            raise RuntimeError(f"Lambda worker of {spec.name} did not start")
        self.init_ms: float | None = float(hello.get("init_ms", 0.0))
        self.init_logs = str(hello.get("logs", ""))

    def invoke(self, event: Any, request_id: str) -> dict[str, Any] | None:
        self._protocol.send({"event": event, "request_id": request_id, "timeout": self.spec.timeout})
        return self._protocol.read(timeout=self.spec.timeout + 5)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=10)


class LambdaRuntime:
    """Runs invocations of the functions of a moto Lambda backend."""

    def __init__(
        self,
        workdir: Path,
        endpoint_url: str,
        region: str,
        layer_paths: list[str],
        on_logs: Callable[[FunctionSpec, str, str], None] | None = None,
        credentials: Callable[[FunctionSpec], dict[str, str]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.endpoint_url = endpoint_url
        self.region = region
        self.layer_paths = layer_paths
        self.on_logs = on_logs
        self.credentials = credentials
        self._idle: dict[str, list[_Worker]] = {}
        self._busy: dict[str, int] = {}
        self._lock = threading.Condition()
        self._workers: set[_Worker] = set()  # every worker started and not yet stopped: idle, busy or starting
        self._stopped = False
        self.invocations: list[Invocation] = []

    # ---- packages and environment ----
    def task_root(self, spec: FunctionSpec) -> Path:
        """The package unpacked once per code version. Two cold starts of one function may unpack it at the same
        time (a prewarm and the first invocation): each unpacks into its own staging folder and the first rename
        wins; the other's copy is dropped."""
        root = self.workdir / "lambda" / f"{spec.name}-{spec.code_hash}"
        if not root.exists():
            staging = root.with_name(f"{root.name}.staging-{uuid.uuid4().hex}")
            with zipfile.ZipFile(io.BytesIO(spec.code)) as archive:
                archive.extractall(staging)
            try:
                staging.rename(root)
            except OSError:
                if not root.is_dir():
                    raise
                shutil.rmtree(staging, ignore_errors=True)  # another cold start unpacked it first
        return root

    def environment(self, spec: FunctionSpec, task_root: Path) -> dict[str, str]:
        """The worker's environment: the function's variables and Lambda's reserved ones, among them the execution
        role's temporary credentials (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), as
        Lambda sets them."""
        role_credentials = (
            self.credentials(spec)
            if self.credentials is not None and spec.role
            else {"AWS_ACCESS_KEY_ID": "local-lambda", "AWS_SECRET_ACCESS_KEY": "local-lambda"}
        )
        keep = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "AWS_CA_BUNDLE")
        }
        return {
            **keep,
            **spec.environment,
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LOCAL_LAMBDA_LAYER_PATHS": os.pathsep.join(self.layer_paths),
            "LOCAL_LAMBDA_FUNCTION_ARN": spec.arn,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_SESSION_TOKEN": "local-lambda",
            **role_credentials,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # No X-Ray daemon offline: Powertools Tracer is disabled (its decorators still run).
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }

    # ---- workers ----
    def _acquire(self, spec: FunctionSpec) -> _Worker:
        with self._lock:
            while True:
                idle = [w for w in self._idle.get(spec.name, []) if w.alive() and w.spec == spec]
                self._idle[spec.name] = idle
                if idle:
                    worker = idle.pop()
                    self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                    return worker
                limit = spec.reserved_concurrency
                if limit is None or self._busy.get(spec.name, 0) < limit:
                    self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                    break
                self._lock.wait(timeout=1)
        try:
            return self._start_worker(spec)
        except BaseException:
            self._release(spec, None)
            raise

    def _start_worker(self, spec: FunctionSpec) -> _Worker:
        root = self.task_root(spec)
        return _Worker(spec, root, self.environment(spec, root), self._track)

    def _track(self, worker: _Worker) -> None:
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._workers = {w for w in self._workers if w.alive()} | {worker}
        if stopped:  # started while the runtime stopped: nobody would ever stop it
            worker.stop()

    def _release(self, spec: FunctionSpec, worker: _Worker | None) -> None:
        with self._lock:
            self._busy[spec.name] = max(0, self._busy.get(spec.name, 1) - 1)
            keep = worker is not None and worker.alive() and not self._stopped
            if keep and worker is not None:
                self._idle.setdefault(spec.name, []).append(worker)
            self._lock.notify_all()
        if worker is not None and not keep:
            worker.stop()

    def invoke(self, spec: FunctionSpec, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        started = time.time()
        worker = self._acquire(spec)
        init_ms, worker.init_ms = worker.init_ms, None  # reported once, on the cold invocation
        init_logs, worker.init_logs = worker.init_logs, ""
        response = worker.invoke(event, request_id)
        if response is None:
            worker.stop()
            self._release(spec, None)
            elapsed = time.time() - started
            error = {
                "errorMessage": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} "
                f"Task timed out after {elapsed:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }
            result = Invocation(spec.name, request_id, False, json.dumps(error), init_logs, elapsed * 1000, init_ms)
        else:
            self._release(spec, worker)
            payload = response["result"] if response.get("ok") else json.dumps(response.get("error"))
            result = Invocation(
                spec.name,
                request_id,
                bool(response.get("ok")),
                payload,
                init_logs + str(response.get("logs", "")),
                float(response.get("duration_ms", 0.0)),
                init_ms,
            )
        self.invocations.append(result)
        if self.on_logs is not None:
            self.on_logs(spec, request_id, result.logs)
        return result

    def prewarm(self, specs: list[FunctionSpec]) -> list[threading.Thread]:
        """Start one worker per function in the background (like provisioned concurrency of one), so the
        first invocation does not wait for the imports; a function invoked before its worker is ready starts
        its own. A function that already has a worker of this code (an invocation during the deployment: a custom
        resource, an alarm action) gets none. Returns the threads (for tests)."""

        def start(spec: FunctionSpec) -> None:
            if self._has_worker(spec):
                return
            try:
                worker = self._start_worker(spec)
            except Exception:  # a broken package fails on invocation, where Lambda reports it
                return
            with self._lock:
                if not self._stopped:
                    self._idle.setdefault(spec.name, []).append(worker)
                    self._lock.notify_all()

        threads = [threading.Thread(target=start, args=(spec,), daemon=True) for spec in specs]
        for thread in threads:
            thread.start()
        return threads

    def _has_worker(self, spec: FunctionSpec) -> bool:
        """Whether a live worker of ``spec`` exists (idle, busy or starting)."""
        with self._lock:
            return any(w.spec == spec and w.alive() for w in self._workers)

    def stop(self) -> None:
        """Stop every worker: idle ones, busy ones (their invocation fails) and ones still starting."""
        with self._lock:
            self._stopped = True
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.stop()
