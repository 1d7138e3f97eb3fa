"""An ``aws-chunked`` request body is decoded in linear time.

botocore (and the JS SDK that ``cdk-assets`` uses) sends a streamed upload with a trailing checksum as
``Content-Encoding: aws-chunked`` with ``x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER``: the body is a
series of ``<hex size>\\r\\n<data>\\r\\n`` chunks of 64 KiB, then a ``0`` chunk and the checksum trailer. moto 5.2.5
decodes it in ``S3Response._handle_encoded_body`` by appending each chunk to an immutable ``bytes``
(``decoded_body += body.read(size)``): every chunk copies everything decoded so far, so a body of n chunks costs
O(n^2) bytes copied. One 55 MB wheel of the Glue job (840 chunks) took 13 s of the server's CPU to decode, most of
the deployment's asset publishing (profiled: ``docs/performance.md``, the demo).

This shim replaces the method with the same decoding (same framing, the trailer ignored as moto ignores it)
into a list joined once. Patch point: ``moto.s3.responses.S3Response._handle_encoded_body``.
"""

from __future__ import annotations

import io
from typing import Any

from moto.s3 import responses as s3_responses

_installed = False
_original = s3_responses.S3Response._handle_encoded_body


def decode(body: io.BufferedIOBase | bytes) -> bytes:
    """The payload of an ``aws-chunked`` body: the chunks' data, without the sizes, separators and trailer."""
    if not body:
        return b""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    chunks: list[bytes] = []
    size = int(stream.readline().strip(), 16)  # the first line is the first chunk's size in hex
    while size > 0:
        chunks.append(stream.read(size))
        stream.readline()  # the \r\n that ends the chunk's data
        size = int(stream.readline().strip(), 16)
    return b"".join(chunks)  # what follows the 0-size chunk is the checksum trailer, not payload


def _handle_encoded_body(self: Any, body: io.BufferedIOBase | bytes) -> bytes:
    return decode(body)


def install() -> None:
    global _installed
    if _installed:
        return
    s3_responses.S3Response._handle_encoded_body = _handle_encoded_body  # type: ignore[method-assign]
    _installed = True
