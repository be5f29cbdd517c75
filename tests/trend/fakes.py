"""In-memory implementations of trend/ports.py with the same conditional semantics as the
DynamoDB ones: fast enough to run the handler after every single row of the whole dataset."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.contracts.row import EnrichedRow
from core.contracts.tick import format_ts
from trend.cursor import SymbolCursor, decode_cursor, encode_cursor
from trend.evaluate import RowView
from trend.messages import AlertMessage
from trend.ports import Claim, CursorStore, DurableSymbol


class MemoryRows:
    """Rows table + state table, written as the consumer commits: ``put_rows`` (a flush's
    puts, in any order, each overwriting its key), then ``save_state`` (the window's last_ts
    becomes the symbol's watermark). ``write`` is a whole commit. A symbol appears when its
    first state is saved, as it does in the state table."""

    def __init__(self) -> None:
        self._keys: dict[str, list[str]] = defaultdict(list)  # sorted ts, for bisect
        self._rows: dict[str, dict[str, RowView]] = defaultdict(dict)
        self._watermarks: dict[str, str] = {}

    def write(self, rows: Sequence[EnrichedRow]) -> None:
        self.put_rows(rows)
        self.save_state(rows)

    def put_rows(self, rows: Sequence[EnrichedRow]) -> None:
        for r in rows:
            key = format_ts(r.ts)
            if key not in self._rows[r.symbol]:
                bisect.insort(self._keys[r.symbol], key)
            self._rows[r.symbol][key] = RowView(
                r.ts, r.price, r.anomaly, r.prev_price, r.change_pct
            )

    def save_state(self, rows: Sequence[EnrichedRow]) -> None:
        """The consumer saved the windows after applying ``rows`` (their rows are written)."""
        for r in rows:
            key = format_ts(r.ts)
            assert key in self._rows[r.symbol], "state saved before its row was written"
            self._watermarks[r.symbol] = max(self._watermarks.get(r.symbol, key), key)

    def symbols(self) -> Iterator[DurableSymbol]:
        return iter([DurableSymbol(s, w) for s, w in sorted(self._watermarks.items())])

    def rows_between(self, symbol: str, after: str | None, until: str) -> Iterator[RowView]:
        keys = self._keys[symbol]
        start = 0 if after is None else bisect.bisect_right(keys, after)
        stop = bisect.bisect_right(keys, until)
        return iter([self._rows[symbol][k] for k in keys[start:stop]])


class MemoryCursors:
    def __init__(self) -> None:
        self._items: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, symbol: str) -> SymbolCursor | None:
        raw = self._items.get(symbol)
        return None if raw is None else decode_cursor(symbol, raw)

    def advance(self, symbol: str, cursor: SymbolCursor, now: datetime) -> bool:
        assert cursor.position is not None
        with self._lock:
            stored = self._items.get(symbol)
            if stored is not None:
                position = decode_cursor(symbol, stored).position
                if position is not None and not position < cursor.position:
                    return False
            self._items[symbol] = encode_cursor(cursor)  # stored as bytes, as DynamoDB would
            return True


@dataclass
class _Entry:
    status: str
    owner: str
    lease_until: datetime


class MemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def claim(
        self, symbol: str, key: str, owner: str, now: datetime, lease_until: datetime
    ) -> Claim:
        with self._lock:
            entry = self.entries.get((symbol, key))
            if entry is None or (entry.status == "pending" and entry.lease_until < now):
                self.entries[(symbol, key)] = _Entry("pending", owner, lease_until)
                return Claim.CLAIMED
            return Claim.SENT if entry.status == "sent" else Claim.BUSY

    def mark_sent(self, symbol: str, key: str, owner: str, message_id: str, now: datetime) -> None:
        with self._lock:
            self.entries[(symbol, key)].status = "sent"

    def release(self, symbol: str, key: str, owner: str) -> None:
        with self._lock:
            entry = self.entries[(symbol, key)]
            if entry.status == "pending" and entry.owner == owner:
                entry.lease_until = datetime.min.replace(tzinfo=entry.lease_until.tzinfo)


@dataclass
class RecordingPublisher:
    messages: list[AlertMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, message: AlertMessage) -> str:
        with self._lock:
            self.messages.append(message)
            return f"m-{len(self.messages)}"


class FailingPublisher:
    """Delegates, but raises after ``ok`` successful publishes (``exc`` decides how hard:
    an Exception is a failed publish, a BaseException a crash of the whole process)."""

    def __init__(self, inner: object, ok: int, exc: BaseException) -> None:
        self.inner, self.ok, self.exc = inner, ok, exc

    def publish(self, message: AlertMessage) -> str:
        if self.ok <= 0:
            raise self.exc
        self.ok -= 1
        return self.inner.publish(message)  # type: ignore[attr-defined,no-any-return]


class Crash(BaseException):
    """The process dies here: no except-Exception cleanup runs (like a Lambda timeout)."""


class MemoryRotation:
    def __init__(self) -> None:
        self.after: str | None = None

    def resume_after(self) -> str | None:
        return self.after

    def save(self, symbol: str, now: datetime) -> None:
        self.after = symbol


class CostTimer:
    """A monotonic timer that only moves when work is charged to it: a run's budget runs out
    after an exact number of symbols, with no sleeping and no dependence on machine speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CostlyCursors:
    """A CursorStore that charges ``cost`` seconds to ``timer`` per symbol (its cursor load:
    once per evaluated symbol) and records which symbols were evaluated, in order."""

    def __init__(self, inner: CursorStore, timer: CostTimer, cost: float) -> None:
        self.inner, self.timer, self.cost = inner, timer, cost
        self.loaded: list[str] = []

    def load(self, symbol: str) -> SymbolCursor | None:
        self.timer.now += self.cost
        self.loaded.append(symbol)
        return self.inner.load(symbol)

    def advance(self, symbol: str, cursor: SymbolCursor, now: datetime) -> bool:
        return self.inner.advance(symbol, cursor, now)
