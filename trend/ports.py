"""The seams of the alerting run: what it reads, where it keeps its progress, what it sends.

The runner depends on these Protocols only; DynamoDB/SNS implementations live in
``trend/dynamo.py`` and ``trend/sns.py``, and tests swap in their own without mocking.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from trend.cursor import SymbolCursor
from trend.evaluate import RowView
from trend.messages import AlertMessage


@dataclass(frozen=True, slots=True)
class DurableSymbol:
    """A symbol the consumer has seen, and how far its rows are known to be written.

    ``watermark`` (fixed-width UTC ts) is the ``last_ts`` of the window in the consumer's state
    item. The consumer saves that item only after the rows it covers are written (its commit:
    rows, Parquet, state, checkpoint), so every row of the symbol with ``ts <= watermark`` is in
    the rows table; rows after it may belong to a flush still in flight, written out of order.
    None: the state item has no window (nothing known durable): the symbol is not evaluated.
    ``error``: the state item cannot be read; the symbol fails this run (retried, not skipped).
    """

    symbol: str
    watermark: str | None
    error: str | None = None


class SymbolSource(Protocol):
    def symbols(self) -> Iterator[DurableSymbol]:
        """Every symbol the consumer has seen (discovered, never configured), by symbol."""
        ...


class RowReader(Protocol):
    def rows_between(self, symbol: str, after: str | None, until: str) -> Iterator[RowView]:
        """The symbol's rows with ``after < ts <= until`` (no lower bound when ``after`` is
        None), ascending. Never a row after ``until``, whatever the table holds."""
        ...


class CursorStore(Protocol):
    def load(self, symbol: str) -> SymbolCursor | None: ...

    def advance(self, symbol: str, cursor: SymbolCursor, now: datetime) -> bool:
        """Save ``cursor`` if its ``position`` is ahead of the stored one; False when another
        run got there first (not an error: that run's cursor is at least as far)."""
        ...


class RotationStore(Protocol):
    """Where the rotation over the symbols stands: the symbol the last run finished with.

    A hint for fairness, not part of any exactly-once guarantee (those live in the per-symbol
    cursor and the ledger): losing it or reading a stale value only changes where a run
    starts, never which alerts go out."""

    def resume_after(self) -> str | None:
        """The symbol the last run finished with; None before the first run."""
        ...

    def save(self, symbol: str, now: datetime) -> None: ...


class Claim(enum.Enum):
    CLAIMED = "claimed"  # this run owns the alert now: publish it, then mark it sent
    SENT = "sent"  # delivered before (an earlier or concurrent run): skip
    BUSY = "busy"  # another run holds a live lease on it: leave the symbol for a later run


class AlertLedger(Protocol):
    def claim(
        self, symbol: str, key: str, owner: str, now: datetime, lease_until: datetime
    ) -> Claim:
        """Create the alert's record, or take over one whose owner's lease lapsed."""
        ...

    def mark_sent(
        self, symbol: str, key: str, owner: str, message_id: str, now: datetime
    ) -> None: ...

    def release(self, symbol: str, key: str, owner: str) -> None:
        """Give up a claim after a failed publish, so a retry need not wait for the lease."""
        ...


class AlertPublisher(Protocol):
    def publish(self, message: AlertMessage) -> str:
        """Send; returns the message id. Raises on failure (nothing was sent, as far as the
        caller can know)."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
