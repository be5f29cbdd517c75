"""The tick: the one record format on the wire (one Kinesis record, UTF-8 JSON).

Defined here once; the consumer and everything downstream import it.

Decoding is on the hot path of the consumer (every record of every shard), so the valid
case is a single ``msgspec`` decode into a typed struct (C, no intermediate dict). Only a
record that fails takes the slow path that works out a precise reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final

import msgspec

from core.contracts.rejects import InvalidTick, RejectReason

# Yahoo's symbol forms: AAPL, BRK-B, ^GSPC, EURUSD=X, GC=F, RELIANCE.NS, BTC-USD.
# Upper case only: Yahoo's own form, and one spelling per instrument keeps the DynamoDB
# partition key and the state store unambiguous.
# \Z, not $: "$" also matches before a trailing newline, and "AAPL\n" is not AAPL.
SYMBOL_PATTERN: Final = r"^\^?[A-Z0-9](?:[A-Z0-9.&-]{0,18}[A-Z0-9])?(?:=[A-Z])?\Z"
_SYMBOL_RE: Final = re.compile(SYMBOL_PATTERN)

# The longest symbol the pattern admits: "^", 20 characters, "=X".
MAX_SYMBOL_LENGTH: Final = 23

# Bounds that make every valid tick fit every sink and every derived number exact (README,
# "Contracts"; tests/core/contracts/test_bounds.py proves both at the extremes).
# Prices: 1e-6 keeps at least 5 significant digits at PRICE_DECIMALS places (sub-penny OTC
# quotes, most crypto); 1e9 is above every real quote on Yahoo (BRK-A ~ 7e5, BTC-KRW ~ 1.5e8).
# The ratio of the two bounds is what sizes the engine's Decimal context
# (consumer/enrichment.py: change_pct can reach MAX_PRICE / MIN_PRICE * 100 = 1e17).
MIN_PRICE: Final = Decimal("0.000001")
MAX_PRICE: Final = Decimal(1_000_000_000)
# Parquet stores volume as int64.
MAX_VOLUME: Final = 2**63 - 1
# A provenance label ("yfinance", "replay:..."), not a payload: 128 characters keep any item far
# below DynamoDB's 400 KB.
MAX_SOURCE_LENGTH: Final = 128

# Comparing the wire float with the bounds is the same as comparing its Decimal: the shortest
# repr is monotonic in the float, and both bounds are exact at PRICE_DECIMALS places, so the
# rounding below never moves a price across one.
_Price = Annotated[float, msgspec.Meta(ge=float(MIN_PRICE), le=float(MAX_PRICE))]
_Volume = Annotated[int, msgspec.Meta(ge=0, le=MAX_VOLUME)]
_AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
_Symbol = Annotated[str, msgspec.Meta(pattern=SYMBOL_PATTERN)]
_Source = Annotated[str, msgspec.Meta(max_length=MAX_SOURCE_LENGTH)]


class _WireTick(msgspec.Struct, gc=False):
    """What may arrive. ``timestamp``/``previous_close``/``change``/``change_percent`` are the
    earlier Lambda pipeline's shape; unknown fields are ignored so producers can add some."""

    symbol: _Symbol
    price: _Price
    ts: _AwareDatetime | None = None
    timestamp: _AwareDatetime | None = None
    open: _Price | None = None
    high: _Price | None = None
    low: _Price | None = None
    volume: _Volume | None = None
    source: _Source | None = None


class Tick(msgspec.Struct, frozen=True, gc=False):
    """A validated quote. ``ts`` is the quote's own time, always UTC. Prices are ``Decimal``
    built from the shortest repr of the wire number, so ``187.23`` stays ``187.23``."""

    symbol: str
    ts: datetime
    price: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: int | None = None
    source: str | None = None


_decoder: Final = msgspec.json.Decoder(_WireTick)

# Prices keep at most this many decimal places (enough for FX and crypto quotes). Float noise
# beyond it (yfinance's 187.2300109863281) is rounded half-even; a price that rounds to zero
# is rejected. Every sink then stores prices exactly, Parquet as DECIMAL(38, 12).
PRICE_DECIMALS: Final = 10
_PRICE_QUANTUM: Final = Decimal(1).scaleb(-PRICE_DECIMALS)


def to_price(value: float, field: str = "price") -> Decimal:
    """A wire number as an exact Decimal with at most ``PRICE_DECIMALS`` places."""
    text = repr(value)  # the shortest round-trip form: its digits are the number's own
    dot = text.find(".")
    if dot > 0 and "e" not in text and len(text) - dot - 1 <= PRICE_DECIMALS:
        return Decimal(text)  # the common case: nothing to round
    try:
        rounded = Decimal(text).quantize(_PRICE_QUANTUM)
    except InvalidOperation:  # more digits than a Decimal context holds: absurdly large
        raise InvalidTick(
            RejectReason.BAD_PRICE, f"{field} {text} is out of range - at `$.{field}`"
        ) from None
    if not rounded:
        raise InvalidTick(
            RejectReason.BAD_PRICE,
            f"{field} {text} rounds to 0 at {PRICE_DECIMALS} decimal places - at `$.{field}`",
        )
    return rounded


def _optional_price(value: float | None, field: str) -> Decimal | None:
    return None if value is None else to_price(value, field)


def decode_tick(raw: bytes) -> Tick:
    """Parse and validate one raw record. Raises ``InvalidTick`` and nothing else."""
    try:
        wire = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _classify(raw, exc) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        # Invalid UTF-8 inside a string, or nesting deeper than the decoder's stack.
        raise InvalidTick(RejectReason.NOT_JSON, f"{type(exc).__name__}: {exc}") from None
    ts = wire.ts if wire.ts is not None else wire.timestamp
    if ts is None:
        raise InvalidTick(RejectReason.MISSING_FIELD, "Object missing required field `ts`")
    if ts.tzinfo is not UTC:
        try:
            ts = ts.astimezone(UTC)
        except (OverflowError, ValueError):
            raise InvalidTick(
                RejectReason.BAD_TIMESTAMP, f"{ts.isoformat()} is out of range in UTC - at `$.ts`"
            ) from None
    return Tick(
        symbol=wire.symbol,
        ts=ts,
        price=to_price(wire.price),
        open=_optional_price(wire.open, "open"),
        high=_optional_price(wire.high, "high"),
        low=_optional_price(wire.low, "low"),
        volume=wire.volume,
        source=wire.source,
    )


_FIELD_RE: Final = re.compile(r"at `\$\.(\w+)")


def _classify(raw: bytes, exc: Exception) -> InvalidTick:
    """The slow path: turn msgspec's message into one of our stable reasons."""
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):  # ValidationError subclasses DecodeError
        return InvalidTick(RejectReason.NOT_JSON, message)
    if "missing required field" in message:
        return InvalidTick(RejectReason.MISSING_FIELD, message)
    match = _FIELD_RE.search(message)
    if match is None:  # the error is about the document itself, not a field
        return InvalidTick(RejectReason.NOT_OBJECT, message)
    field = match.group(1)
    if field in ("ts", "timestamp"):
        if "timezone" in message:
            return InvalidTick(RejectReason.NAIVE_TIMESTAMP, message)
        if "Invalid RFC3339" in message:
            return InvalidTick(RejectReason.BAD_TIMESTAMP, message)
    elif field == "price" and "got `" not in message:
        return InvalidTick(RejectReason.BAD_PRICE, message)
    elif field == "symbol" and "matching regex" in message:
        return InvalidTick(RejectReason.BAD_SYMBOL, message)
    if "got `" in message:
        return InvalidTick(RejectReason.WRONG_TYPE, message)
    return InvalidTick(RejectReason.BAD_VALUE, message)


def is_valid_symbol(symbol: str) -> bool:
    return _SYMBOL_RE.match(symbol) is not None


def format_ts(ts: datetime) -> str:
    """Fixed-width UTC ISO-8601 (``YYYY-MM-DDTHH:MM:SS.ffffffZ``): sorts chronologically as a
    string, which the DynamoDB range key relies on."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    # isoformat(timespec="microseconds") always has the fraction; [:26] drops "+00:00".
    return ts.isoformat(timespec="microseconds")[:26] + "Z"


class _TickOut(msgspec.Struct, omit_defaults=True):
    symbol: str
    ts: str
    price: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: int | None = None
    source: str | None = None


_encoder: Final = msgspec.json.Encoder(decimal_format="number")


def encode_tick(tick: Tick) -> bytes:
    """The wire form of a tick (what producers put on the stream)."""
    return _encoder.encode(
        _TickOut(
            symbol=tick.symbol,
            ts=format_ts(tick.ts),
            price=tick.price,
            open=tick.open,
            high=tick.high,
            low=tick.low,
            volume=tick.volume,
            source=tick.source,
        )
    )
