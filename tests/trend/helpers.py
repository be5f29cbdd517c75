"""Shared expectations: what the alerts must be, computed independently of the runner."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from consumer.pipeline import TickPipeline
from core.contracts.row import EnrichedRow, row_to_record
from core.contracts.tick import Tick, encode_tick, format_ts
from core.contracts.window import MA_PERIODS, SymbolWindow
from tests.oracles import crossover_oracle
from trend.file_run import trend_file

Identity = tuple[str, str, str]  # symbol, fixed-width ts, signal
SYNTHETIC_START = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


def crossings_by_stockpipe_trend(rows: Sequence[EnrichedRow], tmp: Path) -> list[Identity]:
    """What ``stockpipe trend`` finds on the same rows (through its file code path)."""
    rows_path, signals_path = tmp / "rows.jsonl", tmp / "signals.jsonl"
    encoder = msgspec.json.Encoder(decimal_format="number")
    rows_path.write_bytes(b"".join(encoder.encode(row_to_record(r)) + b"\n" for r in rows))
    trend_file(rows_path, signals_path)
    found = []
    for line in signals_path.read_text().splitlines():
        record = json.loads(line)
        found.append((record["symbol"], record["ts"], record["signal"]))
    return found


def advance_window(window: SymbolWindow | None, row: EnrichedRow) -> SymbolWindow:
    """The consumer's window of ``row.symbol`` after it accepted ``row`` (consumer/enrichment.py
    ``Enricher.apply``), rebuilt from the rows, for writing state items as the consumer does."""
    recent = [row.price] if window is None else [*window.recent, row.price][-MA_PERIODS:]
    return SymbolWindow(
        last_ts=row.ts, last_price=row.price, recent=recent, recent_sum=sum(recent, Decimal(0))
    )


def synthetic_rows(
    symbols: int, per_symbol: int, seed: int, start: datetime = SYNTHETIC_START
) -> tuple[EnrichedRow, ...]:
    """``symbols`` symbols (S000, S001, ...), ``per_symbol`` one-minute ticks each, a seeded
    random walk in cents (so SMA-5 - SMA-20 is a multiple of 0.0005 or exactly 0: the float
    oracle can never sit on the fence), through the consumer's own pipeline, in stream order."""
    rng = random.Random(seed)
    pipeline = TickPipeline()
    names = [f"S{n:0{max(3, len(str(symbols - 1)))}d}" for n in range(symbols)]
    prices = {name: Decimal(rng.randrange(5_000, 20_000)) / 100 for name in names}
    rows: list[EnrichedRow] = []
    for minute in range(per_symbol):
        ts = start + timedelta(minutes=minute)
        for name in names:
            step = Decimal(rng.randrange(-150, 151)) / 100
            prices[name] = max(Decimal("1.00"), prices[name] + step)
            tick = Tick(symbol=name, ts=ts, price=prices[name])
            outcome = pipeline.apply(encode_tick(tick), "shardId-000000000000", str(len(rows)))
            assert isinstance(outcome, EnrichedRow)
            rows.append(outcome)
    return tuple(rows)


def oracle_crossings(rows: Sequence[EnrichedRow]) -> set[Identity]:
    """Every crossing of ``rows`` by the independent TA-Lib oracle (tests/oracles.py)."""
    oracle = crossover_oracle((r.symbol, r.ts, float(r.price)) for r in rows)
    assert not oracle.ambiguous  # cent prices: never within float noise of a tie
    return {(symbol, format_ts(ts), signal) for symbol, ts, signal in oracle.signals}
