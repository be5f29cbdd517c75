"""In-memory stand-ins for the sinks' backends, with the same semantics the real ones rely
on (no mocking library: plain classes implementing the same methods)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from consumer.fencing import FencedOut, Ownership
from consumer.sinks.types import SavedState, StateStore
from core.contracts.row import EnrichedRow


class Crash(Exception):
    """A kill -9 at an injected point."""


def _etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'  # S3's ETag of a single-part object


def _precondition_failed(key: str) -> ClientError:
    return ClientError({"Error": {"Code": "PreconditionFailed", "Message": key}}, "PutObject")


class MemoryS3:
    """put/get/delete of whole objects, as S3Lake uses them, with S3's conditional writes
    (``IfNoneMatch="*"``, ``IfMatch=<ETag>``)."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.crash_after_puts: int | None = None
        self.puts = 0

    def _check(self, key: str, if_match: str | None, if_none_match: str | None) -> None:
        current = self.objects.get(key)
        if if_none_match == "*" and current is not None:
            raise _precondition_failed(key)
        if if_match is not None and (current is None or _etag(current) != if_match):
            raise _precondition_failed(key)

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        IfMatch: str | None = None,
        IfNoneMatch: str | None = None,
        **_: Any,
    ) -> None:
        if self.crash_after_puts is not None and self.puts >= self.crash_after_puts:
            raise Crash(f"crash before PUT {Key}")
        self._check(Key, IfMatch, IfNoneMatch)
        self.puts += 1
        self.objects[Key] = Body

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        body = self.objects[Key]
        return {"Body": io.BytesIO(body), "ETag": _etag(body)}

    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> None:
        self._check(Key, IfMatch, None)
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
    """The state table with DynamoStateStore's fence (a save checks the shard's epoch) for
    one owner at a time. A crash mid save leaves some symbols saved (DynamoDB's transactions
    are per ≤ 99 symbols, so a crash between two of them does the same)."""

    def __init__(self) -> None:
        self.items: dict[str, SavedState] = {}
        self.epochs: dict[str, int] = {}
        self.crash_after_symbols: int | None = None

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        self.epochs[shard_id] = self.epochs.get(shard_id, 0) + 1
        return Ownership(shard_id, self.epochs[shard_id], worker)

    def holds(self, ownership: Ownership) -> bool:
        return self.epochs.get(ownership.shard_id) == ownership.epoch

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        # Copies, as a real store returns: the processor mutates the windows it loads.
        return {s: _copy(self.items[s]) for s in symbols if s in self.items}

    def forget(self, symbols: Iterable[str]) -> None:
        pass  # keeps nothing per symbol beyond the items themselves

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        if not self.holds(ownership):
            raise FencedOut(ownership, "state save")
        for count, (symbol, state) in enumerate(sorted(states.items())):
            if self.crash_after_symbols is not None and count >= self.crash_after_symbols:
                raise Crash(f"crash after saving {count} symbols")
            # A copy: the live window keeps changing in the processor.
            self.items[symbol] = _copy(state)


class DelegatingState:
    """A state store that passes every call to ``inner``: fault-injecting and pausing
    wrappers subclass it and override only the calls they interfere with."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        return self.inner.claim(shard_id, worker)

    def holds(self, ownership: Ownership) -> bool:
        return self.inner.holds(ownership)

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        return self.inner.load(symbols)

    def forget(self, symbols: Iterable[str]) -> None:
        self.inner.forget(symbols)

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        self.inner.save(states, ownership)


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


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
