"""What the handler tests share: a Lambda context, the S3 "Object Created" event EventBridge delivers, and an
idempotency table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

ACCOUNT, REGION = "123456789012", "us-east-1"


@dataclass
class FakeContext:
    """The LambdaContext attributes Powertools reads (logger keys, the idempotency in-progress expiry)."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function"
    aws_request_id: str = "req-1"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def object_created(
    key: str,
    *,
    bucket: str = "raw-bucket",
    version: str = "v1",
    size: int = 120,
    time: str = "2026-11-26T10:00:00Z",
) -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it (a PutObject of ``key``'s ``version``)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": "abc", "version-id": version, "sequencer": "00"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def create_table(name: str, *keys: str) -> None:
    """An on-demand DynamoDB table keyed by string attributes (``"id"``, or ``"pk", "sk"``), as the stacks build
    idempotency and guard tables."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        BillingMode="PAY_PER_REQUEST",
    )
