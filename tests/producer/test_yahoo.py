"""The yfinance adapter, offline: bar -> tick (zones, partial bars, empty frames), no re-send,
nothing new outside market hours, 429 back-off, and yfinance's own parsing of recorded chart
responses with its network layer patched (no test touches the internet)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from producer.backoff import Backoff
from producer.errors import SourceError
from producer.yahoo import FetchResult, YahooPoller, YFinanceFetcher, bars_to_ticks

DATA = Path(__file__).resolve().parents[1] / "data"
NY = ZoneInfo("America/New_York")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def frame(zone: str, local_times: list[str], closes: list[float | None]) -> pd.DataFrame:
    """Bars in yfinance's documented shape: a ``Datetime`` index in the exchange's zone and
    Open, High, Low, Close, Volume columns (NaN where Yahoo had no value)."""
    index = pd.DatetimeIndex(pd.to_datetime(local_times, format="ISO8601")).tz_localize(zone)
    index.name = "Datetime"
    close = [float("nan") if c is None else c for c in closes]
    return pd.DataFrame(
        {
            "Open": close,
            "High": [c + 1 for c in close],
            "Low": [c - 1 for c in close],
            "Close": close,
            "Volume": [float("nan") if c is None else 100.0 for c in closes],
        },
        index=index,
    )


def test_bar_time_is_the_bars_own_time_in_utc_across_zones_and_dst() -> None:
    late = datetime(2030, 1, 1, tzinfo=UTC)
    winter = bars_to_ticks(
        "AAPL",
        frame("America/New_York", ["2024-03-08 09:30", "2024-03-08 09:31"], [1, 2]),
        after=EPOCH,
        now=late,
    )
    summer = bars_to_ticks(
        "AAPL", frame("America/New_York", ["2024-03-11 09:30"], [3]), after=EPOCH, now=late
    )
    india = bars_to_ticks(
        "RELIANCE.NS", frame("Asia/Kolkata", ["2024-03-08 09:15"], [2950.5]), after=EPOCH, now=late
    )
    assert [t.ts for t in winter] == [
        datetime(2024, 3, 8, 14, 30, tzinfo=UTC),
        datetime(2024, 3, 8, 14, 31, tzinfo=UTC),
    ]
    assert summer[0].ts == datetime(2024, 3, 11, 13, 30, tzinfo=UTC)  # EDT: UTC-4
    assert india[0].ts == datetime(2024, 3, 8, 3, 45, tzinfo=UTC)  # IST: UTC+5:30
    assert india[0].price == Decimal("2950.5") and india[0].source == "yfinance"
    assert winter[0].high == Decimal(2) and winter[0].volume == 100


def test_float_noise_is_rounded_and_nan_rows_are_skipped() -> None:
    bars = frame(
        "America/New_York", ["2024-03-08 09:30", "2024-03-08 09:31"], [None, 187.2300109863281]
    )
    (tick,) = bars_to_ticks("AAPL", bars, after=EPOCH, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert tick.price == Decimal("187.2300109863")


def test_empty_frames_and_zoneless_frames() -> None:
    assert bars_to_ticks("AAPL", pd.DataFrame(), after=EPOCH, now=EPOCH) == []
    naive = frame("America/New_York", ["2024-03-08 09:30"], [1]).tz_localize(None)
    with pytest.raises(SourceError, match="without a time zone"):
        bars_to_ticks("AAPL", naive, after=EPOCH, now=datetime(2030, 1, 1, tzinfo=UTC))


def test_partial_last_bar_waits_until_closed_and_is_sent_once_with_final_values() -> None:
    open_bar = datetime(2024, 3, 8, 14, 31, tzinfo=UTC)
    live = frame("America/New_York", ["2024-03-08 09:30", "2024-03-08 09:31"], [10, 11])
    during = bars_to_ticks("AAPL", live, after=EPOCH, now=open_bar + timedelta(seconds=20))
    assert [t.ts for t in during] == [open_bar - timedelta(minutes=1)]  # only the closed one

    final = frame("America/New_York", ["2024-03-08 09:30", "2024-03-08 09:31"], [10, 11.5])
    after = bars_to_ticks(
        "AAPL", final, after=during[-1].ts, now=open_bar + timedelta(minutes=1, seconds=16)
    )
    assert [(t.ts, t.price) for t in after] == [(open_bar, Decimal("11.5"))]


def test_a_live_row_off_the_minute_is_never_sent_by_time() -> None:
    bars = frame("America/New_York", ["2024-03-08 09:30", "2024-03-08 09:31:37"], [10, 11])
    ticks = bars_to_ticks("AAPL", bars, after=EPOCH, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert [t.ts.minute for t in ticks] == [30]


class ScriptedFetcher:
    """Answers each poll with the next scripted result (the last one repeats)."""

    def __init__(self, *results: FetchResult) -> None:
        self.results = list(results)
        self.calls: list[list[str]] = []

    def fetch(self, symbols: Any) -> FetchResult:
        self.calls.append(list(symbols))
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


class Wall:
    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def poller(fetcher: ScriptedFetcher, wall: Wall, **kw: Any) -> YahooPoller:
    return YahooPoller(
        ["AAPL", "MSFT"],
        fetcher,
        every=30,
        sleep=wall.sleep,
        now=wall,
        backoff=Backoff(base=30, cap=600, rng=random.Random(2)),
        **kw,
    )


def session(closes: dict[str, list[float]], start: str = "2024-03-08 09:30") -> FetchResult:
    times = [str(pd.Timestamp(start) + pd.Timedelta(minutes=i)) for i in range(3)]
    return FetchResult({s: frame("America/New_York", times, c) for s, c in closes.items()})


def test_bars_already_sent_are_not_sent_again() -> None:
    wall = Wall(datetime(2024, 3, 8, 14, 33, 30, tzinfo=UTC))  # 09:33:30 New York
    p = poller(
        ScriptedFetcher(session({"AAPL": [1, 2, 3], "MSFT": [4, 5, 6]})),
        wall,
        backfill=timedelta(minutes=10),
    )
    first = p.poll()
    # 09:32 is still open at 09:33:30 - 15 s grace: it ends 09:33:00, grace to 09:33:15: closed.
    assert [(t.symbol, t.ts.minute) for t in first] == [
        ("AAPL", 30),
        ("MSFT", 30),
        ("AAPL", 31),
        ("MSFT", 31),
        ("AAPL", 32),
        ("MSFT", 32),
    ]
    wall.now += timedelta(minutes=5)
    assert p.poll() == []  # Yahoo repeats the same bars: nothing new
    assert p.stats.ticks == 6


def test_outside_market_hours_nothing_is_sent_and_no_backoff() -> None:
    evening = datetime(2024, 3, 8, 23, 0, tzinfo=UTC)  # 18:00 New York, market closed
    wall = Wall(evening)
    fetcher = ScriptedFetcher(session({"AAPL": [1, 2, 3], "MSFT": [4, 5, 6]}, "2024-03-08 15:57"))
    stops = iter([False] * 3 + [True])
    p = poller(fetcher, wall, stopped=lambda: next(stops))
    assert list(p.ticks()) == []  # the session's last bars are stale: never sent
    assert len(fetcher.calls) == 3
    assert wall.slept == [30, 30, 30]  # a closed market is not a failure: normal cadence


def test_rate_limit_and_empty_frames_back_off_with_jitter_and_recover() -> None:
    wall = Wall(datetime(2024, 3, 8, 14, 33, 30, tzinfo=UTC))
    limited = FetchResult({"AAPL": pd.DataFrame(), "MSFT": pd.DataFrame()}, ["AAPL", "MSFT"])
    empty = FetchResult({"AAPL": pd.DataFrame(), "MSFT": pd.DataFrame()})
    good = session({"AAPL": [1, 2, 3], "MSFT": [4, 5, 6]})
    fetcher = ScriptedFetcher(limited, limited, empty, good)
    stops = iter([False] * 4 + [True])
    p = poller(fetcher, wall, stopped=lambda: next(stops), backfill=timedelta(minutes=10))
    sent = list(p.ticks())

    assert len(fetcher.calls) == 4 and len(sent) == 6  # the loop survived and recovered
    assert p.stats.rate_limited == 2 and p.stats.empty == 6
    pauses = wall.slept
    assert all(pause > 30 for pause in pauses[:3])  # backed off above the interval
    assert pauses[1] - 30 <= 60 and pauses[2] - 30 <= 120  # growing ceiling, jittered below
    assert pauses[3] == 30  # back to normal after a good poll
    assert all(f == ["AAPL", "MSFT"] for f in fetcher.calls)  # one call for all symbols


# --- yfinance itself, network layer patched with recorded chart responses ------------------


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self.status_code = 200
        self.text = json.dumps(body)
        self.url = "https://query2.finance.yahoo.com/v8/finance/chart"

    def json(self) -> dict[str, Any]:
        return self._body


@pytest.fixture
def offline_yahoo(tmp_path: Path) -> Iterator[set[str]]:
    """Patch yfinance's HTTP layer (``YfData.get``): each chart request is answered from
    ``tests/data/yahoo_chart_<SYMBOL>_1m.json``; symbols in the returned set get HTTP 429."""
    import yfinance as yf
    from yfinance.exceptions import YFRateLimitError

    yf.set_tz_cache_location(str(tmp_path))
    limited: set[str] = set()

    def get(self: Any, url: str, params: Any = None, timeout: Any = 30) -> _Response:
        symbol = url.rsplit("/", 1)[1]
        if symbol in limited:
            raise YFRateLimitError()
        return _Response(json.loads((DATA / f"yahoo_chart_{symbol}_1m.json").read_text()))

    with mock.patch("yfinance.data.YfData.get", get):
        yield limited


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # inside yfinance, under pandas 3
def test_yfinance_download_frames_become_ticks(offline_yahoo: set[str]) -> None:
    result = YFinanceFetcher(threads=False).fetch(["AAPL", "RELIANCE.NS"])
    assert result.rate_limited == []
    wall = Wall(datetime(2024, 3, 8, 16, 0, tzinfo=UTC))  # long after both sessions' bars

    class Once:
        def fetch(self, symbols: Any) -> FetchResult:
            return result

    p = YahooPoller(["AAPL", "RELIANCE.NS"], Once(), now=wall, backfill=timedelta(days=1))
    ticks = p.poll()
    by_symbol: dict[str, list[str]] = {}
    for t in ticks:
        by_symbol.setdefault(t.symbol, []).append(t.ts.strftime("%H:%M"))
    # The null minute (index 2) is dropped; download's union index NaNs are not ticks.
    assert by_symbol == {
        "AAPL": ["14:30", "14:31", "14:33", "14:34"],
        "RELIANCE.NS": ["03:45", "03:46", "03:48"],
    }
    assert ticks[0].symbol == "RELIANCE.NS"  # sent in time order across symbols
    aapl = next(t for t in ticks if t.symbol == "AAPL")
    assert aapl.price == Decimal("170.0000109863") and aapl.volume == 1000


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # inside yfinance, under pandas 3
def test_yfinance_429_is_reported_not_raised(offline_yahoo: set[str]) -> None:
    offline_yahoo.add("AAPL")
    result = YFinanceFetcher(threads=False).fetch(["AAPL", "RELIANCE.NS"])
    assert result.rate_limited == ["AAPL"]
    assert not result.frames["RELIANCE.NS"].dropna(how="all").empty
