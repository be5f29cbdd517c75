"""The watermark: a run reads a symbol's rows only up to the ``last_ts`` of the window in the
consumer's state item, which the consumer saves after the rows it covers are written.

The bug this guards against: a consumer flush is not atomic and its batched puts land in any
order (UnprocessedItems retries), so a run between two puts could see row k+1 of a symbol
before row k, move its cursor past k, and never evaluate k: a crossing missed for good."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from boto3.dynamodb.types import TypeSerializer

from core.contracts.row import EnrichedRow
from core.contracts.tick import format_ts
from tests.trend.conftest import FixedClock, Stack, alert_identity, dataset_rows
from tests.trend.fakes import (
    MemoryCursors,
    MemoryLedger,
    MemoryRotation,
    MemoryRows,
    RecordingPublisher,
)
from trend.crossover import CrossoverDetector
from trend.dynamo import DynamoCursorStore, RowsTableReader
from trend.evaluate import RowView
from trend.ports import CursorStore, DurableSymbol, SymbolSource
from trend.runner import Policy, Ports, RunReport, run_once

Identity = tuple[str, str, str]  # symbol, fixed-width ts, signal
POLICY = Policy(cooldown=timedelta(days=7), lease=timedelta(minutes=15), settle=timedelta(0))
MINUTE = timedelta(minutes=1)


def _crossing_series() -> tuple[list[EnrichedRow], int, Identity]:
    """One symbol's rows up to and including the row after its first crossing (index k)."""
    rows = dataset_rows()
    symbol = rows[0].symbol
    series = [r for r in rows if r.symbol == symbol]
    detector = CrossoverDetector()
    for k, row in enumerate(series[:-1]):
        signal = detector.update(symbol, row.ts, row.price)
        if signal is not None:
            return series[: k + 2], k, (symbol, format_ts(row.ts), signal.signal)
    raise AssertionError("no crossing in the series")


@dataclass
class World:
    """The runner's seams over one backend, plus the consumer's two commit steps."""

    put_rows: Callable[[Sequence[EnrichedRow]], None]  # step 1 (may be partial, any order)
    save_state: Callable[[Sequence[EnrichedRow]], None]  # step 3
    cursors: CursorStore
    _run: Callable[[datetime], tuple[RunReport, list[Identity]]]
    sent: list[Identity] = field(default_factory=list)

    def run(self, now: datetime) -> RunReport:
        report, sent = self._run(now)
        assert not report.failed and not report.deferred
        self.sent += sent
        return report

    def crossings(self) -> list[Identity]:
        return [i for i in self.sent if i[2] != "anomaly"]

    def row_ts(self, symbol: str) -> str | None:
        cursor = self.cursors.load(symbol)
        return None if cursor is None else cursor.row_ts


def _memory_world(source: Callable[[MemoryRows], SymbolSource] = lambda table: table) -> World:
    table, cursors, ledger = MemoryRows(), MemoryCursors(), MemoryLedger()

    def run(now: datetime) -> tuple[RunReport, list[Identity]]:
        recording = RecordingPublisher()
        ports = Ports(
            source(table), table, cursors, ledger, recording, FixedClock(now), MemoryRotation()
        )
        report = run_once(ports, POLICY, owner=f"run-{now}")
        return report, [
            (m.attributes["symbol"], m.key.split("#")[0], m.attributes["signal"])
            for m in recording.messages
        ]

    return World(table.put_rows, table.save_state, cursors, run)


def _moto_world(stack: Stack) -> World:
    def run(now: datetime) -> tuple[RunReport, list[Identity]]:
        report = run_once(stack.ports(FixedClock(now)), POLICY, owner=f"run-{now}")
        return report, [alert_identity(n) for n in stack.received()]

    cursors = DynamoCursorStore(stack.dynamodb, stack.settings.cursor_table)
    return World(stack.put_rows, stack.save_state, cursors, run)


def _missed_crossing_scenario(world: World) -> None:
    series, k, crossing = _crossing_series()
    symbol = crossing[0]
    now = series[k + 1].ts + MINUTE  # the wall clock is past the whole flush in flight

    # Commits up to row k-1: rows, then state. The crossing is not there yet.
    world.put_rows(series[:k])
    world.save_state(series[:k])
    assert world.run(now).rows == k
    assert world.crossings() == []
    watermark = format_ts(series[k - 1].ts)
    assert world.row_ts(symbol) == watermark

    # The next flush (rows k and k+1) is in flight, and row k+1 landed first.
    world.put_rows([series[k + 1]])
    now += MINUTE
    report = world.run(now)
    assert report.rows == 0, "a row beyond the watermark was evaluated"
    assert world.row_ts(symbol) == watermark, "the cursor passed a row not known written"

    # All of the flush's rows are written, its state is not saved yet: still not read.
    world.put_rows([series[k]])
    now += MINUTE
    assert world.run(now).rows == 0
    assert world.row_ts(symbol) == watermark
    assert world.crossings() == []

    # The consumer saves the state: the watermark moves over both rows, the crossing goes out.
    world.save_state(series[k : k + 2])
    now += MINUTE
    assert world.run(now).rows == 2
    assert world.crossings() == [crossing]
    assert world.row_ts(symbol) == format_ts(series[k + 1].ts)

    now += MINUTE
    assert world.run(now).rows == 0
    assert world.crossings() == [crossing]  # exactly once


def test_row_past_the_watermark_waits_then_crossing_alerted_once_memory() -> None:
    _missed_crossing_scenario(_memory_world())


def test_row_past_the_watermark_waits_then_crossing_alerted_once_dynamodb(stack: Stack) -> None:
    _missed_crossing_scenario(_moto_world(stack))


class _NoWatermark:
    """The run as it was: every row written after the cursor, whatever the state says."""

    def __init__(self, table: MemoryRows) -> None:
        self._table = table

    def symbols(self) -> Iterator[DurableSymbol]:
        return iter([DurableSymbol(s.symbol, "9999") for s in self._table.symbols()])


def test_reading_past_the_watermark_misses_the_crossing() -> None:
    """The control: the same scenario without the upper bound loses the crossing, so the tests
    above reproduce the bug rather than pass by luck."""
    with pytest.raises(AssertionError, match="beyond the watermark"):
        _missed_crossing_scenario(_memory_world(_NoWatermark))
    # Carry on as the old code would have: row k is written after the cursor passed it.
    world = _memory_world(_NoWatermark)
    series, k, crossing = _crossing_series()
    now = series[k + 1].ts + MINUTE
    world.put_rows(series[:k])
    world.save_state(series[:k])
    world.run(now)
    world.put_rows([series[k + 1]])
    world.run(now + MINUTE)
    world.put_rows([series[k]])
    world.save_state(series[k : k + 2])
    world.run(now + 2 * MINUTE)
    assert crossing not in world.crossings()


# --------------------------------------------------------------------------- DynamoDB seams


def _renamed(row: EnrichedRow, symbol: str) -> EnrichedRow:
    return msgspec.structs.replace(row, symbol=symbol)


def _put_state_item(stack: Stack, symbol: str, **attributes: Any) -> None:
    serialize = TypeSerializer().serialize
    item = {"symbol": symbol, "shard_id": "shardId-000000000000", **attributes}
    stack.dynamodb.put_item(
        TableName=stack.settings.state_table, Item={k: serialize(v) for k, v in item.items()}
    )


def test_state_item_without_window_is_skipped_and_corrupt_one_fails(stack: Stack) -> None:
    series, _, _ = _crossing_series()
    stack.write_rows(series)
    # Rows of two more symbols, with state items the watermark cannot be read from.
    stack.put_rows([_renamed(r, "NOWIN") for r in series] + [_renamed(r, "BAD") for r in series])
    _put_state_item(stack, "NOWIN", sequence_number="1")
    _put_state_item(stack, "BAD", window=b"{not json", sequence_number="1")
    report = stack.run(FixedClock(series[-1].ts + MINUTE))
    assert report.skipped == ["NOWIN"]
    assert set(report.failed) == {"BAD"} and "cannot be decoded" in report.failed["BAD"]
    assert report.symbols == 1 and report.rows == len(series)  # the good symbol still ran
    assert {alert_identity(n)[0] for n in stack.received()} == {series[0].symbol}


def test_rows_between_bounds(stack: Stack) -> None:
    series = _crossing_series()[0][:6]
    stack.put_rows(series)
    reader = RowsTableReader(stack.dynamodb, stack.settings.rows_table, page_size=1)
    ts = [format_ts(r.ts) for r in series]

    def read(after: str | None, until: str) -> list[str]:
        rows: list[RowView] = list(reader.rows_between(series[0].symbol, after, until))
        return [format_ts(r.ts) for r in rows]

    assert read(None, ts[2]) == ts[:3]  # inclusive upper bound
    assert read(ts[0], ts[3]) == ts[1:4]  # exclusive lower bound, across pages of one item
    assert read(ts[2], ts[2]) == []  # caught up
    assert read(ts[4], ts[2]) == []  # cursor ahead of the watermark: no Query, no error
    between = format_ts(series[1].ts + (series[2].ts - series[1].ts) / 2)
    assert read(between, ts[5]) == ts[2:]  # bounds need not be row keys
    assert read(None, between) == ts[:2]
