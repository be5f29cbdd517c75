"""Per-symbol state in DynamoDB: the window plus the position of the last record applied.

A put is conditional on the position moving forward on the same shard, in the manner of
Powertools' idempotency persistence (``attribute_not_exists(...) OR ...``): during a lease
move two workers can briefly hold one shard, and the older one must never overwrite the newer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from consumer.errors import LeaseGone
from consumer.sinks.types import SavedState
from core.contracts.tick import format_ts
from core.contracts.window import decode_window, encode_window

BATCH_GET_LIMIT: Final = 100  # DynamoDB's BatchGetItem maximum
# Kinesis sequence numbers are decimal strings of up to 128 digits; padded, string order is
# numeric order, which DynamoDB condition expressions can compare.
POSITION_WIDTH: Final = 128
WRITE_THREADS: Final = 16


def padded(sequence_number: str) -> str:
    return sequence_number.zfill(POSITION_WIDTH)


class StateSuperseded(LeaseGone):
    """Another worker saved a newer position for this symbol on this shard: this worker's
    lease has moved on, and it must stop without checkpointing."""

    def __init__(self, symbol: str, shard_id: str, ours: str, theirs: str) -> None:
        super().__init__(
            f"state of {symbol} on {shard_id} is at {theirs}, ahead of this worker's {ours}"
        )
        self.symbol = symbol
        self.shard_id = shard_id


class DynamoStateStore:
    """The ``StateStore`` over DynamoDB (hash key ``symbol``). ``client`` is a resource's
    client, so values are plain Python (str, bytes)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table_name = table_name
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="state")

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        wanted = sorted(set(symbols))
        loaded: dict[str, SavedState] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table_name: {
                    "Keys": [{"symbol": s} for s in wanted[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table_name, []):
                    loaded[item["symbol"]] = SavedState(
                        window=decode_window(bytes(item["window"])),
                        shard_id=item["shard_id"],
                        sequence_number=item["sequence_number"],
                    )
                request = response.get("UnprocessedKeys") or {}
        return loaded

    def save(self, states: Mapping[str, SavedState]) -> None:
        # One conditional put per symbol (BatchWriteItem has no conditions), in parallel.
        for future in [self._pool.submit(self._put, s, st) for s, st in states.items()]:
            future.result()

    def _put(self, symbol: str, state: SavedState) -> None:
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item={
                    "symbol": symbol,
                    "window": encode_window(state.window),
                    "shard_id": state.shard_id,
                    "sequence_number": state.sequence_number,
                    "position": padded(state.sequence_number),
                    "updated_at": format_ts(datetime.now(UTC)),
                },
                ConditionExpression=(
                    "attribute_not_exists(symbol) OR shard_id <> :shard OR #pos < :pos"
                ),
                ExpressionAttributeNames={"#pos": "position"},
                ExpressionAttributeValues={
                    ":shard": state.shard_id,
                    ":pos": padded(state.sequence_number),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] = dict(error.response.get("Item", {}))  # type: ignore[call-overload]
            theirs = str(old.get("sequence_number", {}).get("S", ""))
            if theirs and int(theirs) > int(state.sequence_number):
                raise StateSuperseded(
                    symbol, state.shard_id, state.sequence_number, theirs
                ) from None
            # Equal position: a replay saving what is already saved. Nothing to do.

    def close(self) -> None:
        self._pool.shutdown(wait=True)
