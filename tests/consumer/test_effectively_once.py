"""A run killed at any point of the commit sequence and restarted from its checkpoint leaves
the same rows, Parquet contents and dead letters as a run never interrupted (docs/design.md,
"Delivery: effectively once").

The oracle is an uninterrupted run of ``stockpipe process``'s pipeline over the same records
(no sinks, no batching): its rows and dead letters are what the lake must hold.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from consumer.pipeline import TickPipeline
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.lake import S3Lake
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.tick import encode_tick, format_ts
from producer.datasets import load_dataset
from tests.consumer.fakes import Crash, MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState

SHARD = "shardId-000000000001"
DAY_MS = 86_400_000
# Arrival times cross a UTC midnight half-way through, so dead-letter batches span two dates.
ARRIVAL_START_MS = 1_700_000_000_000 - (1_700_000_000_000 % DAY_MS) + DAY_MS - 150_000


def _records() -> list[StreamRecord]:
    """Real ticks (5 symbols interleaved, a new date every 5 ticks), with invalid records, a
    late tick and exact duplicates mixed in."""
    ticks = load_dataset()[:240]
    raw: list[bytes] = []
    for index, tick in enumerate(ticks):
        raw.append(encode_tick(tick))
        if index % 37 == 5:
            raw.append(b"not json at all")
        if index % 53 == 7:
            raw.append(encode_tick(tick))  # exact duplicate
        if index % 61 == 20:
            raw.append(encode_tick(ticks[index - 15]))  # late
    return [
        StreamRecord(data, str(10_000 + 7 * i), ARRIVAL_START_MS + 1_000 * i)
        for i, data in enumerate(raw)
    ]


RECORDS = _records()


def _expected() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from datetime import UTC, datetime

    pipeline = TickPipeline()
    rows, letters = [], []
    for record in RECORDS:
        arrival = datetime.fromtimestamp(record.arrival_millis / 1000, UTC)
        outcome = pipeline.apply(record.data, SHARD, record.sequence_number, arrival)
        if type(outcome) is EnrichedRow:
            rows.append(_row_key(outcome))
        elif type(outcome) is DeadLetter:
            letters.append({"seq": outcome.sequence_number, "reason": outcome.reason})
    return rows, letters


def _row_key(row: EnrichedRow) -> dict[str, Any]:
    return {
        "symbol": row.symbol,
        "ts": format_ts(row.ts),
        "seq": row.sequence_number,
        "price": str(row.price),
        "ma_4": None if row.ma_4 is None else str(row.ma_4),
        "change_pct": None if row.change_pct is None else str(row.change_pct),
    }


def _lake_contents(s3: MemoryS3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, letters = [], []
    for key, body in s3.objects.items():
        table = pq.read_table(io.BytesIO(body))
        dt = key.split("/")[1].removeprefix("dt=")
        if key.startswith("ticks/"):
            for r in table.to_pylist():
                assert format_ts(r["ts"])[:10] == dt, f"{key} holds a row of another date"
                rows.append(
                    {
                        "symbol": r["symbol"],
                        "ts": format_ts(r["ts"]),
                        "seq": r["sequence_number"],
                        "price": str(r["price"].normalize()),
                        "ma_4": None if r["ma_4"] is None else str(r["ma_4"].normalize()),
                        "change_pct": None
                        if r["change_pct"] is None
                        else str(r["change_pct"].normalize()),
                    }
                )
        else:
            letters.extend(
                {"seq": r["sequence_number"], "reason": r["reason"]} for r in table.to_pylist()
            )
    return rows, letters


def _normalised(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from decimal import Decimal

    def norm(value: str | None) -> str | None:
        return None if value is None else str(Decimal(value).normalize())

    return sorted(
        (
            {
                **r,
                "price": norm(r["price"]),
                "ma_4": norm(r["ma_4"]),
                "change_pct": norm(r["change_pct"]),
            }
            for r in rows
        ),
        key=lambda r: int(r["seq"]),
    )


CRASH_POINTS = ("none", "mid_rows", "before_lake_put", "mid_state", "before_checkpoint")


def _run(
    batch_sizes: list[int], flush_every: list[int], crashes: list[tuple[int, str]]
) -> tuple[MemoryRows, MemoryS3]:
    """Feed RECORDS through processors; the n-th commit of a life crashes as ``crashes`` say.
    After a crash a new processor starts after the last checkpoint, with new batch sizes."""
    rows, s3, state, checkpointer = MemoryRows(), MemoryS3(), MemoryState(), MemoryCheckpointer()
    crash_plan = list(crashes)
    life = 0
    while True:
        start = 0
        if checkpointer.checkpoint_at is not None:
            start = (
                next(
                    i
                    for i, r in enumerate(RECORDS)
                    if r.sequence_number == checkpointer.checkpoint_at
                )
                + 1
            )
        processor = ShardProcessor(
            rows,
            S3Lake(s3, "lake", "ticks", "dead-letter"),
            state,  # type: ignore[arg-type]
            FlushPolicy(records=flush_every[life % len(flush_every)], seconds=1e9),
        )
        processor.initialize(SHARD)
        commit_count = 0
        planned = crash_plan.pop(0) if crash_plan else None
        size = batch_sizes[life % len(batch_sizes)]
        try:
            position = start
            while position < len(RECORDS):
                batch = RECORDS[position : position + size]
                position += size
                pending_before = processor._pending.records
                will_commit = pending_before + len(batch) >= processor._policy.records
                if planned is not None and will_commit and commit_count == planned[0]:
                    _arm(planned[1], rows, s3, state, checkpointer)
                processor.process_records(batch, checkpointer)
                if will_commit:
                    commit_count += 1
            processor.shard_ended(checkpointer)
            return rows, s3
        except Crash:
            _disarm(rows, s3, state, checkpointer)
            life += 1
            assert life < 50, "no progress"


def _arm(
    point: str, rows: MemoryRows, s3: MemoryS3, state: MemoryState, cp: MemoryCheckpointer
) -> None:
    if point == "mid_rows":
        rows.crash_next = True
    elif point == "before_lake_put":
        s3.crash_after_puts = s3.puts + 1  # the first object of the batch lands, not the rest
    elif point == "mid_state":
        state.crash_after_symbols = 2
    elif point == "before_checkpoint":
        cp.crash_next = True


def _disarm(rows: MemoryRows, s3: MemoryS3, state: MemoryState, cp: MemoryCheckpointer) -> None:
    rows.crash_next = False
    s3.crash_after_puts = None
    state.crash_after_symbols = None
    cp.crash_next = False


EXPECTED_ROWS, EXPECTED_LETTERS = _expected()


def _assert_same_as_uninterrupted(rows: MemoryRows, s3: MemoryS3) -> None:
    lake_rows, lake_letters = _lake_contents(s3)
    seqs = Counter(r["seq"] for r in lake_rows)
    assert [s for s, n in seqs.items() if n > 1] == [], "a row is doubled in the lake"
    assert _normalised(lake_rows) == _normalised(EXPECTED_ROWS)
    assert sorted(lake_letters, key=lambda d: int(d["seq"])) == EXPECTED_LETTERS
    table_rows = [_row_key(r) for r in rows.items.values()]
    assert _normalised(table_rows) == _normalised(EXPECTED_ROWS)


def test_the_oracle_has_every_kind_of_outcome() -> None:
    reasons = Counter(d["reason"] for d in EXPECTED_LETTERS)
    assert reasons["not_json"] > 3 and reasons["late"] > 2
    assert len(EXPECTED_ROWS) == 240


def test_uninterrupted_run_matches_the_file_pipeline() -> None:
    _assert_same_as_uninterrupted(*_run([13], [50], []))


@pytest.mark.parametrize("point", CRASH_POINTS[1:])
@pytest.mark.parametrize("commit_index", [0, 2])
def test_a_crash_at_each_point_then_restart_with_other_batches(
    point: str, commit_index: int
) -> None:
    rows, s3 = _run([13, 7, 29], [50, 31, 64], [(commit_index, point), (1, point)])
    _assert_same_as_uninterrupted(rows, s3)


@settings(
    max_examples=int(os.environ.get("CRASH_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# A replay in smaller batches than the crashed attempt, after every state was saved: the lake
# must keep the rows of symbols the replay has not reached yet (their state is loaded later).
@example(batch_sizes=[50, 1], flush_every=[50, 2], crashes=[(0, "before_checkpoint")])
@given(
    batch_sizes=st.lists(st.integers(1, 60), min_size=1, max_size=4),
    flush_every=st.lists(st.integers(1, 120), min_size=1, max_size=4),
    crashes=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(CRASH_POINTS)), max_size=4),
)
def test_any_crash_schedule_leaves_what_an_uninterrupted_run_leaves(
    batch_sizes: list[int], flush_every: list[int], crashes: list[tuple[int, str]]
) -> None:
    _assert_same_as_uninterrupted(*_run(batch_sizes, flush_every, crashes))
