"""The seams between the record processor and its sinks. Implementations are swappable in
tests (an in-memory store, a fault-injecting wrapper) without mocks."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from consumer.fencing import Ownership
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.window import SymbolWindow


class SavedState(msgspec.Struct, frozen=True):
    """A symbol's window plus the position of the last record applied to it. A record of the
    same shard at or before ``sequence_number`` was applied already (a replay): skip it."""

    window: SymbolWindow
    shard_id: str
    sequence_number: str


class RowSink(Protocol):
    """The DynamoDB rows table (idempotent: keyed by symbol + ts)."""

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None: ...


class LakeSink(Protocol):
    """Parquet objects in S3 for ticks and dead letters (see consumer/sinks/lake.py)."""

    def write_batch(self, batch: LakeBatch) -> None: ...


class StateStore(Protocol):
    """Per-symbol state and the shard fences (consumer/fencing.py)."""

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        """Make this processor the shard's owner: a new, larger epoch."""
        ...

    def holds(self, ownership: Ownership) -> bool:
        """Whether ``ownership`` is still the shard's newest claim (a consistent read)."""
        ...

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]: ...

    def forget(self, symbols: Iterable[str]) -> None:
        """The processor dropped these symbols' windows (consumer/residency.py): whatever the
        store remembers of them since ``load`` can go too; a later ``load`` brings it back."""
        ...

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        """Conditional on ``ownership`` still holding the shard's epoch (else ``FencedOut``)
        and, for a symbol saved by another shard, on it being unchanged since it was loaded
        (else ``StateSuperseded``): a stale owner, or a parent shard's, never overwrites."""
        ...


class ReplayPositions(Protocol):
    def __call__(self, symbols: Collection[str]) -> Mapping[str, int]:
        """For those of ``symbols`` whose state was saved on this shard before this processor
        started: that saved position. Loads what the processor has not looked up yet."""
        ...


@dataclass(frozen=True)
class LakeBatch:
    """What one flush writes to the lake, and how to name it (see consumer/sinks/lake.py).

    ``tick_keys``: per event date (UTC), the smallest sequence number of a valid tick of that
    date in the batch, whether it produced a row or not. ``dead_letter_keys``: per arrival
    date, the smallest sequence number of any record of the batch that arrived that day.
    ``replayed``: the saved positions this processor started from; a record at or before its
    symbol's was skipped, so its row can only be in an object of an earlier attempt.
    ``owner``: the writer's claim (named in each object's footer); ``still_owner`` re-checks
    it when a conditional write fails (consumer/fencing.py).
    """

    shard_id: str
    rows: list[EnrichedRow]
    dead_letters: list[DeadLetter]
    tick_keys: dict[str, int]
    dead_letter_keys: dict[str, int]
    replayed: ReplayPositions
    owner: Ownership
    still_owner: Callable[[], bool]
