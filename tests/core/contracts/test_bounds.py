"""The tick contract's bounds: each is enforced by the decoder with a stable reason, and a tick
at the extreme of every bound produces rows and dead letters that every sink accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from consumer.pipeline import TickPipeline
from core.contracts.dead_letter import DeadLetter
from core.contracts.rejects import DEAD_LETTER_REASONS, InvalidTick, RejectReason
from core.contracts.row import EnrichedRow
from core.contracts.tick import (
    MAX_PRICE,
    MAX_SOURCE_LENGTH,
    MAX_SYMBOL_LENGTH,
    MAX_VOLUME,
    MIN_PRICE,
    decode_tick,
    is_valid_symbol,
)
from tests.sink_fit import assert_dead_letter_encodes, assert_row_fits_every_sink

LONGEST_SYMBOL = "^" + "A" * 20 + "=X"
WIDEST_SOURCE = "\U0001d11e" * MAX_SOURCE_LENGTH  # 4 UTF-8 bytes each: the most bytes allowed
SHARD = "shardId-000000000000"
MAX_SEQUENCE = "9" * 128  # Kinesis sequence numbers have up to 128 digits


def raw(**fields: Any) -> bytes:
    base: dict[str, Any] = {"symbol": "AAPL", "ts": "2024-03-08T21:00:00Z", "price": 170.73}
    base.update(fields)
    return json.dumps(base).encode()


def reason_of(record: bytes) -> RejectReason:
    with pytest.raises(InvalidTick) as caught:
        decode_tick(record)
    return caught.value.reason


# --------------------------------------------------------------------------- each bound


def test_symbol_length_bound() -> None:
    assert len(LONGEST_SYMBOL) == MAX_SYMBOL_LENGTH
    assert decode_tick(raw(symbol=LONGEST_SYMBOL)).symbol == LONGEST_SYMBOL
    for longer in ("^" + "A" * 21 + "=X", "A" * (MAX_SYMBOL_LENGTH + 1)):
        assert not is_valid_symbol(longer)
        assert reason_of(raw(symbol=longer)) is RejectReason.BAD_SYMBOL


def test_source_length_bound() -> None:
    assert decode_tick(raw(source=WIDEST_SOURCE)).source == WIDEST_SOURCE
    assert reason_of(raw(source="x" * (MAX_SOURCE_LENGTH + 1))) is RejectReason.BAD_VALUE
    # The example: a 450 KB source passed and then broke DynamoDB's 400 KB item limit.
    assert reason_of(raw(source="x" * 450_000)) is RejectReason.BAD_VALUE


def test_volume_within_int64() -> None:
    assert MAX_VOLUME == 2**63 - 1  # Parquet's int64
    assert decode_tick(raw(volume=MAX_VOLUME)).volume == MAX_VOLUME
    assert decode_tick(raw(volume=0)).volume == 0
    # The issue's example: uint64's maximum passed and overflowed the Parquet writer.
    for volume in (2**63, 18446744073709551615, 10**30):
        assert reason_of(raw(volume=volume)) is RejectReason.BAD_VALUE


@pytest.mark.parametrize("price", [MIN_PRICE, MAX_PRICE])
def test_price_bounds_are_inclusive(price: Decimal) -> None:
    text = b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":' + str(price).encode() + b"}"
    assert decode_tick(text).price == price


@pytest.mark.parametrize(
    "price", ["0.00000099999", "1000000000.0001", "1e15", "1E10", "0.0000001", "1e-400"]
)
def test_price_outside_the_bounds_is_bad_price(price: str) -> None:
    text = b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":' + price.encode() + b"}"
    assert reason_of(text) is RejectReason.BAD_PRICE


@pytest.mark.parametrize("field", ["open", "high", "low"])
def test_optional_prices_have_the_same_bounds(field: str) -> None:
    assert reason_of(raw(**{field: 1e15})) is RejectReason.BAD_VALUE
    assert reason_of(raw(**{field: 1e-7})) is RejectReason.BAD_VALUE
    assert getattr(decode_tick(raw(**{field: 1e9})), field) == MAX_PRICE


def test_dead_letter_reasons_are_stable() -> None:
    assert DEAD_LETTER_REASONS == (
        "not_json",
        "not_object",
        "missing_field",
        "wrong_type",
        "bad_price",
        "bad_value",
        "bad_timestamp",
        "naive_timestamp",
        "bad_symbol",
        "late",
        "future_timestamp",
        "processing_error",
    )


# --------------------------------------------------------------------------- fits every sink


def extreme_records(start: datetime) -> list[bytes]:
    """One symbol swinging between the price bounds (the largest change and change_pct both
    ways, the largest window sum and ma_4), every other field at its bound."""
    prices = [1e-6, 1e9, 1e-6, 1e9, 999999999.9999999, 1.0000000001e-6, 1e9, 0.0000012345]
    records = []
    for i, price in enumerate(prices):
        ts = start + timedelta(microseconds=i)
        records.append(
            json.dumps(
                {
                    "symbol": LONGEST_SYMBOL,
                    "ts": ts.isoformat(),
                    "price": price,
                    "open": 1e9 if i % 2 else 1e-6,
                    "high": 1e9,
                    "low": 1e-6,
                    "volume": MAX_VOLUME if i % 2 else 0,
                    "source": WIDEST_SOURCE,
                },
                ensure_ascii=False,
            ).encode()
        )
    return records


@pytest.mark.parametrize(
    "start",
    [
        datetime(1, 1, 1, tzinfo=UTC),  # the earliest ts RFC 3339 allows
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),  # as late as an arrival in 2100 (+ skew) allows
    ],
    ids=["year-1", "epoch", "year-2100"],
)
def test_a_tick_at_every_bound_fits_every_sink(start: datetime) -> None:
    pipeline = TickPipeline()
    arrival = start + pipeline.max_skew  # the latest arrival that keeps these ticks valid
    rows: list[EnrichedRow] = []
    for i, record in enumerate(extreme_records(start)):
        outcome = pipeline.apply(record, SHARD, MAX_SEQUENCE[: 100 + i], arrival)
        assert type(outcome) is EnrichedRow, outcome
        rows.append(outcome)
    # The extremes were really reached: the largest move up and down, the largest average.
    pcts = [row.change_pct for row in rows if row.change_pct is not None]
    assert max(pcts) == (MAX_PRICE - MIN_PRICE) * 100 / MIN_PRICE
    down = Fraction(MIN_PRICE - MAX_PRICE) * 100 / Fraction(MAX_PRICE)
    assert Fraction(min(pcts)) == round(down, 10)
    assert max(row.ma_4 for row in rows if row.ma_4 is not None) > Decimal("500000000")
    for row in rows:
        assert_row_fits_every_sink(row)


def test_dead_letters_of_the_largest_records_encode() -> None:
    pipeline = TickPipeline()
    arrival = datetime(2024, 1, 1, tzinfo=UTC)
    largest = b"\xff" + b"x" * (1024 * 1024 - 1)  # a Kinesis record's maximum, not UTF-8
    for record in (largest, raw(source="x" * 450_000), raw(ts="2100-01-01T00:00:00Z")):
        letter = pipeline.apply(record, SHARD, MAX_SEQUENCE, arrival)
        assert type(letter) is DeadLetter
        assert letter.reason in DEAD_LETTER_REASONS
        assert_dead_letter_encodes(letter)
