"""Independent oracles the tests compare the code against: pandas for the enrichment, TA-Lib
for the crossovers. They never call the code under test: acceptance is re-derived with plain
bookkeeping, the numbers come from pandas/TA-Lib in float, and thresholds that must be exact
are decided with ``fractions.Fraction``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import talib

from core.contracts.tick import Tick

NEW_YORK = ZoneInfo("America/New_York")
DATA_DIR = Path(__file__).parent / "data"

# Tolerances for comparing the code's Decimal results with the float oracles.
REL_TOL = 1e-9
ABS_TOL = 1e-12
# change_pct is stored rounded to 10 decimal places (consumer.enrichment.PCT_DECIMALS).
PCT_ABS_TOL = 1e-10
# The crossover oracle treats |SMA-5 - SMA-20| below this as an exact tie (float noise).
ZERO_DIFF = 1e-9
# Points with ZERO_DIFF <= |diff| < AMBIGUOUS_DIFF would make the float oracle unreliable.
AMBIGUOUS_DIFF = 1e-6


def tick_to_json_line(tick: Tick, zone: ZoneInfo | None = NEW_YORK) -> str:
    """A wire record written without the producer's encoder (json + isoformat): the time in
    New York local time with its offset, numbers as JSON floats."""
    record: dict[str, Any] = {
        "symbol": tick.symbol,
        "ts": (tick.ts if zone is None else tick.ts.astimezone(zone)).isoformat(),
        "price": float(tick.price),
    }
    for name in ("open", "high", "low"):
        value = getattr(tick, name)
        if value is not None:
            record[name] = float(value)
    if tick.volume is not None:
        record["volume"] = tick.volume
    if tick.source is not None:
        record["source"] = tick.source
    return json.dumps(record)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines, numbers parsed as Decimal (so float noise in the file would show)."""
    return [
        json.loads(line, parse_float=Decimal, parse_int=Decimal)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


# --------------------------------------------------------------------------- enrichment oracle


@dataclass(frozen=True)
class OracleRow:
    symbol: str
    ts: datetime
    price: float
    prev_price: float | None
    change: float | None
    change_pct: float | None
    anomaly: bool
    ma_4: float | None


@dataclass
class EnrichmentOracle:
    outcomes: list[str]  # per input tick: "accepted" | "duplicate" | "late"
    rows: list[OracleRow]  # per accepted tick, in input order

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def enrichment_oracle(ticks: Sequence[Tick]) -> EnrichmentOracle:
    """Acceptance by plain per-symbol bookkeeping, then pandas over the accepted ticks:
    prev_price = shift(1), change = price - shift(1), change_pct = pct_change * 100,
    ma_4 = rolling(4).mean(); anomaly decided exactly with Fractions."""
    last: dict[str, tuple[datetime, Decimal]] = {}
    outcomes: list[str] = []
    accepted: list[Tick] = []
    for tick in ticks:
        previous = last.get(tick.symbol)
        if previous is not None and tick.ts <= previous[0]:
            same = tick.ts == previous[0] and tick.price == previous[1]
            outcomes.append("duplicate" if same else "late")
            continue
        last[tick.symbol] = (tick.ts, tick.price)
        outcomes.append("accepted")
        accepted.append(tick)
    if not accepted:
        return EnrichmentOracle(outcomes, [])

    frame = pd.DataFrame(
        {
            "symbol": [t.symbol for t in accepted],
            "price": [float(t.price) for t in accepted],
            "exact": [Fraction(t.price) for t in accepted],
        }
    )
    by_symbol = frame.groupby("symbol", sort=False)
    prev = by_symbol["price"].shift(1)
    change = frame["price"] - prev
    change_pct = by_symbol["price"].pct_change() * 100
    ma_4 = by_symbol["price"].rolling(4).mean().reset_index(level=0, drop=True).sort_index()
    exact_prev = by_symbol["exact"].shift(1)

    rows = []
    for i, tick in enumerate(accepted):
        p_exact = exact_prev.iloc[i]
        has_prev = isinstance(p_exact, Fraction)
        # |price - prev| / prev * 100 > 5  <=>  100 * |price - prev| > 5 * prev   (prev > 0)
        anomaly = has_prev and 100 * abs(Fraction(tick.price) - p_exact) > 5 * p_exact
        rows.append(
            OracleRow(
                symbol=tick.symbol,
                ts=tick.ts,
                price=float(tick.price),
                prev_price=_none_if_nan(prev.iloc[i]),
                change=_none_if_nan(change.iloc[i]),
                change_pct=_none_if_nan(change_pct.iloc[i]),
                anomaly=bool(anomaly),
                ma_4=_none_if_nan(ma_4.iloc[i]),
            )
        )
    return EnrichmentOracle(outcomes, rows)


def _close(
    actual: Decimal | float | None, expected: float | None, abs_tol: float = ABS_TOL
) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return math.isclose(float(actual), expected, rel_tol=REL_TOL, abs_tol=abs_tol)


def assert_rows_match_oracle(actual: Sequence[Any], expected: Sequence[OracleRow]) -> None:
    """``actual``: objects or dicts with the enriched-row fields (symbol, ts, price, prev_price,
    change, change_pct, anomaly, ma_4)."""

    def get(row: Any, name: str) -> Any:
        return row[name] if isinstance(row, dict) else getattr(row, name)

    assert len(actual) == len(expected)
    for index, (row, want) in enumerate(zip(actual, expected, strict=True)):
        where = f"row {index} ({want.symbol} {want.ts.isoformat()})"
        assert get(row, "symbol") == want.symbol, where
        assert get(row, "ts") == want.ts, where
        assert _close(get(row, "price"), want.price), where
        for name in ("prev_price", "change", "change_pct", "ma_4"):
            tol = PCT_ABS_TOL if name == "change_pct" else ABS_TOL
            assert _close(get(row, name), getattr(want, name), tol), (
                f"{where}: {name} = {get(row, name)!r}, oracle says {getattr(want, name)!r}"
            )
        assert get(row, "anomaly") is want.anomaly, f"{where}: anomaly"


# --------------------------------------------------------------------------- crossover oracle

SignalKey = tuple[str, datetime, str]


@dataclass
class CrossoverOracle:
    # (symbol, ts, signal) -> (sma_5, sma_20) from TA-Lib
    signals: dict[SignalKey, tuple[float, float]] = field(default_factory=dict)
    # points where |diff| < ZERO_DIFF: (symbol, ts, index in the symbol's series)
    ties: list[tuple[str, datetime, int]] = field(default_factory=list)
    # points where ZERO_DIFF <= |diff| < AMBIGUOUS_DIFF: the float oracle could be wrong there
    ambiguous: list[tuple[str, datetime, float]] = field(default_factory=list)
    # per symbol: (timestamps, sma_5, sma_20) arrays, for value checks
    series: dict[str, tuple[list[datetime], Any, Any]] = field(default_factory=dict)


def crossover_oracle(points: Iterable[tuple[str, datetime, float]]) -> CrossoverOracle:
    """TA-Lib SMA-5 and SMA-20 (float) per symbol over the points in order; the DESIGN rule:
    golden where diff > 0 and the last non-zero diff was < 0, death the mirror, the first
    non-zero diff emits nothing; |diff| < ZERO_DIFF counts as zero."""
    per_symbol: dict[str, list[tuple[datetime, float]]] = {}
    for symbol, ts, price in points:
        per_symbol.setdefault(symbol, []).append((ts, price))
    oracle = CrossoverOracle()
    for symbol, series in per_symbol.items():
        stamps = [ts for ts, _ in series]
        prices = np.array([p for _, p in series], dtype=float)
        sma5 = talib.SMA(prices, timeperiod=5)
        sma20 = talib.SMA(prices, timeperiod=20)
        oracle.series[symbol] = (stamps, sma5, sma20)
        last_sign = 0
        for i, ts in enumerate(stamps):
            diff = sma5[i] - sma20[i]
            if math.isnan(diff):
                continue
            if abs(diff) < ZERO_DIFF:
                oracle.ties.append((symbol, ts, i))
                continue
            if abs(diff) < AMBIGUOUS_DIFF:
                oracle.ambiguous.append((symbol, ts, float(diff)))
            sign = 1 if diff > 0 else -1
            if last_sign and sign != last_sign:
                kind = "golden_cross" if sign > 0 else "death_cross"
                oracle.signals[(symbol, ts, kind)] = (float(sma5[i]), float(sma20[i]))
            last_sign = sign
    return oracle


# --------------------------------------------------------------------------- mixed ticks file

OUTCOMES = ("row", "duplicate", "late", "blank")


@dataclass(frozen=True)
class MixedLine:
    number: int  # 1-based line number in the file
    raw: bytes  # the line without its end of line
    expect: str  # "row" | "duplicate" | "late" | "blank" | a RejectReason value


def load_mixed_lines() -> list[MixedLine]:
    """tests/data/mixed_ticks.json: good, bad, blank, duplicate and late lines, each with its
    hand-worked expected outcome."""
    import base64

    data = json.loads((DATA_DIR / "mixed_ticks.json").read_text(encoding="utf-8"))
    lines = []
    for number, entry in enumerate(data["lines"], start=1):
        raw = (
            base64.b64decode(entry["line_base64"])
            if "line_base64" in entry
            else entry["line"].encode()
        )
        lines.append(MixedLine(number, raw, entry["expect"]))
    return lines


def expected_counts(lines: Sequence[MixedLine]) -> dict[str, int]:
    """The summary a run over ``lines`` must print, counted from the hand-worked outcomes."""
    return {
        "accepted": sum(line.expect == "row" for line in lines),
        "duplicates": sum(line.expect == "duplicate" for line in lines),
        "late": sum(line.expect == "late" for line in lines),
        "invalid": sum(line.expect not in OUTCOMES for line in lines),
    }
