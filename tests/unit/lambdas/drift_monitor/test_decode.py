"""Captured requests -> feature columns: every body style, missing and odd values, rejected bodies and rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lambdas.drift_monitor import capture, decode
from pipelines.data.generator import generate
from tests.samples import CHURN_SCHEMA
from tests.unit.lambdas.drift_monitor.helpers import FEATURES, capture_line, request_lines


@pytest.mark.parametrize("style", ["csv", "csv-header", "base64", "json-rows", "json-records"])
def test_request_bodies_decode_into_the_same_feature_columns(style: str) -> None:
    # Given 25 generated rows captured in one body style, with missing numeric and categorical values
    rows = generate(25, seed=3)[FEATURES].copy()
    rows.loc[[2, 7], "total_charges"] = np.nan
    rows.loc[[4, 24], "internet_service"] = None
    records = [capture.parse_record(line, "AllTraffic") for line in request_lines(rows, per_request=10, style=style)]
    # When
    decoded = decode.request_columns(records, CHURN_SCHEMA)
    # Then every row and value comes back, numbers as float64 and missing values as NaN / None
    assert decoded.rows == 25 and decoded.bad_records == 0
    assert list(decoded.columns) == CHURN_SCHEMA.feature_names
    for name in CHURN_SCHEMA.numeric_features:
        assert decoded.columns[name].dtype == np.float64
        np.testing.assert_allclose(decoded.columns[name], rows[name].to_numpy(dtype=float), equal_nan=True)
    assert np.isnan(decoded.columns["total_charges"]).sum() == 2
    for name in CHURN_SCHEMA.categorical_features:
        assert decoded.columns[name].tolist() == [v if isinstance(v, str) else None for v in rows[name].tolist()]
    assert decoded.columns["internet_service"].tolist().count(None) == 2


def test_undecodable_bodies_are_counted_with_their_reason() -> None:
    # Given a good CSV request, a JSON body without instances, an unknown content type and a too-wide CSV row
    good = generate(2, seed=1)[FEATURES].to_csv(index=False, header=False)
    lines = [
        capture_line(good),
        capture_line(json.dumps({"rows": []}), "application/json"),
        capture_line("abc", "application/x-npy", encoding="BASE64"),
        capture_line(",".join(["1"] * 12)),
    ]
    records = [capture.parse_record(line, "AllTraffic") for line in lines]
    # When
    decoded = decode.request_columns(records, CHURN_SCHEMA)
    # Then the good rows are kept and each failure is counted by reason
    assert decoded.rows == 2
    assert decoded.bad_reasons == {
        "ValueError": 1,
        "content type 'application/x-npy'": 1,
        "CSV rows with too many fields": 1,
    }


def test_odd_values_become_missing_and_rows_keep_their_columns() -> None:
    # Given a CSV body with a header in another order (stripped names, a quoted field, contract left out),
    # a header-less body with a short row, and JSON values the inference handler would refuse
    header = (
        "age , tenure_months,monthly_charges,total_charges,support_calls,data_usage_gb,payment_method,internet_service"
    )
    with_header = f'{header}\n40,5,"70.5",,2,1.5,  ,dsl'
    short_row = "12,80,960,1,3.5,50,one-year"
    odd_json = {"instances": [{"tenure_months": "7", "age": 10**400, "contract": 2, "internet_service": True}]}
    records = [
        capture.parse_record(capture_line(with_header), "AllTraffic"),
        capture.parse_record(capture_line(short_row), "AllTraffic"),
        capture.parse_record(capture_line(json.dumps(odd_json), "application/json"), "AllTraffic"),
    ]
    # When
    decoded = decode.request_columns(records, CHURN_SCHEMA)
    # Then each value lands in its column; empty, blank, absent and unparseable values are NaN / None
    assert decoded.rows == 3 and decoded.bad_records == 0
    columns = {name: decoded.columns[name].tolist() for name in FEATURES}
    assert columns["age"][0] == 40.0 and columns["tenure_months"] == [5.0, 12.0, 7.0]
    assert columns["monthly_charges"][:2] == [70.5, 80.0]
    assert np.isnan(columns["total_charges"][0]) and np.isnan(columns["age"][2])  # empty field; 1e400 overflows
    assert columns["payment_method"][:2] == [None, None]  # blank field; short row padded
    assert columns["contract"] == [None, "one-year", "2"]  # absent from the header; a number is its text
    assert columns["internet_service"] == ["dsl", None, "True"]


def test_a_csv_row_wider_than_its_header_rejects_the_body() -> None:
    # Given a body whose header names two columns and whose second row has three fields, then a good body
    body = "age,tenure_months\n40,5\n41,6,7"
    records = [capture.parse_record(capture_line(text), "AllTraffic") for text in (body, "age,tenure_months\n30,3")]
    # When
    decoded = decode.request_columns(records, CHURN_SCHEMA)
    # Then the whole first body is rejected with its reason, the second is kept
    assert decoded.rows == 1 and decoded.columns["age"].tolist() == [30.0]
    assert decoded.bad_reasons == {"ParserError": 1}
