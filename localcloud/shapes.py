"""Strict request shapes: a request checked against botocore's service model the way the service checks it.

botocore's own client-side ``ParamValidator`` checks required members, unknown members, Python types and
minimum lengths only. A request that passes it can still be refused by the service (``ValidationException``:
"Value 'x' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular expression pattern").
This module checks what the service model declares, on every member, recursively (structures, lists, maps):

- unknown members and missing required members (a required ``idempotencyToken`` member may be left out: the
  SDK fills it in);
- types: structure/map = dict, list = list/tuple, string = str, integer/long = int (not bool), float/double =
  int/float/Decimal (not bool), boolean = bool, blob = bytes/bytearray/str/file-like, timestamp = datetime or a
  string/number botocore parses, document = JSON values;
- ``enum`` values; ``pattern`` as a full match (the services match the whole value: a job name
  ``my_job-1`` fails ``^[a-zA-Z0-9](-*[a-zA-Z0-9])*`` although its prefix matches,
  https://github.com/aws/sagemaker-python-sdk/issues/384), the models' Java regexes translated to Python
  (``\\p{Alnum}``-style POSIX classes as ASCII, surrogate-pair ranges as code points, ``\\z``);
- ``min``/``max``: lengths of strings (code points), blobs (bytes), lists and maps; ranges of numbers;
- tagged unions (exactly one member set).

Step Functions Task states (``task_violations``): the ``Resource`` names the API (optimized integrations
``arn:aws:states:::<service>:<action>[.sync|.waitForTaskToken]``, AWS SDK integrations
``arn:aws:states:::aws-sdk:<service>:<action>``, a Lambda function ARN); an unknown Resource is a violation.
``Parameters`` are checked against that API's input shape, with member names in PascalCase as Step Functions
writes them. A key ``Foo.$`` is a value resolved at run time: ``Foo`` must be a member (or a valid map key) and
its value a syntactically valid JsonPath or intrinsic function; its type is not checked. Documented quirks of
the optimized integrations are applied (``lambda:invoke`` accepts five parameters; some members take any JSON).

Not checked: rules that span members beyond unions (e.g. SNS "TopicArn or TargetArn or PhoneNumber"), rules
documented but not in the model (an SNS Subject without line breaks; an ``s3://`` training output, where the
model's pattern also admits ``https://``), service-side state (limits, existence of named resources, IAM), the
value a JsonPath resolves to, and response shapes. JSONata states (``Arguments``) are reported as not validated.
A rule the model declares but the service does not enforce goes in ``QUIRKS`` with its evidence, never silently.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import botocore.session
import regex
from botocore.model import OperationModel, Shape, StructureShape
from botocore.utils import parse_to_aware_datetime

# ---------------------------------------------------------------------------------------------------------
# Violations


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (``Parameters.ResourceConfig.InstanceType``), which rule, and why."""

    path: str
    rule: str  # unknown-member, required, type, enum, pattern, length, range, union, jsonpath, ...
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}: {self.detail}"


class ShapeError(ValueError):
    """A request that the service would refuse; ``violations`` lists every broken rule."""

    def __init__(self, what: str, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        super().__init__(f"{what}: {len(self.violations)} shape violation(s):\n" + "\n".join(map(str, violations)))


# Model quirks: rules of a service model that the service itself does not enforce. Keyed by
# (service, shape name, rule); each entry needs the evidence that it is a quirk, not a defect. Empty: every
# rule of every model this project calls is enforced as written.
QUIRKS: Final[dict[tuple[str, str, str], str]] = {}


# ---------------------------------------------------------------------------------------------------------
# Java regex (the models' dialect) -> Python ``regex``

# Java's POSIX classes are US-ASCII unless UNICODE_CHARACTER_CLASS is set (java.util.regex.Pattern).
_POSIX: Final = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": r"\x00-\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": r"!-/:-@\[-`{-~",
    "Graph": r"!-~",
    "Print": r" -~",
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1F\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": r" \t\n\x0B\f\r",
}
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)


def _hex_escape(pattern: str, i: int) -> int | None:
    """The code unit of a ``\\uXXXX`` escape at ``i``, else None."""
    if pattern.startswith("\\u", i) and len(pattern) >= i + 6:
        try:
            return int(pattern[i + 2 : i + 6], 16)
        except ValueError:
            return None
    return None


def java_to_python(pattern: str) -> str:
    """A model pattern (Java ``java.util.regex`` syntax) rewritten for Python's ``regex`` module."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            unit = _hex_escape(pattern, i)
            if unit is not None and unit in _HIGH:
                low = _hex_escape(pattern, i + 6)
                if low is not None and low in _LOW:  # a surrogate pair is one supplementary code point
                    point = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    out.append(f"\\U{point:08X}")
                    i += 12
                    continue
            nxt = pattern[i + 1]
            if nxt in "pP" and pattern.startswith("{", i + 2):
                end = pattern.index("}", i)
                name = pattern[i + 3 : end].removeprefix("Is")
                if name in _POSIX:
                    if nxt == "P":
                        body = f"[^{_POSIX[name]}]"
                        if in_class:
                            raise ValueError(f"negated POSIX class inside a class: {pattern!r}")
                    else:
                        body = _POSIX[name] if in_class else f"[{_POSIX[name]}]"
                    out.append(body)
                else:
                    out.append(f"\\{nxt}{{{name}}}")
                i = end + 1
                continue
            out.append("\\Z" if nxt == "z" else ch + nxt)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):  # a leading ] is literal
                out.append("\\]")
                i += 1
        elif ch == "[" and in_class:
            raise ValueError(f"nested character class (Java union/intersection) is not supported: {pattern!r}")
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def compiled_pattern(pattern: str) -> regex.Pattern[str]:
    return regex.compile(java_to_python(pattern), flags=regex.V0)


# ---------------------------------------------------------------------------------------------------------
# JsonPath and intrinsic functions (values of ``Foo.$`` keys)

INTRINSICS: Final = frozenset(
    {
        "States.Array",
        "States.ArrayContains",
        "States.ArrayGetItem",
        "States.ArrayLength",
        "States.ArrayPartition",
        "States.ArrayRange",
        "States.ArrayUnique",
        "States.Base64Decode",
        "States.Base64Encode",
        "States.Format",
        "States.Hash",
        "States.JsonMerge",
        "States.JsonToString",
        "States.MathAdd",
        "States.MathRandom",
        "States.StringSplit",
        "States.StringToJson",
        "States.UUID",
    }
)
_NAME: Final = regex.compile(r"[^.\[\]\s()'\",]+")
_INT: Final = regex.compile(r"-?[0-9]+")
_NUMBER: Final = regex.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_FUNCTION: Final = regex.compile(r"States\.[A-Za-z0-9]+")


class _Syntax(Exception):
    pass


class _Reader:
    """Recursive descent over a JsonPath (Jayway syntax, as Step Functions documents it) or an intrinsic
    function call (https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html)."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def fail(self, what: str) -> _Syntax:
        return _Syntax(f"{what} at offset {self.i} of {self.text!r}")

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def eat(self, s: str) -> bool:
        if self.peek(s):
            self.i += len(s)
            return True
        return False

    def match(self, pattern: regex.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.i)
        if m is None:
            return None
        self.i = m.end()
        return m.group()

    def path(self) -> None:
        if not self.eat("$"):
            raise self.fail("a path starts with $")
        self.eat("$")  # $$: the context object
        while self.i < len(self.text) and not self.peek(",") and not self.peek(")"):
            if self.eat(".."):
                if not (self.eat("*") or self.match(_NAME) or self.peek("[")):
                    raise self.fail("a name after ..")
            elif self.eat("."):
                if not (self.eat("*") or self.match(_NAME)):
                    raise self.fail("a name after .")
            elif self.eat("["):
                self.bracket()
            elif self.text[self.i].isspace():
                break
            else:
                raise self.fail("., .. or [")

    def bracket(self) -> None:
        if self.eat("*"):
            pass
        elif self.peek("?(") or self.peek("("):
            self.eat("?")
            depth = 0
            start = self.i
            while self.i < len(self.text):
                depth += {"(": 1, ")": -1}.get(self.text[self.i], 0)
                self.i += 1
                if depth == 0:
                    break
            if depth or self.i - start <= 2:
                raise self.fail("a non-empty, balanced expression")
        elif self.peek("'") or self.peek('"'):
            self.quoted()
            while self.eat(","):
                self.quoted()
        else:
            start = self.i
            if not self.match(regex.compile(r"-?[0-9]*(:-?[0-9]*){0,2}")) or self.i == start:
                raise self.fail("an index, slice, * or quoted name")
            while self.eat(","):
                if not self.match(_INT):
                    raise self.fail("an index")
        if not self.eat("]"):
            raise self.fail("]")

    def quoted(self) -> None:
        quote = self.text[self.i]
        self.i += 1
        while self.i < len(self.text) and self.text[self.i] != quote:
            self.i += 2 if self.text[self.i] == "\\" else 1
        if not self.eat(quote):
            raise self.fail("a closing quote")

    def call(self) -> None:
        name = self.match(_FUNCTION)
        if name not in INTRINSICS:
            raise self.fail(f"an intrinsic function ({name!r} is none)")
        if not self.eat("("):
            raise self.fail("(")
        self.spaces()
        if not self.eat(")"):
            while True:
                self.argument()
                self.spaces()
                if self.eat(")"):
                    break
                if not self.eat(","):
                    raise self.fail(", or )")
                self.spaces()

    def argument(self) -> None:
        if self.peek("$"):
            self.path()
        elif self.peek("States."):
            self.call()
        elif self.peek("'"):
            self.quoted()
        elif not (self.eat("true") or self.eat("false") or self.eat("null") or self.match(_NUMBER)):
            raise self.fail("an argument (path, string, number, boolean, null or function)")

    def spaces(self) -> None:
        while self.i < len(self.text) and self.text[self.i] == " ":
            self.i += 1

    def done(self) -> None:
        if self.i != len(self.text):
            raise self.fail("the end")


def json_path_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid value of a ``Foo.$`` key (a JsonPath or an intrinsic function), or None."""
    if not isinstance(value, str):
        return f"a path must be a string, not {type(value).__name__}"
    reader = _Reader(value)
    try:
        reader.call() if value.startswith("States.") else reader.path()
        reader.done()
    except _Syntax as e:
        return f"not a valid JsonPath or intrinsic function: expected {e}"
    return None


# ---------------------------------------------------------------------------------------------------------
# The validator


@dataclass(frozen=True)
class Options:
    """How a request is written. boto3: as the model names it. Step Functions: member names in PascalCase ("even
    if the native service API is in camelCase", connect-lambda.html), ``Foo.$`` keys resolved at run time, some
    members taking any JSON."""

    runtime_keys: bool = False
    pascal_case: bool = False
    json_members: frozenset[str] = frozenset()  # top-level members that take any JSON
    supported: frozenset[str] | None = None  # top-level members the caller accepts (None: all)
    service: str = ""


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _at_key(path: str, key: str) -> str:
    return f"{path}[{json.dumps(key)}]"


def _closest(word: str, candidates: Iterable[str]) -> str:
    near = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


@dataclass
class _Check:
    options: Options
    found: list[Violation] = field(default_factory=list)

    def report(self, path: str, rule: str, detail: str, shape: Shape | None = None) -> None:
        if shape is not None and (self.options.service, shape.name, rule) in QUIRKS:
            return
        self.found.append(Violation(path, rule, detail))

    # -- dispatch -------------------------------------------------------------------------------------------
    def value(self, value: Any, shape: Shape, path: str) -> None:
        checker: Callable[[Any, Any, str], None] = getattr(self, f"_{shape.type_name}")
        if shape.type_name == "structure" and shape.metadata.get("document"):
            checker = self._document
        checker(value, shape, path)

    def runtime(self, value: Any, path: str) -> None:
        problem = json_path_problem(value)
        if problem:
            self.report(path, "jsonpath", problem)

    def free_json(self, value: Any, path: str) -> None:
        """Any JSON, with run-time keys (a Lambda payload, an SNS message as an object)."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if self.options.runtime_keys and key.endswith(".$"):
                    self.runtime(item, _at(path, key))
                else:
                    self.free_json(item, _at(path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.free_json(item, f"{path}[{i}]")
        elif not (value is None or isinstance(value, str | int | float | bool)):
            self.report(path, "type", f"{type(value).__name__} is not a JSON value")

    def _type(self, value: Any, shape: Shape, path: str, expected: str) -> None:
        self.report(path, "type", f"expected {expected} ({shape.name}), got {type(value).__name__} {value!r:.80}")

    # -- containers -------------------------------------------------------------------------------------------
    def _structure(self, value: Any, shape: StructureShape, path: str, top: bool = False) -> None:
        if not isinstance(value, Mapping):
            return self._type(value, shape, path, "an object")
        spelled = {(_pascal(m) if self.options.pascal_case else m): m for m in shape.members}
        given: dict[str, str] = {}  # member -> key as written
        for key in value:
            runtime = self.options.runtime_keys and key.endswith(".$")
            name = key[:-2] if runtime else key
            member = spelled.get(name)
            if member is None:
                self.report(
                    _at(path, key),
                    "unknown-member",
                    f"{name!r} is not a member of {shape.name}{_closest(name, spelled)}",
                )
                continue
            if member in given:
                self.report(_at(path, key), "duplicate-member", f"{given[member]!r} and {key!r} both set {name}")
                continue
            given[member] = key
            if top and self.options.supported is not None and name not in self.options.supported:
                self.report(
                    _at(path, key),
                    "unsupported-by-integration",
                    f"the integration accepts only {', '.join(sorted(self.options.supported))}",
                )
            if runtime:
                self.runtime(value[key], _at(path, key))
            elif top and name in self.options.json_members:
                self.free_json(value[key], _at(path, key))
            else:
                self.value(value[key], shape.members[member], _at(path, key))
        for member in shape.required_members:
            token = shape.members[member].metadata.get("idempotencyToken")
            if member not in given and not token:
                name = _pascal(member) if self.options.pascal_case else member
                self.report(_at(path, name), "required", f"{shape.name} requires {name}", shape)
        if shape.metadata.get("union") and len(given) != 1:
            names = ", ".join(spelled)
            self.report(path, "union", f"{shape.name} takes exactly one of {names}; got {len(given)}", shape)

    def _list(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            return self._type(value, shape, path, "a list")
        self._bounds(len(value), shape, path, "length", "items")
        for i, item in enumerate(value):
            self.value(item, shape.member, f"{path}[{i}]")

    def _map(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            return self._type(value, shape, path, "an object")
        self._bounds(len(value), shape, path, "length", "entries")
        for key, item in value.items():
            runtime = self.options.runtime_keys and isinstance(key, str) and key.endswith(".$")
            name = key[:-2] if runtime else key
            self.value(name, shape.key, f"{_at_key(path, name)} (key)")
            if runtime:
                self.runtime(item, _at_key(path, name))
            else:
                self.value(item, shape.value, _at_key(path, name))

    def _document(self, value: Any, shape: Shape, path: str) -> None:
        self.free_json(value, path)

    # -- scalars ---------------------------------------------------------------------------------------------
    def _string(self, value: Any, shape: Any, path: str) -> None:
        if not isinstance(value, str):
            return self._type(value, shape, path, "a string")
        self._bounds(len(value), shape, path, "length", "characters")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            shown = ", ".join(enum) if len(enum) <= 8 else f"{len(enum)} values{_closest(value, enum)}"
            self.report(path, "enum", f"{value!r} is not one of {shape.name}: {shown}", shape)
        pattern = shape.metadata.get("pattern")
        if pattern is not None and not compiled_pattern(pattern).fullmatch(value):
            self.report(path, "pattern", f"{value!r:.200} does not match {shape.name}'s pattern {pattern}", shape)

    def _integer(self, value: Any, shape: Shape, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            return self._type(value, shape, path, "an integer")
        self._bounds(value, shape, path, "range", "")

    _long = _integer

    def _double(self, value: Any, shape: Shape, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            return self._type(value, shape, path, "a number")
        self._bounds(value, shape, path, "range", "")

    _float = _double

    def _boolean(self, value: Any, shape: Shape, path: str) -> None:
        if not isinstance(value, bool):
            self._type(value, shape, path, "a boolean")

    def _blob(self, value: Any, shape: Shape, path: str) -> None:
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes | bytearray):
            self._bounds(len(value), shape, path, "length", "bytes")
        elif not hasattr(value, "read"):
            self._type(value, shape, path, "bytes, a string or a file-like object")

    def _timestamp(self, value: Any, shape: Shape, path: str) -> None:
        if isinstance(value, dt.datetime):
            return
        try:
            parse_to_aware_datetime(value)
        except (TypeError, ValueError, AttributeError):
            self._type(value, shape, path, "a datetime or a timestamp string")

    def _bounds(self, n: Any, shape: Shape, path: str, rule: str, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        what = f"{n} {unit}".strip()
        if low is not None and n < low:
            self.report(path, rule, f"{what} is below {shape.name}'s minimum {low}", shape)
        if high is not None and n > high:
            self.report(path, rule, f"{what} is above {shape.name}'s maximum {high}", shape)


def shape_violations(shape: Shape, value: Any, *, path: str = "", options: Options | None = None) -> list[Violation]:
    """Every rule of ``shape`` (and of its members, recursively) that ``value`` breaks."""
    check = _Check(options or Options())
    if isinstance(shape, StructureShape) and not shape.metadata.get("document"):
        check._structure(value, shape, path, top=True)
    else:
        check.value(value, shape, path)
    return check.found


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def operation_model(service: str, operation: str) -> OperationModel:
    """botocore's model of ``operation`` (``"CreateTrainingJob"``) of ``service`` (``"sagemaker"``)."""
    return _session().get_service_model(service).operation_model(operation)


def request_violations(service: str, operation: str, params: Mapping[str, Any], *, path: str = "") -> list[Violation]:
    """What the service would refuse in a boto3 request ``client.<operation>(**params)``."""
    shape = operation_model(service, operation).input_shape
    if shape is None:
        return [Violation(path or operation, "unknown-member", f"{operation} takes no input")] if params else []
    return shape_violations(shape, params, path=path, options=Options(service=service))


def check_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Raise ``ShapeError`` naming every broken rule of a boto3 request."""
    found = request_violations(service, operation, params)
    if found:
        raise ShapeError(f"{service}.{operation}", found)


# ---------------------------------------------------------------------------------------------------------
# Step Functions Task states


@dataclass(frozen=True)
class Integration:
    """The API a Task ``Resource`` calls, and how Step Functions passes ``Parameters`` to it."""

    service: str  # botocore service name
    operation: str  # botocore operation name
    patterns: frozenset[str]  # "" (request-response), ".sync", ".sync:2", ".waitForTaskToken"
    supported: frozenset[str] | None = None  # documented subset of the API's members
    json_members: frozenset[str] = frozenset()  # members Step Functions accepts as any JSON and serializes
    doc: str = ""


_DOCS = "https://docs.aws.amazon.com/step-functions/latest/dg/"
_RR, _SYNC, _TOKEN = "", ".sync", ".waitForTaskToken"


def _sagemaker(operation: str, *patterns: str) -> Integration:
    return Integration("sagemaker", operation, frozenset({_RR, *patterns}), doc=_DOCS + "connect-sagemaker.html")


def _dynamodb(operation: str) -> Integration:
    return Integration("dynamodb", operation, frozenset({_RR}), doc=_DOCS + "connect-ddb.html")


# The optimized integrations, each as its page documents it: the API, the integration patterns it supports,
# the parameters it accepts (when the page lists a subset) and the members it takes as JSON (the page's examples
# pass an object). A Resource not listed here is reported, so a new integration is looked up before it is used.
OPTIMIZED: Final[dict[str, Integration]] = {
    # "Supported parameters": ClientContext, FunctionName, InvocationType, Qualifier, Payload (Payload as JSON)
    "lambda:invoke": Integration(
        "lambda",
        "Invoke",
        frozenset({_RR, _TOKEN}),
        supported=frozenset({"ClientContext", "FunctionName", "InvocationType", "Payload", "Qualifier"}),
        json_members=frozenset({"Payload"}),
        doc=_DOCS + "connect-lambda.html",
    ),
    "sns:publish": Integration(
        "sns", "Publish", frozenset({_RR, _TOKEN}), json_members=frozenset({"Message"}), doc=_DOCS + "connect-sns.html"
    ),
    "sqs:sendMessage": Integration(
        "sqs",
        "SendMessage",
        frozenset({_RR, _TOKEN}),
        json_members=frozenset({"MessageBody"}),
        doc=_DOCS + "connect-sqs.html",
    ),
    "glue:startJobRun": Integration("glue", "StartJobRun", frozenset({_RR, _SYNC}), doc=_DOCS + "connect-glue.html"),
    "states:startExecution": Integration(
        "stepfunctions",
        "StartExecution",
        frozenset({_RR, _SYNC, ".sync:2", _TOKEN}),
        json_members=frozenset({"Input"}),
        doc=_DOCS + "connect-stepfunctions.html",
    ),
    "sagemaker:createEndpoint": _sagemaker("CreateEndpoint"),
    "sagemaker:createEndpointConfig": _sagemaker("CreateEndpointConfig"),
    "sagemaker:createHyperParameterTuningJob": _sagemaker("CreateHyperParameterTuningJob", _SYNC),
    "sagemaker:createLabelingJob": _sagemaker("CreateLabelingJob", _SYNC),
    "sagemaker:createModel": _sagemaker("CreateModel"),
    "sagemaker:createProcessingJob": _sagemaker("CreateProcessingJob", _SYNC),
    "sagemaker:createTrainingJob": _sagemaker("CreateTrainingJob", _SYNC),
    "sagemaker:createTransformJob": _sagemaker("CreateTransformJob", _SYNC),
    "sagemaker:updateEndpoint": _sagemaker("UpdateEndpoint"),
    "dynamodb:getItem": _dynamodb("GetItem"),
    "dynamodb:putItem": _dynamodb("PutItem"),
    "dynamodb:updateItem": _dynamodb("UpdateItem"),
    "dynamodb:deleteItem": _dynamodb("DeleteItem"),
}

# The service names of AWS SDK integrations (``aws-sdk:sfn:startExecution``) where they are not botocore's name
# without its hyphens (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
SDK_SERVICES: Final = {"sfn": "stepfunctions", "eventbridge": "events", "cloudwatchlogs": "logs"}

_STATES_ARN = regex.compile(r"arn:aws[a-z-]*:states:::(?P<api>[^.]+)(?P<pattern>\.[A-Za-z:0-9]+)?")
_LAMBDA_ARN = regex.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?"
)
_ACTIVITY_ARN = regex.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:activity:[^:]{1,80}")


class UnknownIntegration(ValueError):
    pass


@functools.cache
def _sdk_service(name: str) -> str:
    if name in SDK_SERVICES:
        return SDK_SERVICES[name]
    for service in _session().get_available_services():
        if service.replace("-", "") == name:
            return str(service)
    raise UnknownIntegration(f"no AWS SDK service {name!r}")


def integration(resource: str) -> Integration | None:
    """The API ``resource`` calls; None for a resource whose input is free JSON (a Lambda function or an
    activity ARN: the state's input is the payload). Raises ``UnknownIntegration``."""
    if _LAMBDA_ARN.fullmatch(resource) or _ACTIVITY_ARN.fullmatch(resource):
        return None
    m = _STATES_ARN.fullmatch(resource)
    if m is None:
        raise UnknownIntegration(f"{resource!r} is neither a service integration nor a Lambda or activity ARN")
    api, pattern = m["api"], m["pattern"] or _RR
    if api.startswith("aws-sdk:"):
        _, service_name, action = api.split(":", 2)
        service = _sdk_service(service_name)
        operation = _pascal(action)
        if operation not in _session().get_service_model(service).operation_names:
            raise UnknownIntegration(f"{service} has no operation {operation} ({resource!r})")
        # AWS SDK integrations support request-response and callbacks, never .sync
        found = Integration(service, operation, frozenset({_RR, _TOKEN}), doc=_DOCS + "supported-services-awssdk.html")
    elif api in OPTIMIZED:
        found = OPTIMIZED[api]
    else:
        raise UnknownIntegration(f"{api!r} is not an optimized integration this validator knows ({resource!r})")
    if pattern not in found.patterns:
        allowed = ", ".join(repr(p) for p in sorted(found.patterns))
        raise UnknownIntegration(f"{api} does not support the {pattern!r} integration pattern (only {allowed})")
    return found


def task_violations(state: Mapping[str, Any], *, path: str) -> list[Violation]:
    """Every rule a Task state's ``Parameters`` (and ``ResultSelector``) break, with ``Resource`` literal."""
    check = _Check(Options(runtime_keys=True))
    check.free_json(state.get("ResultSelector", {}), _at(path, "ResultSelector"))
    if "Arguments" in state:
        return [*check.found, Violation(_at(path, "Arguments"), "unsupported", "JSONata states are not validated")]
    resource = state.get("Resource")
    try:
        found = integration(str(resource))
    except UnknownIntegration as e:
        return [*check.found, Violation(_at(path, "Resource"), "unknown-integration", str(e))]
    parameters = state.get("Parameters", {})
    if found is None:
        check.free_json(parameters, _at(path, "Parameters"))
        return check.found
    shape = operation_model(found.service, found.operation).input_shape
    options = Options(
        runtime_keys=True,
        pascal_case=True,
        json_members=found.json_members,
        supported=found.supported,
        service=found.service,
    )
    return [*check.found, *shape_violations(shape, parameters, path=_at(path, "Parameters"), options=options)]


def task_states(definition: Mapping[str, Any], path: str = "") -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(path, state) of every Task state of a state machine definition, in Parallel branches and Map
    iterators too."""
    for name, state in definition.get("States", {}).items():
        where = _at(path, name)
        if state.get("Type") == "Task":
            yield where, state
        for i, branch in enumerate(state.get("Branches", [])):
            yield from task_states(branch, f"{where}.Branches[{i}]")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from task_states(state[key], f"{where}.{key}")
