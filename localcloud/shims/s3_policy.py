"""Bucket policies with conditions are evaluated like S3 does.

moto 5.2.5 (``moto.iam.access_control.IAMPolicyStatement.is_action_permitted``) answers DENIED for any
statement whose ``Condition`` does not match, whatever its Effect, and S3 passes no request context. With
the CDK's ``enforce_ssl`` statement (Deny when ``aws:SecureTransport`` is false) every object request is
then refused. This shim:

- evaluates the ``Bool`` condition operator (moto knows only ``StringEquals`` and treats any other operator
  as matching, so a conditional Deny always applies);
- treats a statement whose condition does not match as not applicable (NEUTRAL), as IAM does;
- gives S3's policy check the request's ``aws:SecureTransport`` (true for https URLs), taken from the URL
  of the request being served (``S3Response.setup_class``).

So a plain-http request to a stack bucket is still denied, and an HTTPS one is allowed.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.iam import access_control, policy_conditions
from moto.s3 import models as s3_models
from moto.s3 import responses as s3_responses

_installed = False
_request = threading.local()
_original_statement = access_control.IAMPolicyStatement.is_action_permitted
_original_setup = s3_responses.S3Response.setup_class
_original_get_permission = s3_models.FakeBucket.get_permission


def bool_operation(expected_value: list[str] | str, actual_value: str) -> bool:
    expected = [expected_value] if isinstance(expected_value, str | bool) else list(expected_value)
    return str(actual_value).lower() in {str(e).lower() for e in expected}


def is_action_permitted(
    self: Any,
    action: str,
    resource: str = "*",
    principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> Any:
    if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
        return access_control.PermissionResult.NEUTRAL
    return _original_statement(self, action, resource, principal, incoming_condition_values)


def setup_class(self: Any, request: Any, full_url: str | None = None, headers: Any = None) -> None:
    url = full_url if full_url is not None else getattr(request, "url", "")
    _request.secure = str(url).lower().startswith("https://")
    _original_setup(self, request, full_url, headers)


def get_permission(self: Any, action: str, resource: str) -> Any:
    if self.policy is None:
        return access_control.PermissionResult.NEUTRAL
    secure = "true" if getattr(_request, "secure", False) else "false"
    policy = access_control.IAMPolicy(self.policy.decode())
    return policy.is_action_permitted(action, resource, incoming_condition_values={"aws:SecureTransport": secure})


def install() -> None:
    global _installed
    if _installed:
        return
    policy_conditions.CONDITION_OPERATIONS.setdefault("Bool", bool_operation)
    access_control.IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]
    s3_responses.S3Response.setup_class = setup_class  # type: ignore[method-assign]
    s3_models.FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
    _installed = True
