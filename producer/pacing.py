"""Pacing of a record stream: by a fixed rate, or by the records' own event times.

The waiting itself is delegated to ``idle`` (the runner's: it keeps the Kinesis writer
flushing and returns early on shutdown), so pacing never blocks a batch that is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from core.contracts.tick import Tick

T = TypeVar("T")
Idle = Callable[[float], None]
Clock = Callable[[], float]


def at_rate(
    items: Iterable[T], rate: float, idle: Idle, clock: Clock = time.monotonic
) -> Iterator[T]:
    """Yield item *i* no earlier than ``start + i / rate``. Deadlines come from the start, not
    the previous item, so a slow moment is caught up instead of lowering the average rate."""
    start = clock()
    for index, item in enumerate(items):
        wait = start + index / rate - clock()
        if wait > 0:
            idle(wait)
        yield item


def at_event_time(
    ticks: Iterable[Tick], speed: float, idle: Idle, clock: Clock = time.monotonic
) -> Iterator[Tick]:
    """Replay ticks with their event-time gaps divided by ``speed`` (86400: a day a second)."""
    first = None
    start = 0.0
    for tick in ticks:
        if first is None:
            first, start = tick.ts, clock()
        wait = start + (tick.ts - first).total_seconds() / speed - clock()
        if wait > 0:
            idle(wait)
        yield tick


def until(items: Iterable[T], seconds: float, clock: Clock = time.monotonic) -> Iterator[T]:
    """Yield items for ``seconds`` of wall time (as fast as they come)."""
    deadline = clock() + seconds
    for item in items:
        if clock() >= deadline:
            return
        yield item
