"""The tick wire contract: decode_tick, encode_tick, format_ts, is_valid_symbol."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contracts.rejects import InvalidTick, RejectReason
from core.contracts.tick import (
    MAX_PRICE,
    MAX_SOURCE_LENGTH,
    MIN_PRICE,
    Tick,
    decode_tick,
    encode_tick,
    format_ts,
    is_valid_symbol,
)
from tests.oracles import DATA_DIR

EXAMPLES: dict[str, Any] = json.loads(
    (DATA_DIR / "ticks_examples.json").read_text(encoding="utf-8")
)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_SYMBOLS = (
    "AAPL",
    "BRK-B",
    "^GSPC",
    "EURUSD=X",
    "RELIANCE.NS",
    "GC=F",
    "BTC-USD",
    "F",
    "BF.B",
)
INVALID_SYMBOLS = (
    "aapl",  # lower case
    "Aapl",
    "",  # empty
    " AAPL",  # spaces
    "AAPL ",
    "BRK B",
    "A" * 30,  # too long
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "$AAPL",  # cashtag
    "AAPL-",  # dangling separator
    "-AAPL",
    "^",
    "AAPL=",
)


def record(**fields: Any) -> bytes:
    base: dict[str, Any] = {"symbol": "AAPL", "ts": "2024-03-08T21:00:00Z", "price": 170.73}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def reason_of(raw: bytes) -> RejectReason:
    with pytest.raises(InvalidTick) as caught:
        decode_tick(raw)
    return caught.value.reason


def assert_is_utc(ts: datetime) -> None:
    assert ts.tzinfo is not None
    assert ts.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------- recorded examples


@pytest.mark.parametrize("example", EXAMPLES["valid"], ids=lambda e: e["name"])
def test_valid_example_decodes(example: dict[str, Any]) -> None:
    tick = decode_tick(example["raw"].encode())
    expected = example["expected"]
    assert tick.symbol == expected["symbol"]
    assert_is_utc(tick.ts)
    # Wall-clock fields in UTC (aware datetimes compare equal across zones, so compare naive).
    assert tick.ts.replace(tzinfo=None) == datetime.fromisoformat(expected["ts_utc"])
    assert tick.price == Decimal(expected["price"])
    assert isinstance(tick.price, Decimal)
    for name in ("open", "high", "low"):
        want = expected.get(name)
        assert getattr(tick, name) == (None if want is None else Decimal(want))
    assert tick.volume == expected.get("volume")
    assert tick.source == expected.get("source")


@pytest.mark.parametrize(
    "example", EXAMPLES["invalid"], ids=lambda e: f"{e['reason']}-{e['note'].replace(' ', '_')}"
)
def test_invalid_example_rejected_with_its_reason(example: dict[str, Any]) -> None:
    raw = example["raw"].encode()
    with pytest.raises(InvalidTick) as caught:
        decode_tick(raw)
    assert caught.value.reason == RejectReason(example["reason"])
    assert caught.value.detail  # something a person can read


def test_every_reject_reason_has_a_recorded_example() -> None:
    covered = {e["reason"] for e in EXAMPLES["invalid"]}
    assert covered == {r.value for r in RejectReason}


def test_reject_reason_values_are_stable() -> None:
    # Dead letters and the data-quality query group by these strings.
    assert sorted(r.value for r in RejectReason) == sorted(
        [
            "not_json",
            "not_object",
            "missing_field",
            "wrong_type",
            "bad_price",
            "bad_value",
            "bad_timestamp",
            "naive_timestamp",
            "bad_symbol",
        ]
    )


# --------------------------------------------------------------------------- one test per reason


def test_not_json() -> None:
    assert reason_of(b"AAPL,2024-03-08,170.73") is RejectReason.NOT_JSON
    assert reason_of(b"") is RejectReason.NOT_JSON
    assert reason_of(b"\xff\xfe{}") is RejectReason.NOT_JSON
    assert reason_of(b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":Infinity}') is (
        RejectReason.NOT_JSON
    )


def test_not_object() -> None:
    assert reason_of(b"[]") is RejectReason.NOT_OBJECT
    assert reason_of(b"170.73") is RejectReason.NOT_OBJECT
    assert reason_of(b"true") is RejectReason.NOT_OBJECT


@pytest.mark.parametrize("missing", ["symbol", "price", "ts"])
def test_missing_field(missing: str) -> None:
    assert reason_of(record(**{missing: ...})) is RejectReason.MISSING_FIELD


def test_null_ts_and_no_timestamp_is_missing_field() -> None:
    assert reason_of(record(ts=None)) is RejectReason.MISSING_FIELD


@pytest.mark.parametrize(
    "fields",
    [
        {"price": "170.73"},
        {"price": True},
        {"price": [170.73]},
        {"symbol": 42},
        {"ts": 1709931600},
        {"volume": 1.5},
        {"volume": "100"},
        {"source": 7},
    ],
    ids=repr,
)
def test_wrong_type(fields: dict[str, Any]) -> None:
    assert reason_of(record(**fields)) is RejectReason.WRONG_TYPE


@pytest.mark.parametrize(
    "price", ["0", "-0.0", "-1.5", "1e400", "-1e400", "1e-400", "1" + "0" * 400]
)
def test_bad_price(price: str) -> None:
    raw = b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":' + price.encode() + b"}"
    assert reason_of(raw) is RejectReason.BAD_PRICE


@pytest.mark.parametrize(
    "fields", [{"volume": -1}, {"open": 0}, {"high": -3.2}, {"low": 0.0}], ids=repr
)
def test_bad_value(fields: dict[str, Any]) -> None:
    assert reason_of(record(**fields)) is RejectReason.BAD_VALUE


def test_bad_value_for_overflowing_optional_price() -> None:
    raw = b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":170.73,"high":1e400}'
    assert reason_of(raw) is RejectReason.BAD_VALUE


@pytest.mark.parametrize(
    "ts",
    [
        "2024-02-30T21:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-03-08T25:00:00Z",
        "2024-03-08",
        "yesterday",
        "",
        "2024-03-08T21:00:00+25:00",
    ],
)
def test_bad_timestamp(ts: str) -> None:
    assert reason_of(record(ts=ts)) is RejectReason.BAD_TIMESTAMP


def test_naive_timestamp() -> None:
    assert reason_of(record(ts="2024-03-08T16:00:00")) is RejectReason.NAIVE_TIMESTAMP
    legacy = record(ts=..., timestamp="2024-03-08T16:00:00")
    assert reason_of(legacy) is RejectReason.NAIVE_TIMESTAMP


@pytest.mark.parametrize("symbol", INVALID_SYMBOLS, ids=repr)
def test_bad_symbol(symbol: str) -> None:
    assert reason_of(record(symbol=symbol)) is RejectReason.BAD_SYMBOL
    assert not is_valid_symbol(symbol)


@pytest.mark.parametrize("symbol", VALID_SYMBOLS)
def test_valid_yahoo_symbols_accepted(symbol: str) -> None:
    assert decode_tick(record(symbol=symbol)).symbol == symbol
    assert is_valid_symbol(symbol)


@pytest.mark.parametrize("symbol", ["AAPL\n", "BRK-B\n"], ids=repr)
def test_symbol_with_trailing_newline_rejected(symbol: str) -> None:
    assert not is_valid_symbol(symbol)
    assert reason_of(record(symbol=symbol)) is RejectReason.BAD_SYMBOL


# --------------------------------------------------------------------------- accepted shapes


def test_legacy_shape_accepted() -> None:
    raw = json.dumps(
        {
            "symbol": "AAPL",
            "timestamp": "2024-03-08T16:00:00-05:00",
            "price": 170.73,
            "previous_close": 169.0,
            "change": 1.73,
            "change_percent": 1.0237,
        }
    ).encode()
    tick = decode_tick(raw)
    assert tick.symbol == "AAPL"
    assert tick.price == Decimal("170.73")
    assert_is_utc(tick.ts)
    assert tick.ts.replace(tzinfo=None) == datetime(2024, 3, 8, 21, 0)


def test_price_keeps_its_decimal_spelling() -> None:
    # 187.23 as a double is 187.229999...; the tick must carry 187.23 exactly.
    tick = decode_tick(record(price=187.23, open=0.1, volume=0))
    assert tick.price == Decimal("187.23")
    assert tick.open == Decimal("0.1")
    assert tick.volume == 0


# --------------------------------------------------------------------------- zone normalisation


@pytest.mark.parametrize(
    ("offset", "delta"),
    [
        ("Z", timedelta(0)),
        ("+00:00", timedelta(0)),
        ("+05:30", timedelta(hours=5, minutes=30)),
        ("-05:00", timedelta(hours=-5)),
        ("-04:00", timedelta(hours=-4)),
        ("+14:00", timedelta(hours=14)),
        ("-12:00", timedelta(hours=-12)),
        ("+09:45", timedelta(hours=9, minutes=45)),
    ],
)
def test_ts_with_offset_normalised_to_utc(offset: str, delta: timedelta) -> None:
    local = datetime(2024, 3, 8, 23, 30, 15, 250_000)
    tick = decode_tick(record(ts=local.isoformat() + offset))
    assert_is_utc(tick.ts)
    # UTC = local wall clock - offset
    assert tick.ts.replace(tzinfo=None) == local - delta


def test_ts_across_new_york_dst_change() -> None:
    # 2024-03-10: 01:59 EST (-05:00) is 06:59Z, 03:01 EDT (-04:00) is 07:01Z: two minutes apart.
    before = decode_tick(record(ts="2024-03-10T01:59:00-05:00")).ts
    after = decode_tick(record(ts="2024-03-10T03:01:00-04:00")).ts
    assert before.replace(tzinfo=None) == datetime(2024, 3, 10, 6, 59)
    assert after.replace(tzinfo=None) == datetime(2024, 3, 10, 7, 1)
    assert after - before == timedelta(minutes=2)


@settings(max_examples=100, deadline=None)
@given(
    local=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
    minutes=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_any_offset_normalised_to_utc(local: datetime, minutes: int) -> None:
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    text = f"{local.isoformat(timespec='microseconds')}{sign}{hh:02d}:{mm:02d}"
    tick = decode_tick(record(ts=text))
    assert_is_utc(tick.ts)
    assert tick.ts.replace(tzinfo=None) == local - timedelta(minutes=minutes)


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_ts_out_of_range_in_utc_is_bad_timestamp(ts: str) -> None:
    assert reason_of(record(ts=ts)) is RejectReason.BAD_TIMESTAMP


# --------------------------------------------------------------------------- format_ts

FORMAT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
AWARE = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS
)


def test_format_ts_examples() -> None:
    assert format_ts(datetime(2024, 3, 8, 21, 0, tzinfo=UTC)) == "2024-03-08T21:00:00.000000Z"
    new_york = ZoneInfo("America/New_York")
    assert format_ts(datetime(2024, 7, 1, 16, 0, tzinfo=new_york)) == "2024-07-01T20:00:00.000000Z"
    assert format_ts(datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0005-01-02T03:04:05.000006Z"


@settings(max_examples=150, deadline=None)
@given(ts=AWARE)
def test_format_ts_fixed_width_utc(ts: datetime) -> None:
    text = format_ts(ts)
    assert len(text) == 27
    assert FORMAT_RE.fullmatch(text)
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert parsed == ts


@settings(max_examples=150, deadline=None)
@given(a=AWARE, b=AWARE)
def test_format_ts_sorts_chronologically(a: datetime, b: datetime) -> None:
    fa, fb = format_ts(a), format_ts(b)
    assert (fa < fb) == (a < b)
    assert (fa == fb) == (a == b)


@settings(max_examples=50, deadline=None)
@given(st.lists(AWARE, min_size=2, max_size=30))
def test_format_ts_sorted_strings_are_sorted_times(stamps: list[datetime]) -> None:
    by_text = sorted(stamps, key=format_ts)
    assert all(x <= y for x, y in itertools.pairwise(by_text))


# --------------------------------------------------------------------------- round trip

SYMBOLS = st.sampled_from(VALID_SYMBOLS) | st.from_regex(r"[A-Z]{1,5}", fullmatch=True)
# Prices a tick can carry exactly through a JSON number: at most 15 significant digits (a double
# keeps them) and at most 10 decimal places (the precision ticks keep), within the contract's
# bounds (MIN_PRICE..MAX_PRICE).
PRICES = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(min_value=1, max_value=10**15 - 1),
    st.integers(min_value=0, max_value=10),
).filter(lambda price: MIN_PRICE <= price <= MAX_PRICE)
TICKS = st.builds(
    Tick,
    symbol=SYMBOLS,
    ts=st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ),
    price=PRICES,
    open=st.none() | PRICES,
    high=st.none() | PRICES,
    low=st.none() | PRICES,
    volume=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    source=st.none() | st.text(max_size=MAX_SOURCE_LENGTH),
)


@settings(max_examples=150, deadline=None)
@given(tick=TICKS)
def test_encode_decode_round_trip(tick: Tick) -> None:
    raw = encode_tick(tick)
    as_json = json.loads(raw)  # plain JSON anyone can read
    assert as_json["symbol"] == tick.symbol
    assert Decimal(str(as_json["price"])) == tick.price
    back = decode_tick(raw)
    assert back == tick
    assert back.ts.replace(tzinfo=None) == tick.ts.replace(tzinfo=None)


# --------------------------------------------------------------------------- fuzz


def decodes_or_rejects(raw: bytes) -> None:
    """The contract: a Tick or InvalidTick, never anything else; a Tick obeys the invariants."""
    try:
        tick = decode_tick(raw)
    except InvalidTick as rejected:
        assert isinstance(rejected.reason, RejectReason)
        return
    assert isinstance(tick, Tick)
    assert is_valid_symbol(tick.symbol)
    assert_is_utc(tick.ts)
    assert tick.price.is_finite()
    assert tick.price > 0
    assert tick.volume is None or tick.volume >= 0


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(raw: bytes) -> None:
    decodes_or_rejects(raw)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["2024-03-08T21:00:00Z", "2024-03-08T16:00:00", "AAPL", "1e400"]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


@FUZZ
@given(JSONISH)
def test_fuzz_jsonish_documents(doc: Any) -> None:
    decodes_or_rejects(json.dumps(doc).encode())


REALISTIC_TS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=OFFSETS
).map(lambda d: d.isoformat())
REQUIRED = {
    "symbol": st.sampled_from(VALID_SYMBOLS + INVALID_SYMBOLS) | JSONISH,
    "ts": REALISTIC_TS | JSONISH,
    "price": st.floats() | st.integers() | JSONISH,
}
OPTIONAL = {
    "timestamp": REALISTIC_TS | JSONISH,
    "open": st.floats() | JSONISH,
    "high": st.floats() | JSONISH,
    "low": st.floats() | JSONISH,
    "volume": st.integers() | JSONISH,
    "source": st.text(max_size=10) | JSONISH,
    "previous_close": JSONISH,
    "change": JSONISH,
    "change_percent": JSONISH,
    "extra": JSONISH,
}


@FUZZ
@given(st.fixed_dictionaries(REQUIRED, optional=OPTIONAL))
def test_fuzz_records_with_required_keys(doc: dict[str, Any]) -> None:
    decodes_or_rejects(json.dumps(doc).encode())


@FUZZ
@given(st.fixed_dictionaries({}, optional={**REQUIRED, **OPTIONAL}))
def test_fuzz_records_with_some_keys_missing(doc: dict[str, Any]) -> None:
    decodes_or_rejects(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":1,"x":'
        + b"[" * 5000
        + b"]" * 5000
        + b"}",
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"x":' + b"[" * 5000,
    ],
    ids=["valid-tick-with-deep-extra", "deep-objects", "deep-truncated"],
)
def test_deeply_nested_record_is_rejected_not_crashing(raw: bytes) -> None:
    with pytest.raises(InvalidTick):
        decode_tick(raw)


# Bytes that are not UTF-8 and hold no '"' or '\\' (so they stay inside the JSON string).
NOT_UTF8 = (
    st.binary(min_size=1, max_size=8)
    .map(lambda b: b.replace(b'"', b"").replace(b"\\", b""))
    .filter(lambda b: not _is_utf8(b))
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_bytes_not_utf8_outside_strings_are_not_json() -> None:
    assert reason_of(b"\xa0" + record()) is RejectReason.NOT_JSON
    assert reason_of(b"\xff\xfe" + record()) is RejectReason.NOT_JSON


def test_bytes_not_utf8_in_ts_or_an_unknown_field_are_handled() -> None:
    assert (
        reason_of(b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z\xff","price":1}')
        is RejectReason.BAD_TIMESTAMP
    )
    # an unknown field is skipped without being decoded: the tick is fine
    tick = decode_tick(b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":1,"x":"\xff"}')
    assert tick.symbol == "AAPL"


@pytest.mark.parametrize(
    "raw",
    [
        '{"symbol":"RY.TO","ts":"2024-03-08T21:00:00Z","price":133.5,"source":"Montréal"}'.encode(
            "latin-1"
        ),
        b'{"symbol":"AAPL\xff","ts":"2024-03-08T21:00:00Z","price":170.73}',
        b'{"symbol":"\xed\xa0\x80","ts":"2024-03-08T21:00:00Z","price":170.73}',  # surrogate
    ],
    ids=["latin1-source", "ff-in-symbol", "encoded-surrogate-symbol"],
)
def test_string_value_not_utf8_is_rejected_not_crashing(raw: bytes) -> None:
    with pytest.raises(InvalidTick) as caught:
        decode_tick(raw)
    assert caught.value.reason is RejectReason.NOT_JSON


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from(["symbol", "source"]), junk=NOT_UTF8)
def test_fuzz_string_fields_not_utf8(field: str, junk: bytes) -> None:
    values = {"symbol": b"AAPL", "ts": b"2024-03-08T21:00:00Z", "source": b"feed"}
    values[field] += junk
    raw = b'{"symbol":"%s","ts":"%s","price":170.73,"source":"%s"}' % (
        values["symbol"],
        values["ts"],
        values["source"],
    )
    decodes_or_rejects(raw)
