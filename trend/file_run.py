"""``stockpipe trend``: every crossover in a file of enriched rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec

from core.contracts.tick import format_ts
from trend.crossover import CrossoverDetector, Signal


class _RowPrice(msgspec.Struct):
    """The part of an enriched row the detector needs (prices decoded exactly)."""

    symbol: str
    ts: datetime
    price: Decimal


@dataclass
class TrendSummary:
    rows: int = 0
    signals: int = 0
    invalid_lines: list[tuple[int, str]] = field(default_factory=list)


_decoder: Final = msgspec.json.Decoder(_RowPrice)
_encoder: Final = msgspec.json.Encoder(decimal_format="number")


def signal_to_record(signal: Signal) -> dict[str, Any]:
    return {
        "symbol": signal.symbol,
        "ts": format_ts(signal.ts),
        "signal": signal.signal,
        "sma_5": signal.sma_5,
        "sma_20": signal.sma_20,
        "price": signal.price,
    }


def trend_file(input_path: Path, output_path: Path) -> TrendSummary:
    detector = CrossoverDetector()
    summary = TrendSummary()
    with input_path.open("rb") as rows, output_path.open("wb") as out:
        for number, line in enumerate(rows, start=1):
            if not line.strip():
                continue
            try:
                row = _decoder.decode(line)
            except msgspec.DecodeError as exc:  # ValidationError included
                summary.invalid_lines.append((number, str(exc)))
                continue
            summary.rows += 1
            signal = detector.update(row.symbol, row.ts, row.price)
            if signal is not None:
                summary.signals += 1
                out.write(_encoder.encode(signal_to_record(signal)) + b"\n")
    return summary
