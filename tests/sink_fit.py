"""Does a row (or a dead letter) fit every sink? Checked with the sinks' own encoders and the
services' documented limits, independently of the engine's ``check_row_fits``:

- DynamoDB: the item of ``row_to_item`` serialised by boto3's ``TypeSerializer`` (which refuses a
  number it cannot store exactly in 38 digits), every number within DynamoDB's range, and the
  item's size by DynamoDB's sizing rules under 400 KB;
- S3/Parquet: ``rows_to_table`` (the lake's encoder, schema ROW_SCHEMA), and a plain
  ``pa.Table.from_pylist`` with the schema, written to Parquet and read back equal.
"""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from boto3.dynamodb.types import TypeSerializer

from consumer.sinks.arrow import dead_letters_to_table, rows_to_table
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA, row_to_item

DYNAMODB_ITEM_LIMIT = 400 * 1024
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
DYNAMODB_MAX_DIGITS = 38
DYNAMODB_MAX_EXPONENT = 125  # positive numbers up to 9.99...E+125
DYNAMODB_MIN_EXPONENT = -130  # and down to 1E-130
TTL = timedelta(days=30)
_serializer = TypeSerializer()


def _number_size(value: Decimal) -> int:
    """DynamoDB: about 1 byte per two significant digits, plus 1 (leading and trailing zeros
    are trimmed)."""
    digits = value.normalize().as_tuple().digits
    return (len(digits) + 1) // 2 + 1


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rules: attribute name bytes plus value bytes."""
    size = 0
    for name, value in item.items():
        size += len(name.encode("utf-8"))
        if isinstance(value, bool):
            size += 1
        elif isinstance(value, str):
            size += len(value.encode("utf-8"))
        elif isinstance(value, Decimal):
            size += _number_size(value)
        else:
            raise AssertionError(f"unexpected attribute {name}: {value!r}")
    return size


def assert_row_fits_dynamodb(row: EnrichedRow) -> None:
    item = row_to_item(row, TTL)
    serialised = {name: _serializer.serialize(value) for name, value in item.items()}
    for name, value in item.items():
        if isinstance(value, Decimal) and value:
            digits = value.normalize().as_tuple().digits
            assert len(digits) <= DYNAMODB_MAX_DIGITS, (name, value)
            assert DYNAMODB_MIN_EXPONENT <= value.adjusted() <= DYNAMODB_MAX_EXPONENT, (name, value)
            assert Decimal(serialised[name]["N"]) == value  # stored exactly
    assert dynamodb_item_size(item) < DYNAMODB_ITEM_LIMIT


def _parquet_round_trip(table: pa.Table) -> pa.Table:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return pq.read_table(io.BytesIO(sink.getvalue()))


def assert_row_fits_parquet(row: EnrichedRow) -> None:
    table = rows_to_table([row])
    assert table.schema.equals(ROW_SCHEMA)
    back = _parquet_round_trip(table).to_pylist()[0]
    plain = pa.Table.from_pylist(
        [{name: getattr(row, name) for name in ROW_SCHEMA.names}], schema=ROW_SCHEMA
    )
    assert _parquet_round_trip(plain).to_pylist()[0] == back
    for name in ROW_SCHEMA.names:
        value = getattr(row, name)
        if isinstance(value, Decimal):
            assert back[name] == value, name  # exact: DECIMAL(38, 12) lost nothing
        elif name not in ("ts", "arrival_ts"):
            assert back[name] == value, name
    assert back["ts"] == row.ts


def assert_row_fits_every_sink(row: EnrichedRow) -> None:
    assert_row_fits_dynamodb(row)
    assert_row_fits_parquet(row)


def assert_dead_letter_encodes(letter: DeadLetter) -> None:
    assert msgspec.json.decode(msgspec.json.encode(letter), type=DeadLetter) == letter
    table = dead_letters_to_table([letter])
    assert table.schema.equals(DEAD_LETTER_SCHEMA)
    back = _parquet_round_trip(table).to_pylist()[0]
    assert back["raw_base64"] == letter.raw_base64
    assert back["reason"] == letter.reason
