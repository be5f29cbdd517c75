"""Per-symbol enrichment: prev price, change, % change, anomaly, 4-period moving average, and
the acceptance rules for late and duplicate ticks (docs/design.md, "Acceptance").

Arithmetic is ``Decimal``: the running sum of the window is exact (no float drift over a
long-lived shard), and the anomaly threshold is exact (a move of exactly 5 % is not an
anomaly; with floats 105/100 - 1 says 5.000000000000004 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Final

from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick
from core.contracts.window import MA_PERIODS, SymbolWindow

ANOMALY_PCT: Final = Decimal(5)
_HUNDRED: Final = Decimal(100)
# change_pct is stored rounded to 10 decimal places (every sink stores the same exact value);
# the anomaly test uses the unrounded value.
PCT_DECIMALS: Final = 10
_PCT_QUANTUM: Final = Decimal(1).scaleb(-PCT_DECIMALS)
_MA_DIVISOR: Final = Decimal(MA_PERIODS)


class Rejection(Enum):
    """A tick that was not accepted (docs/design.md, "Acceptance")."""

    DUPLICATE = "duplicate"  # same ts and price as the symbol's last accepted tick: dropped
    LATE = "late"  # not newer than the last accepted tick otherwise: a dead letter


@dataclass(slots=True)
class EnrichmentCounts:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0


class Enricher:
    """Applies ticks in shard order; holds one ``SymbolWindow`` per symbol seen."""

    __slots__ = ("counts", "windows")

    def __init__(self, windows: dict[str, SymbolWindow] | None = None) -> None:
        self.windows: dict[str, SymbolWindow] = {} if windows is None else windows
        self.counts = EnrichmentCounts()

    def apply(
        self,
        tick: Tick,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None,
    ) -> EnrichedRow | Rejection:
        price = tick.price
        window = self.windows.get(tick.symbol)
        if window is None:
            self.windows[tick.symbol] = SymbolWindow(
                last_ts=tick.ts, last_price=price, recent=[price], recent_sum=price
            )
            prev = change = change_pct = ma_4 = None
            anomaly = False
        else:
            if tick.ts <= window.last_ts:
                if tick.ts == window.last_ts and price == window.last_price:
                    self.counts.duplicates += 1
                    return Rejection.DUPLICATE
                self.counts.late += 1
                return Rejection.LATE
            prev = window.last_price
            change = price - prev
            exact_pct = change * _HUNDRED / prev
            anomaly = abs(exact_pct) > ANOMALY_PCT
            change_pct = exact_pct.quantize(_PCT_QUANTUM)
            recent = window.recent
            recent.append(price)
            window.recent_sum += price
            if len(recent) > MA_PERIODS:
                window.recent_sum -= recent.pop(0)
            ma_4 = window.recent_sum / _MA_DIVISOR if len(recent) == MA_PERIODS else None
            window.last_ts = tick.ts
            window.last_price = price
        self.counts.accepted += 1
        return EnrichedRow(
            symbol=tick.symbol,
            ts=tick.ts,
            price=price,
            open=tick.open,
            high=tick.high,
            low=tick.low,
            volume=tick.volume,
            source=tick.source,
            prev_price=prev,
            change=change,
            change_pct=change_pct,
            anomaly=anomaly,
            ma_4=ma_4,
            shard_id=shard_id,
            sequence_number=sequence_number,
            arrival_ts=arrival_ts,
        )
