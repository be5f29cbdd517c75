"""How an enriched row is stored: the Parquet schema (the single source of truth for Athena's
column list in ``sql/``) and the DynamoDB item.

Prices and derived numbers are DECIMAL(38, 12): exact, and wide enough for every value the
engine produces (prices have <= 10 decimal places, ma_4 <= 12, change_pct is rounded to 10).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from core.contracts.row import EnrichedRow, row_to_record
from core.contracts.tick import format_ts

DECIMAL_TYPE: Final = pa.decimal128(38, 12)
# Digits a DECIMAL(38, 12) holds before the point. DynamoDB's numbers hold 38 significant digits,
# so a number with at most 12 decimal places and at most 26 integer digits fits both.
DECIMAL_INTEGER_DIGITS: Final = DECIMAL_TYPE.precision - DECIMAL_TYPE.scale
TIMESTAMP_TYPE: Final = pa.timestamp("us", tz="UTC")

# Column order is the Athena table's column order. ``dt`` is not a column: it is the
# partition (the object key's ``dt=YYYY-MM-DD``, the UTC date of ``ts``).
ROW_SCHEMA: Final = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP_TYPE, nullable=False),
        pa.field("price", DECIMAL_TYPE, nullable=False),
        pa.field("open", DECIMAL_TYPE),
        pa.field("high", DECIMAL_TYPE),
        pa.field("low", DECIMAL_TYPE),
        pa.field("volume", pa.int64()),
        pa.field("source", pa.string()),
        pa.field("prev_price", DECIMAL_TYPE),
        pa.field("change", DECIMAL_TYPE),
        pa.field("change_pct", DECIMAL_TYPE),
        pa.field("anomaly", pa.bool_(), nullable=False),
        pa.field("ma_4", DECIMAL_TYPE),
        pa.field("shard_id", pa.string(), nullable=False),
        pa.field("sequence_number", pa.string(), nullable=False),
        pa.field("arrival_ts", TIMESTAMP_TYPE),
    ]
)

DEAD_LETTER_SCHEMA: Final = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("raw_base64", pa.string(), nullable=False),
        pa.field("shard_id", pa.string(), nullable=False),
        pa.field("sequence_number", pa.string(), nullable=False),
        pa.field("symbol", pa.string()),
        pa.field("ts", pa.string()),
        pa.field("arrival_ts", pa.string()),
    ]
)

# DynamoDB rows table: hash key ``symbol``, range key ``ts`` (fixed-width UTC ISO string, so
# the string order is the time order), TTL attribute ``expires_at`` (epoch seconds).
ROWS_HASH_KEY: Final = "symbol"
ROWS_RANGE_KEY: Final = "ts"
ROWS_TTL_ATTRIBUTE: Final = "expires_at"


def row_to_item(row: EnrichedRow, ttl: timedelta) -> dict[str, Any]:
    """The DynamoDB item of a row: the JSON record's fields (timestamps as fixed-width UTC
    strings, numbers Decimal) less the absent ones (DynamoDB has no typed null worth storing),
    plus the TTL attribute."""
    item = {name: value for name, value in row_to_record(row).items() if value is not None}
    if row.volume is not None:
        item["volume"] = Decimal(row.volume)
    # TTL counts from the tick's own time, so a replay writes the very same item.
    item[ROWS_TTL_ATTRIBUTE] = Decimal(int((row.ts + ttl).timestamp()))
    return item


class RowDoesNotFit(ValueError):
    """A row a sink would refuse; raised before the row leaves the engine, so it becomes a
    dead letter instead of failing a whole batch at commit (and again at every replay)."""


def check_row_fits(row: EnrichedRow) -> None:
    """Raise ``RowDoesNotFit`` unless every sink stores ``row``. The tick contract's bounds make
    a row from a valid tick fit (tests/core/contracts/test_bounds.py); this guards the derived
    numbers against a window saved by an older version with wider bounds. Decimal places need
    no check: every number has at most 12 by construction (prices and change 10, change_pct
    quantized to 10, ma_4 a sum of prices / 4), and ``adjusted()`` is cheap on the hot path."""
    for name, value in (
        ("prev_price", row.prev_price),
        ("change", row.change),
        ("change_pct", row.change_pct),
        ("ma_4", row.ma_4),
    ):
        if value is not None and value.adjusted() >= DECIMAL_INTEGER_DIGITS:
            raise RowDoesNotFit(
                f"{name} {value} has more than {DECIMAL_INTEGER_DIGITS} digits before the point"
            )


def partition_date(ts: datetime) -> str:
    """The ``dt`` partition of a timestamp: its UTC date."""
    return format_ts(ts)[:10]
