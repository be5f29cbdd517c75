"""The seams of the alerting run: what it reads, where it keeps its progress, what it sends.

The runner depends on these Protocols only; DynamoDB/SNS implementations live in
``trend/dynamo.py`` and ``trend/sns.py``, and tests swap in their own without mocking.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from trend.cursor import SymbolCursor
from trend.evaluate import RowView
from trend.messages import AlertMessage


class SymbolSource(Protocol):
    def symbols(self) -> Iterator[str]:
        """Every symbol the consumer has seen (discovered, never configured)."""
        ...


class RowReader(Protocol):
    def rows_after(self, symbol: str, after: str | None) -> Iterator[RowView]:
        """The symbol's rows with ``ts > after`` (all when None), ascending."""
        ...


class CursorStore(Protocol):
    def load(self, symbol: str) -> SymbolCursor | None: ...

    def advance(self, symbol: str, cursor: SymbolCursor, now: datetime) -> bool:
        """Save ``cursor`` if its ``position`` is ahead of the stored one; False when another
        run got there first (not an error: that run's cursor is at least as far)."""
        ...


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
