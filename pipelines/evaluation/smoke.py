"""The golden-payload smoke test, inside the evaluation job: the image's own serving stack on the new artifact.

The scikit-learn image that evaluates is the image the endpoint runs, so the job starts that image's serving
command on the model archive it just evaluated, sends the golden payloads to it as the endpoint's clients do, and
compares the served answers with the in-process ones, before anything is registered (no candidate endpoint).

The serving contract, read from the image's sources (aws/sagemaker-scikit-learn-container ``setup.py``: the
console script ``serve`` = ``sagemaker_sklearn_container.serving:serving_entrypoint``, which calls
``sagemaker_containers``' ``_server.start``: nginx on ``SAGEMAKER_BIND_TO_PORT`` (default 8080) in front of
gunicorn running ``SAGEMAKER_SERVING_MODULE``; ``_env.py``: the model directory is ``$SAGEMAKER_BASE_DIR/model``
(``/opt/ml/model`` by default), the user module ``SAGEMAKER_PROGRAM`` in ``SAGEMAKER_SUBMIT_DIRECTORY``):

- the unpacked archive is laid out as ``<base>/model`` (``model.joblib``, ``code/inference.py``), the
  environment is the registered package's (``SAGEMAKER_PROGRAM=inference.py``, the submit directory the
  archive's ``code/``), on a free local port;
- ``GET /ping`` is polled until it answers 200, for at most ``timeout`` seconds (a server that exits, or never
  becomes healthy, fails the smoke with its last status and its log's last lines);
- the golden rows are POSTed twice: ``application/json`` records (``golden.json``'s body) and ``text/csv`` rows
  in schema order without a header (what the clients send), each with ``Accept: application/json``;
- each answer must be 200 and equal the in-process answer to the same body (``decode_request -> predict`` of
  the inference handler): labels equal, every number within ``tolerance`` (``math.isclose`` with the relative
  and absolute tolerance both set to it), the same ``model_version``;
- the server is stopped (SIGTERM to its process group: nginx and gunicorn go with it) whatever the result.

A failure is a result, not an exception: ``SmokeResult.reason`` says which request, the status code and the
first ``BODY_EXCERPT`` characters of the body; the gate refuses the candidate and nothing is registered.
Locally the image's ``serve`` is the local cloud's model server (``localcloud/runtime/image.py``), started by the
same command with the same environment.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.inference.inference import CSV, JSON, Limits, LoadedModel, decode_request, predict, prediction_records

SERVE_COMMAND: tuple[str, ...] = ("serve",)
"""The image's serving command (the container's ``serve`` console script), found on the job's ``PATH``."""
MODULE_ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py"}  # the registered package's (lambdas/register_model)
PING_TIMEOUT_SECONDS = 120.0
"""How long the server may take to answer ``/ping`` with 200 (gunicorn start-up and the model's load take
seconds; SageMaker gives an endpoint's container minutes, this bounds the job's wait)."""
REQUEST_TIMEOUT_SECONDS = 60.0  # InvokeEndpoint's own limit for an answer
POLL_SECONDS = 0.2
STOP_SECONDS = 10.0
BODY_EXCERPT = 300
LOG_LINES = 5


@dataclass(frozen=True)
class Payload:
    """One request of the smoke test and the in-process answer it must get."""

    content_type: str
    body: str
    expected: dict[str, Any]  # {"model_version", "predictions"} as the inference handler encodes them


@dataclass(frozen=True)
class SmokeResult:
    """``evaluation.json``'s ``smoke``."""

    passed: bool
    reason: str
    requests: int  # answered requests (each golden payload once per content type)
    rows: int
    max_abs_diff: float | None
    tolerance: float
    seconds: float  # server start to the end of the test (the start overlaps the evaluation)
    command: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""The local server is reached directly, whatever proxy the job's environment names."""


class SmokeFailed(Exception):
    """The serving stack did not answer as the in-process handler does (the message is the reason)."""


def golden_csv(records: Sequence[Mapping[str, Any]], features: Sequence[str]) -> str:
    """The golden records as ``text/csv`` rows in schema order, no header; a missing value is an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for record in records:
        writer.writerow(["" if record.get(name) is None else record[name] for name in features])
    return out.getvalue()


def payloads(model: LoadedModel, golden: Mapping[str, Any]) -> list[Payload]:
    """The golden rows as JSON (``golden.json``'s body) and as CSV, each with the in-process answer to it."""
    records = golden["body"]["instances"]
    bodies = [(JSON, json.dumps(golden["body"])), (CSV, golden_csv(records, model.schema.feature_names))]
    return [Payload(kind, body, _in_process(model, body, kind)) for kind, body in bodies]


def _in_process(model: LoadedModel, body: str, content_type: str) -> dict[str, Any]:
    prediction = predict(decode_request(body, content_type, Limits()), model)
    return {"model_version": model.version, "predictions": prediction_records(prediction)}


def compare_answers(got: Any, want: Any, tolerance: float, where: str = "") -> tuple[list[str], float]:
    """Differences between a served JSON answer and the in-process one (numbers within ``tolerance``, everything
    else equal, the same keys), and the largest absolute difference of a compared number."""
    if isinstance(want, bool) or not isinstance(want, (int, float, dict, list)):
        return ([] if got == want else [f"{where or 'answer'} {got!r} != {want!r}"]), 0.0
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return [f"{where} {got!r} is not a number ({want!r} expected)"], 0.0
        close = math.isclose(got, want, rel_tol=tolerance, abs_tol=tolerance)
        return ([] if close else [f"{where} {got!r} != {want!r}"]), abs(float(got) - float(want))
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            return [f"{where or 'answer'} has {keys}, expected {sorted(want)}"], 0.0
        pairs: list[tuple[str, Any, Any]] = [(f"{where}.{k}".lstrip("."), got[k], want[k]) for k in want]
    else:
        if not isinstance(got, list) or len(got) != len(want):
            count = len(got) if isinstance(got, list) else type(got).__name__
            return [f"{where} has {count} rows, expected {len(want)}"], 0.0
        pairs = [(f"{where}[{i}]", g, w) for i, (g, w) in enumerate(zip(got, want, strict=True))]
    problems: list[str] = []
    worst = 0.0
    for path, g, w in pairs:
        found, diff = compare_answers(g, w, tolerance, path)
        problems += found
        worst = max(worst, diff)
    return problems, worst


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServingStack:
    """The image's serving command on an unpacked model archive, on a local port (a context manager)."""

    def __init__(
        self,
        model_dir: str | Path,
        workdir: str | Path,
        command: Sequence[str] = SERVE_COMMAND,
        port: int | None = None,
    ) -> None:
        self.base = Path(workdir)
        self.command = list(command)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "serve.log"
        shutil.copytree(model_dir, self.base / "model", dirs_exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            **MODULE_ENVIRONMENT,
            "SAGEMAKER_BASE_DIR": str(self.base),
            "SAGEMAKER_SUBMIT_DIRECTORY": str(self.base / "model" / "code"),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
        }

    def __enter__(self) -> ServingStack:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=STOP_SECONDS)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_SECONDS)

    def log_tail(self, lines: int = LOG_LINES) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())

    def wait_healthy(self, timeout: float) -> None:
        """Poll ``GET /ping`` until 200; ``SmokeFailed`` with the reason if the server exits or ``timeout``
        passes first."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        assert self.process is not None
        while True:
            code = self.process.poll()
            if code is not None:
                raise SmokeFailed(
                    f"the serving command {' '.join(self.command)!r} exited with code {code} before answering "
                    f"/ping: {self.log_tail() or 'no output'}"
                )
            try:
                status, body = call("GET", f"{self.url}/ping", timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            except OSError as error:  # not listening yet
                last = f"no answer ({type(error).__name__})"
            else:
                if status == 200:
                    return
                last = f"{status} {_excerpt(body)}".strip()
            if time.monotonic() >= deadline:
                raise SmokeFailed(
                    f"the serving stack did not answer GET /ping with 200 within {timeout:.0f} s (last: {last}); "
                    f"log: {self.log_tail() or 'empty'}"
                )
            time.sleep(POLL_SECONDS)


def call(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> tuple[int, bytes]:
    """(status, body) of one HTTP request to the local server; an error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read() or b"")


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "..."


class EarlyServing:
    """The serving stack started as soon as the archive is unpacked, tested later (a context manager): its start-up
    (gunicorn and the model's load in the image; the interpreter's imports locally) runs while the job evaluates,
    so only the golden requests come after the evaluation. A command that cannot start is a failed smoke test,
    reported by ``test``."""

    def __init__(self, model_dir: str | Path, command: Sequence[str] = SERVE_COMMAND) -> None:
        self.model_dir, self.command = model_dir, tuple(command)
        self.started = time.monotonic()
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._stack: ServingStack | None = None
        self._error: OSError | None = None

    def __enter__(self) -> EarlyServing:
        self.started = time.monotonic()
        self._scratch = tempfile.TemporaryDirectory(prefix="smoke-")
        try:
            self._stack = ServingStack(self.model_dir, self._scratch.name, self.command).__enter__()
        except OSError as error:  # the command is missing, or the archive cannot be laid out
            self._error = error
        return self

    def __exit__(self, *_: object) -> None:
        if self._stack is not None:
            self._stack.stop()
        if self._scratch is not None:
            self._scratch.cleanup()

    def test(
        self, model: LoadedModel, golden: Mapping[str, Any], tolerance: float, timeout: float = PING_TIMEOUT_SECONDS
    ) -> SmokeResult:
        """Wait for the stack's ``/ping``, send the golden payloads, compare with the in-process answers."""
        shown = " ".join(self.command)
        rows = len(golden["body"]["instances"])
        sent = 0
        worst: float | None = None

        def result(passed: bool, reason: str) -> SmokeResult:
            seconds = round(time.monotonic() - self.started, 3)
            return SmokeResult(passed, reason, sent, rows, worst, tolerance, seconds, shown)

        try:
            if self._error is not None:
                raise self._error
            assert self._stack is not None, "use EarlyServing as a context manager"
            expected = payloads(model, golden)
            self._stack.wait_healthy(timeout)
            for payload in expected:
                what = f"POST /invocations ({payload.content_type}, {rows} golden rows)"
                status, body = call(
                    "POST",
                    f"{self._stack.url}/invocations",
                    payload.body.encode("utf-8"),
                    {"Content-Type": payload.content_type, "Accept": JSON},
                )
                if status != 200:
                    raise SmokeFailed(f"{what} answered {status}: {_excerpt(body) or 'empty body'}")
                try:
                    answer = json.loads(body)
                except ValueError:
                    raise SmokeFailed(f"{what} answered 200 with a body that is not JSON: {_excerpt(body)}") from None
                problems, diff = compare_answers(answer, payload.expected, tolerance)
                worst = max(worst or 0.0, diff)
                if problems:
                    listed = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
                    raise SmokeFailed(
                        f"{what}: {len(problems)} served values differ from the in-process answers "
                        f"(tolerance {tolerance:g}): {listed}"
                    )
                sent += 1
        except SmokeFailed as failure:
            return result(False, str(failure))
        except OSError as error:  # the command is missing, or the server dropped a connection
            return result(False, f"the serving stack {shown!r} could not be reached: {type(error).__name__}: {error}")
        return result(
            True,
            f"the serving stack ({shown}) answered {sent} golden requests of {rows} rows as the in-process handler "
            "does",
        )


def smoke_test(
    model_dir: str | Path,
    model: LoadedModel,
    golden: Mapping[str, Any],
    tolerance: float,
    *,
    command: Sequence[str] = SERVE_COMMAND,
    timeout: float = PING_TIMEOUT_SECONDS,
) -> SmokeResult:
    """Serve the unpacked archive ``model_dir`` with ``command``, send the golden payloads, compare, stop."""
    with EarlyServing(model_dir, command) as serving:
        return serving.test(model, golden, tolerance, timeout)
