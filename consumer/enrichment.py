"""Per-symbol enrichment: prev price, change, % change, anomaly, 4-period moving average, and
the acceptance rules for late and duplicate ticks (docs/design.md, "Acceptance").

Arithmetic is ``Decimal``: the running sum of the window is exact (no float drift over a
long-lived shard), and the anomaly threshold is exact (a move of exactly 5 % is not an
anomaly; with floats 105/100 - 1 says 5.000000000000004 %).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, getcontext
from enum import Enum
from typing import Final

from core.contracts.row import EnrichedRow
from core.contracts.tick import MAX_PRICE, MIN_PRICE, PRICE_DECIMALS, Tick
from core.contracts.window import MA_PERIODS, SymbolWindow

ANOMALY_PCT: Final = Decimal(5)
_HUNDRED: Final = Decimal(100)
# change_pct is stored rounded to 10 decimal places (every sink stores the same exact value);
# the anomaly test uses the unrounded value.
PCT_DECIMALS: Final = 10
_PCT_QUANTUM: Final = Decimal(1).scaleb(-PCT_DECIMALS)
_MA_DIVISOR: Final = Decimal(MA_PERIODS)

# The precision of the engine's arithmetic, derived from the tick contract's price bounds.
# Prices are integers P of 10**-PRICE_DECIMALS with P <= MAX_PRICE * 10**PRICE_DECIMALS (1e19).
# - change, the window sum (<= 4 prices) and ma_4 (the sum / 4: two more places) need at most
#   22 digits: exact.
# - change_pct = 100 * change / prev is below MAX_PRICE / MIN_PRICE * 100 = 1e17 (18 integer
#   digits) and is rounded half-even to PCT_DECIMALS places. It is a fraction with denominator
#   at most P_max, so unless it lies exactly on a rounding midpoint (then the division is exact)
#   it is at least 1 / (2 * 10**PCT_DECIMALS * P_max) = 5e-30 away from one. A quotient whose
#   error is below that (30 decimal places) rounds to the same 10 places as the exact value,
#   and its sign against 5 % is the exact sign too (|100*c - 5*p| / p >= 1 / P_max).
# So 18 + 30 = 48 digits for the quotient; with the default 28 the 0.00001 -> 1e15
# raised InvalidOperation. tests/consumer/test_exact_arithmetic.py checks this against Fractions
# at the extremes and on constructed near-midpoint pairs.
_PCT_INTEGER_DIGITS: Final = (MAX_PRICE / MIN_PRICE * _HUNDRED).adjusted() + 1
_GUARD_DECIMALS: Final = PCT_DECIMALS + (2 * MAX_PRICE.scaleb(PRICE_DECIMALS)).adjusted() + 1
ARITHMETIC_PRECISION: Final = _PCT_INTEGER_DIGITS + _GUARD_DECIMALS
# Passed explicitly to the quotient and its rounding. Traps stay the defaults: an
# InvalidOperation is a per-record processing error, never a silent NaN.
ARITHMETIC: Final = Context(prec=ARITHMETIC_PRECISION, rounding=ROUND_HALF_EVEN)
# The exact operations (change, the window sum, ma_4) use plain operators, i.e. the thread's
# context: its methods cost three times an operator on the hot path, and Python's default
# precision (28) already holds the 22 digits they need. Enricher checks that at creation.
EXACT_DIGITS: Final = 22


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
        if getcontext().prec < EXACT_DIGITS:
            raise ValueError(
                f"the decimal context has {getcontext().prec} digits; enrichment needs "
                f"{EXACT_DIGITS} for exact sums (Python's default is 28)"
            )
        self.windows: dict[str, SymbolWindow] = {} if windows is None else windows
        self.counts = EnrichmentCounts()

    def apply(
        self,
        tick: Tick,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None,
        check: Callable[[EnrichedRow], None] | None = None,
    ) -> EnrichedRow | Rejection:
        """The row of ``tick``, or why it was not accepted.

        Transactional: the row is computed, then ``check``ed (if given), and only then is the
        window changed. Whatever raises before that leaves the window as it was, so a record
        that cannot be processed never affects the symbol's later ticks."""
        price = tick.price
        window = self.windows.get(tick.symbol)
        if window is None:
            prev = change = change_pct = ma_4 = None
            anomaly = False
            new_sum = price
        else:
            if tick.ts <= window.last_ts:
                if tick.ts == window.last_ts and price == window.last_price:
                    self.counts.duplicates += 1
                    return Rejection.DUPLICATE
                self.counts.late += 1
                return Rejection.LATE
            prev = window.last_price
            change = price - prev
            exact_pct = ARITHMETIC.divide(change * _HUNDRED, prev)
            # copy_abs, not abs(): abs() rounds to the thread's context.
            anomaly = exact_pct.copy_abs() > ANOMALY_PCT
            # The context's method: quantize(..., context=) takes a slow keyword path.
            change_pct = ARITHMETIC.quantize(exact_pct, _PCT_QUANTUM)
            recent = window.recent
            new_sum = window.recent_sum + price
            full = len(recent) >= MA_PERIODS  # the oldest price leaves the window
            if full:
                new_sum -= recent[0]
            ma_4 = new_sum / _MA_DIVISOR if len(recent) + 1 >= MA_PERIODS else None
        row = EnrichedRow(
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
        if check is not None:
            check(row)
        # Commit: nothing below can raise.
        if window is None:
            self.windows[tick.symbol] = SymbolWindow(
                last_ts=tick.ts, last_price=price, recent=[price], recent_sum=new_sum
            )
        else:
            recent.append(price)
            if full:
                del recent[0]
            window.recent_sum = new_sum
            window.last_ts = tick.ts
            window.last_price = price
        self.counts.accepted += 1
        return row
