"""Contract of the local model container: the scikit-learn image's serving stack (sagemaker-containers 2.8.6.post2
under sagemaker_sklearn_container, Flask 3.1.3), as localcloud/runtime/model_server.py documents it.

Each test pins one row of that mapping: what a request gets for each kind of handler result and exception,
``transform_fn`` against ``input_fn`` / ``predict_fn`` / ``output_fn``, the lazy model load behind ``/ping``,
the headers a handler sees, nginx's routing. Most go through the server's WSGI application in process; the last
ones start the real process the endpoint runtime starts.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from werkzeug.test import Client

from localcloud.runtime import model_server
from localcloud.runtime.endpoints import _free_port
from localcloud.runtime.model_server import ModelServer, ServingEnv
from tests.unit.localcloud.support import source

LINEAR = source("""
    import json
    import os


    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as handle:
            return json.load(handle)


    def input_fn(body, content_type):
        if content_type != "text/csv":
            raise ValueError(f"content type {content_type} is not supported")
        return [[float(x) for x in line.split(",")] for line in body.strip().splitlines()]


    def predict_fn(rows, model):
        return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]


    def output_fn(prediction, accept):
        return "\\n".join(f"{p:g}" for p in prediction), "text/csv"
""")

Serve = Callable[..., Client]


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """A model directory as SageMaker unpacks model.tar.gz (weights + code/<module>.py), served in process."""
    names: list[str] = []

    def start(code: str, environ: dict[str, str] | None = None) -> Client:
        name = f"handler_{uuid.uuid4().hex[:8]}"
        names.append(name)
        (tmp_path / "weights.json").write_text(json.dumps({"weights": [1.0, 2.0], "bias": 0.5}))
        (tmp_path / "code").mkdir(exist_ok=True)
        (tmp_path / "code" / f"{name}.py").write_text(code)
        monkeypatch.syspath_prepend(str(tmp_path / "code"))
        variables = {"SAGEMAKER_PROGRAM": f"{name}.py", **(environ or {})}
        return Client(ModelServer(str(tmp_path), ServingEnv.from_environ(variables, str(tmp_path))))

    yield start
    for name in names:
        sys.modules.pop(name, None)


def _transform(body: str) -> str:
    """A user module with a model_fn and the given transform_fn body (model = the weights file)."""
    return LINEAR.split("def input_fn")[0] + "\n\ndef transform_fn(model, content, content_type, accept):\n" + body


# ---- /ping and the model load --------------------------------------------------------------------------


def test_ping_loads_the_model_once_and_answers_200_with_an_empty_body(serve: Serve, tmp_path: Path) -> None:
    # Given a module whose model_fn counts its calls
    counting = "def _count(model_dir):\n    with open(os.path.join(model_dir, 'loads'), 'a') as handle:\n"
    client = serve(
        LINEAR.replace("def model_fn(model_dir):", "def model_fn(model_dir):\n    _count(model_dir)")
        + f"\n\n{counting}        handle.write('x')\n"
    )
    # When SageMaker's health check and then a request arrive
    ping = client.get("/ping")
    client.post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"})
    # Then the first request loaded the model, once; ping is 200 with no body (the worker's JSON Response)
    assert (ping.status_code, ping.data, ping.headers["Content-Type"]) == (200, b"", "application/json")
    assert (tmp_path / "loads").read_text() == "x"


def test_model_fn_and_every_request_run_on_one_worker_thread(serve: Serve) -> None:
    # Given a module whose model_fn limits OpenMP for its thread (as pipelines/inference/inference.py does) and
    # whose handler reports its thread and the OpenMP limit it sees
    code = source("""
        import json
        import threading

        import sklearn  # noqa: F401  (loads its OpenMP runtime)
        from threadpoolctl import threadpool_info, threadpool_limits


        def model_fn(model_dir):
            threadpool_limits(limits=1, user_api="openmp")
            return {"thread": threading.get_ident()}


        def transform_fn(model, content, content_type, accept):
            limits = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"})
            return json.dumps([threading.get_ident(), model["thread"], limits]), "application/json"
    """)
    client = serve(code)
    # When requests arrive on connections served by different server threads
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: client.post("/invocations", data=b"1").get_json(), range(8)))
    # Then the thread that loaded the model runs each of them, so model_fn's per-thread OpenMP limit holds (a
    # gevent worker's requests share one OS thread; a thread per request would see OpenMP's default instead)
    assert {(thread == loader, tuple(limits)) for thread, loader, limits in answers} == {(True, (1,))}


def test_a_model_that_does_not_load_answers_500_to_every_request_until_it_does(serve: Serve, tmp_path: Path) -> None:
    # Given a model_fn that fails while its file is missing
    client = serve(LINEAR.replace('"weights.json"', '"late.json"'))
    # When the container is pinged and invoked / Then both are 500 (the app could not be built)
    assert client.get("/ping").status_code == 500
    assert client.post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"}).status_code == 500
    # And once the file is there, the next request builds the app and the model serves
    (tmp_path / "late.json").write_text(json.dumps({"weights": [1.0, 2.0], "bias": 0.5}))
    assert client.get("/ping").status_code == 200
    assert client.post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"}).data == b"5.5"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        # transform_fn next to input_fn: sagemaker_sklearn_container's UserError
        (
            LINEAR + "\n\ndef transform_fn(model, content, content_type, accept):\n    return 'x', 'text/csv'\n",
            "Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn",
        ),
        (LINEAR.replace("def model_fn(", "def load("), "Please provide a model_fn implementation."),
        (LINEAR.replace("def predict_fn(", "def score("), "defines no predict_fn"),
        ("import no_such_module_anywhere\n", "No module named 'no_such_module_anywhere'"),
    ],
)
def test_a_module_the_container_cannot_serve_fails_its_health_check(
    serve: Serve, capsys: pytest.CaptureFixture[str], code: str, reason: str
) -> None:
    # Given a user module the container refuses
    client = serve(code)
    # When SageMaker pings it / Then it is unhealthy, and the container log says why
    response = client.get("/ping")
    assert (response.status_code, response.headers["Content-Type"]) == (500, "text/html")
    assert reason in capsys.readouterr().err


# ---- what /invocations answers ---------------------------------------------------------------------------


def test_input_fn_predict_fn_output_fn_answer_200_with_the_mimetype_output_fn_chose(serve: Serve) -> None:
    response = serve(LINEAR).post("/invocations", data=b"1,2\n3,4\n", headers={"Content-Type": "text/csv"})
    # Then the (body, content_type) tuple is a 200 Response (Flask adds the charset to a text/* mimetype)
    assert (response.status_code, response.headers["Content-Type"], response.data) == (
        200,
        "text/csv; charset=utf-8",
        b"5.5\n11.5",
    )


@pytest.mark.parametrize(
    ("returned", "status", "content_type", "body"),
    [
        ("return '[1]', 'application/json'", 200, "application/json", b"[1]"),
        # a WSGI callable: how a handler answers a client error with its own status
        (
            "def answer(environ, start_response):\n"
            "        start_response('400 Bad Request', [('Content-Type', 'text/plain; charset=utf-8')])\n"
            "        return [b'row 1: expected 2 columns, got 3']\n"
            "    return answer",
            400,
            "text/plain; charset=utf-8",
            b"row 1: expected 2 columns, got 3",
        ),
        (
            "from werkzeug.wrappers import Response\n    return Response('too big', status=413, mimetype='text/plain')",
            413,
            "text/plain; charset=utf-8",
            b"too big",
        ),
        ("return 'plain text'", 200, "text/html; charset=utf-8", b"plain text"),
    ],
)
def test_what_transform_fn_returns_is_the_response(
    serve: Serve, returned: str, status: int, content_type: str, body: bytes
) -> None:
    # Given a transform_fn returning a tuple, a WSGI callable, a werkzeug Response or a string
    client = serve(_transform(f"    {returned}\n"))
    # When it is invoked / Then Flask makes that value the response, with its status and headers
    response = client.post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"})
    assert (response.status_code, response.headers["Content-Type"], response.data) == (status, content_type, body)


@pytest.mark.parametrize(
    "code",
    [
        LINEAR.replace("return [[float(x)", "raise ValueError('bad CSV')\n    return [[float(x)"),
        LINEAR.replace("return [sum(", "raise RuntimeError('model crashed')\n    return [sum("),
        LINEAR.replace('return "\\n".join', 'raise KeyError("accept")\n    return "\\n".join'),
        _transform("    raise ValueError('bad request')\n"),
    ],
    ids=["input_fn", "predict_fn", "output_fn", "transform_fn"],
)
def test_any_exception_of_a_handler_function_is_a_500(serve: Serve, code: str) -> None:
    # When a handler function raises, whatever the exception
    response = serve(code).post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"})
    # Then the container answers Flask's 500 page (error_wrapper made it a ClientError nothing catches)
    assert (response.status_code, response.headers["Content-Type"]) == (500, "text/html; charset=utf-8")
    assert b"<title>500 Internal Server Error</title>" in response.data


def test_a_failed_request_leaves_one_line_naming_the_error_in_the_container_log(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    # When predict_fn crashes
    client = serve(LINEAR.replace("return [sum(", "raise RuntimeError('model crashed')\n    return [sum("))
    client.post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"})
    # Then the log has one line with the request and the handler's own exception
    assert capsys.readouterr().err == "Exception on /invocations [POST]: RuntimeError: model crashed\n"


def test_an_unsupported_content_type_is_a_500_not_a_415(serve: Serve) -> None:
    # Given input_fn refusing application/xml (the scikit-learn container wraps every user function)
    response = serve(LINEAR).post("/invocations", data=b"<x/>", headers={"Content-Type": "application/xml"})
    # Then the answer is 500: the 415 branch of _default_transform_fn never sees a wrapped function's error
    assert response.status_code == 500


# ---- what the handler receives ----------------------------------------------------------------------------

ECHO = _transform(
    "    text = content if isinstance(content, str) else None\n"
    "    return json.dumps([content_type, accept, type(content).__name__, text]), 'application/json'\n"
)


@pytest.mark.parametrize(
    ("headers", "data", "environ", "seen"),
    [
        ({}, b"{}", {}, ["application/json", "application/json", "str", "{}"]),
        (
            {"Content-Type": "text/csv", "ContentType": "text/plain"},
            b"1",
            {},
            ["text/plain", "application/json", "bytes", None],
        ),
        ({"Content-Type": "text/csv", "Accept": "*/*"}, b"1", {}, ["text/csv", "application/json", "str", "1"]),
        (
            {"Content-Type": "text/csv"},
            b"1",
            {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"},
            ["text/csv", "text/csv", "str", "1"],
        ),
        ({"Content-Type": "text/csv", "Accept": "text/csv; q=1"}, b"1", {}, ["text/csv", "text/csv; q=1", "str", "1"]),
        (
            {"Content-Type": "text/csv; charset=utf-8"},
            b"1",
            {},
            ["text/csv; charset=utf-8", "application/json", "bytes", None],
        ),
        ({"Content-Type": "text/csv"}, b"\xe9t\xe9", {}, ["text/csv", "application/json", "str", "\ufffdt\ufffd"]),
    ],
    ids=[
        "defaults",
        "ContentType-header-wins",
        "any-accept",
        "default-accept-env",
        "accept-as-sent",
        "bytes",
        "replaced",
    ],
)
def test_the_handler_sees_the_containers_content_type_accept_and_body(
    serve: Serve, headers: dict[str, str], data: bytes, environ: dict[str, str], seen: list[str | None]
) -> None:
    # Given a transform_fn that echoes its arguments
    client = serve(ECHO, environ)
    # When a request arrives with these headers / Then the handler gets the container's reading of them
    response = client.post("/invocations", data=data, headers=headers)
    assert json.loads(response.data) == seen


# ---- routing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/models", 404, b"{}"),  # nginx: only /ping, /invocations and /execution-parameters are proxied
        ("POST", "/predict", 404, b"{}"),
        ("GET", "/invocations", 405, None),  # Flask: POST only
        ("GET", "/execution-parameters", 404, None),  # no execution_parameters_fn is served
    ],
)
def test_other_paths_and_methods(serve: Serve, method: str, path: str, status: int, body: bytes | None) -> None:
    response = serve(LINEAR).open(path, method=method)
    assert response.status_code == status
    if body is not None:
        assert response.data == body


# ---- the process the endpoint runtime starts -------------------------------------------------------------


def _start(model_dir: Path, code: str) -> tuple[subprocess.Popen[str], int]:
    (model_dir / "weights.json").write_text(json.dumps({"weights": [1.0, 2.0], "bias": 0.5}))
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(code)
    port = _free_port()
    paths = sysconfig.get_paths()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": str(model_dir / "code"),
        "LOCAL_LAYER_PATHS": os.pathsep.join([paths["purelib"], paths["platlib"]]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-S", "-u", model_server.__file__, str(model_dir), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    return process, port


def _call(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            method, path, body=body or None, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_container_process_serves_once_its_health_check_passes(tmp_path: Path) -> None:
    # Given the container started as the endpoint runtime starts it (python -S, code/ and the layers only)
    process, port = _start(tmp_path, LINEAR)
    try:
        assert process.stdout is not None
        output = [process.stdout.readline() for _ in range(1)]
        # Then it reports ready once the model loaded, and serves over HTTP
        assert json.loads(output[-1]) == {"ready": True, "port": port}, output
        assert _call(port, "GET", "/ping") == (200, b"")
        assert _call(port, "POST", "/invocations", b"1,2\n", Content_Type="text/csv") == (200, b"5.5")
        assert _call(port, "POST", "/invocations", b"1,x\n", Content_Type="text/csv")[0] == 500
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_container_whose_model_does_not_load_keeps_running_and_fails_its_ping(tmp_path: Path) -> None:
    """The scikit-learn container does not exit when ``model_fn`` raises: its worker answers every request, the
    platform's ping included, with 500, and SageMaker fails the endpoint's creation or update on that ping."""
    # Given a model_fn that raises
    process, port = _start(
        tmp_path, LINEAR.replace("with open(", "raise OSError('weights are corrupt')\n    with open(")
    )
    try:
        # When it starts
        assert process.stdout is not None
        lines = []
        while not any('"ready"' in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)  # it must not exit
            lines.append(line)
        output = "".join(lines)
        # Then its output names the failure, and it keeps answering its ping with 500
        assert "OSError: weights are corrupt" in output
        assert "GET /ping answered 500: the model server is not healthy" in output
        assert _call(port, "GET", "/ping")[0] == 500
        assert process.poll() is None
    finally:
        process.kill()
        process.communicate(timeout=30)


def test_the_server_script_is_where_the_endpoint_runtime_starts_it() -> None:
    from localcloud.runtime.endpoints import SERVER_SCRIPT

    assert Path(model_server.__file__) == SERVER_SCRIPT
