"""AWS clients, built lazily and kept for the life of the execution environment.

A client is created at first use, so that moto (tests) or the local cloud's ``AWS_ENDPOINT_URL`` is in place
before it exists, and one client per service serves every later invocation (a Lambda environment runs one
function). Tests that need fresh clients call ``client.cache_clear()``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service_name: str) -> Any:
    """The boto3 client of ``service_name`` (``"s3"``, ``"sagemaker"``, ...), one per service."""
    return boto3.client(service_name)
