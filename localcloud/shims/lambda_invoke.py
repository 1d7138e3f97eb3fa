"""Lambda invocations run the real handler (moto 5.2.5 always tries Docker and swallows the error).

One patch point serves every path that invokes a function in moto: the Invoke API, Step Functions'
``lambda:invoke``, and this project's EventBridge and CloudWatch-alarm deliveries:
``moto.awslambda.models.LambdaFunction._invoke_lambda(event) -> (payload, errored, logs)``.
The handler runs in the local Lambda runtime (``localcloud.runtime.lambdas``) from the function's own
deployment package. Also recorded here: the function's ``LoggingConfig.LogGroup`` and
``DeadLetterConfig.TargetArn``, which moto drops, and on a stack update the properties moto's update ignores.
"""

from __future__ import annotations

import json
from typing import Any

from moto.awslambda import models as lambda_models

from localcloud.runtime.lambdas import FunctionSpec, LambdaRuntime

_runtime: LambdaRuntime | None = None
_installed = False
_original_create = lambda_models.LambdaFunction.create_from_cloudformation_json
_original_update = lambda_models.LambdaFunction.update_from_cloudformation_json
_original_invoke = lambda_models.LambdaFunction._invoke_lambda


def set_runtime(runtime: LambdaRuntime | None) -> None:
    global _runtime
    _runtime = runtime


def spec_of(function: Any) -> FunctionSpec:
    return FunctionSpec(
        name=function.function_name,
        arn=function.function_arn,
        handler=str(function.handler),
        code=bytes(function.code_bytes or b""),
        environment={k: str(v) for k, v in (function.environment_vars or {}).items()},
        timeout=int(function.timeout or 3),
        memory=int(function.memory_size or 128),
        log_group=getattr(function, "local_log_group", None) or function.logs_group_name,
        reserved_concurrency=int(function.reserved_concurrency) if function.reserved_concurrency else None,
        role=str(function.role or ""),
    )


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    if _runtime is None:
        raise RuntimeError("no local Lambda runtime is running (start a LocalCloud)")
    if not str(self.run_time or "").startswith("python"):
        error = {"errorMessage": f"runtime {self.run_time} is not run by the local cloud", "errorType": "Runtime"}
        return json.dumps(error), True, ""
    if isinstance(event, str):
        event = json.loads(event or "{}")
    result = _runtime.invoke(spec_of(self), event if event is not None else {})
    return result.payload, not result.ok, result.logs


def _create_from_cloudformation_json(
    cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
) -> Any:
    function = _original_create.__func__(  # type: ignore[attr-defined]
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    )
    _record_dropped(function, cloudformation_json.get("Properties", {}))
    return function


def _record_dropped(function: Any, properties: dict[str, Any]) -> None:
    """The properties moto's model drops, as the template now has them: ``LoggingConfig.LogGroup`` (the runtime
    logs there), ``DeadLetterConfig.TargetArn`` (the asynchronous deliveries read it:
    ``events_targets.dead_letter``). On update moto's ``update_configuration`` also ignores ``KMSKeyArn`` and
    ``ReservedConcurrentExecutions``, and keeps a removed ``Environment``: CloudFormation sets each changed property
    and resets a removed one (no key: the AWS managed key; no dead-letter queue; unreserved; no variables),
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-function.html."""
    function.local_log_group = (properties.get("LoggingConfig") or {}).get("LogGroup")
    function.local_dead_letter_arn = (properties.get("DeadLetterConfig") or {}).get("TargetArn")
    function.kms_key_arn = properties.get("KMSKeyArn")
    reserved = properties.get("ReservedConcurrentExecutions")
    function.reserved_concurrency = int(reserved) if reserved is not None else None
    function.environment_vars = (properties.get("Environment") or {}).get("Variables") or {}


def _update_from_cloudformation_json(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    """moto's in-place update (configuration + code) without ``Layers``: moto's CloudFormation create ignores them
    too (the local runtime puts the layers' packages on the path itself), and its ``update_configuration`` would look
    the public layers' ARNs up in this account and fail the stack update."""
    properties = {k: v for k, v in cloudformation_json.get("Properties", {}).items() if k != "Layers"}
    function = _original_update.__func__(  # type: ignore[attr-defined]
        cls,
        original_resource,
        new_resource_name,
        {**cloudformation_json, "Properties": properties},
        account_id,
        region_name,
    )
    _record_dropped(function, properties)
    return function


def install() -> None:
    global _installed
    if _installed:
        return
    lambda_models.LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign,assignment]
    lambda_models.LambdaFunction.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _create_from_cloudformation_json
    )
    lambda_models.LambdaFunction.update_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
        _update_from_cloudformation_json
    )
    _installed = True
