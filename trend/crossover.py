"""SMA-5 vs SMA-20 golden / death crosses (docs/design.md, "Crossover").

diff = SMA-5 - SMA-20 over a symbol's accepted prices, defined from the 20th price on. A
golden cross is a point where diff > 0 and the last non-zero diff before it was < 0; a death
cross the mirror image; the first non-zero diff emits nothing.

Incremental and O(1) per price: running sums over the last 20 prices. The sign of diff is
decided exactly, as the sign of 4*sum5 - sum20 in Decimal (= 20 * diff), so a tie is a tie and
never a float-noise crossing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

import msgspec

SHORT: Final = 5
LONG: Final = 20
_RATIO: Final = LONG // SHORT

SignalKind = Literal["golden_cross", "death_cross"]


class CrossoverState(msgspec.Struct, gc=False):
    """One symbol's detector state: small and serialisable, so a scheduled run can resume."""

    prices: list[Decimal] = msgspec.field(default_factory=list)  # last <= LONG, oldest first
    sum_short: Decimal = Decimal(0)
    sum_long: Decimal = Decimal(0)
    last_sign: int = 0  # sign of the last non-zero diff; 0 while there has been none
    last_ts: datetime | None = None  # the last price evaluated (resume: skip what is not newer)


class Signal(msgspec.Struct, frozen=True):
    symbol: str
    ts: datetime
    signal: SignalKind
    sma_5: Decimal
    sma_20: Decimal
    price: Decimal


def step(state: CrossoverState, symbol: str, ts: datetime, price: Decimal) -> Signal | None:
    """Feed one price; returns the crossing it completes, if any. A price not newer than the
    last one evaluated is ignored, which makes re-reading an overlap harmless."""
    if state.last_ts is not None and ts <= state.last_ts:
        return None
    state.last_ts = ts
    prices = state.prices
    prices.append(price)
    state.sum_short += price
    state.sum_long += price
    if len(prices) > SHORT:
        state.sum_short -= prices[-SHORT - 1]
    if len(prices) > LONG:
        state.sum_long -= prices.pop(0)
    if len(prices) < LONG:
        return None
    scaled_diff = state.sum_short * _RATIO - state.sum_long  # = LONG * (SMA-5 - SMA-20)
    if not scaled_diff:
        return None
    sign = 1 if scaled_diff > 0 else -1
    previous, state.last_sign = state.last_sign, sign
    if previous in (0, sign):
        return None
    return Signal(
        symbol=symbol,
        ts=ts,
        signal="golden_cross" if sign > 0 else "death_cross",
        sma_5=state.sum_short / SHORT,
        sma_20=state.sum_long / LONG,
        price=price,
    )


class CrossoverDetector:
    """Crossover detection for many symbols, resumable from ``states``."""

    __slots__ = ("states",)

    def __init__(self, states: dict[str, CrossoverState] | None = None) -> None:
        self.states: dict[str, CrossoverState] = {} if states is None else states

    def update(self, symbol: str, ts: datetime, price: Decimal) -> Signal | None:
        state = self.states.get(symbol)
        if state is None:
            state = self.states[symbol] = CrossoverState()
        return step(state, symbol, ts, price)


_state_encoder: Final = msgspec.json.Encoder()
_state_decoder: Final = msgspec.json.Decoder(CrossoverState)


def encode_state(state: CrossoverState) -> bytes:
    return _state_encoder.encode(state)


def decode_state(raw: bytes) -> CrossoverState:
    return _state_decoder.decode(raw)
