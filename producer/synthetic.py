"""Seeded synthetic quotes: a geometric random walk per symbol with occasional jumps (so
anomalies occur), for load tests and benchmarks. Never the only proof of correctness."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from core.contracts.tick import Tick

DEFAULT_START: Final = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
_CENT: Final = Decimal("0.01")


def synthetic_symbols(count: int) -> list[str]:
    """``count`` distinct valid Yahoo-form symbols (SYN0000, SYN0001, ...)."""
    width = max(4, len(str(count - 1)))
    return [f"SYN{i:0{width}d}" for i in range(count)]


def synthetic_ticks(
    symbols: int,
    seed: int,
    *,
    start: datetime = DEFAULT_START,
    step: timedelta = timedelta(seconds=1),
    jump_probability: float = 0.002,
    volatility: float = 0.002,
) -> Iterator[Tick]:
    """An endless, interleaved stream: one tick per symbol per ``step``, symbols round-robin.
    Same seed, same stream."""
    rnd = random.Random(seed)
    names = synthetic_symbols(symbols)
    prices = [rnd.uniform(10.0, 500.0) for _ in names]
    ts = start
    while True:
        for index, symbol in enumerate(names):
            shock = rnd.gauss(0.0, volatility)
            if rnd.random() < jump_probability:
                shock += rnd.choice((-1.0, 1.0)) * rnd.uniform(0.05, 0.12)
            prices[index] = max(0.01, prices[index] * math.exp(shock))
            yield Tick(
                symbol=symbol,
                ts=ts,
                price=Decimal(prices[index]).quantize(_CENT),
                volume=rnd.randint(0, 5_000),
                source="synthetic",
            )
        ts += step
