"""One record can never stop a shard: the issue's examples, and failures forced inside the
per-record path, become dead letters with a stable reason; the symbol's window is untouched;
the records around them are processed as if the poison was not there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import consumer.pipeline
from consumer.pipeline import TickPipeline
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.lake import S3Lake
from consumer.sinks.types import SavedState
from core.contracts.dead_letter import DeadLetter
from core.contracts.rejects import DEAD_LETTER_REASONS
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick, decode_tick, format_ts
from core.contracts.window import SymbolWindow, encode_window
from tests.consumer.fakes import MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState
from tests.oracles import assert_rows_match_oracle, enrichment_oracle

SHARD = "shardId-000000000000"
ARRIVAL = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)


def tick_json(symbol: str, minute: int, price: Any, **extra: Any) -> bytes:
    ts = ARRIVAL - timedelta(hours=1) + timedelta(minutes=minute)
    return json.dumps({"symbol": symbol, "ts": ts.isoformat(), "price": price, **extra}).encode()


# The issue's examples, each between valid ticks of the same symbol.
POISON: list[tuple[bytes, str]] = [
    (tick_json("PENNY", 1, 0.00001), "row"),
    (tick_json("PENNY", 2, 1e15), "bad_price"),  # InvalidOperation in enrichment before
    (tick_json("PENNY", 3, 0.000011), "row"),
    (tick_json("AAPL", 1, 170.1), "row"),
    (tick_json("AAPL", 2, 170.2, volume=18446744073709551615), "bad_value"),  # Parquet overflow
    (tick_json("AAPL", 3, 170.3, source="x" * 450_000), "bad_value"),  # DynamoDB 400 KB
    (
        json.dumps({"symbol": "AAPL", "ts": "2100-01-01T00:00:00Z", "price": 1.0}).encode(),
        "future_timestamp",
    ),  # silenced AAPL until 2100 before
    (tick_json("AAPL", 4, 170.4), "row"),
    (tick_json("AAPL", 5, 170.5), "row"),
    (b"\xff\xfe not even text", "not_json"),
]


def records(data: list[bytes], first: int = 1000) -> list[StreamRecord]:
    millis = int(ARRIVAL.timestamp() * 1000)
    return [StreamRecord(raw, str(first + i), millis + i) for i, raw in enumerate(data)]


def make_processor(state: MemoryState | None = None, **kwargs: Any) -> tuple[ShardProcessor, Any]:
    sinks = {"rows": MemoryRows(), "s3": MemoryS3(), "state": state or MemoryState()}
    processor = ShardProcessor(
        rows=sinks["rows"],
        lake=S3Lake(sinks["s3"], "bucket", "ticks", "dead-letter"),  # type: ignore[arg-type]
        state=sinks["state"],
        policy=FlushPolicy(records=1, seconds=3600),
        **kwargs,
    )
    processor.initialize(SHARD)
    return processor, sinks


def dead_letters_in(s3: MemoryS3) -> list[dict[str, Any]]:
    import io

    import pyarrow.parquet as pq

    letters: list[dict[str, Any]] = []
    for key, body in sorted(s3.objects.items()):
        if key.startswith("dead-letter/"):
            letters.extend(pq.read_table(io.BytesIO(body)).to_pylist())
    return sorted(letters, key=lambda letter: int(letter["sequence_number"]))


def test_issue_examples_through_the_shard_processor() -> None:
    processor, sinks = make_processor()
    checkpointer = MemoryCheckpointer()
    batch = records([raw for raw, _ in POISON])
    processor.process_records(batch, checkpointer)  # must not raise
    assert checkpointer.checkpoint_at == batch[-1].sequence_number

    letters = dead_letters_in(sinks["s3"])
    expected = [
        (r.sequence_number, want)
        for r, (_, want) in zip(batch, POISON, strict=True)
        if want != "row"
    ]
    assert [(d["sequence_number"], d["reason"]) for d in letters] == expected

    # The rows are what the valid ticks alone give (independent oracle, pandas).
    valid = [decode_tick(raw) for raw, want in POISON if want == "row"]
    oracle = enrichment_oracle(valid)
    rows = sorted(sinks["rows"].items.values(), key=lambda row: int(row.sequence_number))
    by_symbol = sorted(rows, key=lambda row: (row.symbol, row.ts))
    assert_rows_match_oracle(by_symbol, sorted(oracle.rows, key=lambda r: (r.symbol, r.ts)))

    # The future tick never became AAPL's watermark.
    saved = sinks["state"].items["AAPL"]
    assert saved.window.last_ts == decode_tick(POISON[8][0]).ts


def test_issue_examples_through_the_file_pipeline() -> None:
    pipeline = TickPipeline()
    outcomes = [
        pipeline.apply(raw, "file", str(i), None, line=i, received_at=ARRIVAL)
        for i, (raw, _) in enumerate(POISON)
    ]
    kinds = [
        "row" if type(o) is EnrichedRow else o.reason if type(o) is DeadLetter else "duplicate"
        for o in outcomes
    ]
    assert kinds == [want for _, want in POISON]
    assert pipeline.counts().future == 1


def test_future_timestamp_is_relative_to_arrival_and_configurable() -> None:
    skew = timedelta(minutes=5)
    pipeline = TickPipeline(max_skew=skew)
    at_limit = ARRIVAL + skew
    just_past = at_limit + timedelta(microseconds=1)
    row = pipeline.apply(
        json.dumps({"symbol": "A", "ts": format_ts(at_limit), "price": 1}).encode(),
        SHARD,
        "1",
        ARRIVAL,
    )
    assert type(row) is EnrichedRow
    letter = pipeline.apply(
        json.dumps({"symbol": "B", "ts": format_ts(just_past), "price": 1}).encode(),
        SHARD,
        "2",
        ARRIVAL,
    )
    assert type(letter) is DeadLetter and letter.reason == "future_timestamp"
    assert letter.symbol == "B" and letter.ts == format_ts(just_past)
    assert "B" not in pipeline.enricher.windows  # never touched the window
    tolerant = TickPipeline(max_skew=timedelta(hours=1))
    row = tolerant.apply(
        json.dumps({"symbol": "B", "ts": format_ts(just_past), "price": 1}).encode(),
        SHARD,
        "2",
        ARRIVAL,
    )
    assert type(row) is EnrichedRow


def legacy_state(price: str) -> SavedState:
    """A window saved by a version without price bounds."""
    value = Decimal(price)
    window = SymbolWindow(
        last_ts=ARRIVAL - timedelta(days=1), last_price=value, recent=[value], recent_sum=value
    )
    return SavedState(window=window, shard_id=SHARD, sequence_number="1")


@pytest.mark.parametrize(
    ("legacy_price", "error"),
    [("1E-40", "InvalidOperation"), ("1E-20", "RowDoesNotFit")],
    ids=["quotient-too-wide", "row-too-wide-for-parquet"],
)
def test_failure_inside_enrichment_is_a_processing_error(legacy_price: str, error: str) -> None:
    state = MemoryState()
    state.items["OLD"] = legacy_state(legacy_price)
    before = encode_window(state.items["OLD"].window)
    processor, sinks = make_processor(state)
    checkpointer = MemoryCheckpointer()
    batch = records([tick_json("OLD", 1, 1e9), tick_json("AAPL", 1, 170.1)])
    processor.process_records(batch, checkpointer)
    assert checkpointer.checkpoint_at == batch[-1].sequence_number
    (letter,) = dead_letters_in(sinks["s3"])
    assert letter["reason"] == "processing_error"
    assert letter["detail"].startswith(error)
    assert letter["symbol"] == "OLD"
    # The window is untouched (in memory and in the store); the other symbol went on.
    assert encode_window(processor.pipeline.enricher.windows["OLD"]) == before
    assert encode_window(sinks["state"].items["OLD"].window) == before
    assert [row.symbol for row in sinks["rows"].items.values()] == ["AAPL"]


def test_anything_raised_while_decoding_is_a_processing_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = consumer.pipeline.decode_tick

    def fragile(raw: bytes) -> Tick:
        if b"BOOM" in raw:
            raise RuntimeError("decoder bug")
        return real(raw)

    monkeypatch.setattr(consumer.pipeline, "decode_tick", fragile)
    processor, sinks = make_processor()
    checkpointer = MemoryCheckpointer()
    batch = records([tick_json("AAPL", 1, 1.5), b'{"BOOM":1}', tick_json("AAPL", 2, 1.6)])
    processor.process_records(batch, checkpointer)
    (letter,) = dead_letters_in(sinks["s3"])
    assert letter["reason"] == "processing_error"
    assert letter["detail"] == "RuntimeError while decoding: decoder bug"
    assert len(sinks["rows"].items) == 2


def test_every_reason_is_a_stable_one() -> None:
    assert {want for _, want in POISON} - {"row"} <= set(DEAD_LETTER_REASONS)
