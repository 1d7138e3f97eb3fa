"""The evaluation job's smoke test: the image's serving command on the new archive, golden payloads, compared.

The ``serve`` these tests run is the local cloud's image command (the local model server on the scikit-learn
container's contract: ``SAGEMAKER_BASE_DIR``/model, ``SAGEMAKER_PROGRAM``, ``SAGEMAKER_BIND_TO_PORT``), on the
session's trained archive, with the archive's inference code changed where a case needs a broken build.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.data.generator import generate
from pipelines.evaluation import evaluate as ev
from pipelines.evaluation import smoke
from pipelines.inference.inference import LoadedModel, load_model

pytestmark = pytest.mark.usefixtures("serve_on_path")


@pytest.fixture(scope="module")
def served(model_dir: Path) -> tuple[LoadedModel, dict[str, Any]]:
    """The session's model loaded in-process and its golden payload (8 rows, one with a missing value)."""
    model = load_model(model_dir)
    frame = generate(20, seed=9)
    frame.loc[2, "total_charges"] = np.nan
    return model, ev.golden_payload(model, frame)


def _build(model_dir: Path, tmp_path: Path, appended: str) -> Path:
    """A copy of the archive whose ``code/inference.py`` ends with ``appended``."""
    build = tmp_path / "build"
    shutil.copytree(model_dir, build)
    code = build / "code" / "inference.py"
    code.write_text(code.read_text() + appended)
    return build


def test_the_served_answers_equal_the_in_process_ones_for_json_and_csv(
    model_dir: Path, served: tuple[LoadedModel, dict[str, Any]]
) -> None:
    # Given the trained archive and its golden payload
    model, golden = served
    # When the job serves it with the image's serve command and sends the golden rows as JSON and as CSV
    result = smoke.smoke_test(model_dir, model, golden, ev.GOLDEN_TOLERANCE)
    # Then both requests were answered 200 with the in-process answers, and the server is gone
    assert result.passed, result.reason
    assert (result.requests, result.rows, result.command) == (2, 8, "serve")
    assert result.max_abs_diff is not None and result.max_abs_diff <= ev.GOLDEN_TOLERANCE
    assert result.reason == (
        "the serving stack (serve) answered 2 golden requests of 8 rows as the in-process handler does"
    )


@pytest.mark.parametrize(
    ("appended", "reason"),
    [
        (  # a build that refuses what the clients send (a 4xx from the handler itself)
            "\n\n_decode = decode_request\n\n\ndef decode_request(body, content_type, limits):\n"
            "    if _media_type(content_type) == CSV:\n"
            "        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, 'this build no longer reads text/csv')\n"
            "    return _decode(body, content_type, limits)\n",
            "POST /invocations (text/csv, 8 golden rows) answered 415: this build no longer reads text/csv",
        ),
        (  # a build whose predict crashes: the container's 500 page
            "\n\ndef predict(request, model):\n    raise RuntimeError('broken build')\n",
            "POST /invocations (application/json, 8 golden rows) answered 500: <!doctype html> <html lang=en> "
            "<title>500 Internal Server Error</title>",
        ),
    ],
    ids=["415", "500"],
)
def test_an_error_status_fails_the_smoke_with_the_status_and_the_body(
    model_dir: Path, served: tuple[LoadedModel, dict[str, Any]], tmp_path: Path, appended: str, reason: str
) -> None:
    # Given a build of the archive that answers a golden request with an error status
    model, golden = served
    # When the job smoke-tests it
    result = smoke.smoke_test(_build(model_dir, tmp_path, appended), model, golden, ev.GOLDEN_TOLERANCE)
    # Then it fails with the request, the status code and the start of the body
    assert not result.passed
    assert result.reason.startswith(reason), result.reason


def test_answers_that_differ_fail_the_smoke_naming_the_values(
    model_dir: Path, served: tuple[LoadedModel, dict[str, Any]], tmp_path: Path
) -> None:
    # Given a build whose served probabilities are pulled 10% towards 0.5
    model, golden = served
    appended = (
        "\n\n_predict = predict\n\n\ndef predict(request, model):\n"
        "    answer = _predict(request, model)\n"
        "    return replace(answer, probabilities=answer.probabilities * 0.9 + 0.05)\n"
    )
    # When the job smoke-tests it
    result = smoke.smoke_test(_build(model_dir, tmp_path, appended), model, golden, ev.GOLDEN_TOLERANCE)
    # Then it fails saying which values differ from the in-process answers, beyond the stated tolerance
    assert not result.passed
    assert result.reason.startswith(
        "POST /invocations (application/json, 8 golden rows): 8 served values differ from the in-process answers "
        "(tolerance 1e-06): predictions[0].probability "
    ), result.reason
    assert result.requests == 0 and result.max_abs_diff is not None and result.max_abs_diff > 1e-4


def test_a_server_that_never_becomes_healthy_fails_after_the_bounded_wait_with_the_reason(
    model_dir: Path, served: tuple[LoadedModel, dict[str, Any]], tmp_path: Path
) -> None:
    # Given a build whose model does not load (the container keeps running and answers /ping with 500)
    model, golden = served
    broken = _build(model_dir, tmp_path, "\n\ndef model_fn(model_dir):\n    raise RuntimeError('incompatible')\n")
    # When the job smoke-tests it with a 10 s health-check budget
    started = time.monotonic()
    result = smoke.smoke_test(broken, model, golden, ev.GOLDEN_TOLERANCE, timeout=10.0)
    # Then it gives up after the bounded wait, with the last status and the server's log
    assert time.monotonic() - started < 60
    assert not result.passed
    assert result.reason.startswith(
        "the serving stack did not answer GET /ping with 200 within 10 s (last: 500 <html><head><title>Internal "
        "Server Error</title>"
    ), result.reason
    assert result.reason.endswith("ClientError: incompatible"), result.reason


def test_a_serving_command_that_exits_or_is_missing_fails_the_smoke(
    model_dir: Path, served: tuple[LoadedModel, dict[str, Any]], tmp_path: Path
) -> None:
    model, golden = served
    # Given a serving command that exits at once, then one that does not exist
    exited = smoke.smoke_test(model_dir, model, golden, 1e-6, command=("sh", "-c", "echo no nginx; exit 3"))
    missing = smoke.smoke_test(model_dir, model, golden, 1e-6, command=(str(tmp_path / "serve"),))
    # Then each fails with why
    assert exited.reason == (
        "the serving command 'sh -c echo no nginx; exit 3' exited with code 3 before answering /ping: no nginx"
    )
    assert missing.reason.startswith(
        f"the serving stack '{tmp_path / 'serve'}' could not be reached: FileNotFoundError"
    )


def test_compare_answers_checks_labels_numbers_and_shape() -> None:
    want = {"model_version": "v1", "predictions": [{"label": "a", "probabilities": {"a": 0.6, "b": 0.4}}]}
    same = {"model_version": "v1", "predictions": [{"label": "a", "probabilities": {"a": 0.6 + 1e-9, "b": 0.4}}]}
    assert smoke.compare_answers(same, want, 1e-6)[0] == []
    other = {"model_version": "v2", "predictions": [{"label": "b", "probabilities": {"a": 0.5, "c": 0.5}}]}
    problems, _ = smoke.compare_answers(other, want, 1e-6)
    assert problems == [
        "model_version 'v2' != 'v1'",
        "predictions[0].label 'b' != 'a'",
        "predictions[0].probabilities has ['a', 'c'], expected ['a', 'b']",
    ]
    assert smoke.compare_answers({"model_version": "v1", "predictions": []}, want, 1e-6)[0] == [
        "predictions has 0 rows, expected 1"
    ]


def test_a_failed_smoke_fails_the_gate_with_its_reason() -> None:
    failed = smoke.SmokeResult(
        False, "POST /invocations (text/csv, 8 golden rows) answered 500: x", 0, 8, None, 1e-6, 1.0, "serve"
    )
    decision = ev.refuse_unserved(ev.decide({"auc": 0.9}, None, ev.Gate("auc", 0.005, 0.7)), failed)
    assert not decision.passed
    assert decision.reason == "smoke test failed: POST /invocations (text/csv, 8 golden rows) answered 500: x"


def test_the_serving_stack_starts_before_the_test_so_its_start_up_overlaps_the_evaluation(
    model_dir: Path, served: tuple[LoadedModel, dict[str, Any]]
) -> None:
    model, golden = served
    # Given the serving stack entered as evaluate.py enters it, before the evaluation runs
    with smoke.EarlyServing(model_dir) as serving:
        # When the job is still evaluating (nothing asks the stack anything yet)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = smoke.call("GET", f"{serving._stack.url}/ping", timeout=1.0)  # type: ignore[union-attr]
            except OSError:
                time.sleep(0.1)
                continue
            break
        # Then the server is already up and healthy; the test afterwards only sends the golden requests
        assert status == 200
        result = serving.test(model, golden, ev.GOLDEN_TOLERANCE)
    assert result.passed, result.reason
    assert serving._stack is not None and serving._stack.process is not None
    assert serving._stack.process.poll() is not None  # stopped on leaving
