"""The crossovers computed in SQL (window functions, exact DECIMAL sign) equal
`stockpipe trend`'s over the same rows."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from core.contracts.row import row_to_record
from lake.catalog import get_query
from lake.local_engine import LocalEngine
from tests.lake.conftest import FIRST_DAY, LAST_DAY, BuiltLake
from trend.file_run import trend_file

Key = tuple[str, str, str, Decimal, Decimal]


def trend_signals(lake: BuiltLake, tmp_path: Path) -> list[Key]:
    rows = tmp_path / "rows.jsonl"
    encoder = msgspec.json.Encoder(decimal_format="number")
    rows.write_bytes(b"".join(encoder.encode(row_to_record(r)) + b"\n" for r in lake.rows))
    signals = tmp_path / "signals.jsonl"
    trend_file(rows, signals)
    return [
        (s["symbol"], s["ts"], s["signal"], s["sma_5"], s["sma_20"])
        for s in (
            json.loads(line, parse_float=Decimal) for line in signals.read_text().splitlines()
        )
    ]


def sql_signals(engine: LocalEngine, warmup: str, start: str, end: str) -> list[Key]:
    query = get_query("crossovers")
    result = engine.run(
        query.sql, query.bind({"warmup_from": warmup, "from_date": start, "to_date": end})
    )

    def key(r: dict[str, Any]) -> Key:
        ts = r["ts"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (r["symbol"], ts, r["signal"], r["sma_5"], r["sma_20"])

    return [key(r) for r in result.records()]


def _ordered(keys: list[Key]) -> list[Key]:
    return sorted(keys, key=lambda k: (k[1], k[0]))


def test_sql_crossovers_equal_stockpipe_trend(
    real_engine: LocalEngine, real_lake: BuiltLake, tmp_path: Path
) -> None:
    expected = _ordered(trend_signals(real_lake, tmp_path))
    assert len(expected) > 20, "two years of five stocks cross many times"
    assert {k[2] for k in expected} == {"golden_cross", "death_cross"}
    # Exact: same points, same kinds, and the same DECIMAL averages to the last digit.
    assert sql_signals(real_engine, FIRST_DAY, FIRST_DAY, LAST_DAY) == expected


def test_a_range_with_warm_up_reports_the_same_crosses(
    real_engine: LocalEngine, real_lake: BuiltLake, tmp_path: Path
) -> None:
    expected = [
        k for k in _ordered(trend_signals(real_lake, tmp_path)) if "2012-03" <= k[1] < "2012-10"
    ]
    assert expected
    assert sql_signals(real_engine, "2012-01-15", "2012-03-01", "2012-09-30") == expected
