"""``stockpipe chart``: one symbol's price with SMA-5 and SMA-20, crosses and anomalies marked,
drawn from the lake through the named queries (so Athena and the local engine draw the same
picture). matplotlib's Agg backend: a static PNG, no display, works offline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from lake.catalog import get_query
from lake.errors import LakeError
from lake.types import Engine

WIDTH_PX: Final = 1200
HEIGHT_PX: Final = 600
DPI: Final = 100
# SMA-20 over daily bars needs 19 earlier trading days (~4 calendar weeks); more for gaps.
DEFAULT_WARMUP_DAYS: Final = 45


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    # Athena returns text: "2013-01-02 21:00:00.000" (UTC, no zone)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


@dataclass(frozen=True)
class ChartData:
    ts: list[datetime]
    price: list[float]
    sma_5: list[float | None]
    sma_20: list[float | None]
    anomalies: list[tuple[datetime, float]]
    crosses: list[tuple[datetime, float, str]]  # (ts, price, signal)


def load_chart_data(
    engine: Engine, symbol: str, start: date, end: date, warmup_days: int = DEFAULT_WARMUP_DAYS
) -> ChartData:
    warmup = (start - timedelta(days=warmup_days)).isoformat()
    values = {
        "symbol": symbol,
        "warmup_from": warmup,
        "from_date": start.isoformat(),
        "to_date": end.isoformat(),
    }
    series_query = get_query("price_series")
    series = engine.run(series_query.sql, series_query.bind(values))
    if not series.rows:
        raise LakeError(f"no ticks of {symbol} between {start} and {end} in the lake")
    cross_query = get_query("crossovers")
    crosses = engine.run(
        cross_query.sql, cross_query.bind({k: v for k, v in values.items() if k != "symbol"})
    )
    records = series.records()
    return ChartData(
        ts=[_ts(r["ts"]) for r in records],
        price=[float(r["price"]) for r in records],
        sma_5=[_num(r["sma_5"]) for r in records],
        sma_20=[_num(r["sma_20"]) for r in records],
        anomalies=[(_ts(r["ts"]), float(r["price"])) for r in records if _flag(r["anomaly"])],
        crosses=[
            (_ts(r["ts"]), float(r["price"]), str(r["signal"]))
            for r in crosses.records()
            if r["symbol"] == symbol
        ],
    )


def draw_chart(data: ChartData, symbol: str, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display needed, deterministic output
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    try:
        x = _days(data.ts)
        ax.plot(x, data.price, color="#444444", linewidth=1.0, label="price")
        ax.plot(x, [_nan(v) for v in data.sma_5], color="#1f77b4", label="SMA-5")
        ax.plot(x, [_nan(v) for v in data.sma_20], color="#ff7f0e", label="SMA-20")
        for kind, marker, color, label in (
            ("golden_cross", "^", "#2ca02c", "golden cross"),
            ("death_cross", "v", "#d62728", "death cross"),
        ):
            points = [(t, p) for t, p, signal in data.crosses if signal == kind]
            if points:
                ax.scatter(
                    _days([t for t, _ in points]),
                    [p for _, p in points],
                    marker=marker,
                    s=80,
                    color=color,
                    zorder=3,
                    label=f"{label} ({len(points)})",
                )
        if data.anomalies:
            ax.scatter(
                _days([t for t, _ in data.anomalies]),
                [p for _, p in data.anomalies],
                marker="o",
                s=70,
                facecolors="none",
                edgecolors="#9467bd",
                linewidths=1.5,
                zorder=4,
                label=f"anomaly > 5 % ({len(data.anomalies)})",
            )
        ax.set_title(
            f"{symbol}: price, SMA-5 / SMA-20, crosses and anomalies "
            f"({data.ts[0]:%Y-%m-%d} to {data.ts[-1]:%Y-%m-%d}, UTC)"
        )
        ax.xaxis_date(tz=UTC)
        ax.set_ylabel("price")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        fig.autofmt_xdate()
        fig.savefig(output, format="png", dpi=DPI)
    finally:
        plt.close(fig)


def _days(stamps: list[datetime]) -> list[float]:
    # matplotlib's date numbers: days since its default epoch, 1970-01-01 UTC (``date2num``,
    # which is untyped).
    return [t.timestamp() / 86_400 for t in stamps]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def chart(
    engine: Engine,
    symbol: str,
    start: date,
    end: date,
    output: Path,
    warmup_days: int = DEFAULT_WARMUP_DAYS,
) -> ChartData:
    data = load_chart_data(engine, symbol, start, end, warmup_days)
    draw_chart(data, symbol, output)
    return data
