"""Two owners of one shard, in one process, on moto: the interleavings a real fleet cannot be
made to produce on demand. A stale owner is "paused" at an exact step of its commit by a
wrapper around its sink clients that, at that step, runs the new owner's work before letting
the stale owner go on - the same order of effects as a SIGSTOP there.

The oracle is ``stockpipe process`` (``consumer.file_run.process_file``) over the same records
written to a file: the lake, the rows table and the dead letters must hold exactly that."""

from __future__ import annotations

import io
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq

from consumer.fencing import Ownership
from consumer.file_run import process_file
from consumer.processor import CheckpointFailed, FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.lake import S3Lake
from consumer.sinks.rows_table import DynamoRowsTable
from consumer.sinks.state_store import DynamoStateStore
from consumer.sinks.types import SavedState
from core.contracts.row import EnrichedRow
from core.contracts.tick import format_ts
from core.contracts.window import decode_window
from core.settings import Settings
from tests.consumer.fakes import DelegatingState
from tests.consumer.pipeline_support import content

DAY = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)  # one trading day, all of it one UTC date
ARRIVAL_MS = int(datetime(2024, 6, 3, 20, 5, tzinfo=UTC).timestamp() * 1000)


def day_of_ticks(symbols: Sequence[str], per_symbol: int, seed: int) -> list[bytes]:
    """A trading day: each symbol's random walk (with the odd > 5 % jump), interleaved in
    time order, as the JSON a producer sends."""
    rng = random.Random(seed)
    lines: list[tuple[datetime, bytes]] = []
    for index, symbol in enumerate(symbols):
        price = Decimal(50 + 10 * index)
        for n in range(per_symbol):
            move = Decimal(rng.choice([-2, -1, 0, 1, 2])) / 100
            if rng.random() < 0.03:
                move = Decimal("0.07") * rng.choice([-1, 1])
            price = max(Decimal("1.00"), (price * (1 + move)).quantize(Decimal("0.01")))
            ts = DAY + timedelta(minutes=n, milliseconds=index)
            line = f'{{"symbol":"{symbol}","ts":"{format_ts(ts)}","price":{price}}}'
            lines.append((ts, line.encode()))
    return [line for _, line in sorted(lines)]


def with_bad_records(lines: list[bytes]) -> list[bytes]:
    """Not JSON, a naive timestamp, a late tick and an exact duplicate mixed in."""
    out = list(lines)
    out.insert(37, b"not json")
    out.insert(801, b'{"symbol":"AAPL","ts":"2024-06-03T16:00:00","price":1}')
    out.insert(1_402, out[1_401])  # exact duplicate: dropped, no row, no letter
    out.insert(1_700, lines[3])  # late: a dead letter
    return out


def as_records(lines: Sequence[bytes], first_sequence: int = 10**20) -> list[StreamRecord]:
    return [
        StreamRecord(data, str(first_sequence + 7 * i), ARRIVAL_MS + i)
        for i, data in enumerate(lines)
    ]


@dataclass
class Expected:
    rows: Counter[tuple[Any, ...]]
    letters: Counter[tuple[str, str]]

    def last_prices(self) -> dict[str, tuple[str, Decimal]]:
        """Per symbol, its latest row's (ts, price): what its saved window must end with."""
        last: dict[str, tuple[str, Decimal]] = {}
        for symbol, ts, price, *_ in self.rows:
            if symbol not in last or ts > last[symbol][0]:
                last[symbol] = (ts, price)
        return last


def oracle(lines: Iterable[bytes], directory: Path) -> Expected:
    """``stockpipe process`` over the same records, in the same order."""
    ticks, rows, dead = directory / "in.jsonl", directory / "rows.jsonl", directory / "dl.jsonl"
    ticks.write_bytes(b"".join(line + b"\n" for line in lines))
    process_file(ticks, rows, dead)
    return Expected(
        Counter(content(json.loads(x, parse_float=Decimal)) for x in rows.read_text().splitlines()),
        Counter((d["reason"], d["raw"]) for d in map(json.loads, dead.read_text().splitlines())),
    )


# -- the KCL lease table, as far as checkpoints go --------------------------------------------


@dataclass
class Leases:
    """Who holds each shard's lease and its checkpoint. KCL fences the checkpoint itself
    (a conditional update on the lease): a worker that lost the lease gets ShutdownException."""

    owner: dict[str, str] = field(default_factory=dict)
    checkpoint: dict[str, str | None] = field(default_factory=dict)

    def take(self, shard_id: str, worker: str, records: Sequence[StreamRecord]) -> int:
        """The lease moves to ``worker``; its start: the index after the checkpoint."""
        self.owner[shard_id] = worker
        checkpoint = self.checkpoint.get(shard_id)
        if checkpoint is None:
            return 0
        return next(i for i, r in enumerate(records) if r.sequence_number == checkpoint) + 1

    def checkpointer(
        self, shard_id: str, worker: str, before: Callable[[], None] = lambda: None
    ) -> Checkpointer:
        return Checkpointer(self, shard_id, worker, before)


@dataclass
class Checkpointer:
    leases: Leases
    shard_id: str
    worker: str
    before: Callable[[], None]

    def checkpoint(self, sequence_number: str | None = None) -> None:
        self.before()
        if self.leases.owner.get(self.shard_id) != self.worker:
            raise CheckpointFailed("ShutdownException")
        self.leases.checkpoint[self.shard_id] = sequence_number or "SHARD_END"


# -- pausing a stale owner at one step -------------------------------------------------------


class Pause:
    """Runs ``resume_others`` once, the first time the owner reaches ``point``."""

    def __init__(self, point: str, resume_others: Callable[[], None]) -> None:
        self.point = point
        self._others = resume_others
        self.fired = False

    def at(self, point: str) -> None:
        if point == self.point and not self.fired:
            self.fired = True
            self._others()


class AtomicConditionalS3:
    """S3 as the lake relies on it: a conditional PUT or DELETE checks its condition and
    stores in one step. In-process moto checks, then stores, and another thread's write can
    land in between - the stale owner's lake thread runs while the new owner writes - so
    both owners' ``If-None-Match: *`` could succeed and one object replace the other. One
    lock, shared by every owner's client, gives moto the atomicity S3 has."""

    def __init__(self, s3: Any, lock: threading.Lock) -> None:
        self._s3 = s3
        self._lock = lock
        self.exceptions = s3.exceptions

    def get_object(self, **kwargs: Any) -> Any:
        return self._s3.get_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._s3.put_object(**kwargs)

    def delete_object(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._s3.delete_object(**kwargs)


class PausingS3:
    """The stale owner's S3 client: ``lake_read`` before its first GET of a tick object,
    ``lake_write`` before its first PUT of one, ``dead_letters`` before its first PUT of a
    dead-letter object."""

    def __init__(self, s3: Any, pause: Pause) -> None:
        self._s3 = s3
        self._pause = pause
        self.exceptions = s3.exceptions

    def get_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"].startswith("ticks/"):
            self._pause.at("lake_read")
        return self._s3.get_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        self._pause.at("lake_write" if kwargs["Key"].startswith("ticks/") else "dead_letters")
        return self._s3.put_object(**kwargs)

    def delete_object(self, **kwargs: Any) -> Any:
        return self._s3.delete_object(**kwargs)


class PausingRows:
    def __init__(self, rows: DynamoRowsTable, pause: Pause) -> None:
        self._rows, self._pause = rows, pause

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        self._pause.at("rows")
        self._rows.write_rows(rows)


class PausingState(DelegatingState):
    """``commit_start``: the commit's first look at the fence; ``state``: before the save."""

    def __init__(self, state: DynamoStateStore, pause: Pause) -> None:
        super().__init__(state)
        self._pause = pause

    def holds(self, ownership: Ownership) -> bool:
        self._pause.at("commit_start")
        return self.inner.holds(ownership)

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        self._pause.at("state")
        self.inner.save(states, ownership)


STEPS = ("commit_start", "rows", "lake_read", "lake_write", "dead_letters", "state", "checkpoint")


# -- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    dynamodb: Any
    s3: Any
    settings: Settings
    leases: Leases = field(default_factory=Leases)
    s3_writes: threading.Lock = field(default_factory=threading.Lock)

    def processor(self, batch: int, pause: Pause | None = None, worker: str = "") -> ShardProcessor:
        client = self.dynamodb.meta.client
        # The rows sink serialises its own items: it takes a low-level client, not a resource's.
        rows_client = boto3.client("dynamodb", region_name=self.settings.region)
        rows = DynamoRowsTable(rows_client, self.settings.rows_table, timedelta(days=3650))
        state = DynamoStateStore(client, self.settings.state_table)
        atomic = AtomicConditionalS3(self.s3, self.s3_writes)
        s3 = atomic if pause is None else PausingS3(atomic, pause)
        lake = S3Lake(s3, self.settings.bucket, "ticks", "dead-letter")
        return ShardProcessor(
            rows if pause is None else PausingRows(rows, pause),
            lake,
            state if pause is None else PausingState(state, pause),
            FlushPolicy(records=batch, seconds=1e9),
            worker=worker,
        )

    def run(
        self,
        processor: ShardProcessor,
        shard_id: str,
        worker: str,
        records: Sequence[StreamRecord],
        batch: int,
        *,
        start: int = 0,
        end_shard: bool = False,
        before_checkpoint: Callable[[], None] = lambda: None,
        initialize: bool = True,
    ) -> None:
        """``processor`` over ``records[start:]`` in batches of ``batch`` (one commit each),
        then the rest committed as at a graceful shutdown, or at SHARD_END."""
        checkpointer = self.leases.checkpointer(shard_id, worker, before_checkpoint)
        if initialize:
            processor.initialize(shard_id)
        for position in range(start, len(records), batch):
            processor.process_records(records[position : position + batch], checkpointer)
        if end_shard:
            processor.shard_ended(checkpointer)
        else:
            processor.shutdown_requested(checkpointer)

    # -- reading back -----------------------------------------------------------------------

    def lake_rows(self) -> Counter[tuple[Any, ...]]:
        found: Counter[tuple[Any, ...]] = Counter()
        for table in self._objects("ticks/"):
            for row in table:
                row["ts"] = format_ts(row["ts"])
                found[content(row)] += 1
        return found

    def lake_letters(self) -> Counter[tuple[str, str]]:
        return Counter(
            (d["reason"], d["raw"]) for table in self._objects("dead-letter/") for d in table
        )

    def table_rows(self) -> Counter[tuple[Any, ...]]:
        table = self.dynamodb.Table(self.settings.rows_table)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = table.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return Counter(content(item) for item in items)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def last_prices(self, symbols: Iterable[str]) -> dict[str, tuple[str, Decimal]]:
        """Each symbol's saved window: (last ts, last price)."""
        table = self.dynamodb.Table(self.settings.state_table)
        found = {}
        for symbol in symbols:
            window = decode_window(
                bytes(table.get_item(Key={"symbol": symbol})["Item"]["window"].value)
            )
            found[symbol] = (format_ts(window.last_ts), window.last_price.normalize())
        return found

    def _objects(self, prefix: str) -> list[list[dict[str, Any]]]:
        tables = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.bucket, Prefix=prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.settings.bucket, Key=obj["Key"])["Body"]
                tables.append(pq.read_table(io.BytesIO(body.read())).to_pylist())
        return tables
