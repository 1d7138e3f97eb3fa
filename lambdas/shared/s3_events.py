"""S3 "Object Created" events delivered by EventBridge: the object version they name, and which uploads to skip.

Standard library only: the handler parses the event with Powertools' ``S3EventNotificationEventBridgeModel``
and hands it here; this module reads its attributes and never imports the model (nor pydantic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

IDEMPOTENCY_KEY = "[bucket, key, version_id]"
"""JMESPath over ``asdict(S3Object)``: one record per object version."""


@dataclass(frozen=True)
class S3Object:
    """One version of an uploaded object (``version_id`` is ``"null"`` in an unversioned bucket)."""

    bucket: str
    key: str
    version_id: str
    size: int
    etag: str = ""


def object_version(event: S3EventNotificationEventBridgeModel) -> S3Object:
    """The object version an "Object Created" event names."""
    detail = event.detail
    return S3Object(
        bucket=detail.bucket.name,
        key=detail.object.key,
        version_id=detail.object.version_id or "null",
        size=int(detail.object.size or 0),
        etag=detail.object.etag or "",
    )


def skip_reason(obj: S3Object, *, prefix: str, area: str, suffixes: tuple[str, ...], wrong_type: str) -> str | None:
    """Why an upload is not for this function, or None when it is: outside ``prefix`` (named ``area`` in the
    reason), a folder marker, empty, or a name that ends in none of ``suffixes`` (case-insensitive; the reason
    then says ``object '<key>' <wrong_type>``)."""
    if not obj.key.startswith(prefix):
        return f"key {obj.key!r} is outside the {area} {prefix!r}"
    if obj.key.endswith("/"):
        return f"key {obj.key!r} is a folder marker"
    if obj.size == 0:
        return f"object {obj.key!r} is empty (0 bytes)"
    if not obj.key.lower().endswith(suffixes):
        return f"object {obj.key!r} {wrong_type}"
    return None
