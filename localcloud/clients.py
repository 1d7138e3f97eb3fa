"""boto3 clients of the local cloud (lazily built, one per service)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=900)


class Clients:
    """``clients.s3``, ``clients.stepfunctions``... against ``endpoint_url`` (None: default resolution)."""

    def __init__(
        self,
        region: str,
        endpoint_url: str | None = None,
        verify: str | bool | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.verify = verify
        # the account's administrator keys by default; a principal's temporary credentials when given
        self.credentials = credentials or {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                verify=self.verify,
                aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=self.credentials.get("AWS_SESSION_TOKEN"),
                config=_CONFIG,
            )
        return self._clients[service]

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        return self.client(service.rstrip("_").replace("_", "-"))
