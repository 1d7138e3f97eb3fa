"""Contract and behaviour of the aws-chunked decoding shim (linear instead of moto's quadratic concatenation)."""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3 import responses as s3_responses

from localcloud.shims import s3_chunked as shim
from tests.unit.localcloud.support import REGION, assert_pinned_moto, revisit, unique

SHIM = "s3_chunked"


def chunked(payload: bytes, size: int, trailer: bytes = b"x-amz-checksum-crc32:AAAAAA==\r\n") -> bytes:
    """``payload`` framed as ``aws-chunked`` with chunks of ``size`` bytes, a 0 chunk and a checksum trailer."""
    frames = [
        b"%x\r\n%s\r\n" % (len(payload[i : i + size]), payload[i : i + size]) for i in range(0, len(payload), size)
    ]
    return b"".join(frames) + b"0\r\n" + trailer + b"\r\n"


def test_pinned_moto_decodes_aws_chunked_bodies_in_the_patched_method() -> None:
    assert_pinned_moto(SHIM)
    module = inspect.getsource(s3_responses)  # the file as pinned (s3_policy wraps setup_class at run time)
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in module, revisit(SHIM)
    assert "self.body = self._handle_encoded_body(self.body)" in module, revisit(SHIM)
    original = inspect.getsource(shim._original)
    assert "decoded_body += body.read(content_length)" in original, revisit(SHIM)  # the quadratic append


@pytest.mark.parametrize("size", [1, 7, 65536])
@pytest.mark.parametrize("payload", [b"", b"a", bytes(range(256)) * 300, b"0\r\n\r\n1234"])
def test_the_shim_decodes_what_pinned_moto_decodes(payload: bytes, size: int) -> None:
    body = chunked(payload, size)
    assert shim.decode(body) == shim._original(None, body) == payload
    assert shim.decode(io.BytesIO(body)) == payload


def test_an_empty_body_is_empty() -> None:
    assert shim.decode(b"") == b""


def test_a_large_body_in_small_chunks_decodes_in_linear_time() -> None:
    payload = bytes(8 * 2**20)  # 8 MiB in 4 KiB chunks: 2,048 chunks (moto copies ~8 GiB for it)
    body = chunked(payload, 4096)
    import time

    started = time.process_time()
    assert shim.decode(body) == payload
    assert time.process_time() - started < 1.0


@pytest.fixture
def s3() -> Iterator[Any]:
    shim.install()
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)


def test_a_streamed_upload_with_a_trailing_checksum_is_stored_as_sent(s3: Any) -> None:
    bucket = unique("chunked")
    s3.create_bucket(Bucket=bucket)
    payload = bytes(range(256)) * 8192  # 2 MiB: botocore sends a file object as aws-chunked with a CRC32 trailer
    s3.put_object(Bucket=bucket, Key="k", Body=io.BytesIO(payload), ChecksumAlgorithm="CRC32")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == payload


def test_install_is_idempotent() -> None:
    shim.install()
    shim.install()
    assert s3_responses.S3Response._handle_encoded_body is shim._handle_encoded_body
