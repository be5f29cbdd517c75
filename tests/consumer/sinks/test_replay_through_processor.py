"""The sinks on moto driven by the real ShardProcessor through a crash between the state
save and the checkpoint (docs/design.md, "Delivery: effectively once"), the restart cutting its
flush batches smaller than the first attempt did.

The oracle is an uninterrupted TickPipeline over the same records: what the lake and the
rows table must hold, each row once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.lake import S3Lake
from consumer.sinks.rows_table import DynamoRowsTable
from consumer.sinks.state_store import DynamoStateStore
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick, encode_tick
from core.settings import Settings
from tests.consumer.sinks.helpers import (
    SHARD,
    arrival,
    enrich,
    list_keys,
    read_object,
    row_as_dict,
    sequence,
    utc_day,
    utc_iso,
)


class Crash(Exception):
    """A kill -9 at the checkpoint."""


class Checkpointer:
    def __init__(self, crash: bool) -> None:
        self.crash = crash
        self.at: str | None = None

    def checkpoint(self, sequence_number: str | None = None) -> None:
        if self.crash:
            raise Crash(f"killed before checkpointing {sequence_number}")
        self.at = sequence_number


def _ticks(lake_ticks: list[Tick]) -> list[Tick]:
    """Two consecutive trading days, five symbols each, in time order: 10 records."""
    days = sorted({utc_day(t.ts) for t in lake_ticks})[60:62]
    return [t for t in lake_ticks if utc_day(t.ts) in days]


def _records(ticks: list[Tick]) -> list[StreamRecord]:
    return [
        StreamRecord(encode_tick(t), sequence(i), int(arrival(i).timestamp() * 1000))
        for i, t in enumerate(ticks)
    ]


@pytest.fixture
def stores() -> Iterator[list[DynamoStateStore]]:
    """The state stores the test opens (their write threads are shut down after it)."""
    opened: list[DynamoStateStore] = []
    yield opened
    for store in opened:
        store.close()


def _processor(
    dynamodb: Any, s3: Any, settings: Settings, stores: list[DynamoStateStore], flush: int
) -> ShardProcessor:
    """A processor over the moto-backed sinks, as consumer/kcl_app.py builds it."""
    client = dynamodb.meta.client
    stores.append(DynamoStateStore(client, settings.state_table))
    # The rows sink takes a low-level client (typed items), as kcl_app gives it.
    rows_client = boto3.session.Session(region_name=settings.region).client("dynamodb")
    processor = ShardProcessor(
        DynamoRowsTable(rows_client, settings.rows_table, timedelta(days=30)),
        S3Lake(s3, settings.bucket, settings.ticks_prefix, settings.dead_letter_prefix),
        stores[-1],
        FlushPolicy(records=flush, seconds=1e9),
    )
    processor.initialize(SHARD)
    return processor


def _lake_rows(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return [
        row
        for key in sorted(list_keys(s3, bucket, "ticks/"))
        for row in read_object(s3, bucket, key).to_pylist()
    ]


@pytest.mark.parametrize("replay_flush", [10, 5, 2, 1])
def test_a_crash_before_the_checkpoint_then_smaller_batches_loses_no_row(
    dynamodb: Any,
    s3: Any,
    settings: Settings,
    lake_ticks: list[Tick],
    stores: list[DynamoStateStore],
    replay_flush: int,
) -> None:
    ticks = _ticks(lake_ticks)
    records = _records(ticks)
    expected: list[EnrichedRow] = enrich(ticks)  # the uninterrupted run

    # First life: one flush of all 10 records (rows, lake, every symbol's state), then the
    # process dies before its checkpoint.
    first = _processor(dynamodb, s3, settings, stores, flush=len(records))
    with pytest.raises(Crash):
        first.process_records(records, Checkpointer(crash=True))

    # Restart at the previous checkpoint (none: the start), smaller batches this time.
    second = _processor(dynamodb, s3, settings, stores, flush=replay_flush)
    checkpointer = Checkpointer(crash=False)
    for start in range(0, len(records), replay_flush):
        second.process_records(records[start : start + replay_flush], checkpointer)
    second.shard_ended(checkpointer)
    assert second.skipped_replays == len(records)  # every record was applied before

    lake_rows = _lake_rows(s3, settings.bucket)
    counts = Counter(r["sequence_number"] for r in lake_rows)
    missing = [f"{r.symbol} {utc_iso(r.ts)}" for r in expected if counts[r.sequence_number] == 0]
    assert missing == [], "rows lost from the lake"
    assert [s for s, n in counts.items() if n > 1] == [], "rows doubled in the lake"
    by_sequence = sorted(lake_rows, key=lambda r: int(r["sequence_number"]))
    assert by_sequence == [row_as_dict(r) for r in expected]
    table = dynamodb.Table(settings.rows_table)
    assert table.scan(Select="COUNT")["Count"] == len(expected)


def test_without_a_crash_small_batches_write_each_row_once(
    dynamodb: Any,
    s3: Any,
    settings: Settings,
    lake_ticks: list[Tick],
    stores: list[DynamoStateStore],
) -> None:
    """The control: the same processor and sinks, no crash."""
    ticks = _ticks(lake_ticks)
    records = _records(ticks)
    processor = _processor(dynamodb, s3, settings, stores, flush=2)
    checkpointer = Checkpointer(crash=False)
    for start in range(0, len(records), 2):
        processor.process_records(records[start : start + 2], checkpointer)
    processor.shard_ended(checkpointer)
    by_sequence = sorted(_lake_rows(s3, settings.bucket), key=lambda r: int(r["sequence_number"]))
    assert by_sequence == [row_as_dict(r) for r in enrich(ticks)]
