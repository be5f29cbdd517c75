"""Each named query on the local engine, over a lake of real rows, equals the same figure
computed with pandas from the rows themselves."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from core.contracts.schema import partition_date
from lake.catalog import get_query
from lake.local_engine import LocalEngine
from lake.types import QueryResult
from tests.lake.conftest import FIRST_DAY, LAST_DAY, BuiltLake

FROM, TO = "2012-01-01", "2012-12-31"  # a sub-range: partition filtering must be right too
TOL = 1e-9


def run(engine: LocalEngine, name: str, **values: str) -> QueryResult:
    query = get_query(name)
    return engine.run(query.sql, query.bind(values))


def in_range(frame: pd.DataFrame, start: str = FROM, end: str = TO) -> pd.DataFrame:
    return frame[(frame["dt"] >= start) & (frame["dt"] <= end)]


def as_float(values: list[Any]) -> list[float]:
    return [float(v) for v in values]


def test_the_lake_holds_every_row(real_engine: LocalEngine, real_lake: BuiltLake) -> None:
    result = real_engine.run(
        "SELECT count(*) AS n FROM ticks WHERE dt BETWEEN ? AND ?", [FIRST_DAY, LAST_DAY]
    )
    assert result.rows == [(len(real_lake.rows),)]
    assert real_lake.files > 1000, "the lake should be made of many small files, as written"


def test_latest_price(real_engine: LocalEngine, real_lake: BuiltLake) -> None:
    frame = in_range(real_lake.frame())
    last = frame.sort_values("ts").groupby("symbol").tail(1).sort_values("symbol")
    result = run(real_engine, "latest_price", from_date=FROM, to_date=TO)
    assert result.column("symbol") == last["symbol"].tolist()
    assert result.column("ts") == last["ts"].tolist()
    assert as_float(result.column("price")) == pytest.approx(last["price"].tolist(), rel=TOL)
    counts = frame.groupby("symbol").size()
    assert result.column("ticks") == [counts[s] for s in last["symbol"]]


def test_daily_summary(real_engine: LocalEngine, real_lake: BuiltLake) -> None:
    frame = in_range(real_lake.frame()).sort_values("ts")
    grouped = frame.groupby(["dt", "symbol"], sort=True)
    expected = pd.DataFrame(
        {
            "open": grouped["price"].first(),
            "high": grouped["price"].max(),
            "low": grouped["price"].min(),
            "close": grouped["price"].last(),
            "volume": grouped["volume"].sum(),
            "ticks": grouped.size(),
            "anomalies": grouped["anomaly"].sum(),
        }
    ).reset_index()
    result = run(real_engine, "daily_summary", from_date=FROM, to_date=TO)
    assert result.column("dt") == expected["dt"].tolist()
    assert result.column("symbol") == expected["symbol"].tolist()
    for name in ("open", "high", "low", "close"):
        assert as_float(result.column(name)) == pytest.approx(expected[name].tolist(), rel=TOL)
    for name in ("volume", "ticks", "anomalies"):
        assert [int(v) for v in result.column(name)] == expected[name].tolist(), name


def test_anomalies(real_engine: LocalEngine, real_lake: BuiltLake) -> None:
    frame = in_range(real_lake.frame(), FIRST_DAY, LAST_DAY)
    expected = frame[frame["anomaly"]].sort_values(["ts", "symbol"])
    assert len(expected) > 5, "the real data has > 5 % moves"
    result = run(real_engine, "anomalies", from_date=FIRST_DAY, to_date=LAST_DAY)
    assert list(zip(result.column("symbol"), result.column("ts"), strict=True)) == list(
        zip(expected["symbol"], expected["ts"], strict=True)
    )
    for row in result.records():  # |change| / prev > 5 %, recomputed from the row's own prices
        assert abs(row["price"] - row["prev_price"]) * 100 > 5 * row["prev_price"]


def test_dead_letters_by_reason(real_engine: LocalEngine, real_lake: BuiltLake) -> None:
    expected = Counter(
        (partition_date(datetime.fromisoformat(d.arrival_ts or "")), d.reason)
        for d in real_lake.dead_letters
    )
    assert {reason for _, reason in expected} >= {"not_json", "late", "bad_price"}
    result = run(real_engine, "dead_letters_by_reason", from_date=FIRST_DAY, to_date=LAST_DAY)
    assert {(dt, reason): n for dt, reason, n in result.rows} == dict(expected)


def test_price_series_moving_averages(real_engine: LocalEngine, real_lake: BuiltLake) -> None:
    frame = real_lake.frame()
    series = frame[frame["symbol"] == "IBM"].sort_values("ts").reset_index(drop=True)
    series["sma_5"] = series["price"].rolling(5).mean()
    series["sma_20"] = series["price"].rolling(20).mean()
    expected = in_range(series)
    result = run(
        real_engine,
        "price_series",
        symbol="IBM",
        warmup_from=FIRST_DAY,
        from_date=FROM,
        to_date=TO,
    )
    assert result.column("ts") == expected["ts"].tolist()
    assert as_float(result.column("price")) == pytest.approx(expected["price"].tolist(), rel=TOL)
    for name in ("sma_5", "sma_20"):
        assert as_float(result.column(name)) == pytest.approx(expected[name].tolist(), rel=TOL)


def test_query_without_rows_in_range_is_empty(real_engine: LocalEngine) -> None:
    assert (
        run(real_engine, "daily_summary", from_date="1999-01-01", to_date="1999-12-31").rows == []
    )
