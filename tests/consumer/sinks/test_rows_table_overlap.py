"""DynamoRowsTable's overlapped calls: bounded concurrency, UnprocessedItems re-sent with
exponential backoff and full jitter, a retry budget that ends in a clear error, and no call
still running when ``write_rows`` returns or raises.

In-process moto (``mock_aws``) serves the items; the clients here wrap a real low-level
client (no mock library) and count what the sink does. The last tests run the sink through
the local proxy (``python -m stockpipe.local.proxy``) in front of moto server, with 20 ms per
call and injected throttling and 500s, retried by botocore as configured in core/aws.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from consumer.sinks.rows_table import DynamoRowsTable, RowsNotWritten, typed_value
from consumer.tables import create_tables
from core.aws import RETRY_CONFIG
from core.contracts.row import EnrichedRow
from core.contracts.schema import row_to_item
from core.contracts.tick import Tick
from core.settings import Settings
from tests.consumer.sinks.helpers import REGION, enrich, utc_iso
from tests.local_servers import RunningProxy, start_proxy, stop_proxy

TTL = timedelta(days=30)
ROWS = 1_000  # 40 batches of 25


@pytest.fixture(scope="module")
def rows(real_ticks: list[Tick]) -> list[EnrichedRow]:
    return enrich(real_ticks[:ROWS])


def _key(item: dict[str, dict[str, Any]]) -> tuple[str, str]:
    return item["symbol"]["S"], item["ts"]["S"]


def _expected_keys(rows: list[EnrichedRow]) -> set[tuple[str, str]]:
    return {(r.symbol, utc_iso(r.ts)) for r in rows}


class CountingClient:
    """Forwards batch_write_item to a real client after ``delay`` seconds (a round trip),
    counting calls in flight at once and the keys each accepted call wrote."""

    def __init__(self, client: Any, delay: float = 0.0) -> None:
        self._client = client
        self._delay = delay
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        self.written: Counter[tuple[str, str]] = Counter()

    def batch_write_item(self, *, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self._delay)
            return self.answer(RequestItems)
        finally:
            with self._lock:
                self.in_flight -= 1

    def answer(self, request_items: dict[str, list[dict[str, Any]]]) -> Any:
        ((_, requests),) = request_items.items()
        assert len(requests) <= 25
        keys = [_key(r["PutRequest"]["Item"]) for r in requests]
        assert len(set(keys)) == len(keys), "one key twice in a batch"
        response = self._client.batch_write_item(RequestItems=request_items)
        assert not response.get("UnprocessedItems")
        with self._lock:
            self.written.update(keys)
        return {"UnprocessedItems": {}}


class HandsBack(CountingClient):
    """Each batch's first ``times`` attempts come back whole as UnprocessedItems (None:
    every attempt does)."""

    def __init__(self, client: Any, times: int | None) -> None:
        super().__init__(client)
        self.times = times
        self.attempts: Counter[tuple[str, str]] = Counter()  # by the batch's first key

    def answer(self, request_items: dict[str, list[dict[str, Any]]]) -> Any:
        ((table, requests),) = request_items.items()
        first = _key(requests[0]["PutRequest"]["Item"])
        with self._lock:
            self.attempts[first] += 1
            attempt = self.attempts[first]
        if self.times is None or attempt <= self.times:
            return {"UnprocessedItems": {table: requests}}
        return super().answer(request_items)


class FakeTime:
    """A clock that moves only when the sink sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def _count_items(client: Any, table: str) -> int:
    pages = client.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(page["Count"] for page in pages)


def test_concurrency_is_bounded_by_the_pool_and_every_row_lands_once(
    dynamodb: Any, dynamodb_client: Any, settings: Settings, rows: list[EnrichedRow]
) -> None:
    client = CountingClient(dynamodb_client, delay=0.02)
    DynamoRowsTable(client, settings.rows_table, TTL, writers=4).write_rows(rows)

    assert client.max_in_flight <= 4
    assert client.max_in_flight >= 2, "the calls never overlapped"
    assert client.in_flight == 0
    assert client.calls == ROWS // 25
    assert set(client.written) == _expected_keys(rows)
    assert set(client.written.values()) == {1}
    assert _count_items(dynamodb_client, settings.rows_table) == ROWS


def test_one_writer_sends_one_call_at_a_time(
    dynamodb: Any, dynamodb_client: Any, settings: Settings, rows: list[EnrichedRow]
) -> None:
    client = CountingClient(dynamodb_client, delay=0.001)
    DynamoRowsTable(client, settings.rows_table, TTL, writers=1).write_rows(rows[:200])
    assert client.max_in_flight == 1
    assert client.calls == 8


@pytest.mark.parametrize(("jitter", "scale"), [(1.0, 1.0), (0.5, 0.5), (0.0, 0.0)])
def test_unprocessed_items_back_off_exponentially_with_full_jitter(
    dynamodb: Any,
    dynamodb_client: Any,
    settings: Settings,
    rows: list[EnrichedRow],
    jitter: float,
    scale: float,
) -> None:
    """One batch handed back 8 times: the waits are jitter x min(5 s, 50 ms x 2^n), n from 0
    (worked out here: 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, then the 5 s cap)."""
    time_ = FakeTime()
    client = HandsBack(dynamodb_client, times=8)
    sink = DynamoRowsTable(
        client,
        settings.rows_table,
        TTL,
        sleep=time_.sleep,
        clock=time_.clock,
        jitter=lambda: jitter,
    )
    sink.write_rows(rows[:25])
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    assert time_.sleeps == pytest.approx([c * scale for c in ceilings])
    assert client.calls == 9
    assert set(client.written) == _expected_keys(rows[:25])


def test_random_jitter_stays_under_the_ceiling_and_every_batch_is_re_sent(
    dynamodb: Any, dynamodb_client: Any, settings: Settings, rows: list[EnrichedRow]
) -> None:
    time_ = FakeTime()
    client = HandsBack(dynamodb_client, times=3)
    DynamoRowsTable(
        client, settings.rows_table, TTL, sleep=time_.sleep, clock=time_.clock
    ).write_rows(rows)
    batches = ROWS // 25
    assert client.calls == 4 * batches
    assert len(time_.sleeps) == 3 * batches
    # Three waits per batch, at most 0.05, 0.1 and 0.2 s, and not all the same draw.
    assert all(0 <= s <= 0.2 for s in time_.sleeps)
    assert len(set(time_.sleeps)) > batches
    assert set(client.written) == _expected_keys(rows)
    assert set(client.written.values()) == {1}
    assert _count_items(dynamodb_client, settings.rows_table) == ROWS


def test_an_exhausted_budget_raises_a_clear_error_after_every_call_has_ended(
    dynamodb: Any, dynamodb_client: Any, settings: Settings, rows: list[EnrichedRow]
) -> None:
    time_ = FakeTime()
    client = HandsBack(dynamodb_client, times=None)  # the table never accepts anything
    sink = DynamoRowsTable(
        client,
        settings.rows_table,
        TTL,
        writers=1,  # one batch at a time: the fake clock then moves with one batch's waits
        retry_budget_seconds=2.0,
        sleep=time_.sleep,
        clock=time_.clock,
        jitter=lambda: 1.0,
    )
    with pytest.raises(RowsNotWritten) as raised:
        sink.write_rows(rows[:100])
    assert client.in_flight == 0
    message = str(raised.value)
    assert settings.rows_table in message and "25 rows" in message
    assert "UnprocessedItems" in message
    # Waits of one batch: 0.05 + 0.1 + 0.2 + 0.4 + 0.8 = 1.55 s; the next (1.6 s) would pass
    # the 2 s budget, so it raises after 6 attempts instead of sleeping.
    assert "after 6 BatchWriteItem attempts" in message
    assert _count_items(dynamodb_client, settings.rows_table) == 0


class FailsOnce(CountingClient):
    """The call holding ``key`` fails with a non-retryable error; the others take 20 ms."""

    def __init__(self, client: Any, key: tuple[str, str]) -> None:
        super().__init__(client, delay=0.02)
        self.key = key

    def answer(self, request_items: dict[str, list[dict[str, Any]]]) -> Any:
        ((_, requests),) = request_items.items()
        if self.key in {_key(r["PutRequest"]["Item"]) for r in requests}:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "bad item"}},
                "BatchWriteItem",
            )
        return super().answer(request_items)


def test_a_failed_call_is_raised_once_the_others_have_ended(
    dynamodb: Any, dynamodb_client: Any, settings: Settings, rows: list[EnrichedRow]
) -> None:
    client = FailsOnce(dynamodb_client, (rows[30].symbol, utc_iso(rows[30].ts)))
    with pytest.raises(ClientError, match="bad item"):
        DynamoRowsTable(client, settings.rows_table, TTL, writers=4).write_rows(rows)
    assert client.in_flight == 0
    # Batches not started when the failure was seen never start.
    assert client.calls < ROWS // 25


# ---- through the local proxy: 20 ms per call, faults retried by botocore -------------------


@pytest.fixture(scope="module")
def slow_proxy(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    proxy = start_proxy(moto_endpoint, log, "--latency-ms", "20", "--seed", "3")
    try:
        yield proxy
    finally:
        stop_proxy(proxy)


def _proxied_client(proxy: RunningProxy) -> Any:
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("dynamodb", endpoint_url=proxy.url, config=RETRY_CONFIG)


@pytest.fixture
def proxied_table(slow_proxy: RunningProxy, request: pytest.FixtureRequest) -> str:
    settings = Settings(
        rows_table=f"rows-{request.node.name[:40]}".replace("[", "-").replace("]", ""),
        state_table=f"state-{request.node.name[:40]}".replace("[", "-").replace("]", ""),
    )
    create_tables(_proxied_client(slow_proxy), settings)
    slow_proxy.set_faults([])
    slow_proxy.control("POST", "stats/reset")
    return settings.rows_table


def test_through_the_proxy_calls_overlap_and_every_row_lands(
    slow_proxy: RunningProxy, proxied_table: str, rows: list[EnrichedRow]
) -> None:
    client = CountingClient(_proxied_client(slow_proxy))
    DynamoRowsTable(client, proxied_table, TTL, writers=8).write_rows(rows)
    assert 2 <= client.max_in_flight <= 8
    assert set(client.written) == _expected_keys(rows)
    assert slow_proxy.stats()["by_service"]["dynamodb"] == ROWS // 25
    assert _count_items(_proxied_client(slow_proxy), proxied_table) == ROWS


def test_through_the_proxy_throttling_and_500s_are_retried_and_every_row_lands_once(
    slow_proxy: RunningProxy, proxied_table: str, rows: list[EnrichedRow], tmp_path: Path
) -> None:
    slow_proxy.set_faults(
        [
            {"name": "throttle", "fault": "throttle", "service": "dynamodb",
             "operation": "BatchWriteItem", "probability": 0.2},
            {"name": "err500", "fault": "500", "service": "dynamodb",
             "operation": "BatchWriteItem", "probability": 0.1},
        ],
        seed=11,
    )  # fmt: skip
    client = CountingClient(_proxied_client(slow_proxy))
    DynamoRowsTable(client, proxied_table, TTL).write_rows(rows)
    faults = slow_proxy.stats()["faults_by_rule"]
    assert faults.get("throttle", 0) > 0 and faults.get("err500", 0) > 0
    slow_proxy.set_faults([])
    # botocore retried the failed calls inside one batch_write_item: each batch was accepted
    # once, and every row is in the table.
    assert client.calls == ROWS // 25
    assert set(client.written) == _expected_keys(rows)
    assert set(client.written.values()) == {1}
    assert _count_items(_proxied_client(slow_proxy), proxied_table) == ROWS


# ---- the sink's own serializer against boto3's -----------------------------------------------


def test_typed_values_are_what_boto3s_serializer_gives(rows: list[EnrichedRow]) -> None:
    """The oracle is boto3's TypeSerializer, over every attribute of real rows."""
    serializer = TypeSerializer()
    for row in rows:
        item = row_to_item(row, TTL)
        assert {k: typed_value(v) for k, v in item.items()} == {
            k: serializer.serialize(v) for k, v in item.items()
        }


@pytest.mark.parametrize(
    "value",
    [Decimal("1" * 39), Decimal("NaN"), Decimal("Infinity"), Decimal("1E+200"), 1.5],
    ids=["39-digits", "nan", "infinity", "too-large", "float"],
)
def test_values_dynamodb_cannot_hold_fail_as_with_boto3(value: Any) -> None:
    with pytest.raises(Exception) as ours:
        typed_value(value)
    with pytest.raises(Exception) as theirs:
        TypeSerializer().serialize(value)
    assert type(ours.value) is type(theirs.value)
