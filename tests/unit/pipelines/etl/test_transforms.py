"""Pure ETL transforms: parsing, validation rules, features, splits, the quality report and the gate."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.data.generator import corrupt_with_defects, generate, to_csv_bytes, to_parquet_bytes
from pipelines.etl import transforms as tf
from pipelines.etl.transforms import MalformedFileError
from pipelines.schema import SPLITS, DatasetSchema, Feature
from stacks.config import QualityGate
from tests.samples import CHURN_SCHEMA

SCHEMA = CHURN_SCHEMA
GATE = QualityGate()
LENIENT = replace(GATE, min_rows=1, max_bad_row_share=1.0)
HEADER = ",".join(SCHEMA.input_columns)
GOOD_ROW = "K1,12,70.5,846,2,30.5,40,one-year,credit-card,dsl,0"


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *rows]).encode() + b"\n"


def row(**changes: str) -> str:
    """GOOD_ROW with some fields replaced."""
    values = dict(zip(SCHEMA.input_columns, GOOD_ROW.split(","), strict=True))
    return ",".join({**values, **changes}.values())


def reasons_of(raw: bytes) -> list[str]:
    return tf.run_transform(raw, "csv", SCHEMA, LENIENT).rejected[tf.REJECT_REASON].tolist()


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate(3_000, seed=21)


@pytest.fixture(scope="module")
def sample_result(sample: pd.DataFrame) -> tf.TransformResult:
    return tf.run_transform(to_csv_bytes(sample), "csv", SCHEMA, GATE, source={"key": "sample.csv"})


# ---- parsing: whole-file problems ------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"   \n\n", b"\xef\xbb\xbf"], ids=["empty", "whitespace", "bom-only"])
def test_an_empty_file_is_malformed(raw: bytes) -> None:
    # Given / When / Then
    with pytest.raises(MalformedFileError, match="empty") as error:
        tf.parse_csv(raw, SCHEMA)
    assert error.value.reason_code == "empty"
    assert error.value.message == "the file is empty"


def test_a_header_without_rows_is_malformed() -> None:
    with pytest.raises(MalformedFileError) as error:
        tf.parse_csv(csv_bytes(), SCHEMA)
    assert error.value.reason_code == "no_rows"
    assert "no data rows" in error.value.message


def test_non_utf8_bytes_are_malformed_with_their_offset() -> None:
    # Given: a Latin-1 encoded value in the middle of the file
    raw = csv_bytes(GOOD_ROW, row(customer_id="K2", contract="caf\xe9"))
    raw = raw.replace("café".encode(), "café".encode("latin-1"))

    # When / Then
    with pytest.raises(MalformedFileError) as error:
        tf.parse_csv(raw, SCHEMA)
    assert error.value.reason_code == "encoding"
    offset = raw.index(b"\xe9")
    assert f"offset {offset}" in error.value.message
    assert str(error.value).startswith("encoding: the file is not valid UTF-8")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_wrong_delimiter_is_malformed(delimiter: str) -> None:
    # Given: the right columns separated by another delimiter
    raw = csv_bytes(GOOD_ROW.replace(",", delimiter), header=HEADER.replace(",", delimiter))

    # When / Then
    with pytest.raises(MalformedFileError) as error:
        tf.parse_csv(raw, SCHEMA)
    assert error.value.reason_code == "delimiter"
    assert f"found {delimiter!r}" in error.value.message


def test_missing_required_columns_are_listed() -> None:
    # Given: a file without age and contract
    df = generate(20, seed=1).drop(columns=["age", "contract"])

    # When / Then
    with pytest.raises(MalformedFileError) as error:
        tf.parse_csv(to_csv_bytes(df), SCHEMA)
    assert error.value.reason_code == "missing_columns"
    assert "required columns missing: ['age', 'contract']" in error.value.message


def test_duplicate_columns_are_malformed() -> None:
    with pytest.raises(MalformedFileError) as error:
        tf.parse_csv(csv_bytes(GOOD_ROW + ",13", header=HEADER + ",age"), SCHEMA)
    assert error.value.reason_code == "duplicate_columns"
    assert "['age']" in error.value.message


def test_an_unreadable_parquet_file_is_malformed() -> None:
    with pytest.raises(MalformedFileError) as error:
        tf.parse_raw(b"PAR1 not really parquet", "parquet", SCHEMA)
    assert error.value.reason_code == "unreadable_parquet"
    assert error.value.message.startswith("the Parquet file cannot be read")


def test_a_parquet_file_missing_columns_or_rows_is_malformed() -> None:
    df = generate(10, seed=1)
    with pytest.raises(MalformedFileError) as missing:
        tf.parse_raw(to_parquet_bytes(df.drop(columns=["churned"])), "parquet", SCHEMA)
    assert missing.value.reason_code == "missing_columns"
    assert "['churned']" in missing.value.message
    with pytest.raises(MalformedFileError) as empty:
        tf.parse_raw(to_parquet_bytes(df.head(0)), "parquet", SCHEMA)
    assert empty.value.reason_code == "no_rows"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(MalformedFileError) as error:
        tf.parse_raw(b"{}", "json", SCHEMA)
    assert error.value.reason_code == "unsupported_format"
    assert "'json'" in error.value.message


@pytest.mark.parametrize(
    ("key", "expected"),
    [("datasets/churn/a.csv", "csv"), ("x/b.PARQUET", "parquet"), ("c.pq", "parquet"), ("d.txt", "csv")],
)
def test_detect_format_from_the_key(key: str, expected: str) -> None:
    assert tf.detect_format(key) == expected


# ---- parsing: accepted files -----------------------------------------------------------------------


def test_parse_csv_keeps_required_columns_and_numbers_records_from_two() -> None:
    # Given: three good rows
    raw = csv_bytes(row(customer_id="A"), row(customer_id="B"), row(customer_id="C"))

    # When
    parsed = tf.parse_csv(raw, SCHEMA)

    # Then: the required columns in order plus source_line (header = line 1)
    assert list(parsed.frame.columns) == [*SCHEMA.input_columns, tf.SOURCE_LINE]
    assert parsed.frame[tf.SOURCE_LINE].tolist() == [2, 3, 4]
    assert parsed.input_rows == 3
    assert parsed.dropped_columns == []


def test_a_utf8_bom_and_crlf_line_ends_are_accepted() -> None:
    raw = b"\xef\xbb\xbf" + csv_bytes(GOOD_ROW).replace(b"\n", b"\r\n")
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)
    assert result.curated[SCHEMA.key].tolist() == ["K1"]
    assert result.rejected.empty


def test_extra_columns_are_dropped_and_reported() -> None:
    # Given: two unknown columns, one of them between required ones
    header = HEADER.replace("age,", "age,notes,") + ",region"
    raw = csv_bytes(GOOD_ROW.replace(",40,", ",40,hello,") + ",emea", header=header)

    # When
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)

    # Then: the row is valid, the extras are gone and named in the report
    assert len(result.curated) == 1
    assert "notes" not in result.curated and "region" not in result.curated
    assert result.report["dropped_columns"] == ["notes", "region"]


def test_columns_may_come_in_any_order() -> None:
    columns = list(reversed(SCHEMA.input_columns))
    values = list(reversed(GOOD_ROW.split(",")))
    result = tf.run_transform(csv_bytes(",".join(values), header=",".join(columns)), "csv", SCHEMA, LENIENT)
    assert result.curated.loc[0, "age"] == 40.0
    assert result.curated.loc[0, "contract"] == "one-year"


def test_a_one_row_file_is_valid_and_the_gate_decides() -> None:
    # Given: a single good row
    raw = csv_bytes(GOOD_ROW)

    # When: the default gate (min_rows 100) and a permissive one look at it
    strict = tf.run_transform(raw, "csv", SCHEMA, GATE)
    lenient = tf.run_transform(raw, "csv", SCHEMA, replace(GATE, min_rows=1))

    # Then: the row is valid either way; min_rows alone fails the first (too few rows is the reason), and the
    # second fails because one row cannot give both classes to every split
    assert len(strict.curated) == len(lenient.curated) == 1
    assert not strict.gate_passed
    assert strict.gate_reasons == ["valid rows 1 < 100"]
    assert lenient.report["splits"]["train"]["classes"] == {"0": 1, "1": 0}
    assert lenient.gate_reasons == [
        "class '1' has no rows in the train split",
        "classes '0', '1' have no rows in the validation split",
        "classes '0', '1' have no rows in the test split",
    ]


def test_parquet_input_gives_the_same_result_as_csv(sample: pd.DataFrame) -> None:
    # Given: the same (partly broken) rows as CSV and as Parquet
    broken, _ = corrupt_with_defects(sample, 0.03, seed=5, schema=SCHEMA)

    # When
    from_csv = tf.run_transform(to_csv_bytes(broken), "csv", SCHEMA, GATE)
    from_parquet = tf.run_transform(to_parquet_bytes(broken), "parquet", SCHEMA, GATE)

    # Then: same curated rows, same rejects (Parquet counts rows from 1, CSV lines from 2)
    pd.testing.assert_frame_equal(from_csv.curated, from_parquet.curated)
    assert from_csv.rejected[tf.REJECT_REASON].tolist() == from_parquet.rejected[tf.REJECT_REASON].tolist()
    assert (from_csv.rejected[tf.SOURCE_LINE] - 1).tolist() == from_parquet.rejected[tf.SOURCE_LINE].tolist()


def test_parquet_nan_and_empty_strings_count_as_missing() -> None:
    # Given: a typed Parquet file with NaN in a nullable and a required column, and an empty category
    df = generate(3, seed=1)
    df["total_charges"] = df["total_charges"].astype("float64")
    df.loc[0, "total_charges"] = np.nan
    df.loc[1, "age"] = np.nan
    df["contract"] = df["contract"].astype(object)
    df.loc[2, "contract"] = ""
    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)

    # When
    result = tf.run_transform(sink.getvalue(), "parquet", SCHEMA, LENIENT)

    # Then
    assert result.rejected[tf.REJECT_REASON].tolist() == ["null:age", "null:contract"]
    assert np.isnan(result.curated["total_charges"]).all()


def test_records_with_a_wrong_field_count_are_rejected_with_their_line() -> None:
    # Given: a short record on line 3 and a long one on line 5
    raw = csv_bytes(
        row(customer_id="A"),
        "B,1,2",
        row(customer_id="C"),
        row(customer_id="D") + ",extra",
        row(customer_id="E"),
    )

    # When
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)

    # Then: the other records are valid; the bad ones keep what could be read
    assert sorted(result.curated[SCHEMA.key]) == ["A", "C", "E"]
    rejected = result.rejected
    assert rejected[tf.SOURCE_LINE].tolist() == [3, 5]
    assert rejected[tf.REJECT_REASON].tolist() == ["field_count", "field_count"]
    assert rejected[SCHEMA.key].tolist() == ["B", "D"]
    assert result.report["rows"] == {"input": 5, "valid": 3, "rejected": 2}


def test_blank_lines_are_skipped() -> None:
    raw = csv_bytes(row(customer_id="A"), "", row(customer_id="B"), "")
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)
    assert sorted(result.curated[SCHEMA.key]) == ["A", "B"]
    assert result.report["rows"]["input"] == 2


# ---- validation rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tenure_months": "twelve"}, "type:tenure_months"),
        ({"monthly_charges": '"70,5"'}, "type:monthly_charges"),
        ({"monthly_charges": "7 0"}, "type:monthly_charges"),
        ({"age": "1e500"}, "type:age"),
        ({"data_usage_gb": "inf"}, "type:data_usage_gb"),
        ({"tenure_months": ""}, "null:tenure_months"),
        ({"age": "NA"}, "null:age"),
        ({"age": " "}, "null:age"),
        ({"contract": ""}, "null:contract"),
        ({"customer_id": ""}, "null:customer_id"),
        ({"tenure_months": "121"}, "range:tenure_months"),
        ({"tenure_months": "-1"}, "range:tenure_months"),
        ({"age": "17"}, "range:age"),
        ({"total_charges": "60000.01"}, "range:total_charges"),
        ({"contract": "weekly"}, "category:contract"),
        ({"internet_service": "DSL"}, "category:internet_service"),
        ({"churned": "2"}, "target"),
        ({"churned": "yes"}, "target"),
        ({"churned": "0.5"}, "target"),
        ({"churned": ""}, "null:churned"),
    ],
)
def test_each_rule_rejects_with_a_machine_readable_reason(changes: dict[str, str], reason: str) -> None:
    # Given: one good row and one row breaking a single rule
    raw = csv_bytes(GOOD_ROW, row(**{"customer_id": "K2", **changes}))

    # When
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)

    # Then: the broken row is rejected with the reason, its line and its original value
    assert result.curated[SCHEMA.key].tolist() == ["K1"]
    rejected = result.rejected.iloc[0]
    assert rejected[tf.REJECT_REASON] == reason
    assert rejected[tf.SOURCE_LINE] == 3
    column, value = next(iter(changes.items()))
    if reason.startswith(("type", "category", "target")):
        try:
            assert float(rejected[column]) == float(value)  # a number (the reader may have typed it)
        except ValueError:
            assert rejected[column] == value.strip('"')  # text stays text


@pytest.mark.parametrize(
    "changes",
    [
        {"tenure_months": "0", "total_charges": ""},
        {"tenure_months": "120", "age": "100", "support_calls": "50"},
        {"age": "18", "monthly_charges": "0", "data_usage_gb": "2000"},
        {"monthly_charges": "+7.5e1", "total_charges": ".5"},
        {"churned": "1.0"},
        {"age": " 40 ", "tenure_months": "\t12"},
    ],
)
def test_boundary_and_nullable_values_are_valid(changes: dict[str, str]) -> None:
    result = tf.run_transform(csv_bytes(row(**changes)), "csv", SCHEMA, LENIENT)
    assert result.rejected.empty, result.rejected.to_dict("records")
    assert len(result.curated) == 1


def test_the_first_failing_check_in_schema_order_is_the_reason() -> None:
    # Given: a row with a bad tenure type and an unknown contract, another with a bad category and target
    raw = csv_bytes(row(tenure_months="x", contract="weekly"), row(customer_id="K2", contract="weekly", churned="7"))

    # When / Then
    assert reasons_of(raw) == ["type:tenure_months", "category:contract"]


def test_duplicate_keys_keep_the_first_occurrence() -> None:
    # Given: K1 three times, K2 once
    raw = csv_bytes(row(age="41"), row(customer_id="K2"), row(age="42"), row(age="43"))

    # When
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)

    # Then: the first K1 (line 2) stays, the later ones (lines 4, 5) are duplicates
    assert sorted(result.curated[SCHEMA.key]) == ["K1", "K2"]
    assert result.curated.set_index(SCHEMA.key).loc["K1", "age"] == 41.0
    assert result.rejected[tf.SOURCE_LINE].tolist() == [4, 5]
    assert set(result.rejected[tf.REJECT_REASON]) == {"duplicate_key"}


def test_a_later_copy_of_an_invalid_first_occurrence_is_still_a_duplicate() -> None:
    # Given: the first K1 is out of range, the second is fine
    raw = csv_bytes(row(age="150"), row(age="40"))

    # When / Then: the first occurrence is authoritative, so neither row is accepted
    assert reasons_of(raw) == ["range:age", "duplicate_key"]


def test_injected_defects_are_all_found_with_the_expected_reason(sample: pd.DataFrame) -> None:
    # Given: 10% of the rows broken in known ways
    broken, expected = corrupt_with_defects(sample, 0.1, seed=8, schema=SCHEMA)

    # When
    result = tf.run_transform(to_csv_bytes(broken), "csv", SCHEMA, GATE)

    # Then: exactly the broken rows are rejected, each with the expected reason
    found = result.rejected.set_index(tf.SOURCE_LINE)[tf.REJECT_REASON].sort_index()
    wanted = expected[expected != ""]
    wanted.index = wanted.index + 2  # file line of each row
    pd.testing.assert_series_equal(found, wanted.sort_index(), check_names=False, check_index_type=False)
    assert len(result.curated) == len(sample) - len(wanted)
    # and the gate refuses a file with 10% bad rows
    assert not result.gate_passed
    assert result.gate_reasons[0].startswith("rejected share 0.1000 > 0.05")


def test_validate_rows_types_the_valid_rows(sample: pd.DataFrame) -> None:
    # Given: parsed text of a sample
    parsed = tf.parse_csv(to_csv_bytes(sample.head(50)), SCHEMA)

    # When
    valid, rejected = tf.validate_rows(parsed.frame, SCHEMA)

    # Then: typed columns in file order
    assert rejected.empty
    assert valid[SCHEMA.key].tolist() == sample[SCHEMA.key].head(50).tolist()
    for name in SCHEMA.numeric_features:
        assert valid[name].dtype == np.float64
    for feature in SCHEMA.features:
        if feature.kind == "categorical":
            assert list(valid[feature.name].cat.categories) == list(feature.categories)
    assert valid[SCHEMA.target].dtype == np.int64
    assert valid[tf.SOURCE_LINE].tolist() == list(range(2, 52))


def test_validate_rows_accepts_an_already_typed_frame(sample: pd.DataFrame) -> None:
    # Given: a typed frame (no CSV in between) with one bad row
    frame = sample.head(20).copy()
    frame.loc[3, "age"] = 300

    # When
    valid, rejected = tf.validate_rows(frame, SCHEMA)

    # Then
    assert len(valid) == 19
    assert rejected[tf.REJECT_REASON].tolist() == ["range:age"]
    assert rejected["age"].tolist() == [300]


def test_text_and_typed_parsing_paths_agree(sample: pd.DataFrame) -> None:
    # Given: the same file, once clean (typed fast path) and once with a stray text value (text path)
    clean = to_csv_bytes(sample)
    with_text = clean.replace(b"\n", b"\nZZ,abc,1,1,1,1,30,one-year,credit-card,dsl,0\n", 1)

    # When
    fast = tf.run_transform(clean, "csv", SCHEMA, GATE)
    slow = tf.run_transform(with_text, "csv", SCHEMA, GATE)

    # Then: the extra row is the only difference
    assert slow.rejected[tf.REJECT_REASON].tolist() == ["type:tenure_months"]
    pd.testing.assert_frame_equal(fast.curated, slow.curated)


def test_padded_numbers_are_valid_on_the_text_path_too() -> None:
    # Given: a non-number forces the text path; other rows pad numbers with spaces and tabs
    raw = csv_bytes(
        row(age=" 41 "), row(customer_id="K2", age="x"), row(customer_id="K3", tenure_months="\t7", age=" ")
    )

    # When
    result = tf.run_transform(raw, "csv", SCHEMA, LENIENT)

    # Then: padding is ignored as the CSV reader does, and a blank is a missing value
    assert result.curated.set_index(SCHEMA.key).loc["K1", "age"] == 41.0
    assert result.rejected[tf.REJECT_REASON].tolist() == ["type:age", "null:age"]


def test_hash_keys_does_not_depend_on_the_other_keys_in_the_batch() -> None:
    alone = tf.hash_keys(pd.Series(["a"]), 3)
    with_longer = tf.hash_keys(pd.Series(["a", "a-much-longer-key-than-eight-bytes"]), 3)
    assert with_longer[0] == alone[0]


def test_an_all_rejected_file_gives_an_empty_curated_frame_and_a_failed_gate() -> None:
    result = tf.run_transform(csv_bytes(row(age="7"), row(customer_id="K2", age="8")), "csv", SCHEMA, GATE)
    assert result.curated.empty
    assert list(result.curated.columns) == [*tf.curated_columns(SCHEMA), tf.SPLIT]
    assert result.report["features"]["age"]["count"] == 0
    assert not result.gate_passed
    assert result.gate_reasons == ["rejected share 1.0000 > 0.05 (2 of 2 rows)", "valid rows 0 < 100"]


# ---- features --------------------------------------------------------------------------------------


def test_engineered_features_follow_their_definitions(sample_result: tf.TransformResult) -> None:
    # Given: the curated sample
    curated = sample_result.curated
    tenure = np.maximum(curated["tenure_months"], 1)
    total = curated["total_charges"].fillna(curated["monthly_charges"] * curated["tenure_months"])

    # Then: computed independently, the engineered columns agree
    np.testing.assert_allclose(curated["charges_per_tenure_month"], total / tenure)
    np.testing.assert_allclose(curated["support_calls_per_year"], curated["support_calls"] * 12 / tenure)
    assert list(curated.columns) == [*SCHEMA.input_columns, *SCHEMA.engineered_names, tf.SPLIT]


def test_engineer_features_is_the_shared_definition() -> None:
    # Given: a serving-style frame without target or key
    frame = pd.DataFrame(
        {
            "tenure_months": [0, 10],
            "monthly_charges": [50.0, 20.0],
            "total_charges": [None, 250.0],
            "support_calls": [3, 5],
        }
    )

    # When
    out = tf.engineer_features(frame, SCHEMA)

    # Then: the input is untouched and the values are as documented
    assert list(frame.columns) == ["tenure_months", "monthly_charges", "total_charges", "support_calls"]
    assert out["charges_per_tenure_month"].tolist() == [0.0, 25.0]
    assert out["support_calls_per_year"].tolist() == [36.0, 6.0]


# ---- splits ----------------------------------------------------------------------------------------


def test_hash_keys_is_pinned() -> None:
    # Given / When: the hash of a few keys under seed 42
    hashes = tf.hash_keys(pd.Series(["C0-0000000", "abc", "", "a-much-longer-key-0123456789", "clé"]), 42)

    # Then: the values never change (splits of stored datasets depend on them)
    assert hashes.tolist() == PINNED_HASHES


PINNED_HASHES = [
    3260866658178562938,
    11182990272392529653,
    15897874471993408573,
    7720404388729736315,
    2231153728767818495,
]


def reference_hash(key: str, seed: int) -> int:
    """The documented algorithm, one key at a time in plain Python."""
    mask = 2**64 - 1

    def fmix(h: int) -> int:
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & mask
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & mask
        return h ^ (h >> 31)

    data = key.encode()
    salt = int.from_bytes(hashlib.blake2b(f"split-salt:{seed}".encode(), digest_size=8).digest(), "little")
    h = fmix(salt ^ ((len(data) * 0x9E3779B97F4A7C15) & mask))
    for start in range(0, len(data), 8):
        word = int.from_bytes(data[start : start + 8].ljust(8, b"\0"), "little")
        h = (fmix(h ^ word) + 0x9E3779B97F4A7C15) & mask
    return fmix(h)


def test_hash_keys_matches_the_plain_python_reference() -> None:
    # Given: keys of many lengths, ASCII and not
    keys = [
        "",
        "a",
        "C0-0000000",
        "exactly8",
        "exactly8+",
        "0123456789abcdef",
        "clé",
        "ключ-12345678901",
        "x" * 100,
    ]

    # When / Then: the vectorised hash equals the one-key-at-a-time definition, for two seeds
    for seed in (0, 42):
        assert tf.hash_keys(pd.Series(keys), seed).tolist() == [reference_hash(k, seed) for k in keys]


def test_hash_keys_is_the_same_for_object_str_and_arrow_input() -> None:
    keys = ["a", "bb", "C1-0000001", "exactly8", "sixteen-chars-xx", "ünïcode"]
    expected = tf.hash_keys(pd.Series(keys, dtype=object), 7)
    np.testing.assert_array_equal(tf.hash_keys(pd.Series(keys, dtype=tf.STR_DTYPE), 7), expected)
    np.testing.assert_array_equal(tf.hash_keys(pa.array(keys), 7), expected)
    np.testing.assert_array_equal(tf.hash_keys(pa.chunked_array([keys[:2], keys[2:]]), 7), expected)
    np.testing.assert_array_equal(tf.hash_keys(pa.array(keys).slice(2), 7), expected[2:])


def test_hash_keys_separates_near_identical_keys() -> None:
    # Given: keys differing by one byte, by length, by a trailing NUL, across 8-byte words
    keys = ["a", "a\x00", "aa", "abcdefgh", "abcdefgi", "abcdefgh1", "abcdefgh2", "1abcdefgh", ""]

    # When / Then: all hashes differ, and the seed changes them
    assert len(set(tf.hash_keys(pd.Series(keys), 1).tolist())) == len(keys)
    assert not np.array_equal(tf.hash_keys(pd.Series(keys), 1), tf.hash_keys(pd.Series(keys), 2))


def test_same_key_same_split_whatever_the_order_or_file() -> None:
    # Given: 20k keys, the same keys shuffled, and the keys spread over two "files"
    keys = pd.Series([f"C-{i}" for i in range(20_000)])
    shuffled = keys.sample(frac=1.0, random_state=3)

    # When
    first = tf.assign_split(keys, 42, 0.15, 0.15)
    again = tf.assign_split(keys, 42, 0.15, 0.15)
    reordered = tf.assign_split(shuffled, 42, 0.15, 0.15)
    halves = pd.concat([tf.assign_split(keys[:7_000], 42, 0.15, 0.15), tf.assign_split(keys[7_000:], 42, 0.15, 0.15)])

    # Then
    pd.testing.assert_series_equal(first, again)
    pd.testing.assert_series_equal(reordered.sort_index(), first)
    pd.testing.assert_series_equal(halves, first)


def test_split_shares_are_close_to_the_configuration() -> None:
    # Given / When: 200k keys split 70/15/15
    split = tf.assign_split((f"K{i}" for i in range(200_000)), 42, 0.15, 0.15)
    shares = split.value_counts(normalize=True)

    # Then: each share within half a percentage point
    assert list(split.cat.categories) == list(SPLITS)
    assert shares["train"] == pytest.approx(0.70, abs=0.005)
    assert shares["validation"] == pytest.approx(0.15, abs=0.005)
    assert shares["test"] == pytest.approx(0.15, abs=0.005)


def test_another_seed_gives_another_assignment() -> None:
    keys = pd.Series([f"K{i}" for i in range(5_000)])
    changed = (tf.assign_split(keys, 1, 0.15, 0.15) != tf.assign_split(keys, 2, 0.15, 0.15)).mean()
    assert 0.3 < changed < 0.6  # about 1 - (0.7^2 + 2 * 0.15^2)


@pytest.mark.parametrize(("validation", "test"), [(0.5, 0.5), (-0.1, 0.2), (0.2, -0.1)])
def test_invalid_split_shares_are_refused(validation: float, test: float) -> None:
    with pytest.raises(ValueError, match="validation_share and test_share"):
        tf.assign_split(["a"], 1, validation, test)


def test_curated_split_matches_assign_split(sample_result: tf.TransformResult) -> None:
    curated = sample_result.curated
    expected = tf.assign_split(curated[SCHEMA.key], GATE.split_seed, GATE.validation_share, GATE.test_share)
    assert (curated[tf.SPLIT].astype(str) == expected.astype(str)).all()
    # and the curated rows come grouped by split
    assert curated[tf.SPLIT].cat.codes.is_monotonic_increasing


# ---- report ----------------------------------------------------------------------------------------


def test_report_counts_rows_reasons_and_columns(sample: pd.DataFrame) -> None:
    # Given: 4% of the rows broken and an extra column
    broken, expected = corrupt_with_defects(sample, 0.04, seed=9, schema=SCHEMA)
    broken["extra"] = 1

    # When
    result = tf.run_transform(to_csv_bytes(broken), "csv", SCHEMA, GATE, source={"bucket": "b", "key": "k"})
    report = result.report

    # Then
    wanted = expected[expected != ""].value_counts()
    assert report["rows"] == {"input": 3_000, "valid": 3_000 - 120, "rejected": 120}
    assert report["rejected_share"] == pytest.approx(0.04)
    assert report["rejects_by_reason"] == {k: int(v) for k, v in sorted(wanted.items())}
    assert report["dropped_columns"] == ["extra"]
    assert report["source"] == {"bucket": "b", "key": "k"}
    assert report["dataset"] == "churn"
    assert report["gate"] == {"passed": True, "reasons": [], "max_bad_row_share": 0.05, "min_rows": 100}


def test_numeric_statistics_match_an_independent_computation(sample_result: tf.TransformResult) -> None:
    # Given: the curated rows and the report
    curated, report = sample_result.curated, sample_result.report

    for name in [*SCHEMA.numeric_features, *SCHEMA.engineered_names]:
        stats = report["features"].get(name) or report["engineered"][name]
        column = curated[name]
        values = column.dropna().to_numpy()
        # Then: moments, extremes and quantiles agree with pandas/numpy
        assert stats["count"] == column.count()
        assert stats["nulls"] == column.isna().sum()
        assert stats["mean"] == pytest.approx(column.mean())
        assert stats["std"] == pytest.approx(column.std())
        assert stats["min"] == column.min()
        assert stats["max"] == column.max()
        for label, q in [
            ("p01", 0.01),
            ("p05", 0.05),
            ("p25", 0.25),
            ("p50", 0.5),
            ("p95", 0.95),
            ("p99", 0.99),
        ]:
            assert stats["quantiles"][label] == pytest.approx(np.quantile(values, q)), (name, label)
        # and the histogram uses decile edges with open end bins
        histogram = stats["histogram"]
        assert histogram["edges"] == pytest.approx(np.unique(np.quantile(values, np.linspace(0, 1, 11))).tolist())
        edges = histogram["edges"]
        last = len(edges) - 2
        expected = [
            sum(1 for v in values if (i == 0 or v >= lo) and (i == last or v < hi))
            for i, (lo, hi) in enumerate(itertools.pairwise(edges))
        ]
        assert histogram["counts"] == expected, name
        assert sum(histogram["counts"]) == len(values)
        assert histogram["proportions"] == pytest.approx([c / len(values) for c in expected])
        # and the KS sketch holds the mid-percentile quantiles (a 100-point pseudo-sample of the column)
        sketch = stats["sketch"]
        assert sketch["size"] == tf.SKETCH_SIZE == len(sketch["values"]) == 100
        assert sketch["values"] == pytest.approx(np.quantile(values, (np.arange(100) + 0.5) / 100).tolist())


def test_total_charges_statistics_count_nulls(sample_result: tf.TransformResult) -> None:
    stats = sample_result.report["features"]["total_charges"]
    tenure_zero = int((sample_result.curated["tenure_months"] == 0).sum())
    assert tenure_zero > 0
    assert stats["nulls"] == tenure_zero
    assert stats["count"] + stats["nulls"] == len(sample_result.curated)


def test_categorical_statistics_list_every_category(sample_result: tf.TransformResult) -> None:
    curated, report = sample_result.curated, sample_result.report
    for feature in SCHEMA.features:
        if feature.kind != "categorical":
            continue
        stats = report["features"][feature.name]
        counts = curated[feature.name].astype(str).value_counts()
        assert list(stats["counts"]) == list(feature.categories)
        assert stats["counts"] == {c: int(counts.get(c, 0)) for c in feature.categories}
        assert stats["proportions"] == pytest.approx({c: counts.get(c, 0) / len(curated) for c in feature.categories})
        assert stats["nulls"] == 0


def test_split_counts_and_target_rates_match(sample_result: tf.TransformResult) -> None:
    curated, report = sample_result.curated, sample_result.report
    by_split = curated.groupby(curated[tf.SPLIT].astype(str))[SCHEMA.target].agg(["size", "mean"])
    for name in SPLITS:
        assert report["splits"][name]["rows"] == by_split.loc[name, "size"]
        assert report["splits"][name]["positive_rate"] == pytest.approx(by_split.loc[name, "mean"])
    assert report["target"]["positives"] == curated[SCHEMA.target].sum()
    assert report["target"]["positive_rate"] == pytest.approx(curated[SCHEMA.target].mean())


def test_the_report_is_strict_json(sample_result: tf.TransformResult) -> None:
    text = json.dumps(sample_result.report, allow_nan=False)
    assert json.loads(text) == sample_result.report


def test_a_constant_column_gets_one_bin() -> None:
    values = np.full(10, 3.0)
    assert tf.histogram_edges(values) == [3.0, 3.0]
    assert tf.histogram_counts(values, [3.0, 3.0]).tolist() == [10]
    assert tf.histogram_edges(np.array([np.nan])) == []


def test_histogram_counts_puts_outliers_in_the_end_bins() -> None:
    # Given: baseline edges and new values beyond both ends, on edges and missing
    edges = [0.0, 1.0, 2.0, 3.0]
    values = np.array([-5.0, 0.0, 0.5, 1.0, 2.5, 3.0, 99.0, np.nan])

    # When / Then: bins are [.., 1), [1, 2), [2, ..)
    assert tf.histogram_counts(values, edges).tolist() == [3, 1, 3]


def test_the_report_covers_a_custom_schema() -> None:
    # Given: another dataset contract
    schema = DatasetSchema(
        name="tiny",
        key="id",
        target="y",
        features=(Feature("x", "numeric", minimum=0), Feature("c", "categorical", categories=("a", "b"))),
    )
    raw = b"id,x,c,y\n1,5,a,1\n2,-1,a,0\n3,7,b,0\n4,8,z,1\n"

    # When
    result = tf.run_transform(raw, "csv", schema, LENIENT)

    # Then: rules and statistics follow that schema
    assert result.rejected[tf.REJECT_REASON].tolist() == ["range:x", "category:c"]
    assert result.report["features"]["x"]["mean"] == 6.0
    assert result.report["features"]["c"]["counts"] == {"a": 1, "b": 1}
    assert result.report["engineered"] == {}


# ---- gate ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid", "rejected", "passed", "reasons"),
    [
        (950, 50, True, []),
        (949, 51, False, ["rejected share 0.0510 > 0.05 (51 of 1000 rows)"]),
        (99, 0, False, ["valid rows 99 < 100"]),
        (90, 10, False, ["rejected share 0.1000 > 0.05 (10 of 100 rows)", "valid rows 90 < 100"]),
    ],
)
def test_quality_gate(valid: int, rejected: int, passed: bool, reasons: list[str]) -> None:
    # Given: a report's row counts
    total = valid + rejected
    report = {
        "rows": {"input": total, "valid": valid, "rejected": rejected},
        "rejected_share": rejected / total,
    }

    # When / Then: the share at the limit passes; above it or below min_rows fails, with every reason
    assert tf.check_quality_gate(report, max_bad_row_share=0.05, min_rows=100) == (passed, reasons)


def test_malformed_report_carries_the_reason() -> None:
    error = MalformedFileError("delimiter", "found ';'")
    report = tf.malformed_report(SCHEMA, error, {"key": "k"})
    assert report["malformed"] == {"reason_code": "delimiter", "message": "found ';'"}
    assert report["gate"]["passed"] is False
    assert report["source"] == {"key": "k"}


# ---- outputs ---------------------------------------------------------------------------------------


def test_split_parquet_writes_one_readable_file_per_split(sample_result: tf.TransformResult) -> None:
    # When
    files = tf.split_parquet(sample_result.curated, SCHEMA)

    # Then: each split's file holds exactly its rows, without the split column
    assert list(files) == list(SPLITS)
    total = 0
    for name, body in files.items():
        table = pq.read_table(io.BytesIO(body))
        assert table.column_names == tf.curated_columns(SCHEMA)
        assert table.num_rows == sample_result.report["splits"][name]["rows"]
        total += table.num_rows
    assert total == len(sample_result.curated)


def test_split_parquet_groups_unordered_rows_and_skips_empty_splits(
    sample_result: tf.TransformResult,
) -> None:
    # Given: curated rows shuffled and without any test rows
    curated = sample_result.curated
    shuffled = curated[curated[tf.SPLIT] != "test"].sample(frac=1.0, random_state=1)

    # When
    files = tf.split_parquet(shuffled, SCHEMA)

    # Then
    assert set(files) == {"train", "validation"}
    keys = pq.read_table(io.BytesIO(files["validation"])).column(SCHEMA.key).to_pylist()
    assert sorted(keys) == sorted(shuffled.loc[shuffled[tf.SPLIT] == "validation", SCHEMA.key])


def test_rejected_rows_serialise_as_json_lines() -> None:
    result = tf.run_transform(csv_bytes(GOOD_ROW, row(customer_id="K2", age="abc")), "csv", SCHEMA, LENIENT)
    lines = tf.rejected_jsonl(result.rejected).decode().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["customer_id"] == "K2"
    assert record["age"] == "abc"
    assert record[tf.REJECT_REASON] == "type:age"
    assert record[tf.SOURCE_LINE] == 3
