"""The batch-transform runtime's pieces: records, mini-batches, JSONPath filters, joins, and a job on moto S3."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.runtime import transform as tr

BUCKET = "data"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def echo_model(calls: list[tuple[bytes, str, str | None]]) -> tr.Invoke:
    """A stand-in container: one ``<number of fields>,<first field>`` line per request line."""

    def invoke(body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes]:
        calls.append((body, content_type, accept))
        lines = body.decode().split("\n")
        return 200, "\n".join(f"{len(line.split(','))},{line.split(',')[0]}" for line in lines).encode()

    return invoke


# ---- records and mini-batches ------------------------------------------------------------------------------


def test_line_split_drops_line_ends_and_empty_lines() -> None:
    # Given an object with CRLF line ends and blank lines
    body = b"1,2\r\n\n3,4\n  \n5,6"
    # When it is split by line, or not at all
    lines = tr.split_records(body, "Line")
    whole = tr.split_records(body, "None")
    # Then Line gives the non-empty lines without their ends, None the whole object
    assert lines == [b"1,2", b"3,4", b"5,6"]
    assert whole == [body]


def test_multi_record_packs_whole_records_up_to_the_payload_limit() -> None:
    # Given 10 records of 300 KiB and a 1 MB limit
    records = [b"x" * (300 * 1024)] * 10
    # When they are cut into mini-batches
    batches = list(tr.mini_batches(records, "MultiRecord", 1))
    # Then each batch holds 3 records (3 x 300 KiB + 2 newlines <= 1 MiB), none is split, all are sent once
    assert batches == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_single_record_sends_one_record_per_request_and_zero_means_no_limit() -> None:
    # Given three records
    records = [b"a", b"b", b"c"]
    # When sent one by one, and with no payload limit
    single = list(tr.mini_batches(records, "SingleRecord", 6))
    unlimited = list(tr.mini_batches([b"x" * (7 * tr.MB)] * 2, "MultiRecord", 0))
    # Then
    assert single == [(0, 1), (1, 2), (2, 3)]
    assert unlimited == [(0, 2)]


def test_a_record_over_the_payload_limit_fails_with_its_number() -> None:
    # Given a second record bigger than 1 MB
    records = [b"small", b"y" * (tr.MB + 1)]
    # When batching
    with pytest.raises(tr.TransformError) as raised:
        list(tr.mini_batches(records, "MultiRecord", 1))
    # Then the reason names the record and the limit
    assert str(raised.value) == "ClientError: record 2 is 1,048,577 bytes, more than MaxPayloadInMB (1 MB)"


# ---- JSONPath --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("$[1:]", ["id", "1", "2"], ["1", "2"]),
        ("$[0,-1]", ["id", "1", "2"], ["id", "2"]),
        ("$[2]", ["id", "1", "2"], "2"),
        ("$.features", {"features": [1, 2], "id": 9}, [1, 2]),
        ("$.a.b", {"a": {"b": 3}}, 3),
        ("$['id','SageMakerOutput']", {"id": 1, "x": 2, "SageMakerOutput": 5}, {"id": 1, "SageMakerOutput": 5}),
    ],
)
def test_jsonpath_subset(expression: str, value: Any, expected: Any) -> None:
    # Given a supported expression / When applied / Then it selects what SageMaker's examples say
    path = tr.compile_path(expression)
    assert path is not None
    assert path(value) == expected


def test_dollar_alone_is_no_filter_and_unsupported_syntax_is_refused() -> None:
    # Given "$" and a filter expression the local cloud does not implement
    # When compiled / Then "$" is no filter at all and the other fails naming the expression
    assert tr.compile_path("$") is None
    assert tr.compile_path(None) is None
    with pytest.raises(tr.TransformError) as raised:
        tr.compile_path("$[?(@.a > 1)]")
    assert "JSONPath '$[?(@.a > 1)]' is not supported by the local cloud" in str(raised.value)


def test_csv_join_appends_the_output_row_and_the_output_filter_selects_columns() -> None:
    # Given CSV input rows with an id column and CSV predictions
    inputs = [b"c1,5,a", b"c2,7,b"]
    outputs = [b"0.25,0", b"0.75,1"]
    # When joined with the input and filtered to id + prediction
    rows = tr.join_and_filter(inputs, outputs, True, tr.compile_path("$[0,-2,-1]"), "text/csv", "text/csv")
    # Then each row is id, probability, label
    assert rows == [b"c1,0.25,0", b"c2,0.75,1"]


def test_json_join_puts_the_output_under_sagemaker_output() -> None:
    # Given a JSON object record and a JSON array record
    inputs = [b'{"id": 1, "x": [1, 2]}', b"[3, 4]"]
    outputs = [b'{"p": 0.1}', b'{"p": 0.9}']
    # When joined
    rows = tr.join_and_filter(inputs, outputs, True, None, "application/jsonlines", "application/json")
    # Then objects gain SageMakerOutput; a non-object input is wrapped as SageMakerInput
    assert [json.loads(r) for r in rows] == [
        {"id": 1, "x": [1, 2], "SageMakerOutput": {"p": 0.1}},
        {"SageMakerInput": [3, 4], "SageMakerOutput": {"p": 0.9}},
    ]


# ---- a whole job on moto S3 ------------------------------------------------------------------------------


def _request(uri: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransformJobName": "job",
        "ModelName": "m",
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out/", "Accept": "text/csv", "AssembleWith": "Line"},
    }
    request.update(overrides)
    return request


def test_prefix_job_writes_one_out_object_per_input_keeping_sub_folders(s3: Any) -> None:
    # Given two objects under the input prefix (one gzipped would be a different job) and one beside it
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=b"1,2\n3,4\n")
    s3.put_object(Bucket=BUCKET, Key="in/sub/b.csv", Body=b"5,6,7\n")
    s3.put_object(Bucket=BUCKET, Key="other/c.csv", Body=b"9\n")
    calls: list[tuple[bytes, str, str | None]] = []
    # When the job runs over s3://data/in/
    result = tr.run_transform(s3, _request(f"s3://{BUCKET}/in/"), echo_model(calls))
    # Then each input got its .out (relative path kept), one line per record, with the job's headers
    assert result.ok, result.reason
    assert [o["output"] for o in result.objects] == [f"s3://{BUCKET}/out/a.csv.out", f"s3://{BUCKET}/out/sub/b.csv.out"]
    assert s3.get_object(Bucket=BUCKET, Key="out/a.csv.out")["Body"].read() == b"2,1\n2,3\n"
    assert s3.get_object(Bucket=BUCKET, Key="out/sub/b.csv.out")["Body"].read() == b"3,5\n"
    assert calls == [(b"1,2\n3,4", "text/csv", "text/csv"), (b"5,6,7", "text/csv", "text/csv")]
    assert (result.records, result.requests) == (3, 2)


def test_manifest_gzip_input_filter_join_and_output_filter(s3: Any) -> None:
    # Given a gzipped CSV with an id column, listed in a manifest
    s3.put_object(Bucket=BUCKET, Key="in/x.csv.gz", Body=gzip.compress(b"id1,1,2\nid2,3,4,5\n"))
    manifest = [{"prefix": f"s3://{BUCKET}/in/"}, "x.csv.gz"]
    s3.put_object(Bucket=BUCKET, Key="manifest.json", Body=json.dumps(manifest).encode())
    calls: list[tuple[bytes, str, str | None]] = []
    request = _request(
        f"s3://{BUCKET}/manifest.json",
        BatchStrategy="SingleRecord",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-2,-1]"},
    )
    request["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    request["TransformInput"]["CompressionType"] = "Gzip"
    # When the job runs
    result = tr.run_transform(s3, request, echo_model(calls))
    # Then the model saw the rows without the id, one per request, and the output pairs each id with its answer
    assert result.ok, result.reason
    assert [c[0] for c in calls] == [b"1,2", b"3,4,5"]
    assert s3.get_object(Bucket=BUCKET, Key="out/x.csv.gz.out")["Body"].read() == b"id1,2,1\nid2,3,3\n"


def test_container_error_fails_the_job_with_status_object_and_records(s3: Any) -> None:
    # Given a container that refuses the content type
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=b"1\n2\n")

    def refuse(body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes]:
        return 415, b"unsupported content type text/csv\ntrace"

    # When the job runs
    result = tr.run_transform(s3, _request(f"s3://{BUCKET}/in/"), refuse)
    # Then it fails with SageMaker's kind of reason and writes nothing
    assert not result.ok
    assert result.reason == (
        f"ClientError: the model container answered 415 for s3://{BUCKET}/in/a.csv (records 1-2): "
        "unsupported content type text/csv. See job logs for more information"
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")


def test_server_errors_are_retried_then_fail(s3: Any) -> None:
    # Given a container that answers 500 every time, and a job allowing 2 retries
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=b"1\n")
    attempts: list[bytes] = []

    def broken(body: bytes, content_type: str, accept: str | None) -> tuple[int, bytes]:
        attempts.append(body)
        return 500, b"boom"

    request = _request(f"s3://{BUCKET}/in/", ModelClientConfig={"InvocationsMaxRetries": 2})
    # When the job runs
    result = tr.run_transform(s3, request, broken)
    # Then the request was tried 3 times and the job failed as an algorithm error
    assert len(attempts) == 3
    assert result.reason.startswith("AlgorithmError: the model container answered 500")


def test_empty_prefix_fails_with_the_uri(s3: Any) -> None:
    # Given nothing under the prefix / When the job runs / Then it fails naming the URI
    result = tr.run_transform(s3, _request(f"s3://{BUCKET}/nothing/"), echo_model([]))
    assert (result.ok, result.reason) == (False, f"ClientError: no S3 objects found under s3://{BUCKET}/nothing/")


def test_batch_environment_for_the_container() -> None:
    # Given a job with its own environment / When the container environment is built
    env = tr.container_environment({"BatchStrategy": "SingleRecord", "MaxPayloadInMB": 2, "Environment": {"A": 1}})
    # Then it carries the job's variables and what Batch Transform tells a container
    assert env == {
        "A": "1",
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1",
    }
