"""Once per key: a function made idempotent on a DynamoDB table named at first use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.shared.idempotency import once_per
from tests.unit.lambdas.support import FakeContext, create_table


@pytest.fixture
def tables() -> Iterator[None]:
    with mock_aws():
        create_table("idempotency", "id")
        create_table("guard", "pk", "sk")
        yield


class Counter:
    """A domain function that counts its runs (and fails when told to)."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def handle(self, order: dict[str, Any]) -> dict[str, Any]:
        self.runs.append(order)
        if order.get("fail"):
            raise RuntimeError("downstream refused")
        return {"handled": order["id"], "run": len(self.runs)}


def test_the_same_key_runs_once_and_answers_with_the_first_result(tables: None) -> None:
    # Given a function made idempotent on the order id
    counter = Counter()
    once = once_per("id", argument="order", table=lambda: "idempotency")(counter.handle)
    # When it is called twice for order 1 (the second time with other, unkeyed, fields), then for order 2
    first = once({"id": "1"}, FakeContext())
    second = once({"id": "1", "note": "redelivered"}, FakeContext())
    other = once({"id": "2"}, FakeContext())
    # Then order 1 ran once and its result was recorded; order 2 ran on its own
    assert first == second == {"handled": "1", "run": 1}
    assert other == {"handled": "2", "run": 2}
    assert counter.runs == [{"id": "1"}, {"id": "2"}]
    items = boto3.client("dynamodb").scan(TableName="idempotency")["Items"]
    assert len(items) == 2 and {i["status"]["S"] for i in items} == {"COMPLETED"}


def test_the_table_is_looked_up_at_the_first_call_not_at_import(tables: None) -> None:
    # Given a table name that only exists once the environment is read
    asked: list[str] = []

    def table() -> str:
        asked.append("table")
        return "idempotency"

    once = once_per("id", argument="order", table=table)(Counter().handle)
    # When nothing has been called yet, then after two calls
    assert asked == []
    once({"id": "1"}, FakeContext())
    once({"id": "1"}, FakeContext())
    # Then the name was read once, at the first call
    assert asked == ["table"]


def test_a_failed_run_keeps_no_record_so_a_retry_runs_again(tables: None) -> None:
    # Given a function whose first run fails
    counter = Counter()
    once = once_per("id", argument="order", table=lambda: "idempotency")(counter.handle)
    with pytest.raises(RuntimeError, match="downstream refused"):
        once({"id": "1", "fail": True}, FakeContext())
    # When the same key comes again
    result = once({"id": "1"}, FakeContext())
    # Then it runs again and its result is the one recorded
    assert result == {"handled": "1", "run": 2}
    assert once({"id": "1"}, FakeContext()) == result


def test_records_can_live_in_a_table_keyed_pk_sk(tables: None) -> None:
    # Given a function whose records share a (pk, sk) table with other items
    once = once_per("id", argument="order", table=lambda: "guard", key_attr="pk", sort_key_attr="sk")(Counter().handle)
    # When it runs
    once({"id": "1"}, FakeContext())
    # Then its record is one item under an idempotency# partition
    (item,) = boto3.client("dynamodb").scan(TableName="guard")["Items"]
    assert item["pk"]["S"].startswith("idempotency#") and "#" in item["sk"]["S"]


def test_cache_clear_binds_the_next_call_to_the_table_of_that_moment(tables: None) -> None:
    # Given a function bound to one table, then pointed at another
    create_table("other", "id")
    names = iter(["idempotency", "other"])
    once = once_per("id", argument="order", table=lambda: next(names))(Counter().handle)
    once({"id": "1"}, FakeContext())
    once.cache_clear()
    # When the same key comes after the cache is cleared
    result = once({"id": "1"}, FakeContext())
    # Then it runs again, recorded in the other table
    assert result["run"] == 2
    assert len(boto3.client("dynamodb").scan(TableName="other")["Items"]) == 1
