"""DynamoRowsTable against moto's DynamoDB.

moto accepts a BatchWriteItem of any size, so the 25-item limit is checked by wrapping the
client; moto does reject a batch holding one key twice, as DynamoDB does. The oracle is the
ticks and rows put in: timestamps and TTLs are worked out here with strftime and calendar.
"""

from __future__ import annotations

import calendar
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from consumer.sinks.rows_table import DynamoRowsTable
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick
from core.settings import Settings
from tests.consumer.sinks.helpers import SHARD, enrich, utc_iso

TTL = timedelta(days=30, hours=6)
ROWS = 1_000
FIXED_WIDTH_TS = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")
NUMBER_ATTRIBUTES = (
    "price",
    "open",
    "high",
    "low",
    "volume",
    "prev_price",
    "change",
    "change_pct",
    "ma_4",
    "expires_at",
)


class RecordingClient:
    """A low-level client, every attribute forwarded; records each batch_write_item's item
    count and the keys it actually handed to DynamoDB, and rejects a batch holding one key
    twice as DynamoDB does (moto only rejects two *identical* items). Thread-safe: the sink
    calls it from several threads at once."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.batch_sizes: list[int] = []
        self.written: Counter[tuple[str, str]] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _count_call(self, requests: list[dict[str, Any]]) -> int:
        """Records the call; its number, from 1."""
        with self._lock:
            self.batch_sizes.append(len(requests))
            return len(self.batch_sizes)

    def _forward(self, table: str, requests: list[dict[str, Any]]) -> None:
        keys = [_key(r["PutRequest"]["Item"]) for r in requests]
        if len(set(keys)) != len(keys):
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "Provided list of item keys contains duplicates",
                    }
                },
                "BatchWriteItem",
            )
        response = self._client.batch_write_item(RequestItems={table: requests})
        assert not response.get("UnprocessedItems")
        with self._lock:
            self.written.update(keys)

    def batch_write_item(self, *, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:
        ((table, requests),) = RequestItems.items()
        self._count_call(requests)
        self._forward(table, requests)
        return {"UnprocessedItems": {}}


class ThrottlingClient(RecordingClient):
    """On its first ``failing_calls`` calls, writes only part of the request and hands the
    rest back as UnprocessedItems (the first call writes nothing at all)."""

    def __init__(self, client: Any, failing_calls: int) -> None:
        super().__init__(client)
        self.failing_calls = failing_calls
        self.handed_back = 0

    def batch_write_item(self, *, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:
        ((table, requests),) = RequestItems.items()
        call = self._count_call(requests)
        if call > self.failing_calls:
            self._forward(table, requests)
            return {"UnprocessedItems": {}}
        cut = 0 if call == 1 else len(requests) // 3
        if cut:
            self._forward(table, requests[:cut])
        with self._lock:
            self.handed_back += len(requests) - cut
        return {"UnprocessedItems": {table: requests[cut:]}}


class HandsBackKeyOnce(RecordingClient):
    """The first call holding ``key`` writes nothing and hands its whole batch back."""

    def __init__(self, client: Any, key: tuple[str, str]) -> None:
        super().__init__(client)
        self.key = key
        self.handed_back = 0

    def batch_write_item(self, *, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:
        ((table, requests),) = RequestItems.items()
        self._count_call(requests)
        if not self.handed_back and self.key in {_key(r["PutRequest"]["Item"]) for r in requests}:
            self.handed_back = len(requests)
            return {"UnprocessedItems": {table: requests}}
        self._forward(table, requests)
        return {"UnprocessedItems": {}}


def _key(item: dict[str, dict[str, Any]]) -> tuple[str, str]:
    return item["symbol"]["S"], item["ts"]["S"]


@pytest.fixture(scope="module")
def ticks_and_rows(real_ticks: list[Tick]) -> tuple[list[Tick], list[EnrichedRow]]:
    ticks = real_ticks[:ROWS]
    return ticks, enrich(ticks)


def _scan_typed(client: Any, table: str, **options: Any) -> list[dict[str, dict[str, Any]]]:
    items: list[dict[str, dict[str, Any]]] = []
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True, **options)
    for page in pages:
        items.extend(page["Items"])
    return items


def _untyped(item: dict[str, dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    """{"price": {"N": "1.5"}} -> {"price": ("N", Decimal("1.5"))}: type tag kept."""
    out = {}
    for name, typed in item.items():
        ((tag, value),) = typed.items()
        out[name] = (tag, Decimal(value) if tag == "N" else value)
    return out


def _expected(tick: Tick, row: EnrichedRow) -> dict[str, tuple[str, Any]]:
    """The item for a tick and the row put in: numbers typed N (exact), ts fixed-width,
    expires_at = the tick's time + TTL in epoch seconds, absent values left out."""
    assert row.symbol == tick.symbol and row.ts == tick.ts and row.price == tick.price
    expires = calendar.timegm(tick.ts.astimezone(UTC).timetuple()) + int(TTL.total_seconds())
    expected: dict[str, tuple[str, Any]] = {
        "symbol": ("S", tick.symbol),
        "ts": ("S", utc_iso(tick.ts)),
        "price": ("N", tick.price),
        "anomaly": ("BOOL", row.anomaly),
        "shard_id": ("S", SHARD),
        "sequence_number": ("S", row.sequence_number),
        "expires_at": ("N", Decimal(expires)),
    }
    optional: dict[str, tuple[str, Any]] = {
        "open": ("N", tick.open),
        "high": ("N", tick.high),
        "low": ("N", tick.low),
        "volume": ("N", None if tick.volume is None else Decimal(tick.volume)),
        "source": ("S", tick.source),
        "prev_price": ("N", row.prev_price),
        "change": ("N", row.change),
        "change_pct": ("N", row.change_pct),
        "ma_4": ("N", row.ma_4),
        "arrival_ts": ("S", None if row.arrival_ts is None else utc_iso(row.arrival_ts)),
    }
    expected.update({k: v for k, v in optional.items() if v[1] is not None})
    return expected


def test_a_thousand_rows_go_in_batches_of_at_most_25_and_all_land_exactly(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
) -> None:
    ticks, rows = ticks_and_rows
    client = RecordingClient(dynamodb_client)
    DynamoRowsTable(client, settings.rows_table, TTL).write_rows(rows)

    assert client.batch_sizes, "nothing was sent"
    assert max(client.batch_sizes) <= 25
    assert sum(client.batch_sizes) == ROWS
    assert len(client.batch_sizes) == 40  # 1,000 / 25: no needlessly small batches

    items = {
        (i["symbol"]["S"], i["ts"]["S"]): _untyped(i)
        for i in _scan_typed(dynamodb_client, settings.rows_table)
    }
    assert len(items) == ROWS
    assert all(FIXED_WIDTH_TS.match(ts) for _, ts in items)
    for tick, row in zip(ticks, rows, strict=True):
        item = items[(tick.symbol, utc_iso(tick.ts))]
        assert item == _expected(tick, row), tick
        assert {name for name, (tag, _) in item.items() if tag == "N"} <= set(NUMBER_ATTRIBUTES)
    # Some rows carry every optional number, some (a symbol's first) only a few.
    assert any("ma_4" in item for item in items.values())
    assert any("prev_price" not in item for item in items.values())


def test_numbers_come_back_as_exact_decimals_and_ts_is_fixed_width(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
) -> None:
    ticks, rows = ticks_and_rows
    DynamoRowsTable(dynamodb_client, settings.rows_table, TTL).write_rows(rows)
    table = dynamodb.Table(settings.rows_table)
    for tick in ticks[::97]:
        item = table.get_item(Key={"symbol": tick.symbol, "ts": utc_iso(tick.ts)})["Item"]
        assert FIXED_WIDTH_TS.match(item["ts"]), item["ts"]
        assert type(item["price"]) is Decimal and item["price"] == tick.price
        assert str(item["price"]) == str(tick.price)  # no float noise, no padding
        assert type(item["expires_at"]) is Decimal
        ttl_seconds = int(item["expires_at"]) - int(tick.ts.timestamp())
        assert ttl_seconds == 30 * 86_400 + 6 * 3_600


def test_the_range_key_sorts_chronologically(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
) -> None:
    """A ts range query returns exactly the ticks between two instants, in time order."""
    ticks, rows = ticks_and_rows
    DynamoRowsTable(dynamodb_client, settings.rows_table, TTL).write_rows(rows)
    low = datetime(2000, 9, 29, 20, 0, tzinfo=UTC)
    high = datetime(2001, 2, 1, 22, 0, tzinfo=UTC)
    expected = [utc_iso(t.ts) for t in ticks if t.symbol == "IBM" and low <= t.ts <= high]
    assert len(expected) > 50
    got: list[str] = []
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("symbol").eq("IBM")
        & Key("ts").between(utc_iso(low), utc_iso(high))
    }
    table = dynamodb.Table(settings.rows_table)
    while True:
        page = table.query(**query)
        got.extend(item["ts"] for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert got == expected


def test_a_raw_batch_with_one_key_twice_is_rejected(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
) -> None:
    """The premise of the next tests: without de-duplication the batch would fail. moto
    rejects two identical items; the wrapper, like DynamoDB, two items with one key."""
    tick = ticks_and_rows[0][0]
    item = {"symbol": tick.symbol, "ts": utc_iso(tick.ts), "price": tick.price}
    identical = [{"PutRequest": {"Item": dict(item)}}, {"PutRequest": {"Item": dict(item)}}]
    with pytest.raises(ClientError) as error:
        dynamodb.meta.client.batch_write_item(RequestItems={settings.rows_table: identical})
    assert error.value.response["Error"]["Code"] == "ValidationException"

    typed = {"symbol": {"S": tick.symbol}, "ts": {"S": utc_iso(tick.ts)}}
    one = {**typed, "price": {"N": str(tick.price)}}
    other_price = {**typed, "price": {"N": str(tick.price + 1)}}
    same_key = [{"PutRequest": {"Item": one}}, {"PutRequest": {"Item": other_price}}]
    with pytest.raises(ClientError) as error:
        RecordingClient(dynamodb_client).batch_write_item(
            RequestItems={settings.rows_table: same_key}
        )
    assert error.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("first", "second"),
    [(3, 11), (0, 24), (2, 40)],
    ids=["same-batch", "batch-edges", "across-batches"],
)
def test_one_key_twice_in_a_write_the_last_one_wins(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
    first: int,
    second: int,
) -> None:
    rows = list(ticks_and_rows[1][:60])
    original = rows[first]
    again = msgspec.structs.replace(
        original, price=original.price + Decimal("0.0001"), sequence_number="77"
    )
    rows.insert(second, again)
    client = RecordingClient(dynamodb_client)
    DynamoRowsTable(client, settings.rows_table, TTL).write_rows(rows)  # no ValidationException

    assert max(client.batch_sizes) <= 25
    table = dynamodb.Table(settings.rows_table)
    item = table.get_item(Key={"symbol": original.symbol, "ts": utc_iso(original.ts)})["Item"]
    assert item["price"] == original.price + Decimal("0.0001")
    assert item["sequence_number"] == "77"
    assert table.scan(Select="COUNT")["Count"] == 60


def test_an_earlier_duplicate_loses_to_a_later_original(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
) -> None:
    rows = list(ticks_and_rows[1][:10])
    impostor = msgspec.structs.replace(rows[7], price=Decimal("1.5"))
    rows.insert(1, impostor)
    client = RecordingClient(dynamodb_client)
    DynamoRowsTable(client, settings.rows_table, TTL).write_rows(rows)
    assert client.batch_sizes == [10]
    table = dynamodb.Table(settings.rows_table)
    item = table.get_item(Key={"symbol": rows[8].symbol, "ts": utc_iso(rows[8].ts)})["Item"]
    assert item["price"] == rows[8].price != Decimal("1.5")


def test_a_duplicate_of_an_item_handed_back_unprocessed_still_wins(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
) -> None:
    """Row 3's key is in the first batch, which comes back unprocessed once; a newer version
    of row 3 arrives after it in the write: the newer one is what stays."""
    rows = list(ticks_and_rows[1][:30])
    newer = msgspec.structs.replace(rows[3], price=rows[3].price * 2, sequence_number="88")
    rows.insert(27, newer)
    client = HandsBackKeyOnce(dynamodb_client, (rows[3].symbol, utc_iso(rows[3].ts)))
    DynamoRowsTable(client, settings.rows_table, TTL).write_rows(rows)
    assert client.handed_back == 25
    table = dynamodb.Table(settings.rows_table)
    item = table.get_item(Key={"symbol": newer.symbol, "ts": utc_iso(newer.ts)})["Item"]
    assert (item["price"], item["sequence_number"]) == (rows[3].price * 2, "88")
    assert table.scan(Select="COUNT")["Count"] == 30


@pytest.mark.parametrize("failing_calls", [1, 12])
def test_unprocessed_items_are_retried_until_each_is_written_exactly_once(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    ticks_and_rows: tuple[list[Tick], list[EnrichedRow]],
    failing_calls: int,
) -> None:
    ticks, rows = ticks_and_rows
    client = ThrottlingClient(dynamodb_client, failing_calls)
    DynamoRowsTable(client, settings.rows_table, TTL).write_rows(rows)

    assert client.handed_back > 0
    assert max(client.batch_sizes) <= 25
    expected_keys = {(t.symbol, utc_iso(t.ts)) for t in ticks}
    assert set(client.written) == expected_keys
    assert [k for k, n in client.written.items() if n != 1] == []
    # Only the attributes that tell versions apart (a full scan of moto is slow).
    scanned = _scan_typed(
        dynamodb_client,
        settings.rows_table,
        ProjectionExpression="symbol, ts, price, sequence_number, expires_at",
    )
    items = {(i["symbol"]["S"], i["ts"]["S"]): _untyped(i) for i in scanned}
    assert len(scanned) == len(items) == ROWS
    for tick, row in zip(ticks, rows, strict=True):
        full = _expected(tick, row)
        assert items[(tick.symbol, utc_iso(tick.ts))] == {
            name: full[name] for name in ("symbol", "ts", "price", "sequence_number", "expires_at")
        }
