"""In-memory stand-ins for the sinks' backends, with the same semantics the real ones rely
on (no mocking library: plain classes implementing the same methods)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from consumer.sinks.state_store import padded
from consumer.sinks.types import SavedState
from core.contracts.row import EnrichedRow


class Crash(Exception):
    """A kill -9 at an injected point."""


class MemoryS3:
    """put/get/delete of whole objects, as S3Lake uses them."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.crash_after_puts: int | None = None
        self.puts = 0

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        if self.crash_after_puts is not None and self.puts >= self.crash_after_puts:
            raise Crash(f"crash before PUT {Key}")
        self.puts += 1
        self.objects[Key] = Body

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        return {"Body": io.BytesIO(self.objects[Key])}

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        self.objects.pop(Key, None)


class MemoryRows:
    """The rows table: items keyed by (symbol, ts), a put overwrites."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], EnrichedRow] = {}
        self.crash_next = False

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        from core.contracts.tick import format_ts

        if self.crash_next:
            self.crash_next = False
            # Half the rows made it before the kill.
            for row in rows[: len(rows) // 2]:
                self.items[(row.symbol, format_ts(row.ts))] = row
            raise Crash("crash mid rows write")
        for row in rows:
            self.items[(row.symbol, format_ts(row.ts))] = row


class MemoryState:
    """The state table with the conditional put of DynamoStateStore."""

    def __init__(self) -> None:
        self.items: dict[str, SavedState] = {}
        self.crash_after_symbols: int | None = None

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        # Copies, as a real store returns: the processor mutates the windows it loads.
        return {s: _copy(self.items[s]) for s in symbols if s in self.items}

    def save(self, states: Mapping[str, SavedState]) -> None:
        for count, (symbol, state) in enumerate(sorted(states.items())):
            if self.crash_after_symbols is not None and count >= self.crash_after_symbols:
                raise Crash(f"crash after saving {count} symbols")
            old = self.items.get(symbol)
            if (
                old is None
                or old.shard_id != state.shard_id
                or padded(old.sequence_number) < padded(state.sequence_number)
            ):
                # A copy: the live window keeps changing in the processor.
                self.items[symbol] = _copy(state)


def _copy(state: SavedState) -> SavedState:
    return msgspec.json.decode(msgspec.json.encode(state), type=SavedState)


class MemoryCheckpointer:
    def __init__(self) -> None:
        self.checkpoint_at: str | None = None
        self.crash_next = False

    def checkpoint(self, sequence_number: str | None = None) -> None:
        if self.crash_next:
            self.crash_next = False
            raise Crash("crash before checkpoint")
        self.checkpoint_at = sequence_number
