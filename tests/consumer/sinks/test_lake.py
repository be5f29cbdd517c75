"""S3Lake against moto's S3: one object per UTC date of a batch, named by the batch's first
record of that date; a replay cut at other records rewrites every object of the first
attempt (none stranded, no row doubled); dead letters by arrival date.

The oracle is the rows put in: keys are worked out here from the rows' dates and sequence
numbers, and the objects are read back with pyarrow and compared column by column.
"""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from consumer.sinks.lake import S3Lake
from core.contracts.dead_letter import make_dead_letter
from core.contracts.row import EnrichedRow
from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA
from core.contracts.tick import Tick
from core.settings import Settings
from tests.consumer.sinks.helpers import (
    SHARD,
    enrich,
    expected_tick_keys,
    lake_batch,
    list_keys,
    read_object,
    row_as_dict,
    sequence,
    utc_day,
)

WARM_UP = 40  # ticks enriched first so the rows under test carry prev_price, ma_4, ...


def _days(ticks: list[Tick]) -> list[str]:
    return sorted({utc_day(t.ts) for t in ticks})


def _day_rows(lake_ticks: list[Tick], order: str, days: int = 2) -> list[EnrichedRow]:
    """The rows of consecutive trading days (a UTC midnight between each two), as one
    shard's records: in time order, or symbol by symbol (each symbol's days, then the next
    symbol's: a lagging producer), so dates are not monotonic in sequence order."""
    chosen = _days(lake_ticks)[60 : 60 + days]
    warm_up = [t for t in lake_ticks if utc_day(t.ts) < chosen[0]][-WARM_UP:]
    picked = [t for t in lake_ticks if utc_day(t.ts) in chosen]
    if order == "by_symbol":
        picked.sort(key=lambda t: (t.symbol, t.ts))
    rows = enrich(warm_up + picked)[WARM_UP:]
    assert sorted({utc_day(r.ts) for r in rows}) == chosen and len(rows) == 5 * days
    assert all(r.ma_4 is not None for r in rows)
    return rows


def _two_day_rows(lake_ticks: list[Tick], order: str) -> list[EnrichedRow]:
    return _day_rows(lake_ticks, order)


def _lake_rows(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every row of every tick object, each checked to belong to its object's date."""
    rows = []
    for key in sorted(list_keys(s3, bucket, "ticks/")):
        table = read_object(s3, bucket, key)
        assert table.schema.remove_metadata().equals(ROW_SCHEMA), key
        day = key.split("/")[1].removeprefix("dt=")
        for row in table.to_pylist():
            assert utc_day(row["ts"]) == day, f"{key} holds a row of {row['ts']}"
            rows.append(row)
    return rows


def _by_sequence(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: int(r["sequence_number"]))


def _assert_lake_holds_exactly(s3: Any, bucket: str, expected: list[EnrichedRow]) -> None:
    got = _lake_rows(s3, bucket)
    doubled = [s for s, n in Counter(r["sequence_number"] for r in got).items() if n > 1]
    assert doubled == [], "a row is in the lake twice"
    assert _by_sequence(got) == _by_sequence([row_as_dict(r) for r in expected])


def test_a_batch_spanning_midnight_writes_one_object_per_date(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick]
) -> None:
    rows = _two_day_rows(lake_ticks, "time")
    d1, d2 = sorted({utc_day(r.ts) for r in rows})
    batch = lake_batch(rows)
    lake.write_batch(batch)

    k1 = min(int(r.sequence_number) for r in rows if utc_day(r.ts) == d1)
    k2 = min(int(r.sequence_number) for r in rows if utc_day(r.ts) == d2)
    assert batch.tick_keys == {d1: k1, d2: k2}
    key1 = f"ticks/dt={d1}/shard={SHARD}/{k1}.parquet"
    key2 = f"ticks/dt={d2}/shard={SHARD}/{k2}.parquet"
    assert list_keys(s3, settings.bucket, "ticks/") == {key1, key2}

    for key, day in ((key1, d1), (key2, d2)):
        table = read_object(s3, settings.bucket, key)
        assert table.schema.remove_metadata().equals(ROW_SCHEMA)
        assert table.schema.field("price").type == pa.decimal128(38, 12)
        got = table.to_pylist()
        expected = [row_as_dict(r) for r in rows if utc_day(r.ts) == day]
        assert len(got) == 5
        assert _by_sequence(got) == expected
        for row, want in zip(_by_sequence(got), expected, strict=True):
            for name in ("price", "open", "high", "low", "prev_price", "change", "ma_4"):
                assert type(row[name]) is Decimal
                assert row[name] == want[name]  # exact: no float on the way
            assert row["change_pct"] == want["change_pct"]
            assert row["ts"].utcoffset() == timedelta(0)


def test_a_row_a_microsecond_before_midnight_stays_on_its_date(
    lake: S3Lake, s3: Any, settings: Settings
) -> None:
    midnight = datetime(2013, 3, 2, tzinfo=UTC)
    ticks = [
        Tick("BRK-B", midnight - timedelta(microseconds=1), Decimal("112.3456789012")),
        Tick("^GSPC", midnight - timedelta(microseconds=1), Decimal("1518.2")),
        Tick("BRK-B", midnight, Decimal("112.5"), volume=0),
        Tick("^GSPC", midnight + timedelta(seconds=1), Decimal("1519.79"), source="test"),
    ]
    rows = enrich(ticks)
    lake.write_batch(lake_batch(rows))
    assert list_keys(s3, settings.bucket, "ticks/") == {
        f"ticks/dt=2013-03-01/shard={SHARD}/{sequence(0)}.parquet",
        f"ticks/dt=2013-03-02/shard={SHARD}/{sequence(2)}.parquet",
    }
    _assert_lake_holds_exactly(s3, settings.bucket, rows)


@pytest.mark.parametrize("order", ["time", "by_symbol"])
@pytest.mark.parametrize("cut", range(1, 10))
def test_a_replay_cut_at_other_records_leaves_each_row_once_and_no_stranded_object(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick], order: str, cut: int
) -> None:
    rows = _two_day_rows(lake_ticks, order)
    lake.write_batch(lake_batch(rows))  # first attempt: records 1..N, then a crash
    first_attempt = list_keys(s3, settings.bucket, "ticks/")
    assert len(first_attempt) == 2

    replay = [rows[:cut], rows[cut:]]  # restarted at the checkpoint, cut elsewhere
    for part in replay:
        lake.write_batch(lake_batch(part))

    keys = list_keys(s3, settings.bucket)  # everything in the bucket, not just ticks/
    assert keys == expected_tick_keys(replay)
    assert first_attempt <= keys, "an object of the first attempt was not rewritten"
    _assert_lake_holds_exactly(s3, settings.bucket, rows)


@pytest.mark.parametrize("saved_symbols", [2, 5])
@pytest.mark.parametrize("cut", [2, 5, 8])
def test_a_replay_after_some_states_were_saved_keeps_the_rows_it_skips(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick], cut: int, saved_symbols: int
) -> None:
    """Before the crash the state of some symbols (or all: a crash just before the
    checkpoint) was saved at their last record of the batch: the replay skips those records,
    so their rows must survive from the old objects. The replay's second batch runs on into
    a third day never written before."""
    rows = _day_rows(lake_ticks, "time", days=3)
    first_attempt = rows[:10]
    lake.write_batch(lake_batch(first_attempt))
    saved = sorted({r.symbol for r in first_attempt})[:saved_symbols]
    replayed = {
        symbol: max(int(r.sequence_number) for r in first_attempt if r.symbol == symbol)
        for symbol in saved
    }

    replay = [rows[:cut], rows[cut:15]]
    for part in replay:
        produced = [r for r in part if int(r.sequence_number) > replayed.get(r.symbol, -1)]
        lake.write_batch(lake_batch(produced, records=part, replayed=replayed))

    keys = list_keys(s3, settings.bucket, "ticks/")
    # Every object of the first attempt rewritten; a date-key of the replay that held only
    # skipped records (nothing produced, nothing kept) is absent.
    assert expected_tick_keys([first_attempt]) <= keys <= expected_tick_keys(replay)
    _assert_lake_holds_exactly(s3, settings.bucket, rows[:15])


def test_an_object_whose_date_has_no_rows_left_is_deleted(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick]
) -> None:
    rows = _two_day_rows(lake_ticks, "time")
    d1, d2 = sorted({utc_day(r.ts) for r in rows})
    lake.write_batch(lake_batch(rows))
    (stale,) = [k for k in list_keys(s3, settings.bucket) if f"dt={d2}/" in k]

    # The same records again, but those of d2 gave no row this time.
    kept = [r for r in rows if utc_day(r.ts) == d1]
    lake.write_batch(lake_batch(kept, records=rows))

    keys = list_keys(s3, settings.bucket, "ticks/")
    assert stale not in keys
    assert keys == {f"ticks/dt={d1}/shard={SHARD}/{rows[0].sequence_number}.parquet"}
    _assert_lake_holds_exactly(s3, settings.bucket, kept)


def test_a_date_with_no_rows_and_no_old_object_writes_nothing(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick]
) -> None:
    rows = _two_day_rows(lake_ticks, "time")
    d1 = min(utc_day(r.ts) for r in rows)
    lake.write_batch(lake_batch([r for r in rows if utc_day(r.ts) == d1], records=rows))
    assert {k.split("/")[1] for k in list_keys(s3, settings.bucket, "ticks/")} == {f"dt={d1}"}


def test_dead_letters_land_under_their_arrival_date(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick]
) -> None:
    rows = _two_day_rows(lake_ticks, "time")  # records 40..49, arrived 23:58:40 .. 23:58:49
    late_raw = b'{"symbol":"IBM","ts":"2001-01-02T21:00:00Z","price":87.0}'
    bad_raw = b"\xff\xfe not json"
    letters = [
        make_dead_letter(
            late_raw,
            "late",
            "ts 2001-01-02T21:00:00.000000Z is not newer than the last accepted",
            SHARD,
            sequence(60),
            symbol="IBM",
            ts="2001-01-02T21:00:00.000000Z",
            arrival_ts="2024-05-31T23:59:59.999999Z",
        ),
        make_dead_letter(
            bad_raw,
            "not_json",
            "bad",
            SHARD,
            sequence(61),
            arrival_ts="2024-06-01T00:00:00.000000Z",
        ),
        make_dead_letter(
            b"[]",
            "not_object",
            "a list",
            SHARD,
            sequence(62),
            arrival_ts="2024-06-01T00:00:01.500000Z",
        ),
    ]
    lake.write_batch(lake_batch(rows, dead_letters=letters))

    keys = list_keys(s3, settings.bucket, "dead-letter/")
    # Keyed by the first record (of any kind) that arrived that day: a row's record on the
    # 31st, the second dead letter on the 1st.
    assert keys == {
        f"dead-letter/dt=2024-05-31/shard={SHARD}/{rows[0].sequence_number}.parquet",
        f"dead-letter/dt=2024-06-01/shard={SHARD}/{sequence(61)}.parquet",
    }
    by_day = {key.split("/")[1]: read_object(s3, settings.bucket, key).to_pylist() for key in keys}
    for table_key in keys:
        schema = read_object(s3, settings.bucket, table_key).schema.remove_metadata()
        assert schema.equals(DEAD_LETTER_SCHEMA)
    assert [d["sequence_number"] for d in by_day["dt=2024-05-31"]] == [sequence(60)]
    assert [d["sequence_number"] for d in by_day["dt=2024-06-01"]] == [sequence(61), sequence(62)]
    everything = by_day["dt=2024-05-31"] + by_day["dt=2024-06-01"]
    for got, letter in zip(everything, letters, strict=True):
        assert got == {name: getattr(letter, name) for name in DEAD_LETTER_SCHEMA.names}
    raws = [base64.b64decode(d["raw_base64"]) for d in everything]
    assert raws == [late_raw, bad_raw, b"[]"]
    # The late tick's own date (2001) names nothing: dead letters go by arrival.
    assert not any("2001" in key for key in list_keys(s3, settings.bucket))


def test_a_replayed_skip_of_a_late_record_keeps_its_dead_letter(
    lake: S3Lake, s3: Any, settings: Settings, lake_ticks: list[Tick]
) -> None:
    """A late record of a symbol whose state was saved is skipped by the replay: its dead
    letter is nowhere else, so the rewrite of its object keeps it."""
    rows = _two_day_rows(lake_ticks, "time")
    late = make_dead_letter(
        b'{"symbol":"%b","ts":"2001-01-02T21:00:00Z","price":87.0}' % rows[0].symbol.encode(),
        "late",
        "older than the last accepted",
        SHARD,
        sequence(50),
        symbol=rows[0].symbol,
        ts="2001-01-02T21:00:00.000000Z",
        arrival_ts="2024-05-31T23:58:50.000000Z",
    )
    invalid = make_dead_letter(
        b"nope", "not_json", "x", SHARD, sequence(51), arrival_ts="2024-05-31T23:58:51.000000Z"
    )
    lake.write_batch(lake_batch(rows, dead_letters=[late, invalid]))

    replayed = {rows[0].symbol: int(sequence(55))}  # saved after the late record
    rows_again = [r for r in rows if r.symbol != rows[0].symbol]
    lake.write_batch(
        lake_batch(rows_again, records=rows, dead_letters=[invalid], replayed=replayed)
    )

    (key,) = list_keys(s3, settings.bucket, "dead-letter/")
    letters = read_object(s3, settings.bucket, key).to_pylist()
    assert [d["sequence_number"] for d in letters] == [sequence(50), sequence(51)]
    for got, letter in zip(letters, [late, invalid], strict=True):
        assert got == {name: getattr(letter, name) for name in DEAD_LETTER_SCHEMA.names}
    _assert_lake_holds_exactly(s3, settings.bucket, rows)
