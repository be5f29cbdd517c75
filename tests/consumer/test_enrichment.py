"""Per-symbol enrichment and acceptance (consumer.enrichment) against a pandas oracle."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.enrichment import Enricher, Rejection
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick
from core.contracts.window import decode_window, encode_window
from tests.oracles import assert_rows_match_oracle, enrichment_oracle

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SYMBOL_POOL = ("AAPL", "MSFT", "BRK-B", "^GSPC", "EURUSD=X", "GC=F")
START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
SHARD = "shardId-000000000000"


def tick(symbol: str, ts: datetime, price: str | Decimal, **extra: Any) -> Tick:
    return Tick(symbol=symbol, ts=ts, price=Decimal(price), **extra)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def run(enricher: Enricher, ticks: Sequence[Tick], first_seq: int = 0) -> list[Any]:
    return [enricher.apply(t, SHARD, str(first_seq + i), None) for i, t in enumerate(ticks)]


def rows_of(outcomes: Sequence[Any]) -> list[EnrichedRow]:
    return [o for o in outcomes if isinstance(o, EnrichedRow)]


def outcome_name(outcome: Any) -> str:
    if isinstance(outcome, EnrichedRow):
        return "accepted"
    assert isinstance(outcome, Rejection)
    return outcome.value


# --------------------------------------------------------------------------- generated series


@st.composite
def tick_streams(draw: st.DrawFn, max_size: int = 80, replays: bool = True) -> list[Tick]:
    """Several symbols interleaved, prices with 2 decimals, ts strictly increasing per symbol
    for new ticks; moves often land on or next to the 5 % threshold; with ``replays``, also
    exact duplicates, same-ts-other-price and older ticks."""
    symbols = draw(st.lists(st.sampled_from(SYMBOL_POOL), min_size=1, max_size=4, unique=True))
    size = draw(st.integers(min_value=0, max_value=max_size))
    kinds = ["new"] * 6 + (["duplicate", "same_ts", "older"] if replays else [])
    ts = START
    history: dict[str, list[tuple[datetime, int]]] = {}  # the new ticks, per symbol
    out: list[Tick] = []
    random_cents = st.integers(min_value=1, max_value=10_000_000) | st.integers(
        min_value=1, max_value=50_000
    ).map(lambda k: k * 20)
    for _ in range(size):
        symbol = draw(st.sampled_from(symbols))
        past = history.setdefault(symbol, [])
        kind = draw(st.sampled_from(kinds)) if past else "new"
        if kind == "new":
            ts += timedelta(seconds=draw(st.integers(min_value=1, max_value=86_400)))
            move = draw(st.sampled_from(["random", "random", "flat", "near_up", "near_down"]))
            prev = past[-1][1] if past else None
            if prev is None or move == "random":
                cents = draw(random_cents)
            elif move == "flat":
                cents = prev
            elif move == "near_up":
                cents = prev * 105 // 100 + draw(st.integers(min_value=-1, max_value=1))
            else:
                cents = -(-prev * 95 // 100) + draw(st.integers(min_value=-1, max_value=1))
            cents = max(cents, 1)
            past.append((ts, cents))
            out.append(tick(symbol, ts, Decimal(cents).scaleb(-2)))
        elif kind == "duplicate":
            last_ts, last_cents = past[-1]
            out.append(tick(symbol, last_ts, Decimal(last_cents).scaleb(-2)))
        elif kind == "same_ts":
            last_ts, last_cents = past[-1]
            other = last_cents + draw(st.sampled_from([-1, 1, 100]))
            out.append(tick(symbol, last_ts, Decimal(max(other, 1)).scaleb(-2)))
        else:  # older: before the last accepted tick (sometimes an exact copy of an old one)
            old_ts, old_cents = draw(st.sampled_from(past))
            back = draw(st.integers(min_value=0, max_value=3_600))
            cents = draw(st.sampled_from([old_cents, old_cents + 1]))
            out.append(tick(symbol, old_ts - timedelta(seconds=back), Decimal(cents).scaleb(-2)))
    return out


# --------------------------------------------------------------------------- against pandas


def test_real_dataset_matches_pandas(real_ticks: list[Tick]) -> None:
    outcomes = run(Enricher(), real_ticks)
    oracle = enrichment_oracle(real_ticks)
    assert oracle.count("accepted") == len(real_ticks)  # the real data has no late ticks
    assert [outcome_name(o) for o in outcomes] == oracle.outcomes
    rows = rows_of(outcomes)
    assert_rows_match_oracle(rows, oracle.rows)
    # The real data has anomalies, and plenty of ordinary days.
    anomalies = sum(r.anomaly for r in rows)
    assert 0 < anomalies < len(rows) // 10


@SETTINGS
@given(stream=tick_streams(replays=False))
def test_random_series_match_pandas(stream: list[Tick]) -> None:
    enricher = Enricher()
    outcomes = run(enricher, stream)
    oracle = enrichment_oracle(stream)
    assert all(isinstance(o, EnrichedRow) for o in outcomes)
    assert_rows_match_oracle(rows_of(outcomes), oracle.rows)
    assert enricher.counts.accepted == len(stream)


@SETTINGS
@given(stream=tick_streams(replays=True))
def test_random_series_with_replays_match_oracle(stream: list[Tick]) -> None:
    enricher = Enricher()
    outcomes = run(enricher, stream)
    oracle = enrichment_oracle(stream)
    assert [outcome_name(o) for o in outcomes] == oracle.outcomes
    assert_rows_match_oracle(rows_of(outcomes), oracle.rows)
    assert enricher.counts.accepted == oracle.count("accepted")
    assert enricher.counts.duplicates == oracle.count("duplicate")
    assert enricher.counts.late == oracle.count("late")


# --------------------------------------------------------------------------- the row, exactly


def test_first_tick_of_a_symbol() -> None:
    row = Enricher().apply(tick("AAPL", at(0), "187.23"), SHARD, "1", None)
    assert isinstance(row, EnrichedRow)
    assert row.prev_price is None
    assert row.change is None
    assert row.change_pct is None
    assert row.anomaly is False
    assert row.ma_4 is None


def test_ma_4_needs_four_prices_and_is_exact() -> None:
    prices = ["0.1", "0.2", "0.3", "0.4", "0.7"]
    rows = rows_of(run(Enricher(), [tick("GC=F", at(i), p) for i, p in enumerate(prices)]))
    assert [r.ma_4 for r in rows[:3]] == [None, None, None]
    assert rows[3].ma_4 == Decimal("0.25")  # (0.1+0.2+0.3+0.4)/4; floats say 0.25000000000000006
    assert rows[4].ma_4 == Decimal("0.4")  # (0.2+0.3+0.4+0.7)/4


def test_change_is_exact_decimal() -> None:
    rows = rows_of(run(Enricher(), [tick("MSFT", at(0), "100.10"), tick("MSFT", at(1), "100.30")]))
    assert rows[1].prev_price == Decimal("100.10")
    assert rows[1].change == Decimal("0.20")  # 100.30 - 100.10 in floats is 0.20000000000000284
    assert isinstance(rows[1].change, Decimal)
    assert isinstance(rows[1].change_pct, Decimal)


@pytest.mark.parametrize(
    ("prev", "price", "anomaly"),
    [
        ("100.00", "105.00", False),  # exactly +5 %
        ("100.00", "105.01", True),  # just above
        ("100.00", "95.00", False),  # exactly -5 %
        ("100.00", "94.99", True),  # just below -5 %
        ("20.00", "21.00", False),  # floats: 21/20 - 1 = 5.000000000000004 %
        ("187.20", "196.56", False),  # 187.20 * 1.05
        ("187.20", "196.57", True),
        ("187.20", "177.84", False),  # 187.20 * 0.95
        ("187.20", "177.83", True),
        ("0.20", "0.21", False),
        ("100.00", "104.99", False),
    ],
)
def test_anomaly_threshold_is_strict_and_exact(prev: str, price: str, anomaly: bool) -> None:
    rows = rows_of(run(Enricher(), [tick("AAPL", at(0), prev), tick("AAPL", at(1), price)]))
    assert rows[1].anomaly is anomaly
    expected_pct = (Decimal(price) - Decimal(prev)) * 100 / Decimal(prev)
    assert abs(rows[1].change_pct - expected_pct) < Decimal("1e-9")
    if abs(expected_pct) == 5:
        assert rows[1].change_pct in (Decimal(5), Decimal(-5))


def test_provenance_is_carried() -> None:
    arrival = datetime(2024, 1, 2, 14, 30, 1, 500, tzinfo=UTC)
    extra = {"open": Decimal("186.0"), "volume": 1200, "source": "yfinance"}
    row = Enricher().apply(
        tick("AAPL", at(0), "187.23", **extra), "shardId-000000000007", "4963", arrival
    )
    assert isinstance(row, EnrichedRow)
    assert (row.shard_id, row.sequence_number, row.arrival_ts) == (
        "shardId-000000000007",
        "4963",
        arrival,
    )
    assert (row.open, row.volume, row.source) == (Decimal("186.0"), 1200, "yfinance")


# --------------------------------------------------------------------------- acceptance


def test_duplicate_late_and_window_untouched() -> None:
    enricher = Enricher()
    stream = [
        tick("AAPL", at(0), "100.00"),
        tick("AAPL", at(1), "101.00"),
        tick("AAPL", at(1), "101.0"),  # exact duplicate of the last accepted (same value)
        tick("AAPL", at(1), "99.00"),  # same ts, other price: late
        tick("AAPL", at(0), "100.00"),  # older (an old tick replayed): late
        tick("AAPL", at(0) - timedelta(days=1), "50.00"),  # older: late
        tick("MSFT", at(1), "400.00"),  # another symbol is independent
        tick("AAPL", at(2), "102.00"),
        tick("AAPL", at(3), "103.00"),
    ]
    outcomes = run(enricher, stream)
    assert [outcome_name(o) for o in outcomes] == [
        "accepted",
        "accepted",
        "duplicate",
        "late",
        "late",
        "late",
        "accepted",
        "accepted",
        "accepted",
    ]
    after_late = outcomes[7]
    assert isinstance(after_late, EnrichedRow)
    assert after_late.prev_price == Decimal("101.00")  # the last accepted, not 99 or 50
    assert after_late.change == Decimal("1.00")
    last = outcomes[8]
    assert isinstance(last, EnrichedRow)
    assert last.ma_4 == Decimal("101.5")  # (100 + 101 + 102 + 103) / 4: rejects not counted
    counts = enricher.counts
    assert (counts.accepted, counts.duplicates, counts.late) == (5, 1, 3)


def test_rejected_ticks_leave_the_window_unchanged() -> None:
    enricher = Enricher()
    run(enricher, [tick("AAPL", at(i), f"{100 + i}.00") for i in range(6)])
    before = encode_window(enricher.windows["AAPL"])
    rejected = run(
        enricher,
        [
            tick("AAPL", at(5), "105.00"),  # duplicate
            tick("AAPL", at(5), "1.00"),  # same ts, other price
            tick("AAPL", at(2), "999.00"),  # older
        ],
    )
    assert rejected == [Rejection.DUPLICATE, Rejection.LATE, Rejection.LATE]
    assert encode_window(enricher.windows["AAPL"]) == before


def test_ts_equal_across_zones_is_the_same_instant() -> None:
    # Ticks are UTC after decoding; the same instant is "not newer" whatever its spelling.
    enricher = Enricher()
    first = tick("AAPL", datetime(2024, 3, 8, 21, 0, tzinfo=UTC), "170.73")
    run(enricher, [first])
    from zoneinfo import ZoneInfo

    same_instant = datetime(2024, 3, 8, 16, 0, tzinfo=ZoneInfo("America/New_York"))
    assert enricher.apply(tick("AAPL", same_instant, "170.73"), SHARD, "2", None) is (
        Rejection.DUPLICATE
    )


# --------------------------------------------------------------------------- state round trip


def resumed(ticks: Sequence[Tick], split: int) -> tuple[list[Any], list[Any]]:
    """(uninterrupted outcomes, outcomes of a run stopped at ``split`` and resumed from the
    serialised windows in a fresh Enricher)."""
    whole = run(Enricher(), ticks)
    first = Enricher()
    head = run(first, ticks[:split])
    saved = {symbol: encode_window(window) for symbol, window in first.windows.items()}
    del first
    second = Enricher({symbol: decode_window(raw) for symbol, raw in saved.items()})
    tail = run(second, ticks[split:], first_seq=split)
    return whole, head + tail


def test_state_round_trip_on_real_data(real_ticks: list[Tick]) -> None:
    whole, parts = resumed(real_ticks, len(real_ticks) // 2)
    assert len(whole) == len(real_ticks)
    assert parts == whole


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_state_round_trip_on_real_data_any_split(real_ticks: list[Tick], data: Any) -> None:
    split = data.draw(st.integers(min_value=0, max_value=len(real_ticks)))
    whole, parts = resumed(real_ticks, split)
    assert parts == whole


@SETTINGS
@given(stream=tick_streams(replays=True), data=st.data())
def test_state_round_trip_any_split(stream: list[Tick], data: Any) -> None:
    split = data.draw(st.integers(min_value=0, max_value=len(stream)))
    whole, parts = resumed(stream, split)
    assert parts == whole


def test_window_serialisation_is_exact() -> None:
    enricher = Enricher()
    run(enricher, [tick("EURUSD=X", at(i), p) for i, p in enumerate(["1.0939", "1.09401", "1.1"])])
    window = enricher.windows["EURUSD=X"]
    back = decode_window(encode_window(window))
    assert back == window
    assert back.recent == [Decimal("1.0939"), Decimal("1.09401"), Decimal("1.1")]
    assert back.last_ts == at(2)
    assert back.last_ts.utcoffset() == timedelta(0)
