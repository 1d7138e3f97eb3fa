"""The AWS session of the operations commands: the usual credential chain, ``--profile`` and ``--region``.

boto3 resolves credentials (environment, profile, SSO, instance role) and honours ``AWS_ENDPOINT_URL`` (botocore
1.31+, "Service-specific endpoints" in the AWS SDKs and Tools Reference Guide), so the same commands drive an
account or the local cloud: ``mlops local up`` prints the ``export AWS_ENDPOINT_URL=...`` line that points them
at it. Errors that mean "AWS cannot be reached as asked" become a ``CliError`` with exit code 3 (``explain``).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from cli.errors import FAILED, NO_ACCESS, CliError

_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10, read_timeout=900)
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE or pass --profile (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); "
    "for the local cloud, export the settings `mlops local up` prints"
)


class Aws:
    """boto3 clients of one session, built on first use."""

    def __init__(self, profile: str | None = None, region: str | None = None, session: Any = None) -> None:
        try:
            self.session = session or boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise CliError(
                f"AWS profile {profile!r} is not configured (aws configure list-profiles)", NO_ACCESS
            ) from None
        if not self.session.region_name:
            raise CliError(
                "no AWS region: pass --region, set AWS_DEFAULT_REGION, or give the profile a region",
                NO_ACCESS,
            )
        self.region: str = self.session.region_name
        self._clients: dict[str, Any] = {}
        self._caller: str | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=_CONFIG)
        return self._clients[service]

    def caller(self) -> str:
        """Who is asking (the STS caller ARN), recorded with every action; ``unknown`` when STS does not say."""
        if self._caller is None:
            try:
                self._caller = str(self.client("sts").get_caller_identity()["Arn"])
            except (ClientError, KeyError):
                self._caller = "unknown"
        return self._caller


def error_code(error: Exception) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Message", "")) or str(error)


def explain(error: Exception) -> CliError | None:
    """The ``CliError`` an AWS SDK error stands for (None: not an SDK error)."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return CliError(NO_CREDENTIALS, NO_ACCESS)
    if isinstance(error, NoRegionError):
        return CliError("no AWS region: pass --region or set AWS_DEFAULT_REGION", NO_ACCESS)
    if isinstance(error, EndpointConnectionError):
        return CliError(
            f"cannot reach AWS: {error} (is AWS_ENDPOINT_URL right, is `mlops local up` running?)", NO_ACCESS
        )
    if isinstance(error, ClientError):
        operation = getattr(error, "operation_name", "the call")
        code = error_code(error)
        if code in ACCESS_CODES:
            return CliError(f"{operation}: {code}: {error_message(error)}", NO_ACCESS)
        return CliError(f"{operation} failed: {code}: {error_message(error)}", FAILED)
    return None
