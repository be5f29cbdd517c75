"""Shared building blocks of the sink tests: real ticks through the consumer's own pipeline,
and hand-written expectations (UTC dates, fixed-width timestamps, object keys) that do not
call the code under test."""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.pipeline import TickPipeline
from consumer.sinks.types import LakeBatch, ReplayPositions
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.schema import ROW_SCHEMA
from core.contracts.tick import Tick, encode_tick

REGION: Final = "us-east-1"
SHARD: Final = "shardId-000000000007"
# A real Kinesis sequence number (56 digits); the test ones count up from it.
BASE_SEQUENCE: Final = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
SEQUENCE_STEP: Final = 4_096
# Arrival times of the records: one a second from two minutes before a UTC midnight.
ARRIVAL_START: Final = datetime(2024, 5, 31, 23, 58, tzinfo=UTC)


def sequence(index: int) -> str:
    return str(BASE_SEQUENCE + SEQUENCE_STEP * index)


def arrival(index: int) -> datetime:
    return ARRIVAL_START + timedelta(seconds=index)


def enrich(ticks: Sequence[Tick], shard_id: str = SHARD) -> list[EnrichedRow]:
    """The ticks as one shard's records, in order, through a fresh TickPipeline: record i has
    ``sequence(i)`` and ``arrival(i)``. Every tick must give a row."""
    pipeline = TickPipeline()
    rows = []
    for index, tick in enumerate(ticks):
        outcome = pipeline.apply(encode_tick(tick), shard_id, sequence(index), arrival(index))
        assert type(outcome) is EnrichedRow, outcome
        rows.append(outcome)
    return rows


def utc_day(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def utc_iso(ts: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds, written with strftime (not format_ts)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def first_sequence_per_day(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    """(day, sequence number) pairs -> per day, the smallest sequence number as an int."""
    keys: dict[str, int] = {}
    for day, seq in pairs:
        keys[day] = min(keys.get(day, int(seq)), int(seq))
    return keys


def positions_from(saved: Mapping[str, int]) -> ReplayPositions:
    """ReplayPositions over a fixed map of saved positions."""

    def positions(symbols: Collection[str]) -> Mapping[str, int]:
        return {s: saved[s] for s in symbols if s in saved}

    return positions


def lake_batch(
    rows: Sequence[EnrichedRow],
    *,
    records: Sequence[EnrichedRow] | None = None,
    dead_letters: Sequence[DeadLetter] = (),
    replayed: dict[str, int] | None = None,
) -> LakeBatch:
    """A LakeBatch as the processor documents it. ``records``: every tick record of the
    batch, whatever became of it (defaults to ``rows``); they name the tick objects."""
    records = rows if records is None else records
    tick_keys = first_sequence_per_day((utc_day(r.ts), r.sequence_number) for r in records)
    arrivals = [(utc_iso(r.arrival_ts)[:10], r.sequence_number) for r in records if r.arrival_ts]
    arrivals += [(str(d.arrival_ts)[:10], d.sequence_number) for d in dead_letters]
    return LakeBatch(
        shard_id=SHARD,
        rows=list(rows),
        dead_letters=list(dead_letters),
        tick_keys=tick_keys,
        dead_letter_keys=first_sequence_per_day(arrivals),
        replayed=positions_from({} if replayed is None else replayed),
    )


def expected_tick_keys(batches: Iterable[Sequence[EnrichedRow]]) -> set[str]:
    """The object keys the DESIGN names for these batches of records, written by hand."""
    keys = set()
    for records in batches:
        for day, first in first_sequence_per_day(
            (utc_day(r.ts), r.sequence_number) for r in records
        ).items():
            keys.add(f"ticks/dt={day}/shard={SHARD}/{first}.parquet")
    return keys


def list_keys(s3: Any, bucket: str, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def read_object(s3: Any, bucket: str, key: str) -> pa.Table:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body))


def row_as_dict(row: EnrichedRow) -> dict[str, Any]:
    """The row's values under the Parquet column names: what a reader must get back."""
    return {name: getattr(row, name) for name in ROW_SCHEMA.names}
