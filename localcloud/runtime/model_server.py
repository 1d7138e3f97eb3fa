"""A model container for the local cloud: SageMaker's hosting contract (``GET /ping``, ``POST /invocations``).

Started per model as ``python -S model_server.py <model_dir> <port>`` with ``sys.path`` = ``<model_dir>/code``
then the layer paths (the pinned environment stands in for the scikit-learn container's libraries), so the
inference code runs from the model archive alone, as in the container. Requests go through the SageMaker
inference toolkit: ``DefaultHandlerService`` loads the user module named by ``SAGEMAKER_PROGRAM`` from
``SAGEMAKER_SUBMIT_DIRECTORY`` (the model's container environment) and its ``Transformer`` calls
``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn``, turning a toolkit error into its HTTP status.

The model is loaded (``model_fn``) before the server says it is ready. A model that does not load does not stop
the container: ``GET /ping`` answers 500 with the error (and so does ``/invocations``), as the scikit-learn
container does, whose first request, the platform's ping, loads the model and fails with it
(aws/sagemaker-scikit-learn-container ``src/sagemaker_sklearn_container/serving.py``, ``main``). SageMaker then
fails the endpoint's creation or update on the ping.

Responses carry ``X-Model-Latency-Us`` (time spent in the handler) for the endpoint's ModelLatency metric.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class InvocationContext:
    """The parts of the model server's request context that the toolkit's ``Transformer`` uses."""

    def __init__(self, model_dir: str, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [_RequestProcessor(headers)]
        self.status = 200
        self.phrase: str | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str, idx: int = 0) -> None:
        self.status, self.phrase = code, phrase

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.content_type = value


def make_handler(service: Any, model_dir: str, load_error: str | None = None) -> type[BaseHTTPRequestHandler]:
    """The request handler; with ``load_error`` (the model did not load) every ping and invocation answers 500."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _reply(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/ping":
                if load_error is None:
                    self._reply(200, b"\n", "text/plain")
                else:
                    self._reply(500, f"the model did not load: {load_error}\n".encode(), "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/invocations":
                self._reply(404, b"not found\n", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if load_error is not None:
                self._reply(500, f"the model did not load: {load_error}\n".encode(), "text/plain")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
            started = time.perf_counter()
            context = InvocationContext(model_dir, headers)
            try:
                [result] = service.handle([{"body": body}], context)
            except Exception as error:  # the container answers 500 with the error, as the toolkit's server does
                context.status, result = 500, f"{type(error).__name__}: {error}"
            latency_us = int((time.perf_counter() - started) * 1e6)
            payload = result if isinstance(result, bytes) else str(result).encode("utf-8")
            content_type = context.content_type or ("text/plain" if context.status != 200 else "application/json")
            self._reply(context.status, payload, content_type, {"X-Model-Latency-Us": str(latency_us)})

    return Handler


def main() -> None:
    model_dir, port = sys.argv[1], int(sys.argv[2])
    layers = [p for p in os.environ.get("LOCAL_LAYER_PATHS", "").split(os.pathsep) if p]
    code_dir = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", os.path.join(model_dir, "code"))
    stdlib = [p for p in sys.path[1:] if p and "site-packages" not in p]
    sys.path[:] = [code_dir, *layers, *stdlib]
    from sagemaker_inference.default_handler_service import DefaultHandlerService

    service = DefaultHandlerService()
    load_error = None
    try:
        service.initialize(InvocationContext(model_dir, {}))
    except Exception as error:  # the container keeps running; its ping says the model did not load
        traceback.print_exc()
        load_error = f"{type(error).__name__}: {error}"
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(service, model_dir, load_error))
    print(json.dumps({"ready": True, "port": port}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
