"""The DynamoDB rows table: items keyed by symbol + ts, so a replay rewrites the same items,
written with overlapped ``BatchWriteItem`` calls.

Why hand-written instead of boto3's ``BatchWriter`` (``table.batch_writer()``): it sends one
call after another. On AWS a call costs milliseconds: at 20 ms a call a serial batch writer
tops out at 25 rows / 20 ms = 1,250 rows/s (measured through the local proxy at 20 ms on this
project's machine: 630-770 rows/s, client overhead included) - barely above one shard's write
limit of 1,000 records/s, so a processor behind after an outage could hardly catch up. Here
the batches of one ``write_rows`` go out on a bounded pool of threads at once (boto3 clients
are thread-safe, resources are not: this takes a low-level client); ``stockpipe bench
catchup`` prints both figures.

What is kept from ``BatchWriter``:
- at most 25 items per call (DynamoDB's limit; moto does not enforce it);
- no key twice in one call (DynamoDB rejects such a batch): of two rows with one key the later
  one wins. The rows are de-duplicated before they are cut into batches, so a key is in
  exactly one batch, and batches running at once can never race each other on a key;
- ``UnprocessedItems`` are sent again, here with exponential backoff and full jitter, until a
  time budget per batch runs out: then ``RowsNotWritten`` (the processor fails stop and the
  daemon replays from the last checkpoint; the writes are idempotent).
Throttling errors and 5xx are retried inside botocore (``core/aws.py``: "standard" mode).

``write_rows`` returns only when every batch is written: the commit order (rows before lake
and state, state before checkpoint) relies on it. It never returns or raises while a call it
started is still running.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer

from consumer.errors import SinkBusy
from core.contracts.row import EnrichedRow
from core.contracts.schema import ROWS_HASH_KEY, ROWS_RANGE_KEY, row_to_item

BATCH_WRITE_LIMIT: Final = 25  # DynamoDB's BatchWriteItem maximum
# Calls in flight at once, per processor. Measured at 20 ms a call (bench catchup, round trips
# only): 16 -> 4,900 ticks/s caught up, 32 -> 8,300 (a call took ~60 ms end to end through the
# local proxy, client and server CPU included). botocore's connection pool (core/aws.py,
# max_pool_connections=32) must be at least this, or calls queue for a connection.
WRITERS: Final = 32
# How long one batch may keep coming back unprocessed before the write gives up.
RETRY_BUDGET_SECONDS: Final = 30.0
BACKOFF_BASE_SECONDS: Final = 0.05
BACKOFF_CAP_SECONDS: Final = 5.0

Item = dict[str, dict[str, Any]]  # a typed item: {"price": {"N": "1.5"}, ...}
_SERIALIZER: Final = TypeSerializer()


def typed_value(value: Any) -> dict[str, Any]:
    """DynamoDB's typed form of one attribute value, as boto3's ``TypeSerializer`` gives it.
    A row holds only str, bool and Decimal: those are done here, about ten times faster (the
    serializer's generic dispatch cost ~60 us a row, more than the rest of the processor's
    work per tick); a Decimal still goes through DynamoDB's number context, so one with more
    than 38 digits or out of range fails as it would there. Anything else: the serializer."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is Decimal and value.is_finite():
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    return _SERIALIZER.serialize(value)  # type: ignore[return-value]


class RowsNotWritten(SinkBusy):
    """Rows still unprocessed when the retry budget ran out (a table throttled for longer than
    the budget). Nothing is checkpointed: the daemon replays them."""

    def __init__(self, table: str, unwritten: int, attempts: int, budget: float) -> None:
        super().__init__(
            f"{unwritten} rows of table {table} still unprocessed after {attempts} "
            f"BatchWriteItem attempts in {budget:g} s (UnprocessedItems each time; the table "
            "is throttled or under-provisioned)"
        )
        self.table = table
        self.unwritten = unwritten


class DynamoRowsTable:
    """The ``RowSink`` over DynamoDB. ``client`` is a low-level DynamoDB client (thread-safe,
    unlike a boto3 resource); items are serialized here into DynamoDB's typed form."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        ttl: timedelta,
        *,
        writers: int = WRITERS,
        retry_budget_seconds: float = RETRY_BUDGET_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if writers < 1:
            raise ValueError(f"writers must be >= 1, got {writers}")
        self._client = client
        self._table_name = table_name
        self._ttl = ttl
        self._writers = writers
        self._budget = retry_budget_seconds
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        batches = self._batches(rows)
        if not batches:
            return
        if len(batches) == 1:  # nothing to overlap: no thread
            self._write_batch(batches[0], threading.Event())
            return
        failed = threading.Event()  # tells batches still backing off to stop early
        # A pool per call, shut down before returning: no call of this write can still be
        # running once the commit moves on (threads cost microseconds; a commit, milliseconds).
        with ThreadPoolExecutor(
            max_workers=min(self._writers, len(batches)), thread_name_prefix="rows"
        ) as pool:
            futures = [pool.submit(self._write_batch, batch, failed) for batch in batches]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            error = _first_error(futures, done)
            if error is not None:
                failed.set()
                for future in futures:
                    future.cancel()  # not started yet: never starts
        if error is not None:
            raise error

    def _batches(self, rows: Sequence[EnrichedRow]) -> list[list[Item]]:
        # Later rows replace earlier ones of the same key (a dict keeps the first position).
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            item = row_to_item(row, self._ttl)
            latest[(item[ROWS_HASH_KEY], item[ROWS_RANGE_KEY])] = item
        typed: list[Item] = [
            {name: typed_value(value) for name, value in item.items()} for item in latest.values()
        ]
        return [
            typed[start : start + BATCH_WRITE_LIMIT]
            for start in range(0, len(typed), BATCH_WRITE_LIMIT)
        ]

    def _write_batch(self, batch: list[Item], failed: threading.Event) -> None:
        requests = [{"PutRequest": {"Item": item}} for item in batch]
        deadline = self._clock() + self._budget
        attempt = 0
        while True:
            attempt += 1
            response = self._client.batch_write_item(RequestItems={self._table_name: requests})
            requests = (response.get("UnprocessedItems") or {}).get(self._table_name) or []
            if not requests:
                return
            # Full jitter (uniform on [0, min(cap, base * 2^n)]): batches handed back together
            # do not come back together.
            ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
            delay = self._jitter() * ceiling
            if failed.is_set() or self._clock() + delay > deadline:
                raise RowsNotWritten(self._table_name, len(requests), attempt, self._budget)
            self._sleep(delay)


def _first_error(futures: list[Future[None]], done: set[Future[None]]) -> BaseException | None:
    """The first failed batch's error in submission order (a stable message), if any."""
    for future in futures:
        if future in done and future.exception() is not None:
            return future.exception()
    return None
