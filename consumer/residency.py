"""Which symbols' windows stay in a shard processor's memory.

A shard can see any number of distinct symbols over its life; keeping every window would grow
without bound. After each commit every window in memory is saved (the commit saves the state
of every symbol touched since the previous one), so a window can be dropped and loaded again
from the state store the next time its symbol appears - the processor already loads state
lazily, per symbol. Symbols are ordered by the last commit that touched them (least recently
used first); the cost is per touched symbol per commit, nothing per record.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable


class Residency:
    """Recency of the symbols a processor holds, and eviction beyond ``capacity``."""

    __slots__ = ("_order", "capacity", "evicted")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._order: dict[str, None] = {}  # insertion order = recency, oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._order

    def loaded(self, symbols: Iterable[str]) -> None:
        """Symbols whose state was just looked up: they are now resident (most recent)."""
        for symbol in symbols:
            self._order.pop(symbol, None)
            self._order[symbol] = None

    def used(self, symbols: Iterable[str]) -> None:
        """Symbols a commit just made durable: most recent, in that order."""
        self.loaded(symbols)

    def evict(self, keep: Collection[str], drop: Callable[[str], None]) -> int:
        """Drop the least recently used symbols until at most ``capacity`` remain, never one
        in ``keep`` (touched since the last commit: its window is not saved yet). Returns
        how many were dropped."""
        order = self._order
        excess = len(order) - self.capacity
        if excess <= 0:
            return 0
        victims: list[str] = []
        for symbol in order:
            if len(victims) == excess:
                break
            if symbol not in keep:
                victims.append(symbol)
        for symbol in victims:
            del order[symbol]
            drop(symbol)
        self.evicted += len(victims)
        return len(victims)
