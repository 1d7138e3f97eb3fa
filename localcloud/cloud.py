"""``LocalCloud``: a moto server on 127.0.0.1 with the shims installed, the local runtimes attached and the
synthesized stack deployed into it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from localcloud import provision
from localcloud.clients import Clients
from localcloud.clock import clock
from localcloud.iam.enforcer import Enforcer, Middleware, set_active
from localcloud.runtime.dispatch import Dispatcher
from localcloud.runtime.lambdas import FunctionSpec, LambdaRuntime
from localcloud.runtime.logs import LogSink
from localcloud.tls import certificate

DEFAULT_REGION = "us-east-1"
DEFAULT_TIME_SCALE = 120.0  # a cloud minute in half a real second
DEMO_TIME_SCALE = 240.0  # the demo: a 5-minute canary bake in 1.25 real seconds


_running: LocalCloud | None = None


def _forget() -> None:
    global _running
    _running = None


def _real_time() -> None:
    """The process clock back to real time at real speed (a stopped cloud leaves no fast-forward behind)."""
    clock.set_scale(1.0)
    clock.reset()


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """moto's WSGI application on one port (HTTPS when given a certificate) in a daemon thread, behind the IAM
    middleware (a deployed principal's call is decided before moto sees it)."""

    def __init__(self, port: int, ssl_context: tuple[str, str] | None = None) -> None:
        # The plain-HTTP listener serves only moto's Step Functions interpreter: it stands for AWS's own TLS
        # between services, so its calls are aws:SecureTransport=true.
        app = Middleware(DomainDispatcherApplication(create_backend_app), secure=True)
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler, ssl_context=ssl_context
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"moto-{port}")
        self.thread.start()

    def quiet(self) -> None:
        """Stop reporting failed requests: once the cloud stops, a request still in flight fails because the
        services behind it go away (its Lambda worker, its model container, the work directory): that is the
        stop, not an error to print."""
        self.server.log = lambda *args, **kwargs: None  # type: ignore[method-assign]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


class LocalCloud:
    """Start with ``with LocalCloud() as cloud: cloud.deploy("dev")``.

    Two listeners serve the same moto: HTTPS on ``port`` for every client (the stack's buckets deny plain
    HTTP), and plain HTTP on an internal port that moto's Step Functions interpreter calls back on.
    """

    def __init__(
        self,
        port: int | None = None,
        region: str = DEFAULT_REGION,
        workdir: Path | None = None,
        time_scale: float = DEFAULT_TIME_SCALE,
        prewarm: bool = True,
        warm_pool_quota: Mapping[str, int] | None = None,
    ) -> None:
        self.time_scale = time_scale
        # the account's SageMaker warm pool quota, instances per training instance type: none by default, as a new
        # account (a training job with a keep-alive then keeps no pool: docs/operations.md, the quota request)
        self.warm_pool_quota = dict(warm_pool_quota or {})
        self.prewarm = prewarm
        self.port = port or free_port()
        self.region = region
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="localcloud-"))
        self.endpoint_url = f"https://127.0.0.1:{self.port}"
        self.internal_port = free_port()
        self.ca_bundle, self._key = certificate(self.workdir / "tls")
        self.clients = Clients(region, self.endpoint_url, verify=str(self.ca_bundle))
        self.deployments: dict[str, provision.Deployment] = {}
        self._servers: list[_Server] = []
        self._stoppers: list[Callable[[], None]] = []
        self.lambdas: LambdaRuntime | None = None
        self.sink: LogSink | None = None
        self.dispatcher = Dispatcher()
        self.endpoints: Any = None
        self.ticker: Any = None
        self.iam = Enforcer(provision.ACCOUNT_ID, region)
        self._principal_clients: dict[tuple[str, str], Clients] = {}

    # ---- lifecycle ----
    def start(self) -> LocalCloud:
        from localcloud import shims

        global _running
        if _running is not None:
            raise RuntimeError(
                "a LocalCloud is already running in this process (moto's state is global): stop it first"
            )
        _running = self
        self._stoppers.append(_forget)
        try:
            environment = {
                "MOTO_PORT": str(self.internal_port),  # moto's Step Functions interpreter calls back here
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_CA_BUNDLE": str(self.ca_bundle),
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            }
            saved = {name: os.environ.get(name) for name in environment}
            os.environ.update(environment)
            self._stoppers.append(lambda: _restore(saved))
            previous_execute = default_user_config.get("stepfunctions", {}).get("execute_state_machine", False)
            self._stoppers.append(
                lambda: default_user_config.setdefault("stepfunctions", {}).update(  # type: ignore[call-arg]
                    execute_state_machine=previous_execute
                )
            )
            default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
            _reset_moto()  # a fresh account: nothing left from an earlier local cloud in this process
            self._stoppers.append(_reset_moto)
            set_active(self.iam)
            self._stoppers.append(lambda: set_active(None))
            shims.install_all(self)
            self._stoppers.append(lambda: shims.install_all(None))
            from localcloud.runtime import warm_pools

            warm_pools.set_quota(self.warm_pool_quota)
            self._stoppers.append(lambda: warm_pools.set_quota(None))
            import logging

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            # moto's ASL interpreter logs every handled JSONPath miss (e.g. a Choice's IsPresent) as an exception
            logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
            self._servers = [_Server(self.port, (str(self.ca_bundle), str(self._key))), _Server(self.internal_port)]
            self.sink = LogSink(self.clients.logs, self.clients.cloudwatch)
            self.lambdas = LambdaRuntime(
                self.workdir,
                self.endpoint_url,
                self.region,
                layer_paths=[sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]],
                on_logs=self._lambda_logs,
                credentials=lambda spec: self.credentials(spec.role, "lambda.amazonaws.com", spec.name),
            )
            from localcloud.shims import lambda_invoke

            lambda_invoke.set_runtime(self.lambdas)
            self._stoppers.append(self.lambdas.stop)
            self._stoppers.append(self.dispatcher.stop)
            from localcloud.runtime.endpoints import EndpointRuntime
            from localcloud.runtime.ticker import Ticker
            from localcloud.shims import sagemaker_runtime

            self.endpoints = EndpointRuntime(self)
            sagemaker_runtime.set_runtime(self.endpoints)
            self._stoppers.append(lambda: sagemaker_runtime.set_runtime(None))
            self._stoppers.append(self.endpoints.stop)
            clock.set_scale(self.time_scale)
            self._stoppers.append(_real_time)
            self.ticker = Ticker(self)
            self.ticker.start()
            self._stoppers.append(self.ticker.stop)
        except BaseException:
            self.stop()
            raise
        return self

    # ---- identities ----
    def credentials(self, role_arn: str, service: str, session: str, source_arn: str | None = None) -> dict[str, str]:
        """Temporary credentials of ``role_arn`` as ``service`` assumes it (``AWS_ACCESS_KEY_ID``...)."""
        return self.iam.credentials(role_arn, service, session, source_arn)

    def clients_for(
        self, role_arn: str, service: str, session: str | None = None, source_arn: str | None = None
    ) -> Clients:
        """boto3 clients that call as ``role_arn`` assumed by ``service`` (evaluated by the IAM middleware)."""
        session = session or service.split(".")[0]
        key = (role_arn, session)
        if key not in self._principal_clients:
            credentials = self.credentials(role_arn, service, session, source_arn)
            self._principal_clients[key] = Clients(
                self.region, self.endpoint_url, verify=str(self.ca_bundle), credentials=credentials
            )
        return self._principal_clients[key]

    def _lambda_logs(self, spec: FunctionSpec, request_id: str, text: str) -> None:
        if self.sink is not None:
            stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}"
            if spec.role and not self._logs_allowed(
                spec.role, "lambda.amazonaws.com", spec.name, spec.log_group, stream
            ):
                return  # Lambda drops the function's logs when its role may not write them
            self.sink.write(spec.log_group, stream, text)

    def job_logs(self, group: str, stream: str, text: str, role: tuple[str, str] | None = None) -> None:
        """A managed job's output into CloudWatch Logs (where Glue and SageMaker send it), written with the job's
        role (``(role ARN, service principal)``) when given, as the service does."""
        if self.sink is not None:
            if role is not None and not self._logs_allowed(role[0], role[1], role[1].split(".")[0], group, stream):
                return
            self.sink.write(group, stream, text)

    def _logs_allowed(self, role_arn: str, service: str, session: str, group: str, stream: str) -> bool:
        """logs:CreateLogStream and logs:PutLogEvents for the role (the service writes with it); for a group with a
        KMS key, CloudWatch Logs' own use of the key (its key policy)."""
        from localcloud.iam import calls
        from localcloud.iam.enforcer import AccessDenied

        caller = self.iam.caller_of(self.credentials(role_arn, service, session)["AWS_ACCESS_KEY_ID"])
        if caller is None:  # a role that does not exist: reported by the enforcer, not evaluated
            return True
        try:
            for operation in ("CreateLogStream", "PutLogEvents"):
                params = {"logGroupName": group, "logStreamName": stream}
                self.iam.check_call(caller, calls.Call("logs", operation, params))
            key_arn = self.iam.world.log_group_key(group)
            if key_arn:  # CloudWatch Logs encrypts the events with the group's key, as itself
                self.iam.check_log_encryption(group, key_arn)
        except AccessDenied:
            return False
        return True

    def settle(self, timeout: float = 600.0) -> None:
        """Wait until no delivery, job or execution is in flight."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            idle = self.dispatcher.wait_idle(timeout=max(0.1, deadline - time.time()))
            if idle and not self.running_executions() and self.dispatcher.pending == 0:
                return
            time.sleep(0.05)
        raise TimeoutError(f"the local cloud did not settle in {timeout:.0f} s")

    def running_executions(self) -> list[str]:
        sfn = self.clients.stepfunctions
        running = []
        for machine in sfn.list_state_machines()["stateMachines"]:
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            ):
                running += [e["executionArn"] for e in page["executions"]]
        return running

    def on_stop(self, stopper: Callable[[], None]) -> None:
        self._stoppers.append(stopper)

    def stop(self) -> None:
        if self.sink is not None:
            self.sink.close()  # in-flight work may still log while its services go away
        for server in self._servers:
            server.quiet()
        for stopper in reversed(self._stoppers):
            with contextlib.suppress(Exception):  # best effort: one failing part must not keep others running
                stopper()
        self._stoppers.clear()
        for server in self._servers:
            server.stop()
        self._servers = []
        from localcloud.shims import lambda_invoke

        lambda_invoke.set_runtime(None)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the stack ----
    def deploy(self, stage: str = "dev", assembly: Path | None = None) -> provision.Deployment:
        assembly = assembly or provision.synth(stage, self.workdir / "cdk.out")
        deployment: provision.Deployment | None = None
        for stack_name in provision.stacks_of(assembly):
            deployment = provision.deploy(assembly, stack_name, self.clients)
            self.deployments[stack_name] = deployment
        if deployment is None:
            raise provision.DeployError(f"no stacks in {assembly}")
        if self.prewarm:
            self.prewarm_functions()
        return deployment

    def prewarm_functions(self) -> None:
        """One warm worker per Python function of the deployed stacks, started in the background."""
        from moto.awslambda.utils import get_backend

        from localcloud.shims.lambda_invoke import spec_of

        backend = get_backend(self.account_id, self.region)
        functions = [f for f in backend.list_functions() if str(f.run_time or "").startswith("python")]
        if self.lambdas is not None:
            self.lambdas.prewarm([spec_of(f) for f in functions])

    def destroy(self, stack_name: str) -> None:
        provision.destroy(stack_name, self.clients)
        self.deployments.pop(stack_name, None)

    @property
    def account_id(self) -> str:
        return provision.ACCOUNT_ID
