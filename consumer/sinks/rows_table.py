"""The DynamoDB rows table: batched puts keyed by symbol + ts, so a replay rewrites the same
items. boto3's ``BatchWriter`` sends 25 items per call, re-queues ``UnprocessedItems`` and,
with ``overwrite_by_pkeys``, keeps only the last of two items with one key in a buffer
(DynamoDB rejects a batch holding the same key twice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

from boto3.dynamodb.table import BatchWriter

from core.contracts.row import EnrichedRow
from core.contracts.schema import ROWS_HASH_KEY, ROWS_RANGE_KEY, row_to_item

BATCH_WRITE_LIMIT: Final = 25  # DynamoDB's BatchWriteItem maximum


class DynamoRowsTable:
    """The ``RowSink`` over DynamoDB. ``client`` is a resource's client (``table.meta.client``),
    whose serializer turns Decimal/str/bool into DynamoDB's typed values."""

    def __init__(self, client: Any, table_name: str, ttl: timedelta) -> None:
        self._client = client
        self._table_name = table_name
        self._ttl = ttl

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        with BatchWriter(
            self._table_name,
            self._client,
            flush_amount=BATCH_WRITE_LIMIT,
            overwrite_by_pkeys=[ROWS_HASH_KEY, ROWS_RANGE_KEY],
        ) as writer:
            for row in rows:
                writer.put_item(Item=row_to_item(row, self._ttl))
