"""SageMaker Batch Transform in the local cloud: a transform job sends its input through the model's container.

What one job does, as SageMaker Batch Transform does it:

- Input objects: ``S3Prefix`` (every object whose key starts with the URI's key) or ``ManifestFile`` (a JSON
  list: ``{"prefix": "s3://bucket/prefix/"}`` then keys relative to it). ``CompressionType`` ``None`` or ``Gzip``.
- Records: ``SplitType`` ``Line`` (one record per line; empty lines are skipped) or ``None`` (the whole object is
  one record). ``BatchStrategy`` ``SingleRecord`` sends one record per request, ``MultiRecord`` as many whole
  records as fit in ``MaxPayloadInMB`` (default 6; 0 = no limit). A record bigger than the limit fails the job.
- Requests: ``POST /invocations`` to the model's container (the endpoint data plane's container management,
  ``EndpointRuntime.container``) with ``Content-Type`` = ``ContentType`` and ``Accept`` = ``TransformOutput.Accept``.
  The container gets the model's environment, the job's ``Environment`` and ``SAGEMAKER_BATCH=true``,
  ``SAGEMAKER_MAX_PAYLOAD_IN_MB``, ``SAGEMAKER_BATCH_STRATEGY`` (``SINGLE_RECORD``/``MULTI_RECORD``) and
  ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``. A 5xx or a broken connection is retried
  ``ModelClientConfig.InvocationsMaxRetries`` times (default 3); a 4xx fails the job at once.
- Output: one object per input object, ``<S3OutputPath>/<key relative to the input prefix's folder>.out``
  (SSE-KMS with ``TransformOutput.KmsKeyId``). ``AssembleWith`` ``Line`` puts each response's records on their
  own lines; ``None`` concatenates the responses as they are.
- ``DataProcessing``: ``InputFilter`` and ``OutputFilter`` (JSONPath: ``$``, ``$[1:]``, ``$[0,2,-1]``, ``$[3]``,
  ``$.features``, ``$.a.b``, ``$['a','b']``) and ``JoinSource`` ``Input``. CSV records are treated as JSON arrays
  (the joined row is the input row followed by the output row); JSON records as objects (the output goes under
  ``SageMakerOutput``; a non-object input becomes ``{"SageMakerInput": ..., "SageMakerOutput": ...}``). Joining
  or output filtering needs one output line per input record (``SplitType`` ``Line`` with ``AssembleWith`` ``Line``).

A failure's ``FailureReason`` names the object, the records and what the container (or the input) said.
"""

from __future__ import annotations

import csv
import gzip
import http.client
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from localcloud.runtime.jobs import split_s3

MB = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT_SECONDS = 600
FAILURE_LIMIT = 1024

Invoke = Callable[[bytes, str, str | None], tuple[int, bytes]]
"""(body, content type, accept) -> (HTTP status, response body): one request to the model's container."""


class TransformError(Exception):
    """The job fails with ``str(error)`` as its ``FailureReason``."""


@dataclass
class TransformResult:
    ok: bool
    reason: str = ""
    seconds: float = 0.0
    objects: list[dict[str, Any]] = field(default_factory=list)  # {"input", "output", "records", "requests"}
    log: str = ""

    @property
    def records(self) -> int:
        return sum(int(o["records"]) for o in self.objects)

    @property
    def requests(self) -> int:
        return sum(int(o["requests"]) for o in self.objects)


# ---- input -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputObject:
    bucket: str
    key: str
    relative: str  # the output object's name below S3OutputPath, without ".out"


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return sorted(keys)


def input_objects(s3: Any, data_source: Mapping[str, Any]) -> list[InputObject]:
    """The objects a ``TransformInput.DataSource`` names, with their output names."""
    source = data_source.get("S3DataSource") or {}
    data_type, uri = source.get("S3DataType", "S3Prefix"), str(source.get("S3Uri", ""))
    bucket, key = split_s3(uri)
    if data_type == "S3Prefix":
        folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        keys = _list_keys(s3, bucket, key)
        if not keys:
            raise TransformError(f"ClientError: no S3 objects found under {uri}")
        return [InputObject(bucket, k, k[len(folder) :]) for k in keys]
    if data_type == "ManifestFile":
        try:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as error:
            raise TransformError(f"ClientError: cannot read the manifest {uri}: {error}") from None
        if not (isinstance(manifest, list) and manifest and isinstance(manifest[0], dict) and "prefix" in manifest[0]):
            raise TransformError(
                f'ClientError: the manifest {uri} must be a JSON list starting with {{"prefix": "s3://..."}}'
            )
        prefix_bucket, prefix = split_s3(str(manifest[0]["prefix"]))
        entries = [str(entry) for entry in manifest[1:]]
        if not entries:
            raise TransformError(f"ClientError: the manifest {uri} lists no objects")
        return [InputObject(prefix_bucket, prefix + entry, entry) for entry in entries]
    raise TransformError(f"ClientError: S3DataType {data_type} is not supported by the local cloud")


def read_object(s3: Any, obj: InputObject, compression: str) -> bytes:
    body = bytes(s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read())
    if compression == "Gzip":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError) as error:
            raise TransformError(f"ClientError: s3://{obj.bucket}/{obj.key} is not gzip data: {error}") from None
    if compression not in ("None", "", None):
        raise TransformError(f"ClientError: CompressionType {compression} is not supported")
    return body


def split_records(body: bytes, split_type: str) -> list[bytes]:
    """The records of one object: its lines (``Line``, without line ends, empty lines skipped) or the whole."""
    if split_type in ("None", "", None):
        return [body] if body else []
    if split_type == "Line":
        return [line.rstrip(b"\r") for line in body.split(b"\n") if line.strip()]
    raise TransformError(f"ClientError: SplitType {split_type} is not supported by the local cloud")


def mini_batches(records: Sequence[bytes], strategy: str, max_payload_mb: int) -> Iterator[tuple[int, int]]:
    """(start, end) record ranges per request: one record each (``SingleRecord``) or as many whole records
    as fit in ``max_payload_mb`` joined by newlines (``MultiRecord``; 0 = no limit)."""
    limit = max_payload_mb * MB if max_payload_mb else None
    for index, record in enumerate(records):
        if limit is not None and len(record) > limit:
            raise TransformError(
                f"ClientError: record {index + 1} is {len(record):,} bytes, "
                f"more than MaxPayloadInMB ({max_payload_mb} MB)"
            )
    if strategy == "SingleRecord":
        yield from ((i, i + 1) for i in range(len(records)))
        return
    if strategy != "MultiRecord":
        raise TransformError(f"ClientError: BatchStrategy {strategy} is not supported")
    start, size = 0, 0
    for index, record in enumerate(records):
        added = len(record) + (1 if index > start else 0)
        if limit is not None and index > start and size + added > limit:
            yield start, index
            start, size = index, len(record)
        else:
            size += added
    if start < len(records):
        yield start, len(records)


# ---- JSONPath filters (the subset SageMaker's examples use) -----------------------------------------------

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[([^\]]*)\]")


def _index_step(text: str) -> Callable[[Any], Any]:
    text = text.strip()
    if text.startswith(("'", '"')):
        names = [n.strip().strip("'\"") for n in text.split(",")]
        if len(names) == 1:
            return lambda value: value[names[0]]
        return lambda value: {n: value[n] for n in names if n in value}
    if ":" in text:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
        if len(parts) > 3:
            raise ValueError(text)
        window = slice(*parts)
        return lambda value: value[window]
    indices = [int(p) for p in text.split(",")]
    if len(indices) == 1:
        return lambda value: value[indices[0]]
    return lambda value: [value[i] for i in indices]


def compile_path(expression: str | None) -> Callable[[Any], Any] | None:
    """A JSONPath filter as a function (None for ``$``: everything). Unsupported syntax raises TransformError."""
    text = (expression or "$").strip()
    if text == "$":
        return None
    if not text.startswith("$"):
        raise TransformError(f"ClientError: JSONPath {expression!r} must start with $")
    steps: list[Callable[[Any], Any]] = []
    position = 1
    try:
        while position < len(text):
            match = _STEP.match(text, position)
            if match is None:
                raise ValueError(text[position:])
            steps.append(_index_step(repr(match[1])) if match[1] is not None else _index_step(match[2]))
            position = match.end()
    except ValueError:
        raise TransformError(
            f"ClientError: JSONPath {expression!r} is not supported by the local cloud "
            "(supported: $, $[i], $[i,j], $[a:b], $.name, $['a','b'])"
        ) from None

    def apply(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return apply


def _csv_row(record: bytes) -> list[str]:
    return next(csv.reader([record.decode("utf-8")]), [])


def _csv_line(values: Any) -> bytes:
    row = values if isinstance(values, list) else [values]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in row])
    return buffer.getvalue().encode("utf-8")


def _is_csv(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "text/csv"


def filter_input(record: bytes, path: Callable[[Any], Any] | None, content_type: str) -> bytes:
    if path is None:
        return record
    try:
        if _is_csv(content_type):
            return _csv_line(path(_csv_row(record)))
        return json.dumps(path(json.loads(record))).encode()
    except (LookupError, TypeError, ValueError) as error:
        raise TransformError(f"ClientError: InputFilter does not apply to a record: {error!r}") from None


def join_and_filter(
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    join: bool,
    path: Callable[[Any], Any] | None,
    content_type: str,
    accept: str,
) -> list[bytes]:
    """Output records after ``JoinSource`` and ``OutputFilter`` (one per input record)."""
    csv_in, csv_out = _is_csv(content_type), _is_csv(accept)
    joined: list[Any] = []
    for source, result in zip(inputs, outputs, strict=True):
        out_value: Any = _csv_row(result) if csv_out else json.loads(result)
        if not join:
            joined.append(out_value)
            continue
        if csv_in:
            row = _csv_row(source)
            joined.append(row + (out_value if isinstance(out_value, list) else [json.dumps(out_value)]))
        else:
            in_value = json.loads(source)
            if isinstance(in_value, dict):
                joined.append({**in_value, "SageMakerOutput": out_value})
            else:
                joined.append({"SageMakerInput": in_value, "SageMakerOutput": out_value})
    if path is not None:
        try:
            joined = [path(value) for value in joined]
        except (LookupError, TypeError) as error:
            raise TransformError(f"ClientError: OutputFilter does not apply to a joined record: {error!r}") from None
    as_csv = csv_in if join else csv_out
    return [_csv_line(v) if as_csv and not isinstance(v, dict) else json.dumps(v).encode() for v in joined]


# ---- the job ---------------------------------------------------------------------------------------------


def container_environment(request: Mapping[str, Any]) -> dict[str, str]:
    """What Batch Transform adds to the container's environment (besides the model's)."""
    strategy = request.get("BatchStrategy") or "MultiRecord"
    env = {str(k): str(v) for k, v in (request.get("Environment") or {}).items()}
    env.update(
        {
            "SAGEMAKER_BATCH": "true",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(_max_payload(request)),
            "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD" if strategy == "SingleRecord" else "MULTI_RECORD",
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(request.get("MaxConcurrentTransforms") or 1),
        }
    )
    return env


def _max_payload(request: Mapping[str, Any]) -> int:
    value = request.get("MaxPayloadInMB")
    return DEFAULT_MAX_PAYLOAD_MB if value is None else int(value)


def http_invoke(port: int, timeout: float) -> Invoke:
    """Requests to a model container on 127.0.0.1:``port``."""

    def invoke(body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type or "application/octet-stream"}
        if accept:
            headers["Accept"] = accept
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    return invoke


def _call(invoke: Invoke, body: bytes, content_type: str, accept: str | None, retries: int) -> tuple[int, bytes]:
    status, payload = 500, b""
    for _attempt in range(retries + 1):
        try:
            status, payload = invoke(body, content_type, accept)
        except (OSError, http.client.HTTPException) as error:
            status, payload = 500, f"container error: {error}".encode()
        if status < 500:
            break
    return status, payload


def run_transform(s3: Any, request: Mapping[str, Any], invoke: Invoke) -> TransformResult:
    """Run one transform job (``request`` = the CreateTransformJob request) with ``invoke`` as the model."""
    started = time.time()
    log: list[str] = []
    done: list[dict[str, Any]] = []
    try:
        done = _transform(s3, request, invoke, log)
    except TransformError as error:
        log.append(f"FAILED: {error}")
        return TransformResult(False, str(error)[:FAILURE_LIMIT], time.time() - started, done, "\n".join(log))
    return TransformResult(True, "", time.time() - started, done, "\n".join(log))


def _transform(s3: Any, request: Mapping[str, Any], invoke: Invoke, log: list[str]) -> list[dict[str, Any]]:
    source = request["TransformInput"]
    output = request["TransformOutput"]
    content_type = str(source.get("ContentType") or "application/octet-stream")
    accept = output.get("Accept")
    split_type = str(source.get("SplitType") or "None")
    strategy = str(request.get("BatchStrategy") or "MultiRecord")
    assemble = str(output.get("AssembleWith") or "None")
    max_payload = _max_payload(request)
    client = request.get("ModelClientConfig") or {}
    retries = int(client.get("InvocationsMaxRetries", DEFAULT_MAX_RETRIES))
    processing = request.get("DataProcessing") or {}
    input_path = compile_path(processing.get("InputFilter"))
    output_path = compile_path(processing.get("OutputFilter"))
    join = processing.get("JoinSource", "None") == "Input"
    per_record = join or output_path is not None
    if per_record and (split_type != "Line" or assemble != "Line"):
        raise TransformError(
            "ClientError: JoinSource/OutputFilter need SplitType Line and AssembleWith Line in the local cloud"
        )
    out_bucket, out_prefix = split_s3(str(output["S3OutputPath"]))
    kms = output.get("KmsKeyId")
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}
    done = []
    for obj in input_objects(s3, source["DataSource"]):
        where = f"s3://{obj.bucket}/{obj.key}"
        records = split_records(read_object(s3, obj, str(source.get("CompressionType") or "None")), split_type)
        sent = [filter_input(r, input_path, content_type) for r in records] if input_path else records
        parts: list[bytes] = []
        requests = 0
        for start, end in mini_batches(sent, strategy, max_payload):
            status, payload = _call(invoke, b"\n".join(sent[start:end]), content_type, accept, retries)
            requests += 1
            if status >= 300:
                message = payload.decode("utf-8", "replace").strip().splitlines()[:1] or [""]
                kind = "ClientError" if status < 500 else "AlgorithmError"
                raise TransformError(
                    f"{kind}: the model container answered {status} for {where} (records {start + 1}-{end}): "
                    f"{message[0][:400]}. See job logs for more information"
                )
            if per_record:
                lines = [line for line in payload.split(b"\n") if line.strip()]
                if len(lines) != end - start:
                    raise TransformError(
                        f"ClientError: {where} records {start + 1}-{end}: {len(lines)} output lines for "
                        f"{end - start} records; JoinSource/OutputFilter need one line per record"
                    )
                parts += join_and_filter(records[start:end], lines, join, output_path, content_type, accept or "")
            else:
                parts.append(payload)
        line = assemble == "Line"  # each response's records on their own lines, else the responses as they are
        body = b"".join(p.rstrip(b"\n") + b"\n" for p in parts) if line else b"".join(parts)
        key = f"{out_prefix.rstrip('/')}/{obj.relative}.out".lstrip("/")
        s3.put_object(Bucket=out_bucket, Key=key, Body=body, **extra)
        done.append(
            {"input": where, "output": f"s3://{out_bucket}/{key}", "records": len(records), "requests": requests}
        )
        log.append(f"{where}: {len(records)} records in {requests} requests -> s3://{out_bucket}/{key}")
    return done
