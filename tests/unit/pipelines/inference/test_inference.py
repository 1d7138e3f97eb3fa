"""The inference handler, served as the scikit-learn container serves it.

The local cloud's model server (localcloud/runtime/model_server.py, the container's serving stack rebuilt) loads
``code/inference.py`` of the trained model as the user module (``SAGEMAKER_PROGRAM``) and calls its
``transform_fn``; requests go through its WSGI application as they would through nginx and gunicorn.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_info
from werkzeug.test import Client

from localcloud.runtime.model_server import ModelServer, ServingEnv
from pipelines.features import engineer_features, model_frame
from pipelines.inference import inference
from tests.samples import CHURN_SCHEMA

FEATURES = CHURN_SCHEMA.feature_names
ROW = "12,70.5,846.0,2,40.0,45,month-to-month,electronic-check,fiber"


# ---- the container harness (the local cloud's model server) ----------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    content_type: str | None

    @property
    def message(self) -> str:
        """A client error's body is its message."""
        return self.body

    def json(self) -> Any:
        return json.loads(self.body)


Invoke = Callable[..., Response]


@pytest.fixture(scope="module")
def endpoint(model_dir: Path) -> Iterator[Invoke]:
    """Invoke the trained model through the container's serving stack, like InvokeEndpoint would."""
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(model_dir / "code"))
    env = ServingEnv.from_environ({"SAGEMAKER_PROGRAM": "inference.py"}, str(model_dir))
    client = Client(ModelServer(str(model_dir), env))

    def invoke(body: str | bytes, content_type: str | None = "text/csv", accept: str | None = None) -> Response:
        headers = {} if content_type is None else {"Content-Type": content_type}
        if accept is not None:
            headers["Accept"] = accept
        payload = body.encode("utf-8") if isinstance(body, str) else body
        answer = client.post("/invocations", data=payload, headers=headers)
        return Response(answer.status_code, answer.get_data(as_text=True), answer.headers.get("Content-Type"))

    yield invoke
    patch.undo()
    sys.modules.pop("inference", None)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> inference.LoadedModel:
    return inference.load_model(model_dir)


@pytest.fixture(scope="module")
def test_rows(churn_splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return churn_splits["test"][FEATURES].head(100).reset_index(drop=True)


def _expected(model: inference.LoadedModel, rows: pd.DataFrame) -> np.ndarray:
    """The sklearn pipeline's probabilities for raw feature rows (the reference the handler must match)."""
    return model.pipeline.predict_proba(engineer_features(rows[FEATURES], CHURN_SCHEMA))[:, 1]


def _csv(rows: pd.DataFrame, header: bool = False) -> str:
    return rows.to_csv(index=False, header=header)


def _probabilities(response: Response) -> np.ndarray:
    return np.array([p["probability"] for p in response.json()["predictions"]])


# ---- successful requests ---------------------------------------------------------------------------


def test_csv_row_without_header_returns_json_with_probability_label_and_version(
    endpoint: Invoke, model: inference.LoadedModel, trained: Any
) -> None:
    # Given one CSV row of the schema's features
    # When it is sent without an Accept header
    response = endpoint(ROW)

    # Then the answer is JSON with the model version and the pipeline's probability and label
    assert (response.status, response.content_type) == (200, "application/json")
    body = response.json()
    assert body["model_version"] == trained.metadata["model_version"]
    expected = _expected(model, pd.read_csv(io.StringIO(ROW), header=None, names=FEATURES))[0]
    assert body["predictions"] == [{"probability": pytest.approx(expected, abs=1e-12), "label": int(expected >= 0.5)}]


def test_batch_of_100_csv_rows_answers_in_csv(
    endpoint: Invoke, model: inference.LoadedModel, test_rows: pd.DataFrame
) -> None:
    # Given 100 test rows as CSV
    # When they are sent asking for CSV back
    response = endpoint(_csv(test_rows), accept="text/csv")

    # Then there is one "probability,label" line per row, equal to the pipeline's predictions
    # (the container's Flask response adds the charset to a text/* mimetype)
    assert (response.status, response.content_type) == (200, "text/csv; charset=utf-8")
    lines = response.body.splitlines()
    assert len(lines) == 100
    probabilities = np.array([float(line.split(",")[0]) for line in lines])
    labels = [int(line.split(",")[1]) for line in lines]
    np.testing.assert_allclose(probabilities, _expected(model, test_rows), rtol=0, atol=1e-12)
    assert labels == (probabilities >= 0.5).astype(int).tolist()


def test_csv_with_a_header_may_order_columns_freely(endpoint: Invoke, test_rows: pd.DataFrame) -> None:
    # Given the same rows, once plain and once with a header in reversed column order
    rows = test_rows.head(5)
    reversed_columns = rows[list(reversed(FEATURES))]

    # When both are sent
    plain = endpoint(_csv(rows))
    with_header = endpoint(_csv(reversed_columns, header=True))

    # Then the predictions are the same
    assert with_header.status == 200
    assert with_header.json() == plain.json()


@pytest.mark.parametrize("form", ["instances_lists", "instances_records", "records"])
def test_json_forms_give_the_same_predictions_as_csv(endpoint: Invoke, test_rows: pd.DataFrame, form: str) -> None:
    # Given three rows as CSV and in one of the JSON forms
    rows = test_rows.head(3).astype(object).where(test_rows.head(3).notna(), None)
    records = rows.to_dict(orient="records")
    payload: Any = {
        "instances_lists": {"instances": rows.values.tolist()},
        "instances_records": {"instances": records},
        "records": records,
    }[form]

    # When both are sent
    as_json = endpoint(json.dumps(payload), content_type="application/json")
    as_csv = endpoint(_csv(test_rows.head(3)))

    # Then the answers are identical
    assert as_json.status == 200, as_json.body
    assert as_json.json() == as_csv.json()
    assert len(as_json.json()["predictions"]) == 3


def test_missing_nullable_value_and_unknown_category_are_accepted(
    endpoint: Invoke, model: inference.LoadedModel
) -> None:
    # Given a row without total_charges (nullable) and a contract type the model never saw
    row = "12,70.5,,2,40.0,45,lifetime,electronic-check,fiber"

    # When it is sent as CSV and as a JSON record that leaves total_charges out
    csv_response = endpoint(row)
    record = dict(zip(FEATURES, [12, 70.5, None, 2, 40.0, 45, "lifetime", "electronic-check", "fiber"], strict=True))
    del record["total_charges"]
    json_response = endpoint(json.dumps([record]), content_type="application/json")

    # Then both answer with the pipeline's probability for a NaN total and an all-zero contract one-hot
    frame = pd.DataFrame([dict(record, total_charges=np.nan)])[FEATURES]
    expected = _expected(model, frame)[0]
    assert csv_response.status == json_response.status == 200
    assert _probabilities(csv_response)[0] == pytest.approx(expected, abs=1e-12)
    assert json_response.json() == csv_response.json()


@pytest.mark.parametrize(
    ("content_type", "accept", "answer_type"),
    [
        ("text/csv; charset=utf-8", "text/csv; q=0.9", "text/csv; charset=utf-8"),
        ("text/csv", "*/*", "application/json"),
        ("text/csv", "application/json, text/csv", "application/json"),
        ("text/csv", "application/xml, text/*", "text/csv; charset=utf-8"),
    ],
)
def test_content_negotiation(endpoint: Invoke, content_type: str, accept: str, answer_type: str) -> None:
    # Given a row with a parameterised Content-Type and an Accept list
    # When it is sent
    response = endpoint(ROW, content_type=content_type, accept=accept)

    # Then the first supported media range decides the answer's type
    assert response.status == 200, response.body
    assert response.content_type == answer_type


# ---- bad requests ----------------------------------------------------------------------------------

_BAD_ROW_3 = f"{ROW}\n{ROW}\n12,70.5,846.0,2,40.0,45,month-to-month,electronic-check\n"
_RECORD = dict(
    zip(FEATURES, [12, 70.5, 846.0, 2, 40.0, 45, "month-to-month", "electronic-check", "fiber"], strict=True)
)


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (_BAD_ROW_3, "text/csv", None, 400, "row 3: expected 9 columns, got 8"),
        (f"{ROW}\n{ROW},extra", "text/csv", None, 400, "row 2: expected 9 columns, got 10"),
        (
            f"{ROW}\n12,70.5,846.0,2,40.0,abc,month-to-month,electronic-check,fiber",
            "text/csv",
            None,
            400,
            "row 2, column 'age': expected a number, got 'abc'",
        ),
        (
            ",70.5,846.0,2,40.0,45,month-to-month,electronic-check,fiber",
            "text/csv",
            None,
            400,
            "row 1, column 'tenure_months': a value is required, got a missing value",
        ),
        (
            "12,inf,846.0,2,40.0,45,month-to-month,electronic-check,fiber",
            "text/csv",
            None,
            400,
            "row 1, column 'monthly_charges': expected a finite number, got 'inf'",
        ),
        (
            "12,70.5,846.0,2,40.0,45,,electronic-check,fiber",
            "text/csv",
            None,
            400,
            "row 1, column 'contract': a value is required",
        ),
        (
            ",".join(f for f in FEATURES if f != "age")
            + "\n12,70.5,846.0,2,40.0,month-to-month,electronic-check,fiber",
            "text/csv",
            None,
            400,
            "header: missing column(s) ['age']",
        ),
        (",".join(FEATURES) + "\n", "text/csv", None, 400, "no rows in request (only a header)"),
        ("", "text/csv", None, 400, "empty request body"),
        ("\n  \n", "text/csv", None, 400, "empty request body"),
        (
            ROW,
            "application/xml",
            None,
            415,
            "unsupported Content-Type 'application/xml'; use text/csv or application/json",
        ),
        # the container reads a request without Content-Type as application/json
        (ROW, None, None, 400, "invalid JSON: Extra data: line 1 column 3 (char 2)"),
        (
            ROW,
            "text/csv",
            "application/xml",
            406,
            "unsupported Accept 'application/xml'; use application/json or text/csv",
        ),
        (
            "{not json",
            "application/json",
            None,
            400,
            "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            '{"rows": []}',
            "application/json",
            None,
            400,
            'JSON body must be {"instances": [...]} or a list of records',
        ),
        ('{"instances": []}', "application/json", None, 400, "no rows in request"),
        (
            '{"instances": [1, 2]}',
            "application/json",
            None,
            400,
            "row 1: expected a list of values or an object, got int",
        ),
        (
            json.dumps({"instances": [list(_RECORD.values()), [*_RECORD.values(), 1]]}),
            "application/json",
            None,
            400,
            "row 2: expected 9 columns, got 10",
        ),
        (
            json.dumps([{**_RECORD, "age": "45"}]),
            "application/json",
            None,
            400,
            "row 1, column 'age': expected a number, got \"45\"",
        ),
        (
            json.dumps([_RECORD, {**_RECORD, "support_calls": True}]),
            "application/json",
            None,
            400,
            "row 2, column 'support_calls': expected a number, got true",
        ),
        (
            json.dumps([_RECORD, {**_RECORD, "churned": 1}]),
            "application/json",
            None,
            400,
            "row 2: unknown field(s) ['churned']",
        ),
        (
            json.dumps([{k: v for k, v in _RECORD.items() if k != "age"}]),
            "application/json",
            None,
            400,
            "row 1: missing field(s) ['age']",
        ),
        (
            json.dumps({"instances": [_RECORD, list(_RECORD.values())]}),
            "application/json",
            None,
            400,
            "row 2: expected an object like row 1, got list",
        ),
        (
            json.dumps([{**_RECORD, "contract": {"type": "monthly"}}]),
            "application/json",
            None,
            400,
            'row 1, column \'contract\': expected a string, got {"type": "monthly"}',
        ),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_is_wrong(
    endpoint: Invoke, body: str, content_type: str | None, accept: str | None, status: int, message: str
) -> None:
    # Given a malformed request
    # When it is sent through the container's serving stack
    response = endpoint(body, content_type=content_type, accept=accept)

    # Then the container answers with the client-error status and the exact problem as plain text
    assert (response.status, response.message) == (status, message)
    assert response.content_type == "text/plain; charset=utf-8"


def test_a_request_without_content_type_is_refused_when_called_directly() -> None:
    # Given no Content-Type (the container itself never passes none: it defaults to application/json)
    # When the handler decodes the body / Then it names the problem
    with pytest.raises(inference.RequestError) as error:
        inference.decode_request(ROW, None, inference.Limits())
    assert (error.value.status, error.value.message) == (415, "missing Content-Type; use text/csv or application/json")


def test_undecodable_bytes_the_container_replaced_are_a_bad_request(endpoint: Invoke) -> None:
    # Given Latin-1 bytes sent as exactly text/csv, which the container decodes as UTF-8 with replacement
    body = "12,70.5,846.0,2,40.0,45,month-to-month,électronique,fiber".encode("latin-1")

    # When it is sent / Then it is refused as invalid UTF-8 instead of scoring an unknown category
    response = endpoint(body, content_type="text/csv")
    assert (response.status, response.message) == (
        400,
        "body is not valid UTF-8: an undecodable byte at character 39",
    )


def test_body_that_is_not_utf8_is_a_bad_request(endpoint: Invoke) -> None:
    # Given Latin-1 bytes under a Content-Type the container does not decode itself
    body = "12,70.5,846.0,2,40.0,45,month-to-month,électronique,fiber".encode("latin-1")

    # When it is sent / Then it is refused as invalid UTF-8
    response = endpoint(body, content_type="text/csv; charset=latin-1")
    assert response.status == 400
    assert response.message.startswith("body is not valid UTF-8: 'utf-8' codec can't decode byte 0xe9")


def test_a_number_beyond_float_range_is_a_bad_request(endpoint: Invoke) -> None:
    # Given a JSON integer too large for a float
    body = json.dumps([{**_RECORD, "data_usage_gb": 10**400}])

    # When it is sent / Then it is refused as a client error, not a server error
    response = endpoint(body, content_type="application/json")
    assert response.status == 400
    assert response.message.startswith("row 1, column 'data_usage_gb': expected a number, got 1000")


def test_oversized_payload_is_refused_with_413(endpoint: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a payload limit of 1,000 bytes
    monkeypatch.setenv("MAX_PAYLOAD_BYTES", "1000")
    body = "\n".join([ROW] * 20)

    # When a larger request arrives / Then it is refused with its size
    response = endpoint(body)
    assert (response.status, response.message) == (
        413,
        f"payload of {len(body)} bytes exceeds the limit of 1000 bytes",
    )


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_too_many_rows_are_refused_with_413(
    endpoint: Invoke, monkeypatch: pytest.MonkeyPatch, content_type: str
) -> None:
    # Given a limit of 5 rows
    monkeypatch.setenv("MAX_ROWS", "5")
    body = "\n".join([ROW] * 6) if content_type == "text/csv" else json.dumps([_RECORD] * 6)

    # When 6 rows arrive / Then they are refused
    response = endpoint(body, content_type=content_type)
    assert (response.status, response.message) == (413, "6 rows exceed the limit of 5 rows")


def test_default_limits_are_6_mb_and_10000_rows(endpoint: Invoke) -> None:
    # Given the default limits
    assert inference.Limits.from_env({}) == inference.Limits(6 * 1024 * 1024, 10_000)

    # When a 7 MB request arrives / Then it is refused before being parsed
    response = endpoint("1" * (7 * 1024 * 1024))
    assert (response.status, response.message) == (
        413,
        "payload of 7340032 bytes exceeds the limit of 6291456 bytes",
    )


def test_a_request_error_answers_as_its_own_wsgi_response() -> None:
    # Given a request error raised by the handler
    message = "row 1: expected 9 columns, got 8"
    error = inference.RequestError(inference.HTTPStatus.BAD_REQUEST, message)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    # When its response is run as a WSGI application (as Flask does with a view's return value)
    body = b"".join(error.response()({}, lambda status, headers: started.append((status, headers))))

    # Then it starts "400 Bad Request" with a plain-text body that is the message
    assert started == [
        ("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(message)))])
    ]
    assert body.decode() == message


def test_a_model_failure_is_not_answered_by_the_handler(model: inference.LoadedModel) -> None:
    # Given a model whose prediction crashes (not a problem of the request)
    broken = replace(model, compiled=None, pipeline=None)

    # When a valid row is transformed / Then the exception leaves the handler (the container answers 500)
    with pytest.raises(AttributeError):
        inference.transform_fn(broken, ROW, "text/csv", "application/json")


# ---- the model -------------------------------------------------------------------------------------


def test_compiled_preprocessing_reproduces_the_sklearn_pipeline(
    model: inference.LoadedModel, churn_splits: dict[str, pd.DataFrame]
) -> None:
    # Given the test split with unknown and missing categories and missing totals mixed in
    rows = churn_splits["test"][FEATURES].copy()
    rows.loc[::7, "contract"] = "lifetime"
    rows.loc[::11, "total_charges"] = np.nan
    rows = rows.astype({"contract": object})
    rows.loc[::13, "payment_method"] = None
    columns = {
        name: rows[name].to_numpy(dtype=object if name in CHURN_SCHEMA.categorical_features else float)
        for name in FEATURES
    }
    columns.update(inference.engineered_columns(columns, CHURN_SCHEMA))

    # When the served fast path and the sklearn pipeline score them
    assert model.compiled is not None
    fast = model.predict_columns(columns, len(rows))
    reference = model.predict_proba(model_frame(rows, CHURN_SCHEMA))

    # Then they agree to the last bit that matters
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12)


def test_compiled_trees_reproduce_the_estimator(
    model: inference.LoadedModel, churn_splits: dict[str, pd.DataFrame]
) -> None:
    # Given the test split as the estimator's input matrix
    rows = churn_splits["test"][FEATURES]
    columns = {name: rows[name].to_numpy() for name in FEATURES}
    columns.update(inference.engineered_columns(columns, CHURN_SCHEMA))
    assert model.compiled is not None and model.compiled.trees is not None
    matrix = model.compiled.transform(columns, len(rows))

    # When all trees are walked at once, and when single rows go through the served path
    walked = model.compiled.trees.predict_proba(matrix)
    single = [model.predict_columns({k: v[i : i + 1] for k, v in columns.items()}, 1)[0] for i in range(20)]

    # Then the probabilities are the estimator's
    reference = model.compiled.estimator.predict_proba(matrix)
    np.testing.assert_allclose(walked, reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(single, reference[:20, 1], rtol=0, atol=1e-12)


def test_unrecognised_pipelines_are_served_through_sklearn(churn_splits: dict[str, pd.DataFrame]) -> None:
    # Given a pipeline of another shape (one-hot + passthrough + logistic regression)
    train_rows = churn_splits["train"].head(500)
    pipeline = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        (
                            "categorical",
                            OneHotEncoder(handle_unknown="ignore"),
                            CHURN_SCHEMA.categorical_features,
                        )
                    ],
                    remainder="drop",
                ),
            ),
            ("model", LogisticRegression()),
        ]
    ).fit(model_frame(train_rows, CHURN_SCHEMA), train_rows["churned"])
    model = inference.LoadedModel(pipeline=pipeline, schema=CHURN_SCHEMA, version="lr-1")

    # When it is compiled and asked to predict from columns
    assert inference.compile_pipeline(pipeline) is None
    probe = inference.probe_columns(CHURN_SCHEMA)

    # Then the DataFrame path answers like the pipeline itself
    np.testing.assert_allclose(
        model.predict_columns(probe, 24),
        pipeline.predict_proba(pd.DataFrame(probe))[:, 1],
    )


def test_a_fast_path_that_disagrees_is_dropped_with_a_warning(
    model: inference.LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a compiled preprocessing with a wrong scaler mean
    assert model.compiled is not None
    broken = replace(model.compiled, mean=model.compiled.mean + 1.0)

    # When it is verified against the sklearn pipeline
    with caplog.at_level(logging.WARNING):
        verified = inference._verified(replace(model, compiled=None), broken)

    # Then it is not used, and the log says why
    assert verified is None
    assert "compiled preprocessing disagrees with the sklearn pipeline" in caplog.text


def test_a_tree_walk_that_disagrees_is_dropped_alone(
    model: inference.LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    # Given compiled trees with a shifted baseline score
    assert model.compiled is not None and model.compiled.trees is not None
    trees = replace(model.compiled.trees, baseline=model.compiled.trees.baseline + 0.1)

    # When the fast path is verified
    with caplog.at_level(logging.WARNING):
        verified = inference._verified(model, replace(model.compiled, trees=trees))

    # Then the numpy preprocessing stays, small batches go back to the estimator, and the log says so
    assert verified is not None and verified.trees is None
    assert "compiled trees disagree with the estimator" in caplog.text


def test_model_fn_limits_openmp_to_one_thread(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the default INFERENCE_THREADS
    monkeypatch.delenv("INFERENCE_THREADS", raising=False)

    # When the container loads the model
    loaded = inference.model_fn(str(model_dir))

    # Then every OpenMP runtime runs one thread, and the model carries its version and threshold
    openmp = [info for info in threadpool_info() if info["user_api"] == "openmp"]
    assert openmp and all(info["num_threads"] == 1 for info in openmp)
    assert loaded.version.startswith("sha256-")
    assert loaded.threshold == 0.5


def test_transform_fn_accepts_bytes_and_text(model: inference.LoadedModel) -> None:
    # Given the same CSV row as bytes and as text (the container passes text for exactly text/csv)
    # When both are transformed
    from_bytes = inference.transform_fn(model, ROW.encode(), "text/csv; charset=utf-8", "application/json")
    from_text = inference.transform_fn(model, ROW, "text/csv", "application/json")

    # Then the answers are the same
    assert from_bytes == from_text
    assert isinstance(from_text, tuple) and json.loads(from_text[0])["model_version"] == model.version
