"""The local Lambda runtime's bootstrap: one warm worker process of one function.

Started as ``python -S lambda_bootstrap.py`` (no site: the project's editable install is invisible) with
``sys.path`` = the function's unpacked deployment package, then the layer directories (the site-packages of
the pinned environment stand in for the Powertools and AWS SDK for pandas layers). The environment holds
the function's variables plus the Lambda reserved ones. Protocol on the inherited file descriptors:
one JSON request per line in, one JSON response per line out; everything the handler prints goes into the
response's ``logs`` (as Lambda sends it to CloudWatch Logs), never onto the protocol stream.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import time
import traceback
import uuid


class _Capture(io.TextIOBase):
    """stdout/stderr of the handler: collected per invocation."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        return None

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text

    def isatty(self) -> bool:
        return False


class _Context:
    """The Lambda context object (the attributes Powertools and handlers read)."""

    def __init__(self, request_id: str, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ["LOCAL_LAMBDA_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def main() -> None:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    layers = [p for p in os.environ.get("LOCAL_LAMBDA_LAYER_PATHS", "").split(os.pathsep) if p]
    stdlib = [p for p in sys.path[1:] if p and "site-packages" not in p]  # [0] is this script's folder
    sys.path[:] = [task_root, *layers, *stdlib]
    os.chdir(task_root)
    protocol_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    capture = _Capture()
    sys.stdout = capture
    sys.stderr = capture
    started = time.time()
    handler_path = os.environ["_HANDLER"]
    module_name, _, function_name = handler_path.rpartition(".")
    init_error = None
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # an import error is reported on every invocation, like Lambda does
        handler = None
        init_error = _error_payload(error)
    init_ms = (time.time() - started) * 1000
    protocol_out.write(json.dumps({"ready": True, "init_ms": init_ms, "logs": capture.take()}) + "\n")
    protocol_out.flush()
    for line in protocol_in:
        request = json.loads(line)
        request_id = request.get("request_id") or str(uuid.uuid4())
        context = _Context(request_id, time.time() + float(request["timeout"]))
        begun = time.time()
        print(f"START RequestId: {request_id} Version: $LATEST")
        response: dict[str, object]
        if handler is None:
            response = {"ok": False, "error": init_error}
        else:
            try:
                result = handler(request["event"], context)
                response = {"ok": True, "result": json.dumps(result, default=str)}
            except Exception as error:
                response = {"ok": False, "error": _error_payload(error)}
                print(json.dumps({"level": "ERROR", **_error_payload(error)}))
        duration = (time.time() - begun) * 1000
        print(f"END RequestId: {request_id}")
        print(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms")
        response.update({"logs": capture.take(), "duration_ms": duration})
        protocol_out.write(json.dumps(response) + "\n")
        protocol_out.flush()


def _error_payload(error: BaseException) -> dict[str, object]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_exception(type(error), error, error.__traceback__)[-8:],
    }


if __name__ == "__main__":
    main()
