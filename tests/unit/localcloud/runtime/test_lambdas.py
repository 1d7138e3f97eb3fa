"""The local Lambda runtime: a function runs from its deployment package in a warm worker process."""

from __future__ import annotations

import json
import os
import sysconfig
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.runtime.lambdas import FunctionSpec, LambdaRuntime
from tests.unit.localcloud.support import ACCOUNT, REGION, unique, zip_package

ENDPOINT = "https://127.0.0.1:4566"

APP = """
    import json, os, sys

    CALLS = 0


    def handler(event, context):
        global CALLS
        CALLS += 1
        if event.get("fail"):
            raise ValueError(f"bad input: {event['fail']}")
        if event.get("sleep"):
            import time
            time.sleep(event["sleep"])
        print("hello from the handler")
        print('{"ok": false, "result": "not the protocol"}')
        sys.stderr.write("a warning on stderr\\n")
        return {
            "event": event,
            "calls": CALLS,
            "function": context.function_name,
            "arn": context.invoked_function_arn,
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb,
            "cwd": os.getcwd(),
            "env": {k: os.environ.get(k) for k in (
                "STAGE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "AWS_ENDPOINT_URL", "LAMBDA_TASK_ROOT",
                "POWERTOOLS_TRACE_DISABLED", "AWS_LAMBDA_LOG_GROUP_NAME", "_HANDLER", "LEAKY_SECRET",
            )},
        }
"""


class Logs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, spec: FunctionSpec, request_id: str, text: str) -> None:
        self.calls.append((spec.name, request_id, text))


@pytest.fixture
def logs() -> Logs:
    return Logs()


@pytest.fixture
def runtime(tmp_path: Path, logs: Logs) -> Iterator[LambdaRuntime]:
    paths = sysconfig.get_paths()
    lambdas = LambdaRuntime(tmp_path, ENDPOINT, REGION, layer_paths=[paths["purelib"], paths["platlib"]], on_logs=logs)
    yield lambdas
    lambdas.stop()


def spec(files: dict[str, str] | None = None, handler: str = "app.handler", **overrides: Any) -> FunctionSpec:
    name = unique("fn")
    values: dict[str, Any] = {
        "name": name,
        "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "handler": handler,
        "code": zip_package(files or {"app.py": APP}),
        "environment": {"STAGE": "dev"},
        "timeout": 30,
        "memory": 512,
        "log_group": f"/aws/lambda/{name}",
    }
    values.update(overrides)
    return FunctionSpec(**values)


def test_a_handler_runs_from_its_package_with_the_lambda_context(runtime: LambdaRuntime) -> None:
    # Given a function
    function = spec()
    # When it is invoked
    result = runtime.invoke(function, {"key": "value"})
    # Then the handler's return value comes back, computed with the Lambda context of this request
    assert result.ok, result.payload
    answer = json.loads(result.payload)
    assert answer["event"] == {"key": "value"}
    assert (answer["function"], answer["arn"], answer["memory"]) == (function.name, function.arn, 512)
    assert answer["request_id"] == result.request_id
    assert 0 < answer["remaining_ms"] <= 30_000
    assert Path(answer["cwd"]) == runtime.task_root(function)
    assert result.init_ms is not None  # a cold start reports its init duration


def test_the_worker_stays_warm_between_invocations(runtime: LambdaRuntime) -> None:
    function = spec()
    first = json.loads(runtime.invoke(function, {}).payload)
    second_result = runtime.invoke(function, {})
    second = json.loads(second_result.payload)
    # module state survives (the same process), and the warm invocation reports no init
    assert (first["calls"], second["calls"]) == (1, 2)
    assert second_result.init_ms is None
    assert len(runtime.invocations) == 2


def test_environment_is_the_functions_plus_lambdas_reserved_variables(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable in the test process that the function does not declare
    monkeypatch.setenv("LEAKY_SECRET", "must not reach the function")
    function = spec()
    # When the function reads its environment
    env = json.loads(runtime.invoke(function, {}).payload)["env"]
    # Then it sees its own variables and Lambda's, pointed at the local cloud, and nothing else of the host
    assert env == {
        "STAGE": "dev",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": ENDPOINT,
        "LAMBDA_TASK_ROOT": str(runtime.task_root(function)),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
        "_HANDLER": "app.handler",
        "LEAKY_SECRET": None,
    }


def test_output_goes_to_the_logs_never_onto_the_protocol(runtime: LambdaRuntime, logs: Logs) -> None:
    # Given a handler that prints, even a line that looks like a protocol response, and writes to stderr
    function = spec()
    # When it is invoked
    result = runtime.invoke(function, {})
    # Then the invocation still succeeds, and its logs hold the output between START and END/REPORT
    assert result.ok and json.loads(result.payload)["calls"] == 1
    lines = result.logs.splitlines()
    assert lines[0] == f"START RequestId: {result.request_id} Version: $LATEST"
    assert lines[1:4] == [
        "hello from the handler",
        '{"ok": false, "result": "not the protocol"}',
        "a warning on stderr",
    ]
    assert lines[4] == f"END RequestId: {result.request_id}"
    assert lines[5].startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    # And the logs were handed on for CloudWatch Logs
    assert logs.calls == [(function.name, result.request_id, result.logs)]


def test_an_exception_becomes_lambdas_error_payload(runtime: LambdaRuntime) -> None:
    # Given a handler that raises
    function = spec()
    # When it fails
    result = runtime.invoke(function, {"fail": "no rows"})
    # Then the payload is Lambda's error object, and the error is logged
    assert not result.ok
    error = json.loads(result.payload)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input: no rows")
    assert any("raise ValueError" in frame for frame in error["stackTrace"])
    logged = [json.loads(line) for line in result.logs.splitlines() if line.startswith('{"level": "ERROR"')]
    assert [(e["errorType"], e["errorMessage"]) for e in logged] == [("ValueError", "bad input: no rows")]
    # And the worker survives for the next invocation
    assert json.loads(runtime.invoke(function, {}).payload)["calls"] == 2


def test_an_import_error_is_reported_on_every_invocation(runtime: LambdaRuntime) -> None:
    function = spec({"app.py": "import not_a_module_anywhere\n\ndef handler(event, context):\n    return 1\n"})
    for _ in range(2):
        result = runtime.invoke(function, {})
        assert not result.ok
        error = json.loads(result.payload)
        assert error["errorType"] == "ModuleNotFoundError"
        assert error["errorMessage"] == "No module named 'not_a_module_anywhere'"


def test_a_missing_handler_function_is_reported(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(spec(handler="app.absent"), {})
    error = json.loads(result.payload)
    assert (result.ok, error["errorType"]) == (False, "AttributeError")
    assert "absent" in error["errorMessage"]


def test_only_the_package_and_the_layers_are_importable(runtime: LambdaRuntime) -> None:
    # Given a function whose package holds one module, in a process of the project's own interpreter
    probe = """
        import importlib

        def handler(event, context):
            found = {}
            for name in event["modules"]:
                try:
                    importlib.import_module(name)
                    found[name] = True
                except ImportError:
                    found[name] = False
            return found
    """
    function = spec({"app.py": probe, "helper.py": "X = 1\n"})
    modules = ["helper", "boto3", "aws_lambda_powertools", "lambdas", "localcloud", "pipelines", "stacks"]
    # When it tries to import modules
    found = json.loads(runtime.invoke(function, {"modules": modules}).payload)
    # Then its package and the layer libraries import; the project's editable install does not
    assert found == {
        "helper": True,
        "boto3": True,
        "aws_lambda_powertools": True,
        "lambdas": False,
        "localcloud": False,
        "pipelines": False,
        "stacks": False,
    }


def test_each_code_version_gets_its_own_task_root(runtime: LambdaRuntime) -> None:
    first = spec()
    same_code = FunctionSpec(**{**first.__dict__, "environment": {"STAGE": "prod"}})
    new_code = FunctionSpec(**{**first.__dict__, "code": zip_package({"app.py": APP + "\n# v2\n"})})
    assert runtime.task_root(first) == runtime.task_root(same_code)
    assert runtime.task_root(new_code) != runtime.task_root(first)
    assert (runtime.task_root(new_code) / "app.py").read_text().endswith("# v2\n")


@pytest.mark.slow
def test_a_timeout_kills_the_worker_and_the_next_invocation_starts_a_new_one(runtime: LambdaRuntime) -> None:
    # Given a function with a 1-second timeout
    function = spec(timeout=1)
    assert json.loads(runtime.invoke(function, {}).payload)["calls"] == 1
    # When an invocation runs longer than that
    result = runtime.invoke(function, {"sleep": 60})
    # Then it fails as Lambda reports a timeout, and the worker is gone
    assert not result.ok
    error = json.loads(result.payload)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after" in error["errorMessage"] and result.request_id in error["errorMessage"]
    assert not any(worker.alive() for pool in runtime._idle.values() for worker in pool)
    # And the next invocation runs in a fresh worker (module state starts over)
    assert json.loads(runtime.invoke(function, {}).payload)["calls"] == 1


def _wait_until(condition: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def workers_in(task_root: Path) -> set[int]:
    """The running worker processes of this test process whose working directory is ``task_root``."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[1]) == os.getpid() and Path(os.readlink(entry / "cwd")) == task_root:
                found.add(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_stop_kills_workers_that_are_still_starting_or_busy(runtime: LambdaRuntime) -> None:
    # Given a worker busy with a long invocation and another still importing its handler (prewarm)
    busy = spec()
    assert runtime.invoke(busy, {}).ok  # warm
    invocation = threading.Thread(target=runtime.invoke, args=(busy, {"sleep": 60}), daemon=True)
    invocation.start()
    slow = spec({"app.py": "import time\ntime.sleep(60)\n\ndef handler(event, context):\n    return 1\n"})
    [prewarm] = runtime.prewarm([slow])
    roots = [runtime.task_root(busy), runtime.task_root(slow)]
    assert _wait_until(lambda: all(workers_in(root) for root in roots))
    time.sleep(0.5)  # the invocation is under way
    # When the runtime stops (the local cloud stops)
    runtime.stop()
    # Then both worker processes are gone: nothing outlives the cloud
    assert _wait_until(lambda: not any(workers_in(root) for root in roots), timeout=10), [workers_in(r) for r in roots]
    invocation.join(timeout=30)
    prewarm.join(timeout=70)
    assert not invocation.is_alive() and not prewarm.is_alive()
    # And a worker that finishes starting after the stop is not kept either
    assert not any(workers_in(root) for root in roots)


def test_cold_starts_of_one_function_at_the_same_time_unpack_its_package_once_without_failing(
    runtime: LambdaRuntime,
) -> None:
    # Given a function not unpacked yet, and eight cold starts of it at the same moment (a prewarm and the first
    # invocations right after a deployment)
    function = spec()
    start = threading.Barrier(8)
    roots: list[Path] = []
    errors: list[BaseException] = []

    def cold_start() -> None:
        start.wait(timeout=30)
        try:
            roots.append(runtime.task_root(function))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=cold_start) for _ in range(8)]
    # When they all unpack the package
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then none fails, all get the same task root with the package in it, and no staging copy is left behind
    assert errors == []
    assert len(roots) == 8 and len(set(roots)) == 1
    assert (roots[0] / "app.py").is_file()
    assert sorted(p.name for p in roots[0].parent.iterdir()) == [roots[0].name]


def test_prewarm_starts_no_second_worker_for_a_function_that_already_has_one(runtime: LambdaRuntime) -> None:
    # Given a function invoked during the deployment (its worker is warm), and the same function with new code
    function = spec()
    assert runtime.invoke(function, {}).ok
    updated = spec(
        name=function.name, arn=function.arn, code=zip_package({"app.py": APP.replace("CALLS = 0", "CALLS = 100")})
    )
    # When the deployment prewarms both
    for thread in runtime.prewarm([function, updated]):
        thread.join(timeout=60)
    # Then only the new code got a worker, and its invocation runs on it
    assert sorted(w.spec.code_hash for w in runtime._workers if w.alive()) == sorted(
        [function.code_hash, updated.code_hash]
    )
    assert json.loads(runtime.invoke(updated, {}).payload)["calls"] == 101  # the new code, on its prewarmed worker
    assert len([w for w in runtime._workers if w.alive()]) == 2
