"""Live quotes from Yahoo via yfinance 1.7: poll one-minute bars, send each *closed* bar once.

Facts of yfinance 1.7 this relies on (checked in its source):
- ``yf.download(tickers, period="1d", interval="1m")`` fetches every symbol in one call (Yahoo's
  chart endpoint is per symbol, so yfinance fans out over threads) and returns one frame,
  columns ``(Ticker, Price)``, index ``Datetime`` (tz-aware, the exchange zone of most
  symbols), reindexed to the union of all symbols' bars, so a symbol can have NaN rows.
- The last bar can be a live, partial minute whose Close still moves.
- Errors are hidden: a failed symbol comes back as an empty frame. In ``download`` even HTTP
  429 (``YFRateLimitError``) is caught per symbol and only *logged* on the ``yfinance``
  logger, so ``YFinanceFetcher`` listens to that logger to tell "rate limited" from "empty".
- ``fast_info`` is cached per ``Ticker`` and has no quote time, so it is not used.

Time: a tick's ``ts`` is the bar's own (start) time, never the fetch time. A bar is sent once,
when it is closed: a later bar of the symbol exists, or the bar's end plus a grace period has
passed. A partial bar is never sent: the consumer treats a second tick with the same ``ts`` and
another price as *late* (a dead letter), so "updating" a bar would corrupt the stream; waiting
for the close costs at most one bar (a minute) of latency. Outside market hours Yahoo repeats
the session's last bars, which are all at or before the per-symbol watermark: nothing is sent.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Protocol

from core.contracts.rejects import InvalidTick
from core.contracts.tick import Tick, to_price
from producer.backoff import Backoff
from producer.errors import SourceError

if TYPE_CHECKING:
    import pandas as pd

log: Final = logging.getLogger("stockpipe.producer")

BAR: Final = "1m"  # Yahoo's finest interval
BAR_LENGTH: Final = timedelta(minutes=1)
SOURCE: Final = "yfinance"


@dataclass
class FetchResult:
    frames: dict[str, pd.DataFrame]  # symbol -> bars (Open, High, Low, Close, Volume)
    rate_limited: list[str] = field(default_factory=list)  # symbols Yahoo answered 429 for


class BarFetcher(Protocol):
    """Today's one-minute bars of many symbols in one call."""

    def fetch(self, symbols: Sequence[str]) -> FetchResult: ...


class _RateLimitListener(logging.Handler):
    """Notices yfinance logging a ``YFRateLimitError`` it swallowed inside ``download``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if "YFRateLimitError" in record.getMessage():
            self.seen = True


class YFinanceFetcher:
    def __init__(self, threads: bool = True) -> None:
        # yfinance fetches the symbols of one download in threads, which share its SQLite
        # time-zone cache; on a loaded machine a thread can fail and its symbol come back
        # empty. In production that is one empty poll, caught up by the next (bars are sent
        # by watermark); tests that need every symbol every time pass threads=False.
        self._threads = threads

    def fetch(self, symbols: Sequence[str]) -> FetchResult:
        import yfinance as yf

        listener = _RateLimitListener()
        yf_logger = logging.getLogger("yfinance")
        yf_logger.addHandler(listener)
        try:
            data = yf.download(
                list(symbols),
                period="1d",
                interval=BAR,
                group_by="ticker",
                auto_adjust=False,
                prepost=False,
                ignore_tz=False,  # keep the zone: the tick's ts must be an instant
                threads=self._threads,
                progress=False,
                multi_level_index=True,
            )
        finally:
            yf_logger.removeHandler(listener)
        frames: dict[str, pd.DataFrame] = {}
        top = set(data.columns.get_level_values(0)) if data is not None else set()
        for symbol in symbols:
            frames[symbol] = data[symbol] if data is not None and symbol in top else _empty()
        limited = [s for s in symbols if frames[s].dropna(how="all").empty] if listener.seen else []
        return FetchResult(frames, limited)


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=["Open", "High", "Low", "Close", "Volume"])


def _number(value: object) -> float | None:
    """A finite cell as a float (numpy scalars included), else None (NaN, missing)."""
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return float(value)
    return None


def _optional_price(value: object, name: str) -> Decimal | None:
    number = _number(value)
    return to_price(number, name) if number is not None and number > 0 else None


def bars_to_ticks(
    symbol: str,
    frame: pd.DataFrame,
    *,
    after: datetime,
    now: datetime,
    grace: timedelta = timedelta(seconds=15),
) -> list[Tick]:
    """The closed bars of ``frame`` newer than ``after``, as ticks in time order.

    A row whose time is not on a minute boundary is a live snapshot, not a bar: it is never
    closed by time, only superseded by the bars that follow it."""
    if frame.empty:
        return []
    index = frame.index
    if getattr(index, "tz", None) is None:
        raise SourceError(f"{symbol}: yfinance returned bars without a time zone")
    rows = frame.dropna(subset=["Close"]).sort_index()
    times = [stamp.to_pydatetime().astimezone(UTC) for stamp in rows.index]
    columns = {
        name: rows[name].tolist() if name in rows.columns else [None] * len(rows)
        for name in ("Open", "High", "Low", "Close", "Volume")
    }
    ticks: list[Tick] = []
    for position, ts in enumerate(times):
        if ts <= after:
            continue
        on_boundary = ts.second == 0 and ts.microsecond == 0
        closed = position + 1 < len(times) or (on_boundary and now >= ts + BAR_LENGTH + grace)
        if not closed:
            continue
        close = _number(columns["Close"][position])
        if close is None or close <= 0:
            log.warning("bad_bar", extra={"fields": {"symbol": symbol, "ts": ts.isoformat()}})
            continue
        volume = _number(columns["Volume"][position])
        try:
            tick = Tick(
                symbol=symbol,
                ts=ts,
                price=to_price(close),
                open=_optional_price(columns["Open"][position], "open"),
                high=_optional_price(columns["High"][position], "high"),
                low=_optional_price(columns["Low"][position], "low"),
                volume=int(volume) if volume is not None and volume >= 0 else None,
                source=SOURCE,
            )
        except InvalidTick as exc:
            log.warning("bad_bar", extra={"fields": {"symbol": symbol, "error": str(exc)}})
            continue
        ticks.append(tick)
    return ticks


@dataclass
class PollStats:
    polls: int = 0
    rate_limited: int = 0  # polls answered 429 (for at least one symbol)
    empty: int = 0  # symbol fetches that came back empty
    ticks: int = 0


class YahooPoller:
    """A ``QuoteSource``: polls every ``every`` seconds, forever, and yields new closed bars."""

    def __init__(
        self,
        symbols: Sequence[str],
        fetcher: BarFetcher,
        *,
        every: float = 30.0,
        backfill: timedelta = timedelta(minutes=2),
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        backoff: Backoff | None = None,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.symbols = list(symbols)
        self.fetcher = fetcher
        self.every = every
        self.sleep = sleep
        self.now = now
        self.stopped = stopped
        self.backoff = backoff or Backoff(base=every, cap=15 * 60)
        self.stats = PollStats()
        # Bars up to the watermark are never sent (again). Starting at now - backfill sends
        # the latest bar or two on start, but nothing from a session long closed, and a
        # restart re-sends at most those: the consumer drops exact duplicates.
        start = self.now() - backfill
        self.watermark: dict[str, datetime] = dict.fromkeys(self.symbols, start)
        self._failures = 0

    def ticks(self) -> Iterator[Tick]:
        while not self.stopped():
            yield from self.poll()
            self.sleep(self._pause())

    def poll(self) -> list[Tick]:
        """One fetch: the new closed bars of every symbol, in (ts, symbol) order."""
        self.stats.polls += 1
        result = self.fetcher.fetch(self.symbols)
        now = self.now()
        fresh: list[Tick] = []
        empties = [
            s for s in self.symbols if result.frames.get(s) is None or result.frames[s].empty
        ]
        self.stats.empty += len(empties)
        if result.rate_limited:
            self.stats.rate_limited += 1
            log.warning("yahoo_rate_limited", extra={"fields": {"symbols": result.rate_limited}})
        elif empties:
            log.warning("yahoo_empty", extra={"fields": {"symbols": empties}})
        for symbol in self.symbols:
            frame = result.frames.get(symbol)
            if frame is None:
                continue
            new = bars_to_ticks(symbol, frame, after=self.watermark[symbol], now=now)
            if new:
                self.watermark[symbol] = new[-1].ts
                fresh.extend(new)
        # Back off when Yahoo refuses or returns nothing at all; a market that is merely
        # closed still returns its last bars, so that does not count as a failure.
        failed = bool(result.rate_limited) or len(empties) == len(self.symbols)
        self._failures = self._failures + 1 if failed else 0
        fresh.sort(key=lambda t: (t.ts, t.symbol))
        self.stats.ticks += len(fresh)
        return fresh

    def _pause(self) -> float:
        if not self._failures:
            return self.every
        # Never sooner than the normal interval, jittered above it so many producers
        # that were refused together spread out.
        return self.every + self.backoff.delay(self._failures)
