"""``stockpipe bench catchup``: how fast one shard processor drains a backlog when every AWS
call costs a round trip (the latency proxy in front of moto, 20 ms per call by default).

The processor is the real ``ShardProcessor`` with the real sinks (``DynamoRowsTable``,
``S3Lake``, ``DynamoStateStore``), driven in-process: ``process_records`` is called with
synthetic ticks in GetRecords-sized lists (as the daemon hands a catching-up shard 10,000
records a call), and the checkpoint is one conditional ``UpdateItem`` on a lease table through
the proxy, which is what the daemon's checkpoint costs. The daemon itself and Kinesis are left
out: the figure is the processor's, from a backlog already fetched.

Side by side: the earlier pipeline's per-record design (one PutItem and one S3 object per
tick, one after the other) through the same proxy, and the rows sink alone with boto3's serial
``batch_writer`` against the overlapped ``DynamoRowsTable``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Final

from consumer.fencing import Ownership
from consumer.pipeline import TickPipeline
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.lake import S3Lake
from consumer.sinks.rows_table import DynamoRowsTable
from consumer.sinks.state_store import DynamoStateStore
from consumer.sinks.types import LakeBatch, LakeSink, RowSink, SavedState, StateStore
from consumer.tables import create_tables
from core.aws import ROWS_CLIENT_CONFIG
from core.contracts.row import EnrichedRow
from core.contracts.schema import row_to_item
from core.contracts.tick import Tick, encode_tick
from core.settings import Settings
from producer.synthetic import synthetic_ticks
from stockpipe.bench.services import Services

SHARD: Final = "shardId-000000000000"
FIRST_SEQUENCE: Final = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
LEASE_TABLE: Final = "bench-catchup-leases"
TTL: Final = timedelta(days=30)


@dataclass
class Timings:
    """Seconds spent in each commit step, one entry per commit."""

    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, step: str, seconds: float) -> None:
        self.steps[step].append(seconds)

    def mean_ms(self, step: str) -> float:
        values = self.steps.get(step) or [0.0]
        return 1000 * sum(values) / len(values)

    def total(self, step: str) -> float:
        return sum(self.steps.get(step, []))


class TimedSinks:
    """The three sinks, each call timed. The commit runs the rows and lake steps side by
    side, so their times overlap: per commit, their sum exceeds the commit's wall time."""

    def __init__(self, rows: RowSink, lake: LakeSink, state: StateStore, t: Timings) -> None:
        self._rows, self._lake, self._state, self._t = rows, lake, state, t

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        start = time.perf_counter()
        self._rows.write_rows(rows)
        self._t.add("rows", time.perf_counter() - start)

    def write_batch(self, batch: LakeBatch) -> None:
        start = time.perf_counter()
        self._lake.write_batch(batch)
        self._t.add("lake", time.perf_counter() - start)

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        start = time.perf_counter()
        try:
            return self._state.load(symbols)
        finally:
            self._t.add("state load", time.perf_counter() - start)

    def forget(self, symbols: Iterable[str]) -> None:
        self._state.forget(symbols)

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        start = time.perf_counter()
        self._state.save(states, ownership)
        self._t.add("state", time.perf_counter() - start)

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        start = time.perf_counter()
        try:
            return self._state.claim(shard_id, worker)
        finally:
            self._t.add("state claim", time.perf_counter() - start)

    def holds(self, ownership: Ownership) -> bool:
        start = time.perf_counter()
        try:
            return self._state.holds(ownership)
        finally:
            self._t.add("fence check", time.perf_counter() - start)


class LeaseCheckpointer:
    """A checkpoint as the daemon makes one: a conditional UpdateItem on its lease table."""

    def __init__(self, client: Any, t: Timings) -> None:
        self._client, self._t = client, t

    def checkpoint(self, sequence_number: str | None = None) -> None:
        start = time.perf_counter()
        self._client.update_item(
            TableName=LEASE_TABLE,
            Key={"leaseKey": {"S": SHARD}},
            UpdateExpression="SET checkpoint = :c, leaseOwner = :o",
            ConditionExpression="attribute_not_exists(leaseOwner) OR leaseOwner = :o",
            ExpressionAttributeValues={
                ":c": {"S": sequence_number or "SHARD_END"},
                ":o": {"S": "bench-worker"},
            },
        )
        self._t.add("checkpoint", time.perf_counter() - start)


@dataclass(frozen=True)
class Catchup:
    ticks: int
    seconds: float
    commits: int
    timings: Timings
    cpu_seconds: float  # this process's CPU (processor and sink threads) over the run

    @property
    def ticks_per_second(self) -> float:
        return self.ticks / self.seconds


@dataclass(frozen=True)
class PerRecord:
    ticks: int
    seconds: float

    @property
    def ticks_per_second(self) -> float:
        return self.ticks / self.seconds


@dataclass(frozen=True)
class RowsOnly:
    rows: int
    serial_seconds: float
    overlapped_seconds: float


def _settings(run: str) -> Settings:
    return Settings(
        rows_table=f"bench-{run}-rows",
        state_table=f"bench-{run}-state",
        bucket=f"bench-{run}-lake",
    )


def prepare(services: Services, run: str) -> Settings:
    """Tables and bucket, created straight on moto (set-up does not pay the latency)."""
    settings = _settings(run)
    if services.backend != "moto":
        return settings  # the null endpoint accepts writes to any table or bucket
    dynamodb = services.client("dynamodb", direct=True)
    create_tables(dynamodb, settings)
    if LEASE_TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=LEASE_TABLE,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    services.client("s3", direct=True).create_bucket(Bucket=settings.bucket)
    return settings


def backlog(ticks: int, symbols: int, seed: int) -> list[StreamRecord]:
    arrival = int(datetime.now(UTC).timestamp() * 1000)
    return [
        StreamRecord(encode_tick(tick), str(FIRST_SEQUENCE + 4096 * i), arrival)
        for i, tick in enumerate(islice(synthetic_ticks(symbols, seed), ticks))
    ]


def bench_catchup(
    services: Services,
    records: list[StreamRecord],
    flush_records: int,
    get_records: int,
    writers: int,
    run: str,
) -> Catchup:
    settings = prepare(services, run)
    timings = Timings()
    rows = DynamoRowsTable(
        services.client("dynamodb", config=ROWS_CLIENT_CONFIG),
        settings.rows_table,
        TTL,
        writers=writers,
    )
    lake = S3Lake(
        services.client("s3"), settings.bucket, settings.ticks_prefix, settings.dead_letter_prefix
    )
    state = DynamoStateStore(services.resource_client(), settings.state_table)
    sinks = TimedSinks(rows, lake, state, timings)
    processor = ShardProcessor(
        sinks, sinks, sinks, FlushPolicy(records=flush_records, seconds=3600.0)
    )
    processor.initialize(SHARD)
    checkpointer = LeaseCheckpointer(services.client("dynamodb"), timings)
    started, cpu = time.perf_counter(), time.process_time()
    # The processor commits at the end of a process_records call once the flush size is
    # pending: catching up, the daemon hands it a full GetRecords (up to KCL's maxRecords) a
    # call, so a commit holds max(flush size, GetRecords size) records.
    for start in range(0, len(records), get_records):
        processor.process_records(records[start : start + get_records], checkpointer)
    processor.shutdown_requested(checkpointer)  # the tail of the backlog
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    state.close()
    accepted = processor.pipeline.counts().accepted
    if accepted != len(records) or processor.committed_records != len(records):
        raise AssertionError(f"benchmark backlog not all committed: {accepted} accepted")
    return Catchup(len(records), elapsed, len(timings.steps["checkpoint"]), timings, cpu)


def bench_per_record(services: Services, ticks: list[Tick], run: str) -> PerRecord:
    """The earlier pipeline's design: per tick, one PutItem of the row and one S3 object of
    the tick, in series, through the same proxy."""
    settings = prepare(services, run)
    dynamodb = services.resource_client()
    s3 = services.client("s3")
    pipeline = TickPipeline()
    started = time.perf_counter()
    for index, tick in enumerate(ticks):
        row = pipeline.apply(encode_tick(tick), SHARD, str(FIRST_SEQUENCE + index))
        assert isinstance(row, EnrichedRow)
        dynamodb.put_item(TableName=settings.rows_table, Item=row_to_item(row, TTL))
        s3.put_object(
            Bucket=settings.bucket,
            Key=f"raw/{row.symbol}/{row.sequence_number}.json",
            Body=json.dumps({"symbol": row.symbol, "price": str(row.price)}).encode(),
        )
    return PerRecord(len(ticks), time.perf_counter() - started)


def bench_rows_only(services: Services, rows: list[EnrichedRow], writers: int) -> RowsOnly:
    """The rows sink alone: boto3's ``batch_writer`` (25 a call, one call at a time) against
    ``DynamoRowsTable`` with ``writers`` calls in flight."""
    serial_settings = prepare(services, "rows-serial")
    table = services.resource().Table(serial_settings.rows_table)
    started = time.perf_counter()
    with table.batch_writer() as writer:
        for row in rows:
            writer.put_item(Item=row_to_item(row, TTL))
    serial = time.perf_counter() - started
    overlapped_settings = prepare(services, "rows-overlapped")
    sink = DynamoRowsTable(
        services.client("dynamodb", config=ROWS_CLIENT_CONFIG),
        overlapped_settings.rows_table,
        TTL,
        writers=writers,
    )
    started = time.perf_counter()
    sink.write_rows(rows)
    return RowsOnly(len(rows), serial, time.perf_counter() - started)


def enriched(ticks: list[Tick]) -> list[EnrichedRow]:
    pipeline = TickPipeline()
    out = []
    for index, tick in enumerate(ticks):
        row = pipeline.apply(encode_tick(tick), SHARD, str(FIRST_SEQUENCE + index))
        assert isinstance(row, EnrichedRow)
        out.append(row)
    return out
