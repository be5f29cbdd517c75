"""Shared expectations: what the alerts must be, computed independently of the runner."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec

from core.contracts.row import EnrichedRow, row_to_record
from core.contracts.window import MA_PERIODS, SymbolWindow
from trend.file_run import trend_file

Identity = tuple[str, str, str]  # symbol, fixed-width ts, signal


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
