"""Bounded memory: with a tiny cap on resident windows, idle symbols are dropped after commits
and loaded again from the state store on next sight - and the result equals an uninterrupted
run of the file pipeline with every window kept (the oracle)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from typing import Any

import pytest

from consumer.pipeline import TickPipeline
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.residency import Residency
from consumer.sinks.lake import S3Lake
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.tick import encode_tick, format_ts
from producer.synthetic import synthetic_ticks
from tests.consumer.fakes import MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState
from tests.consumer.test_poison import dead_letters_in

SHARD = "shardId-000000000005"
ARRIVAL_MS = 1_893_456_000_000  # 2030-01-01: after every synthetic tick


class CountingState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.remembered: set[str] = set()  # loaded and not forgotten since

    def load(self, symbols: Any) -> Any:
        symbols = list(symbols)
        self.loaded.extend(symbols)
        self.remembered.update(symbols)
        return super().load(symbols)

    def forget(self, symbols: Any) -> None:
        self.remembered.difference_update(symbols)


def stream() -> list[StreamRecord]:
    """40 symbols, with late ticks, exact duplicates and garbage mixed in, so that evicted
    symbols come back and their reloaded windows decide late and duplicate correctly."""
    ticks = list(islice(synthetic_ticks(40, 11), 1500))
    raw: list[bytes] = []
    for index, tick in enumerate(ticks):
        raw.append(encode_tick(tick))
        if index % 41 == 3:
            raw.append(encode_tick(tick))  # exact duplicate
        if index % 97 == 50:
            raw.append(encode_tick(ticks[index - 45]))  # late (or a duplicate of an old one)
        if index % 89 == 7:
            raw.append(b"{garbage")
    return [StreamRecord(data, str(5000 + i), ARRIVAL_MS + i) for i, data in enumerate(raw)]


def oracle(records: list[StreamRecord]) -> tuple[list[tuple[str, ...]], list[tuple[str, str]]]:
    pipeline = TickPipeline()
    rows, letters = [], []
    for record in records:
        arrival = datetime.fromtimestamp(record.arrival_millis / 1000, UTC)
        outcome = pipeline.apply(record.data, SHARD, record.sequence_number, arrival)
        if type(outcome) is EnrichedRow:
            rows.append(row_key(outcome))
        elif type(outcome) is DeadLetter:
            letters.append((outcome.sequence_number, outcome.reason))
    return sorted(rows), letters


def row_key(row: EnrichedRow) -> tuple[str, ...]:
    return (
        row.symbol,
        format_ts(row.ts),
        row.sequence_number,
        str(row.price),
        str(row.prev_price),
        str(row.change_pct),
        str(row.ma_4),
        str(row.anomaly),
    )


@pytest.mark.parametrize("cap", [1, 3, 17, 1000])
def test_tiny_cap_gives_the_oracle_result(cap: int) -> None:
    records = stream()
    rows, s3, state = MemoryRows(), MemoryS3(), CountingState()
    processor = ShardProcessor(
        rows=rows,
        lake=S3Lake(s3, "bucket", "ticks", "dead-letter"),  # type: ignore[arg-type]
        state=state,
        policy=FlushPolicy(records=25, seconds=3600),
        max_resident_windows=cap,
    )
    processor.initialize(SHARD)
    checkpointer = MemoryCheckpointer()
    most_resident = most_remembered = 0
    for start in range(0, len(records), 10):
        processor.process_records(records[start : start + 10], checkpointer)
        most_resident = max(most_resident, len(processor.pipeline.enricher.windows))
        most_remembered = max(most_remembered, len(state.remembered))
    processor.shutdown_requested(checkpointer)

    want_rows, want_letters = oracle(records)
    assert sorted(row_key(row) for row in rows.items.values()) == want_rows
    got_letters = [(d["sequence_number"], d["reason"]) for d in dead_letters_in(s3)]
    assert got_letters == want_letters
    if cap < 40:
        # Bounded: the cap plus at most one flush (25 records) of newly seen symbols.
        assert most_resident <= cap + 25
        # The store is told of every eviction, so what it keeps per symbol is bounded too.
        assert most_remembered <= cap + 25
        assert len(set(state.loaded)) == 40 and len(state.loaded) > 40  # reloaded after eviction
    else:
        assert len(state.loaded) == 40  # never evicted, each loaded once


def test_never_evicts_a_symbol_touched_since_the_last_commit() -> None:
    residency = Residency(capacity=2)
    residency.loaded(["A", "B", "C", "D"])
    dropped: list[str] = []
    assert residency.evict(keep={"A", "B"}, drop=dropped.append) == 2
    assert dropped == ["C", "D"]  # the least recent that are not kept
    assert "A" in residency and "B" in residency and len(residency) == 2


def test_least_recently_committed_goes_first() -> None:
    residency = Residency(capacity=2)
    residency.loaded(["A", "B", "C"])
    residency.used(["A"])  # A was committed after B and C were loaded
    dropped: list[str] = []
    residency.evict(keep=set(), drop=dropped.append)
    assert dropped == ["B"]
    assert residency.evicted == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Residency(0)
