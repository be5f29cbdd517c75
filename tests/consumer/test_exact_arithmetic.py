"""The engine's Decimal context is wide enough that every pair of valid prices gives an exact
change and a change_pct rounded exactly as the true quotient would be (checked against
Fractions), with no InvalidOperation - at the bounds and next to rounding midpoints."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.enrichment import ARITHMETIC_PRECISION, PCT_DECIMALS, Enricher
from core.contracts.row import EnrichedRow
from core.contracts.tick import MAX_PRICE, MIN_PRICE, PRICE_DECIMALS, Tick, decode_tick
from core.contracts.window import SymbolWindow

SHARD = "shardId-000000000000"
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
QUANTUM = Decimal(1).scaleb(-PRICE_DECIMALS)
LOWEST = int(MIN_PRICE.scaleb(PRICE_DECIMALS))  # prices as integers of the quantum
HIGHEST = int(MAX_PRICE.scaleb(PRICE_DECIMALS))


def price_of(units: int) -> Decimal:
    return Decimal(units).scaleb(-PRICE_DECIMALS)


def expected_pct(price: Decimal, prev: Decimal) -> Fraction:
    """The true change_pct rounded half-even to PCT_DECIMALS places (Python's round on a
    Fraction is exact and half-even)."""
    return round(Fraction(price - prev) * 100 / Fraction(prev), PCT_DECIMALS)


def enrich_pair(prev: Decimal, price: Decimal) -> EnrichedRow:
    enricher = Enricher()
    enricher.apply(Tick(symbol="X", ts=T0, price=prev), SHARD, "1", None)
    row = enricher.apply(
        Tick(symbol="X", ts=T0 + timedelta(seconds=1), price=price), SHARD, "2", None
    )
    assert isinstance(row, EnrichedRow)
    return row


def assert_exact(prev: Decimal, price: Decimal) -> None:
    row = enrich_pair(prev, price)
    assert row.change is not None and row.change_pct is not None
    assert Fraction(row.change) == Fraction(price) - Fraction(prev)
    assert Fraction(row.change_pct) == expected_pct(price, prev)
    assert row.anomaly == (abs(Fraction(price - prev) * 100 / Fraction(prev)) > 5)
    assert row.change_pct.as_tuple().exponent >= -PCT_DECIMALS


def test_precision_covers_the_bounds() -> None:
    # Recomputed from the bounds, independently of consumer/enrichment.py's derivation:
    # digits before the point of the largest |change_pct| ...
    largest = Fraction(MAX_PRICE - MIN_PRICE) * 100 / Fraction(MIN_PRICE)
    integer_digits = len(str(math.floor(largest)))
    # ... and places after it that keep a quotient's error below the smallest distance from a
    # rounding midpoint that a non-midpoint quotient can have, 1 / (2 * 10**10 * P_max).
    gap = Fraction(1, 2 * 10**PCT_DECIMALS * HIGHEST)
    places = next(k for k in itertools.count() if Fraction(1, 2 * 10**k) < gap)
    assert integer_digits + places <= ARITHMETIC_PRECISION
    assert (integer_digits, places) == (17, 30)


EXTREMES = [
    LOWEST,
    LOWEST + 1,
    2 * LOWEST - 1,
    10**10,  # 1.0
    HIGHEST // 3,
    HIGHEST - 1,
    HIGHEST,
]


def test_every_pair_of_extreme_prices_is_exact() -> None:
    for prev, price in itertools.product(EXTREMES, repeat=2):
        assert_exact(price_of(prev), price_of(price))


def near_midpoint_pairs() -> list[tuple[Decimal, Decimal]]:
    """(prev, price) whose true change_pct lies 1 / (2 * 10**10 * P) from a rounding midpoint:
    2 * 10**12 * (price - prev) = (odd) * P +- 1 in units of the quantum, i.e. price = +-the
    inverse of 2 * 10**12 modulo P."""
    pairs = []
    for prev in (HIGHEST - 1, HIGHEST - 3, HIGHEST - 7, 9_999_999_999_999_999_937, 10**18 + 7):
        inverse = pow(2 * 10**12, -1, prev)
        for price in (inverse, prev - inverse):
            if LOWEST <= price <= HIGHEST:
                pairs.append((price_of(prev), price_of(price)))
    return pairs


def test_near_midpoint_quotients_round_as_the_exact_value() -> None:
    pairs = near_midpoint_pairs()
    assert len(pairs) >= 8
    for prev, price in pairs:
        assert_exact(prev, price)


def test_the_default_precision_would_round_some_of_them_wrong() -> None:
    """Why the context is not Decimal's default of 28 digits: the quotient rounded to 28
    digits, then to 10 places, differs from the exact rounding for some valid pairs."""
    narrow = Context(prec=28)
    wrong = 0
    for prev, price in near_midpoint_pairs():
        quotient = narrow.divide(narrow.multiply(price - prev, Decimal(100)), prev)
        if Fraction(quotient.quantize(Decimal("1e-10"), context=narrow)) != expected_pct(
            price, prev
        ):
            wrong += 1
    assert wrong > 0


UNITS = st.integers(min_value=LOWEST, max_value=HIGHEST)


@settings(max_examples=300, deadline=None)
@given(prev=UNITS, price=UNITS)
def test_any_pair_of_valid_prices_is_exact(prev: int, price: int) -> None:
    assert_exact(price_of(prev), price_of(price))


@settings(max_examples=100, deadline=None)
@given(prices=st.lists(UNITS, min_size=4, max_size=12))
def test_moving_average_is_exact(prices: list[int]) -> None:
    enricher = Enricher()
    for i, units in enumerate(prices):
        row = enricher.apply(
            Tick(symbol="X", ts=T0 + timedelta(seconds=i), price=price_of(units)),
            SHARD,
            str(i),
            None,
        )
        assert isinstance(row, EnrichedRow)
        if i >= 3:
            window = [Fraction(price_of(u)) for u in prices[i - 3 : i + 1]]
            assert row.ma_4 is not None and Fraction(row.ma_4) == sum(window) / 4


def test_issue_example_tiny_then_huge_price() -> None:
    """0.00001 then 1e15 raised InvalidOperation in enrichment. 1e15 is now outside the
    contract; the largest move the contract allows from 0.00001 is exact."""
    from core.contracts.rejects import InvalidTick, RejectReason

    try:
        decode_tick(b'{"symbol":"X","ts":"2024-01-02T14:30:00Z","price":1e15}')
    except InvalidTick as rejected:
        assert rejected.reason is RejectReason.BAD_PRICE
    else:
        raise AssertionError("1e15 was accepted")
    assert_exact(Decimal("0.00001"), MAX_PRICE)
    assert_exact(MAX_PRICE, MIN_PRICE)


def test_a_window_is_untouched_when_the_arithmetic_raises() -> None:
    """A window from before the bounds (saved by an older version) can make the quotient too
    wide for the context: that record raises, and the window stays exactly as it was."""
    legacy = SymbolWindow(
        last_ts=T0,
        last_price=Decimal("1E-40"),
        recent=[Decimal("1E-40")],
        recent_sum=Decimal("1E-40"),
    )
    enricher = Enricher({"X": legacy})
    before = (legacy.last_ts, legacy.last_price, list(legacy.recent), legacy.recent_sum)
    try:
        enricher.apply(Tick(symbol="X", ts=T0 + timedelta(1), price=MAX_PRICE), SHARD, "2", None)
    except ArithmeticError:
        pass
    else:
        raise AssertionError("expected the arithmetic to raise")
    window = enricher.windows["X"]
    assert (window.last_ts, window.last_price, window.recent, window.recent_sum) == before
    assert enricher.counts.accepted == 0


def test_a_context_too_narrow_for_exact_sums_is_refused() -> None:
    """change, the window sum and ma_4 use the thread's context (operators are three times
    cheaper than a context's methods); below 22 digits they could round, so no Enricher."""
    from decimal import localcontext

    import pytest

    with localcontext(Context(prec=21)), pytest.raises(ValueError, match="22"):
        Enricher()
    with localcontext(Context(prec=22)):
        Enricher()
