"""The local model container: SageMaker's hosting contract served through the real inference toolkit."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.runtime import model_server
from localcloud.runtime.endpoints import _free_port
from tests.unit.localcloud.support import source

INFERENCE = """
    import json
    import os

    from sagemaker_inference.errors import GenericInferenceToolkitError


    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as handle:
            return json.load(handle)


    def input_fn(body, content_type):
        if content_type == "text/csv":
            try:
                return [[float(x) for x in line.split(",")] for line in body.strip().splitlines()]
            except ValueError as error:
                raise GenericInferenceToolkitError(400, f"bad CSV payload: {error}") from None
        if content_type == "application/json":
            return json.loads(body)["instances"]
        raise GenericInferenceToolkitError(415, f"content type {content_type} is not supported")


    def predict_fn(rows, model):
        weights = model["weights"]
        for row in rows:
            if len(row) != len(weights):
                raise ValueError(f"expected {len(weights)} features, got {len(row)}")
        return [sum(w * x for w, x in zip(weights, row)) + model["bias"] for row in rows]


    def output_fn(prediction, accept):
        if accept == "text/csv":
            return "\\n".join(f"{p:g}" for p in prediction), "text/csv"
        return json.dumps({"predictions": prediction}), "application/json"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A model directory as SageMaker unpacks model.tar.gz (weights + code/inference.py), served on a port."""
    model_dir = tmp_path_factory.mktemp("model")
    (model_dir / "weights.json").write_text(json.dumps({"weights": [1.0, 2.0], "bias": 0.5}))
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(source(INFERENCE))
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
    assert process.stdout is not None
    output = []
    for line in process.stdout:  # the server says it is ready once the model is loaded
        output.append(line)
        if line.startswith('{"ready"'):
            break
    assert json.loads(output[-1]) == {"ready": True, "port": port}, "".join(output)
    yield port
    process.kill()
    process.wait(timeout=10)


def call(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            method, path, body=body or None, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_ping_answers_200(server: int) -> None:
    assert call(server, "GET", "/ping")[0] == 200


def test_csv_invocation_runs_model_fn_input_fn_predict_fn_output_fn(server: int) -> None:
    # Given the loaded model (weights 1, 2; bias 0.5)
    # When two CSV rows are posted
    status, headers, body = call(
        server, "POST", "/invocations", b"1,2\n3,4\n", Content_Type="text/csv", Accept="text/csv"
    )
    # Then the predictions come back in the format output_fn chose, with the handler's latency
    assert status == 200
    assert headers["content-type"] == "text/csv"
    assert body.decode() == "5.5\n11.5"
    assert int(headers["x-model-latency-us"]) >= 0


def test_json_invocation(server: int) -> None:
    payload = json.dumps({"instances": [[0, 1]]}).encode()
    status, headers, body = call(
        server, "POST", "/invocations", payload, Content_Type="application/json", Accept="application/json"
    )
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == {"predictions": [2.5]}


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "message"),
    [
        (b"1,abc\n", "text/csv", 400, "bad CSV payload: could not convert string to float: 'abc'"),
        (b"<xml/>", "application/xml", 415, "content type application/xml is not supported"),
    ],
)
def test_a_toolkit_error_answers_with_its_status(
    server: int, payload: bytes, content_type: str, status: int, message: str
) -> None:
    # When input_fn raises the toolkit's error for a bad request
    answer, headers, body = call(server, "POST", "/invocations", payload, Content_Type=content_type)
    # Then the container answers with that error's status and message
    assert answer == status
    assert body.decode().splitlines()[0] == message
    assert "x-model-latency-us" in headers


def test_any_other_error_is_a_500(server: int) -> None:
    status, _, body = call(server, "POST", "/invocations", b"1,2,3\n", Content_Type="text/csv")
    assert status == 500
    assert body.decode().splitlines()[0] == "expected 2 features, got 3"


@pytest.mark.parametrize(("method", "path"), [("GET", "/models"), ("POST", "/predict")])
def test_other_paths_are_404(server: int, method: str, path: str) -> None:
    assert call(server, method, path)[0] == 404


def test_the_server_script_is_where_the_endpoint_runtime_starts_it() -> None:
    from localcloud.runtime.endpoints import SERVER_SCRIPT

    assert Path(model_server.__file__) == SERVER_SCRIPT
