"""Step Functions service integrations the synthesized state machines use, on moto's ASL interpreter.

moto 5.2.5: ``sagemaker:*`` tasks are "unsupported"; ``glue:startJobRun.sync`` fails
(``'NoneType' object has no attribute 'interrupt_all'``: its callback endpoint is only built for
waitForTaskToken) and its datetimes break ``describe_execution``; Wait states sleep in real time.

This shim (patch point ``state_task_factory.state_task_service_for`` and ``WaitFunction._wait_interval``):

- runs ``.sync`` integrations by polling the service every ``POLL_SECONDS`` of cloud time until the job is
  terminal, as Step Functions does; a managed job's state change (``localcloud.runtime.jobs.job_changed``) polls
  at once, as Step Functions reacts to SageMaker's job state-change events. Success: the describe/get response
  is the task result (dates as epoch milliseconds, as Step Functions renders them). Failure:
  ``States.TaskFailed`` with the describe response as JSON in ``Cause`` (so ``FailureReason`` /
  ``ErrorMessage`` reach the Catch), as Step Functions does.
- adds SageMaker: ``createTrainingJob``, ``createProcessingJob``, ``createTransformJob``,
  ``createHyperParameterTuningJob`` (request/response and ``.sync``), ``createModel``, ``createEndpointConfig``,
  ``createEndpoint``, ``updateEndpoint``.
- makes Wait states wait on the local cloud's clock (``localcloud.clock``);
- creates (and updates) ``AWS::StepFunctions::StateMachine`` resources in the backend the API serves (moto's
  CloudFormation always uses the non-executing backend, so ``StartExecution`` would not find them);
- makes every service call of an execution carry its state machine's role (moto's ``boto_client_for`` calls with
  fixed keys ``ak``/``sk``): patch point ``moto.stepfunctions.parser.asl.utils.boto_client.boto_client_for``, bound
  by name in each interpreter module that imports it (``INTERPRETER_MODULES``). The role comes from the task's
  ``StateCredentials`` (the execution's role unless the Task names ``Credentials``), its temporary credentials
  from the local cloud's IAM (``localcloud.iam``), so the IAM middleware evaluates the call as that role.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, Final

from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue import (
    StateTaskServiceGlue,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.responses import get_backend
from moto.stepfunctions.utils import cfn_to_api_tags

from localcloud.clock import clock
from localcloud.runtime import jobs

POLL_SECONDS = 30.0  # cloud time between two polls of a .sync job
_installed = False
_original_wait_interval = WaitFunction._wait_interval
_original_create_state_machine = sfn_models.StateMachine.create_from_cloudformation_json


def json_safe(value: Any) -> Any:
    """Datetimes as epoch milliseconds (how Step Functions renders them), recursively."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


class _ClockSync(StateTaskServiceCallback):
    """``.sync``: poll the resolver on the cloud clock; no waitForTaskToken machinery."""

    def _eval_integration_pattern(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        task_output = env.stack.pop()
        env.stack.append(task_output)
        resolver: Any = self._build_sync_resolver(
            env=env,
            resource_runtime_part=resource_runtime_part,
            normalised_parameters=normalised_parameters,
            state_credentials=state_credentials,
        )
        result = None
        while env.is_running():
            seen = jobs.job_generation()
            result = resolver()
            if result is not None:
                break
            # the next poll comes POLL_SECONDS of cloud time later, or as soon as a managed job changes state
            jobs.wait_for_job_change(seen, POLL_SECONDS / clock.scale)
        env.stack.append(json_safe(result))


class LocalGlue(_ClockSync, StateTaskServiceGlue):
    pass


_SAGEMAKER_SYNC: Final[dict[str, tuple[str, str, str]]] = {
    # action -> (describe call, name parameter, status field)
    "create_training_job": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "create_processing_job": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
    "create_transform_job": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
    "create_hyper_parameter_tuning_job": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
    ),
    "create_endpoint": ("describe_endpoint", "EndpointName", "EndpointStatus"),
    "update_endpoint": ("describe_endpoint", "EndpointName", "EndpointStatus"),
}
_FAILED = {"Failed", "Stopped"}
_DONE = {"Completed", "InService"}


_SAGEMAKER_ACTIONS: Final[tuple[str, ...]] = (
    *_SAGEMAKER_SYNC,
    "create_model",
    "create_endpoint_config",
    "create_labeling_job",
)


@functools.cache
def _operation_parameters(action: str) -> frozenset[str] | None:
    """The request members of a SageMaker operation (botocore's service model), if Step Functions offers it.
    Cached: the service model costs tens of milliseconds to load, on every SageMaker task otherwise."""
    if action not in _SAGEMAKER_ACTIONS:
        return None
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    operation = "".join(part.capitalize() for part in action.split("_"))
    return frozenset(model.operation_model(operation).input_shape.members)


class LocalSageMaker(_ClockSync):
    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync})  # type: ignore[arg-type]

    def _get_supported_parameters(self) -> set[str] | None:
        parameters = _operation_parameters(self._get_boto_service_action())
        return None if parameters is None else set(parameters)

    def _client(self, resource_runtime_part: Any, state_credentials: Any) -> Any:
        return boto_client_for(
            service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
        )

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        from botocore.exceptions import ClientError

        if isinstance(ex, ClientError):
            name = f"SageMaker.{ex.response['Error']['Code']}"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(name),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=name,
                        cause=ex.response["Error"]["Message"],
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        action = self._get_boto_service_action()
        client = self._client(resource_runtime_part, state_credentials)
        response = getattr(client, action)(**normalised_parameters)
        env.stack.append(json_safe(response))

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> Callable[[], Any] | None:
        action = self._get_boto_service_action()
        if action not in _SAGEMAKER_SYNC:
            raise RuntimeError(f"Unsupported .sync callback procedure in resource {self.resource.resource_arn}")
        env.stack.pop()
        describe, name_parameter, status_field = _SAGEMAKER_SYNC[action]
        client = self._client(resource_runtime_part, state_credentials)
        name = normalised_parameters[name_parameter]

        def resolve() -> Any | None:
            response = json_safe(getattr(client, describe)(**{name_parameter: name}))
            status = response.get(status_field)
            if status in _DONE:
                return response
            if status in _FAILED:
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(  # type: ignore[typeddict-item]
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=to_json_str(response),
                            )
                        ),
                    )
                )
            return None

        return resolve


INTERPRETER_MODULES: Final[tuple[str, ...]] = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)
_original_boto_client_for = boto_client_module.boto_client_for


def _state_machine_of(role_arn: str, region: str) -> str | None:
    """The ARN of a state machine that runs with ``role_arn`` (Step Functions passes it as ``aws:SourceArn``
    when it assumes the role)."""
    from localcloud.cloud import provision

    for machine in get_backend(provision.ACCOUNT_ID, region).state_machines:
        if machine.roleArn == role_arn:
            return str(machine.arn)
    return None


def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's client factory, with the credentials of the task's role (``state_credentials.role_arn``) when the
    local cloud's IAM is active: the interpreter's calls are evaluated as the state machine's role."""
    from localcloud.iam.enforcer import active

    enforcer = active()
    role_arn = getattr(state_credentials, "role_arn", None)
    client = _original_boto_client_for(region=region, service=service, state_credentials=state_credentials)
    if enforcer is None or not role_arn:
        return client
    credentials = enforcer.credentials(
        str(role_arn), "states.amazonaws.com", "StepFunctions", _state_machine_of(str(role_arn), region)
    )
    import boto3

    return boto3.client(
        service_name=service,
        region_name=region,
        endpoint_url=client.meta.endpoint_url,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
        config=client.meta.config,
    )


_original_service_for = state_task_service_factory.state_task_service_for


def state_task_service_for(service_name: str) -> Any:
    if service_name == "glue":
        return LocalGlue()
    if service_name == "sagemaker":
        return LocalSageMaker()
    return _original_service_for(service_name)


def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
    """Let ``wait_seconds`` of cloud time pass (in slices, so a stopped execution stops waiting)."""
    remaining = float(wait_seconds)
    while remaining > 0 and env.is_running():
        step = min(remaining, 600.0)
        clock.sleep(step)
        remaining -= step


def _create_state_machine(
    cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
) -> Any:
    properties = cloudformation_json["Properties"]
    return get_backend(account_id, region_name).create_state_machine(
        properties.get("StateMachineName", resource_name),
        properties.get("DefinitionString", ""),
        properties.get("RoleArn", ""),
        tags=cfn_to_api_tags(properties.get("Tags", [])),
    )


def _update_state_machine(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """A stack update, in the backend the API serves (moto's model updates the non-executing one, which does not
    hold the machine): in place under the same name (definition, role), a new ``StateMachineName`` replaces it."""
    properties = cloudformation_json["Properties"]
    backend = get_backend(account_id, region_name)
    name = properties.get("StateMachineName", original_resource.name)
    if name != original_resource.name:
        created = _create_state_machine(cls, name, cloudformation_json, account_id, region_name)
        backend.delete_state_machine(original_resource.arn)
        return created
    return backend.update_state_machine(
        original_resource.arn, definition=properties.get("DefinitionString"), role_arn=properties.get("RoleArn")
    )


def _delete_state_machine(
    cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
) -> None:
    get_backend(account_id, region_name).delete_state_machine(resource_name)


def _delete_instance(self: Any, account_id: str, region_name: str) -> None:
    get_backend(account_id, region_name).delete_state_machine(self.arn)


def install() -> None:
    global _installed
    if _installed:
        return
    state_task_factory.state_task_service_for = state_task_service_for  # type: ignore[assignment]
    import importlib

    for name in INTERPRETER_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "boto_client_for", None) is not _original_boto_client_for:
            raise RuntimeError(f"{name} no longer binds moto's boto_client_for: revisit the stepfunctions shim")
        module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    sfn_models.StateMachine.create_from_cloudformation_json = classmethod(_create_state_machine)  # type: ignore[method-assign,assignment]
    sfn_models.StateMachine.delete_from_cloudformation_json = classmethod(_delete_state_machine)  # type: ignore[method-assign,assignment]
    sfn_models.StateMachine.update_from_cloudformation_json = classmethod(_update_state_machine)  # type: ignore[method-assign,assignment]
    _installed = True
