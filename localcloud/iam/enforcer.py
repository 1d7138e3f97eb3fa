"""IAM and KMS enforced on every call a deployed principal makes in the local cloud.

- Identities: each principal gets its own temporary credentials from moto's STS (``credentials``), after its role's
  trust policy is checked for the service that assumes it (Lambda, Step Functions, Glue, SageMaker, EventBridge).
  Lambdas, jobs, endpoint containers and state machines call with them; the harness, tests, demo and AWS CLI keep the
  account's ``testing`` keys and are not evaluated (an account administrator).
- Calls over HTTP: ``Middleware`` sits in front of moto's WSGI application, maps the access key to its principal,
  parses the request with botocore's service model (moto's router and parsers), turns it into authorization
  requests (``calls.requests_for``) and decides them (``evaluate.decide``). A denied call never reaches moto: it gets
  AccessDenied in the service's own error format.
- Calls that services make themselves (EventBridge and CloudWatch invoking a Lambda, SNS publishing for an alarm,
  Lambda writing its logs, Glue and SageMaker writing logs and metrics with a job's role): the runtime asks
  ``authorize`` in process before acting.

Every decision goes into ``decisions`` (principal, action, resource, allowed/denied, the deciding statement).
``LOCALCLOUD_IAM=0`` turns refusal off for diagnosis (decisions are still made and recorded, denials listed);
``LOCALCLOUD_IAM`` unset or ``1`` enforces.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from localcloud.iam import calls, evaluate
from localcloud.iam.calls import Call, UnmappedCall
from localcloud.iam.moto_state import MotoWorld
from localcloud.iam.policy import Caller, PolicyError, Request

ENV_SWITCH = "LOCALCLOUD_IAM"
SIGNING_NAMES = {"monitoring": "cloudwatch", "states": "stepfunctions"}


class AccessDenied(PermissionError):
    """A call the evaluator refused (or could not evaluate: an unmapped call, a policy it does not understand)."""

    def __init__(self, decision: evaluate.Decision) -> None:
        super().__init__(decision.message or decision.statement)
        self.decision = decision


@dataclass(frozen=True)
class Entry:
    """One journal line: a decision and the API call it was made for."""

    principal: str
    role: str
    action: str
    resource: str
    allowed: bool
    statement: str
    call: str
    via: str = ""
    message: str = ""
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def enforcing() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


class Enforcer:
    def __init__(self, account: str, region: str, enforce: bool | None = None) -> None:
        self.world = MotoWorld(account, region)
        self.account, self.region = account, region
        self.enforce = enforcing() if enforce is None else enforce
        self._keys: dict[str, Caller] = {}
        self._sessions: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        self.entries: list[Entry] = []

    # ---- identities ----
    def credentials(self, role_arn: str, service: str, session: str, source_arn: str | None = None) -> dict[str, str]:
        """Temporary credentials of ``role_arn`` assumed by ``service`` (its trust policy is evaluated first, with
        ``aws:SourceArn``/``aws:SourceAccount`` when the service passes them: Step Functions the state machine,
        EventBridge the rule), as ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``."""
        session = session[:64]
        with self._lock:
            known = self._sessions.get((role_arn, session))
        if known is not None:
            return dict(known)
        caller = Caller(service, self.account, service=service)
        context = calls._context(Call("sts", "AssumeRole", {}), caller, self.world)
        if source_arn:
            context.update({"aws:sourcearn": [source_arn], "aws:sourceaccount": [self.account]})
        trust = Request(caller, "sts:AssumeRole", role_arn, context)
        if not self.world.role_exists(role_arn):
            # CloudFormation creates a stack's roles, so this is a hand-made resource (a unit test's function):
            # its calls cannot be evaluated; the run's denial list says so instead of refusing the function.
            why = f"role {role_arn} does not exist: its calls are not evaluated"
            self._record(evaluate.Decision(trust, False, why, why), f"sts:AssumeRole by {service}")
            return {"AWS_ACCESS_KEY_ID": "local-unknown-role", "AWS_SECRET_ACCESS_KEY": "local-unknown-role"}
        try:
            decision = evaluate.decide(trust, resource_policy=self.world.trust_policy(role_arn))
        except Exception as error:  # no such role, or a trust policy the evaluator does not understand
            decision = evaluate.Decision(trust, False, f"{type(error).__name__}: {error}", str(error))
        self._record(decision, f"sts:AssumeRole by {service}")
        if not decision.allowed and self.enforce:
            raise AccessDenied(decision)
        from moto.sts.models import sts_backends

        assumed = sts_backends[self.account]["global"].assume_role(
            region_name=self.region,
            role_session_name=session,
            role_arn=role_arn,
            policy="",
            duration=43200,
            external_id="",
        )
        caller = Caller(assumed.arn, self.account, role_arn=role_arn)
        values = {
            "AWS_ACCESS_KEY_ID": assumed.access_key_id,
            "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
            "AWS_SESSION_TOKEN": assumed.session_token,
        }
        with self._lock:
            self._keys[assumed.access_key_id] = caller
            self._sessions[(role_arn, session)] = values
        return dict(values)

    def caller_of(self, access_key: str) -> Caller | None:
        return self._keys.get(access_key)

    def service(self, name: str) -> Caller:
        return Caller(name, self.account, service=name)

    # ---- decisions ----
    def _decide(self, request: Request) -> evaluate.Decision:
        try:
            resource_policy = None
            key_policy = None
            if request.action.startswith("kms:") and request.resource.startswith("arn:aws:kms:"):
                key_policy = self.world.key_policy(request.resource)
            else:
                resource_policy = self.world.resource_policy(request.resource)
            identity = self.world.identity_policies(request.caller.role_arn) if request.caller.role_arn else []
            return evaluate.decide(request, identity, resource_policy, key_policy)
        except PolicyError as error:
            return evaluate.Decision(request, False, f"refused: {error}", f"the local IAM evaluator refused: {error}")

    def _record(self, decision: evaluate.Decision, call: str) -> None:
        request = decision.request
        entry = Entry(
            principal=request.caller.arn,
            role=request.caller.role_arn or request.caller.service or "",
            action=request.action,
            resource=request.resource,
            allowed=decision.allowed,
            statement=decision.statement,
            call=call,
            via=request.via,
            message=decision.message,
        )
        with self._lock:
            self.entries.append(entry)

    def authorize(self, requests: Iterable[Request], call: str) -> evaluate.Decision | None:
        """Decide every request of one call; the first denial (None: all allowed). Raises nothing."""
        denied = None
        for request in requests:
            decision = self._decide(request)
            self._record(decision, call)
            if not decision.allowed and denied is None:
                denied = decision
        return denied

    def check(
        self,
        caller: Caller,
        action: str,
        resource: str,
        context: dict[str, list[str]] | None = None,
        call: str = "",
        via: str = "",
        modelled: frozenset[str] = frozenset(),
    ) -> None:
        """A call a service makes in process: ``AccessDenied`` when denied and enforcing."""
        base = calls._context(Call("internal", call or action, {}), caller, self.world)
        request = Request(caller, action, resource, {**base, **(context or {})}, modelled, via=via)
        denied = self.authorize([request], call or action)
        if denied is not None and self.enforce:
            raise AccessDenied(denied)

    def check_log_encryption(self, group: str, key_arn: str, call: str = "logs:PutLogEvents (SSE-KMS)") -> None:
        """CloudWatch Logs encrypting a group's events with the group's KMS key: the service calls KMS as itself,
        ``logs.<region>.amazonaws.com``, with the encryption context ``aws:logs:arn`` = the group's ARN, so only the
        key policy can allow it (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS",
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html). ``AccessDenied`` when
        denied and enforcing."""
        group_arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"
        context = {"kms:encryptioncontext:aws:logs:arn": [group_arn], "kms:encryptioncontextkeys": ["aws:logs:arn"]}
        modelled = frozenset({"kms:encryptioncontext:*", "kms:encryptioncontextkeys"})
        logs = self.service(f"logs.{self.region}.amazonaws.com")
        self.check(logs, "kms:GenerateDataKey", key_arn, context, call=call, modelled=modelled)

    def check_call(self, caller: Caller, call: Call, context: dict[str, list[str]] | None = None) -> None:
        """An API call a service makes on a principal's behalf in process (e.g. SageMaker reading a model
        artifact with the execution role, CloudWatch publishing an alarm): the same mapping as over HTTP, with
        ``context`` added to every request (``aws:SourceArn`` of a service principal's call...)."""
        denied = self._evaluate_call(caller, call, context)
        if denied is not None and self.enforce:
            raise AccessDenied(denied)

    def _evaluate_call(
        self, caller: Caller, call: Call, context: dict[str, list[str]] | None = None
    ) -> evaluate.Decision | None:
        name = f"{call.service}:{call.operation}"
        try:
            requests = calls.requests_for(call, caller, self.world)
            if context:
                requests = [replace(r, context={**r.context, **context}) for r in requests]
        except (UnmappedCall, PolicyError) as error:
            request = Request(caller, name, "*")
            decision = evaluate.Decision(
                request, False, f"refused: {error}", f"the local IAM evaluator refused {name}: {error}"
            )
            self._record(decision, name)
            return decision
        return self.authorize(requests, name)

    # ---- reporting ----
    def denials(self) -> list[Entry]:
        with self._lock:
            return [e for e in self.entries if not e.allowed]

    def summary(self) -> list[dict[str, Any]]:
        """One row per (principal role, action, outcome): how many decisions, an example resource and call."""
        rows: dict[tuple[str, str, bool], dict[str, Any]] = {}
        with self._lock:
            entries = list(self.entries)
        for e in entries:
            key = (e.role, e.action, e.allowed)
            row = rows.setdefault(
                key,
                {
                    "principal": e.role,
                    "action": e.action,
                    "outcome": "allowed" if e.allowed else "denied",
                    "count": 0,
                    "resources": [],
                    "calls": [],
                    "statement": e.statement,
                    "via": e.via,
                },
            )
            row["count"] += 1
            if e.resource not in row["resources"] and len(row["resources"]) < 3:
                row["resources"].append(e.resource)
            if e.call not in row["calls"] and len(row["calls"]) < 3:
                row["calls"].append(e.call)
        return sorted(rows.values(), key=lambda r: (r["principal"], r["action"], r["outcome"]))

    def report(self) -> dict[str, Any]:
        return {
            "enforced": self.enforce,
            "decisions": len(self.entries),
            "denials": [e.as_dict() for e in self.denials()],
            "summary": self.summary(),
        }


_active: Enforcer | None = None


def set_active(enforcer: Enforcer | None) -> None:
    global _active
    _active = enforcer


def active() -> Enforcer | None:
    return _active


# ---- HTTP ---------------------------------------------------------------------------------------------------------


def _access_key(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(access key id, signing service name) of a SigV4 request (header or presigned query)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.startswith("AWS4-HMAC-SHA256"):
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    else:
        from urllib.parse import parse_qs

        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "X-Amz-Credential" not in query:
            return None
        scope = query["X-Amz-Credential"][0].split("/")
    return (scope[0], scope[3]) if len(scope) >= 5 else None


def parse_call(environ: dict[str, Any], signing_name: str, body: bytes, secure: bool) -> tuple[Call, str]:
    """The API call of a request (service, operation, parameters) through moto's botocore-based router and
    parsers; also the wire protocol (for the error)."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request as MotoRequest
    from moto.core.request import determine_request_protocol
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model

    service = SIGNING_NAMES.get(signing_name, signing_name)
    if service == "sagemaker" and environ.get("PATH_INFO", "").endswith("/invocations"):
        service = "sagemaker-runtime"
    request = MotoRequest(environ)
    model = get_service_model(service)
    operation, uri_params = get_service_router(service).match(request)
    protocol = determine_request_protocol(model, request.content_type)
    parser = PROTOCOL_PARSERS[protocol](operation)
    params = parser.parse(
        {
            "method": request.method,
            "values": request.values,
            "headers": request.headers,
            "body": body,
            "url_path": request.path,
            "url_params": uri_params,
        }
    )
    return Call(service, operation.name, dict(params), secure), protocol


def denial_response(service: str, protocol: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """AccessDenied as the service answers it: S3's XML 403, SNS's AuthorizationError, Query APIs' AccessDenied,
    JSON APIs' AccessDeniedException (400; REST-JSON APIs 403)."""
    request_id = str(uuid.uuid4())
    if protocol in ("rest-xml", "query"):
        from xml.sax.saxutils import escape

        code = "AuthorizationError" if service == "sns" else "AccessDenied"
        if protocol == "rest-xml":
            body = (
                f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            )
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        return 403, headers, body.encode()
    status = 403 if protocol == "rest-json" else 400
    content_type = "application/json" if protocol == "rest-json" else "application/x-amz-json-1.1"
    body = json.dumps({"__type": "AccessDeniedException", "message": message, "Message": message})
    headers = [
        ("Content-Type", content_type),
        ("x-amzn-ErrorType", "AccessDeniedException"),
        ("x-amzn-RequestId", request_id),
    ]
    return status, headers, body.encode()


class Middleware:
    """WSGI middleware in front of moto's application: a principal's call is decided before moto sees it."""

    def __init__(self, app: Callable[..., Any], secure: bool) -> None:
        self.app = app
        self.secure = secure  # the listener is HTTPS (or stands for AWS's own TLS between services)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        enforcer = _active
        found = _access_key(environ) if enforcer is not None else None
        caller = enforcer.caller_of(found[0]) if enforcer is not None and found else None
        if enforcer is None or found is None or caller is None:
            return self.app(environ, start_response)
        from werkzeug.wsgi import get_input_stream

        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        protocol = "json"
        try:
            call, protocol = parse_call(environ, found[1], body, self.secure)
        except Exception as error:
            request = Request(caller, f"{found[1]}:?", "*")
            decision = evaluate.Decision(
                request,
                False,
                f"refused: unparsed request ({error!r})",
                f"the local IAM evaluator could not parse the request: {error!r}",
            )
            enforcer._record(decision, f"{found[1]}:? {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}")
            denied: evaluate.Decision | None = decision
            service = found[1]
        else:
            environ["wsgi.input"] = io.BytesIO(body)
            denied = enforcer._evaluate_call(caller, call)
            service = call.service
        if denied is None or not enforcer.enforce:
            return self.app(environ, start_response)
        status, headers, payload = denial_response(service, protocol, denied.message or denied.statement)
        start_response(
            f"{status} {'Forbidden' if status == 403 else 'Bad Request'}",
            [*headers, ("Content-Length", str(len(payload)))],
        )
        return [payload]
