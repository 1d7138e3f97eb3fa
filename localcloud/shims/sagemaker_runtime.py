"""InvokeEndpoint returns the served model's answer (moto 5.2.5 returns fixed fake bodies, does not check that
the endpoint exists, and reads ``EndpointName`` as None).

Patch point: ``moto.sagemakerruntime.responses.SageMakerRuntimeResponse.invoke_endpoint``. The endpoint
name comes from the request path (``/endpoints/<name>/invocations``); the request goes to the local
cloud's endpoint data plane (``localcloud.runtime.endpoints``). Errors keep the API's shapes:
``ValidationError`` (400) for an unknown endpoint or variant, ``ModelError`` (424) with
``OriginalStatusCode`` / ``OriginalMessage`` when the model container answers with an error.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from moto.sagemakerruntime import responses as runtime_responses

_installed = False
_runtime: Any = None
_original_invoke = runtime_responses.SageMakerRuntimeResponse.invoke_endpoint


def set_runtime(runtime: Any) -> None:
    global _runtime
    _runtime = runtime


def endpoint_name_from_path(path: str) -> str:
    parts = [p for p in path.split("?")[0].split("/") if p]
    if len(parts) >= 3 and parts[0] == "endpoints" and parts[2] == "invocations":
        return unquote(parts[1])
    raise ValueError(f"not an InvokeEndpoint path: {path!r}")


def invoke_endpoint(self: Any) -> Any:
    from localcloud.runtime.endpoints import EndpointError

    if _runtime is None:
        raise RuntimeError("no local endpoint runtime is running (start a LocalCloud)")
    headers = {k.lower(): v for k, v in self.headers.items()}
    body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
    try:
        result = _runtime.invoke(
            endpoint_name_from_path(self.path),
            body,
            headers.get("content-type"),
            headers.get("accept"),
            target_variant=headers.get("x-amzn-sagemaker-target-variant"),
            inference_id=headers.get("x-amzn-sagemaker-inference-id"),
        )
    except EndpointError as error:
        payload = {"__type": error.code, "message": error.message, **error.extra}
        # moto takes a handler's HTTP status from its "status" header, not from the tuple's first element
        error_headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": error.code}
        return error.status, {**error_headers, "status": error.status}, json.dumps(payload)
    response_headers = {"Content-Type": result.content_type, "x-Amzn-Invoked-Production-Variant": result.variant}
    if headers.get("x-amzn-sagemaker-custom-attributes"):
        response_headers["X-Amzn-SageMaker-Custom-Attributes"] = headers["x-amzn-sagemaker-custom-attributes"]
    return 200, response_headers, result.body


def install() -> None:
    global _installed
    if _installed:
        return
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    _installed = True
