"""Fuzz the whole per-record path: arbitrary bytes, arbitrary JSON and near-valid ticks with
extreme values, through decode -> enrich -> every sink's encoder (the DynamoDB item serialised
by boto3 and sized, the Arrow table of the lake's schema written to Parquet, the dead letter's
JSON and Parquet). Every record is a row every sink accepts, a dead letter with a stable
reason, or a dropped exact duplicate; nothing raises, and no valid input is a processing
error (those are for bugs, and the bounds leave none to reach)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.pipeline import TickPipeline
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.lake import S3Lake
from core.contracts.dead_letter import DeadLetter
from core.contracts.rejects import DEAD_LETTER_REASONS
from core.contracts.row import EnrichedRow
from core.contracts.tick import MAX_PRICE, MAX_SOURCE_LENGTH, MAX_VOLUME, MIN_PRICE
from tests.consumer.fakes import MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState
from tests.sink_fit import assert_dead_letter_encodes, assert_row_fits_every_sink

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SHARD = "shardId-000000000007"
ARRIVAL = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` nine times in ten: enough valid ticks meet for change, change_pct and ma_4."""
    return st.integers(0, 9).flatmap(lambda k: other if k == 0 else valid)


LO, HI = float(MIN_PRICE), float(MAX_PRICE)
VALID_PRICES = (
    st.sampled_from(
        [
            *(LO, HI, math.nextafter(LO, 1), math.nextafter(HI, 0)),
            *(0.00001, 1.0000000001e-6, 999999999.9999999, 1.0, 0.0000012345678901),
        ]
    )
    | st.floats(min_value=-6.0, max_value=9.0).map(lambda e: min(max(10.0**e, LO), HI))
    | st.floats(min_value=LO, max_value=HI)
)
BAD_PRICES = st.sampled_from(
    [math.nextafter(LO, 0), math.nextafter(HI, math.inf), 1e15, 0.0, -0.0, 5e-324, 1.7e308]
) | st.floats(allow_nan=False, allow_infinity=False)
PRICES = mostly(VALID_PRICES, BAD_PRICES)
VOLUMES = mostly(
    st.sampled_from([0, MAX_VOLUME]) | st.integers(0, MAX_VOLUME),
    st.sampled_from([MAX_VOLUME + 1, 2**64 - 1, 2**64, -1]) | st.integers(),
)
SYMBOLS = mostly(
    st.sampled_from(["AAPL", "MSFT", "^" + "A" * 20 + "=X"]),
    st.sampled_from(["^" + "A" * 21 + "=X", "aapl", "", "BRK B"]) | st.text(max_size=5),
)
SOURCES = mostly(
    st.text(max_size=MAX_SOURCE_LENGTH) | st.just("\U0001d11e" * MAX_SOURCE_LENGTH),
    st.sampled_from(["x" * (MAX_SOURCE_LENGTH + 1), "y" * 450_000]),
)
# Mostly around the arrival time and the skew limit; also anywhere RFC 3339 allows.
OFFSETS_S = st.sampled_from([-86_400.0, -1.0, 0.0, 1.0, 299.999999, 300.0, 300.000001]) | st.floats(
    min_value=-3600.0, max_value=400.0
)
TIMES = mostly(
    OFFSETS_S.map(lambda s: (ARRIVAL + timedelta(seconds=s)).isoformat()),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
)

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


@st.composite
def near_valid_ticks(draw: st.DrawFn) -> bytes:
    """A tick with every field drawn from around its bound (sometimes beyond), now and then a
    field of the wrong shape."""
    record: dict[str, Any] = {
        "symbol": draw(SYMBOLS),
        "ts": draw(TIMES),
        "price": draw(PRICES),
    }
    for name, strategy in (
        ("open", PRICES),
        ("high", PRICES),
        ("low", PRICES),
        ("volume", VOLUMES),
        ("source", SOURCES),
    ):
        if draw(st.booleans()):
            record[name] = draw(strategy)
    if draw(st.integers(0, 19)) == 0:
        record[draw(st.sampled_from(sorted(record)))] = draw(JSONISH)
    return json.dumps(record, ensure_ascii=draw(st.booleans())).encode()


RECORDS = (
    near_valid_ticks() | st.binary(max_size=200) | JSONISH.map(lambda doc: json.dumps(doc).encode())
)


def check(outcome: EnrichedRow | DeadLetter | None) -> None:
    if type(outcome) is EnrichedRow:
        assert_row_fits_every_sink(outcome)
    elif type(outcome) is DeadLetter:
        assert outcome.reason in DEAD_LETTER_REASONS
        assert outcome.reason != "processing_error", outcome.detail
        assert_dead_letter_encodes(outcome)
    else:
        assert outcome is None


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(TickPipeline(max_skew=SKEW).apply(raw, SHARD, "1", ARRIVAL))


@FUZZ
@given(JSONISH)
def test_arbitrary_json(doc: Any) -> None:
    check(TickPipeline(max_skew=SKEW).apply(json.dumps(doc).encode(), SHARD, "1", ARRIVAL))


@settings(FUZZ, max_examples=150)
@given(st.lists(near_valid_ticks(), min_size=1, max_size=12))
def test_near_valid_tick_sequences(records: list[bytes]) -> None:
    """Sequences, so that extreme prices meet in change, change_pct and ma_4."""
    pipeline = TickPipeline(max_skew=SKEW)
    for index, raw in enumerate(records):
        check(pipeline.apply(raw, SHARD, str(index + 1), ARRIVAL))


@settings(FUZZ, max_examples=60)
@given(st.lists(RECORDS, min_size=1, max_size=25), st.integers(min_value=1, max_value=10))
def test_shard_processor_commits_any_batch(records: list[bytes], flush: int) -> None:
    """Through the processor and the real lake encoder (Parquet into an in-memory S3): every
    commit succeeds and every record is accounted for."""
    s3, rows = MemoryS3(), MemoryRows()
    processor = ShardProcessor(
        rows=rows,
        lake=S3Lake(s3, "bucket", "ticks", "dead-letter"),  # type: ignore[arg-type]
        state=MemoryState(),
        policy=FlushPolicy(records=flush, seconds=3600),
        max_clock_skew=SKEW,
    )
    processor.initialize(SHARD)
    checkpointer = MemoryCheckpointer()
    millis = int(ARRIVAL.timestamp() * 1000)
    batch = [StreamRecord(raw, str(100 + i), millis) for i, raw in enumerate(records)]
    for start in range(0, len(batch), 7):
        processor.process_records(batch[start : start + 7], checkpointer)
    processor.shutdown_requested(checkpointer)
    assert processor.committed_records == len(batch)
    for row in rows.items.values():
        assert_row_fits_every_sink(row)
    assert processor.pipeline.counts().errors == 0


@settings(FUZZ, max_examples=60)
@given(st.lists(VALID_PRICES, min_size=4, max_size=10), VOLUMES, SOURCES)
def test_extreme_valid_price_series(prices: list[float], volume: int, source: str) -> None:
    """One symbol, ticks in time order: every row has change_pct and, from the fourth, ma_4
    - all with prices drawn from the bounds and around them."""
    pipeline = TickPipeline(max_skew=SKEW)
    for index, price in enumerate(prices):
        ts = ARRIVAL - timedelta(seconds=len(prices) - index)
        record = {"symbol": "^" + "A" * 20 + "=X", "ts": ts.isoformat(), "price": price}
        record.update(volume=volume, source=source, open=price, high=price, low=price)
        outcome = pipeline.apply(json.dumps(record).encode(), SHARD, str(index + 1), ARRIVAL)
        check(outcome)
        if type(outcome) is EnrichedRow and index >= 3:
            assert outcome.ma_4 is not None
