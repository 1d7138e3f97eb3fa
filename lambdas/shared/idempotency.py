"""Once per key: a domain function made idempotent with Powertools on a DynamoDB table named at first use.

::

    @once_per("[bucket, key, version_id]", argument="obj", table=lambda: settings().IDEMPOTENCY_TABLE)
    def start_once(obj: dict[str, Any]) -> dict[str, Any]: ...

    result = start_once(asdict(obj), context)  # in the handler

The first call with a given key runs the function and records its result (Powertools ``idempotent_function``,
keyed by the JMESPath ``key`` over the payload); a later call with the same key answers with the recorded
result until it expires. The table, and so the DynamoDB client, is only looked up at the first call: the
environment is read at first use and moto or the local cloud's endpoint is in place by then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

ONE_WEEK = 7 * 86400

Payload = dict[str, Any]


class OncePer:
    """``function(**{argument: payload})``, run at most once per ``key`` of the payload."""

    def __init__(
        self,
        function: Callable[..., Payload],
        *,
        key: str,
        argument: str,
        table: Callable[[], str],
        expires_after_seconds: int = ONE_WEEK,
        key_attr: str = "id",
        sort_key_attr: str | None = None,
    ) -> None:
        self.function = function
        self.argument = argument
        self.config = IdempotencyConfig(event_key_jmespath=key, expires_after_seconds=expires_after_seconds)
        self._table = table
        self._key_attr, self._sort_key_attr = key_attr, sort_key_attr
        self._once: Callable[..., Payload] | None = None

    def __call__(self, payload: Payload, context: LambdaContext) -> Payload:
        """The function's result for ``payload``: computed now, or recorded by an earlier call with its key."""
        self.config.register_lambda_context(context)  # an in-progress record expires with the invocation
        return self._bound()(**{self.argument: payload})

    def _bound(self) -> Callable[..., Payload]:
        if self._once is None:
            persistence = DynamoDBPersistenceLayer(
                table_name=self._table(), key_attr=self._key_attr, sort_key_attr=self._sort_key_attr
            )
            self._once = idempotent_function(
                self.function,
                data_keyword_argument=self.argument,
                persistence_store=persistence,
                config=self.config,
            )
        return self._once

    def cache_clear(self) -> None:
        """Forget the table and its client (tests: the next call binds to the environment of that moment)."""
        self._once = None


def once_per(key: str, **options: Any) -> Callable[[Callable[..., Payload]], OncePer]:
    """Decorator form of ``OncePer``, with its options (``argument``, ``table``, ``expires_after_seconds``,
    ``key_attr``, ``sort_key_attr``): ``@once_per("[bucket, key, version_id]", argument="obj", table=...)``."""
    return lambda function: OncePer(function, key=key, **options)
