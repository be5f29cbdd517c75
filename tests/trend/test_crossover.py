"""SMA-5 / SMA-20 crossover detection (trend.crossover) against a TA-Lib oracle."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contracts.tick import Tick
from tests.oracles import CrossoverOracle, crossover_oracle
from trend.crossover import CrossoverDetector, Signal, decode_state, encode_state

Row = tuple[str, datetime, Decimal]
START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def detect(rows: Sequence[Row], detector: CrossoverDetector | None = None) -> list[Signal]:
    detector = CrossoverDetector() if detector is None else detector
    signals = []
    for symbol, ts, price in rows:
        signal = detector.update(symbol, ts, price)
        if signal is not None:
            signals.append(signal)
    return signals


def oracle_of(rows: Sequence[Row]) -> CrossoverOracle:
    return crossover_oracle((symbol, ts, float(price)) for symbol, ts, price in rows)


def keys(signals: Sequence[Signal]) -> set[tuple[str, datetime, str]]:
    return {(s.symbol, s.ts, s.signal) for s in signals}


def assert_matches_oracle(signals: Sequence[Signal], oracle: CrossoverOracle) -> None:
    assert oracle.ambiguous == [], "the float oracle cannot decide these points"
    assert len(signals) == len(keys(signals)), "a crossing reported twice"
    assert keys(signals) == set(oracle.signals)
    for signal in signals:
        sma5, sma20 = oracle.signals[(signal.symbol, signal.ts, signal.signal)]
        assert math.isclose(float(signal.sma_5), sma5, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(float(signal.sma_20), sma20, rel_tol=1e-9, abs_tol=1e-9)
        assert isinstance(signal.sma_5, Decimal)


def series(symbol: str, prices: Sequence[str | Decimal], start: int = 0) -> list[Row]:
    return [(symbol, START + timedelta(days=start + i), Decimal(p)) for i, p in enumerate(prices)]


# --------------------------------------------------------------------------- real data


def rows_of_ticks(ticks: Sequence[Tick]) -> list[Row]:
    return [(t.symbol, t.ts, t.price) for t in ticks]


def test_real_dataset_matches_talib(
    real_ticks: list[Tick], real_crossover_oracle: CrossoverOracle
) -> None:
    signals = detect(rows_of_ticks(real_ticks))
    assert len(real_crossover_oracle.signals) > 100  # not a vacuous comparison
    assert {s.symbol for s in signals} == {"AAPL", "FB", "GOOG", "IBM", "MSFT"}
    assert_matches_oracle(signals, real_crossover_oracle)


def test_real_dataset_ties_are_exact(
    real_ticks: list[Tick], real_crossover_oracle: CrossoverOracle
) -> None:
    """The oracle's "zero" points (|diff| < 1e-9 in floats) are exact ties in rational
    arithmetic, so treating them as zero is right; and no point is close enough to zero
    (< 1e-6) without being a tie for float error to matter."""
    assert real_crossover_oracle.ambiguous == []
    assert real_crossover_oracle.ties, "the real data has exact ties (IBM, MSFT)"
    prices: dict[str, list[Fraction]] = {}
    for t in real_ticks:
        prices.setdefault(t.symbol, []).append(Fraction(t.price))
    for symbol, _, index in real_crossover_oracle.ties:
        window = prices[symbol][index - 19 : index + 1]
        assert 4 * sum(window[-5:]) - sum(window) == 0


# --------------------------------------------------------------------------- random walks


@st.composite
def random_walks(draw: st.DrawFn, max_size: int = 200) -> list[Row]:
    """1-3 symbols interleaved, each a random walk in cents (or 1/10000 for a currency)."""
    names = draw(
        st.lists(st.sampled_from(["AAPL", "MSFT", "EURUSD=X"]), min_size=1, max_size=3, unique=True)
    )
    size = draw(st.integers(min_value=0, max_value=max_size))
    level = {n: draw(st.integers(min_value=500, max_value=50_000)) for n in names}
    ts = START
    rows = []
    for _ in range(size):
        name = draw(st.sampled_from(names))
        level[name] = max(1, level[name] + draw(st.integers(min_value=-300, max_value=300)))
        ts += timedelta(minutes=draw(st.integers(min_value=1, max_value=600)))
        places = 4 if name == "EURUSD=X" else 2
        rows.append((name, ts, Decimal(level[name]).scaleb(-places)))
    return rows


@SETTINGS
@given(rows=random_walks())
def test_random_walks_match_talib(rows: list[Row]) -> None:
    assert_matches_oracle(detect(rows), oracle_of(rows))


def seeded_walk(seed: int, symbols: int = 4, length: int = 1500) -> list[Row]:
    rnd = random.Random(seed)
    levels = [rnd.randint(1_000, 100_000) for _ in range(symbols)]
    rows: list[Row] = []
    ts = START
    for _ in range(length):
        for index in range(symbols):
            step = round(rnd.gauss(0, levels[index] * 0.01))
            if rnd.random() < 0.05:
                step = 0  # flat days make exact ties more likely
            levels[index] = max(1, levels[index] + step)
            rows.append((f"SYN{index:04d}", ts, Decimal(levels[index]).scaleb(-2)))
        ts += timedelta(days=1)
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_seeded_random_walks_match_talib(seed: int) -> None:
    rows = seeded_walk(seed)
    oracle = oracle_of(rows)
    assert len(oracle.signals) > 50
    assert_matches_oracle(detect(rows), oracle)


# --------------------------------------------------------------------------- exact ties

# 15 x 10 then 5 x 7: at the 20th price SMA-5 = 7 < SMA-20 = 9.25. A 21st price of 21 makes
# 4*sum5 = 4*49 = 196 = sum20 exactly (diff 0); a 22nd of 30 makes diff > 0.
NEG_ZERO_POS = ["10"] * 15 + ["7"] * 5 + ["21", "30"]
# 15 x 20 then 5 x 23: SMA-5 > SMA-20; 9 gives 4*101 = 404 = sum20 (diff 0); 5 gives diff < 0.
POS_ZERO_NEG = ["20"] * 15 + ["23"] * 5 + ["9", "5"]


def scaled(prices: Sequence[str], factor: str) -> list[Decimal]:
    return [Decimal(p) * Decimal(factor) for p in prices]


@pytest.mark.parametrize("factor", ["1", "0.1", "0.01", "3.7"])
def test_exact_tie_then_positive_is_one_golden_cross(factor: str) -> None:
    rows = series("IBM", scaled(NEG_ZERO_POS, factor))
    signals = detect(rows)
    assert [(s.ts, s.signal) for s in signals] == [(rows[21][1], "golden_cross")]
    assert signals[0].sma_5 == sum(p for *_, p in rows[17:22]) / 5
    assert_matches_oracle(signals, oracle_of(rows))


@pytest.mark.parametrize("factor", ["1", "0.1", "0.01", "3.7"])
def test_exact_tie_then_negative_is_one_death_cross(factor: str) -> None:
    rows = series("MSFT", scaled(POS_ZERO_NEG, factor))
    signals = detect(rows)
    assert [(s.ts, s.signal) for s in signals] == [(rows[21][1], "death_cross")]
    assert_matches_oracle(signals, oracle_of(rows))


def test_float_noise_at_a_tie_is_not_a_crossing() -> None:
    # In floats TA-Lib's diff at the tie is not exactly 0 (noise ~1e-16): a detector deciding
    # the sign in floats would put the crossing at the tie. It must be exact.
    rows = series("IBM", NEG_ZERO_POS)
    oracle = oracle_of(rows)
    assert [i for *_, i in oracle.ties] == [20]
    assert rows[20][1] not in {s.ts for s in detect(rows)}


def test_tie_between_two_negatives_emits_nothing() -> None:
    rows = series("IBM", [*NEG_ZERO_POS[:21], "1", "1"])
    assert detect(rows) == []


def test_first_non_zero_diff_emits_nothing() -> None:
    flat = ["50"] * 25  # diff exactly 0 from the 20th price on
    rising = [str(50 + i) for i in range(1, 10)]  # first non-zero diff: positive
    falling = [str(60 - 3 * i) for i in range(1, 10)]  # then negative: a death cross
    rows = series("AAPL", flat + rising + falling)
    signals = detect(rows)
    assert [s.signal for s in signals] == ["death_cross"]
    assert_matches_oracle(signals, oracle_of(rows))


def test_nothing_before_the_20th_price() -> None:
    prices = [str(100 + (40 if i % 2 else -40)) for i in range(19)]
    assert detect(series("AAPL", prices)) == []


def test_symbols_are_independent() -> None:
    a = series("AAPL", NEG_ZERO_POS)
    b = series("MSFT", POS_ZERO_NEG)
    interleaved = [row for pair in zip(a, b, strict=True) for row in pair]
    assert keys(detect(interleaved)) == keys(detect(a)) | keys(detect(b))


def test_not_newer_price_is_ignored() -> None:
    rows = series("IBM", NEG_ZERO_POS)
    stale = ("IBM", rows[20][1] - timedelta(hours=1), Decimal("1000"))
    with_stale = [*rows[:21], stale, *rows[21:]]
    assert detect(with_stale) == detect(rows)


# --------------------------------------------------------------------------- resumability


def resumed(rows: Sequence[Row], cuts: Sequence[int], overlap: int = 0) -> list[Signal]:
    """A scheduled run per chunk: each starts a fresh detector from the states the previous
    run saved as bytes; with ``overlap``, each run re-reads that many rows already seen."""
    saved: dict[str, bytes] = {}
    signals: list[Signal] = []
    start = 0
    for end in [*sorted(cuts), len(rows)]:
        detector = CrossoverDetector({s: decode_state(raw) for s, raw in saved.items()})
        signals += detect(rows[max(0, start - overlap) : end], detector)
        saved = {s: encode_state(state) for s, state in detector.states.items()}
        start = end
    return signals


@SETTINGS
@given(data=st.data(), rows=random_walks(max_size=150))
def test_resume_at_any_chunk_boundaries(data: Any, rows: list[Row]) -> None:
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(rows)), max_size=8))
    overlap = data.draw(st.integers(min_value=0, max_value=40))
    assert resumed(rows, cuts, overlap) == detect(rows)


@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_resume_real_data_at_random_boundaries(real_ticks: list[Tick], data: Any) -> None:
    rows = rows_of_ticks(real_ticks)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(rows)), max_size=6))
    overlap = data.draw(st.integers(min_value=0, max_value=500))
    assert resumed(rows, cuts, overlap) == detect(rows)


def test_refeeding_seen_rows_emits_nothing(real_ticks: list[Tick]) -> None:
    rows = rows_of_ticks(real_ticks)
    detector = CrossoverDetector()
    assert detect(rows, detector)
    assert detect(rows, detector) == []
    restored = CrossoverDetector(
        {s: decode_state(encode_state(st)) for s, st in detector.states.items()}
    )
    assert detect(rows[-1000:], restored) == []


def test_state_serialisation_is_exact() -> None:
    detector = CrossoverDetector()
    detect(series("EURUSD=X", [f"1.09{i:02d}" for i in range(30)]), detector)
    state = detector.states["EURUSD=X"]
    back = decode_state(encode_state(state))
    assert back == state
    assert len(back.prices) == 20
    assert back.prices[-1] == Decimal("1.0929")
    assert back.last_ts is not None
    assert back.last_ts.utcoffset() == timedelta(0)
