"""Real price data shipped by an installable package: no scraped data lives in this repository.

``bokeh-stocks``: daily OHLCV of AAPL, FB, GOOG, IBM and MSFT, 2000-2013, from the
``bokeh-sampledata`` package. A daily bar becomes a tick stamped at the close, 16:00
America/New_York (so the zone conversion, DST included, is exercised on real data).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

from core.contracts.tick import Tick, to_price
from producer.errors import ProducerError

NEW_YORK: Final = ZoneInfo("America/New_York")
MARKET_CLOSE: Final = time(16, 0)
DATASETS: Final = ("bokeh-stocks",)
DEFAULT_DATASET: Final = "bokeh-stocks"


class UnknownDataset(ProducerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
        self.name = name


def _bokeh_stocks() -> list[Tick]:
    from bokeh_sampledata import stocks  # imported lazily: only runs that replay data need it

    ticks: list[Tick] = []
    for symbol in ("AAPL", "FB", "GOOG", "IBM", "MSFT"):
        series = getattr(stocks, symbol)
        for day, open_, high, low, close, volume in zip(
            series["date"],
            series["open"],
            series["high"],
            series["low"],
            series["close"],
            series["volume"],
            strict=True,
        ):
            local_close = datetime.combine(date.fromisoformat(day), MARKET_CLOSE, NEW_YORK)
            ticks.append(
                Tick(
                    symbol=symbol,
                    ts=local_close.astimezone(UTC),
                    price=to_price(close),
                    open=to_price(open_),
                    high=to_price(high),
                    low=to_price(low),
                    volume=int(volume),
                    source="bokeh_sampledata.stocks",
                )
            )
    return ticks


def load_dataset(name: str = DEFAULT_DATASET) -> list[Tick]:
    """All ticks of a dataset in event-time order (ties by symbol), as a stream would carry them."""
    if name != "bokeh-stocks":
        raise UnknownDataset(name)
    return sorted(_bokeh_stocks(), key=lambda t: (t.ts, t.symbol))


def iter_dataset(name: str = DEFAULT_DATASET) -> Iterator[Tick]:
    yield from load_dataset(name)
