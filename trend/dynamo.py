"""DynamoDB implementations of the run's seams (trend/ports.py), on the low-level client.

Every read that decides something is strongly consistent: an eventually consistent read of
the ledger or the cursor could show a state older than a concurrent run's write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec
from botocore.exceptions import ClientError

from core.contracts.tick import format_ts
from core.contracts.window import decode_window
from trend.cursor import SymbolCursor, decode_cursor, encode_cursor
from trend.errors import CorruptState
from trend.evaluate import RowView
from trend.ports import Claim, DurableSymbol
from trend.tables import ALERTS_TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CONDITION_FAILED: Final = "ConditionalCheckFailedException"
PENDING: Final = "pending"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)  # a released lease: lapsed for everyone
SENT: Final = "sent"


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED


def _decimal(attr: Mapping[str, Any] | None) -> Decimal | None:
    return None if attr is None or "N" not in attr else Decimal(attr["N"])


class StateTableSymbols:
    """Symbols from the consumer's state table (consumer/sinks/state_store.py, one small item
    per symbol), each with its watermark: the ``last_ts`` of the item's window. A Scan of the
    key and the window only. A symbol the consumer starts to see is alerted on from the next
    run, no redeploy.

    Eventually consistent on purpose: a stale item shows an *older* watermark, and every row up
    to an older watermark is written too, so staleness only defers rows to the next run."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb, self._table = dynamodb, table

    def symbols(self) -> Iterator[DurableSymbol]:
        found: dict[str, DurableSymbol] = {}
        pages = self._dynamodb.get_paginator("scan").paginate(
            TableName=self._table,
            ProjectionExpression="#s, #w",
            ExpressionAttributeNames={"#s": "symbol", "#w": "window"},
        )
        for page in pages:
            for item in page.get("Items", []):
                symbol = item["symbol"]["S"]
                found[symbol] = _durable(symbol, item.get("window", {}).get("B"))
        # A stable order: logs and partial runs are predictable.
        return iter([found[s] for s in sorted(found)])


def _durable(symbol: str, window: bytes | None) -> DurableSymbol:
    if window is None:
        return DurableSymbol(symbol, None)
    try:
        last_ts = decode_window(bytes(window)).last_ts
    except msgspec.DecodeError as exc:  # ValidationError included
        return DurableSymbol(symbol, None, error=str(CorruptState(symbol, str(exc))))
    return DurableSymbol(symbol, format_ts(last_ts))


class RowsTableReader:
    """The rows the consumer wrote (``core.contracts.schema.row_to_item``), by paginated Query."""

    def __init__(self, dynamodb: DynamoDBClient, table: str, page_size: int = 1000) -> None:
        self._dynamodb, self._table, self._page_size = dynamodb, table, page_size

    def rows_between(self, symbol: str, after: str | None, until: str) -> Iterator[RowView]:
        names = {"#s": "symbol", "#ts": "ts"}
        values: dict[str, Any] = {":s": {"S": symbol}, ":until": {"S": until}}
        if after is None:
            condition = "#s = :s AND #ts <= :until"
        elif after < until:
            # A key condition takes one range test, and BETWEEN is inclusive at both ends: the
            # row at ``after`` (evaluated by the previous run) is dropped below.
            condition = "#s = :s AND #ts BETWEEN :after AND :until"
            values[":after"] = {"S": after}
        else:
            return  # nothing durable after the cursor (BETWEEN would also reject the bounds)
        pages = self._dynamodb.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ProjectionExpression="#ts, price, anomaly, prev_price, change_pct",
            ConsistentRead=True,
            ScanIndexForward=True,
            PaginationConfig={"PageSize": self._page_size},
        )
        for page in pages:
            for item in page.get("Items", []):
                ts = item["ts"]["S"]
                if ts == after:
                    continue
                yield RowView(
                    ts=datetime.fromisoformat(ts),
                    price=Decimal(item["price"]["N"]),
                    anomaly=item.get("anomaly", {}).get("BOOL", False),
                    prev_price=_decimal(item.get("prev_price")),
                    change_pct=_decimal(item.get("change_pct")),
                )


class DynamoCursorStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb, self._table = dynamodb, table

    def load(self, symbol: str) -> SymbolCursor | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"symbol": {"S": symbol}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else decode_cursor(symbol, item["cursor"]["S"])

    def advance(self, symbol: str, cursor: SymbolCursor, now: datetime) -> bool:
        if cursor.position is None:
            return False  # nothing evaluated: nothing to save
        item: dict[str, Any] = {
            "symbol": {"S": symbol},
            "position": {"S": cursor.position},
            "cursor": {"S": encode_cursor(cursor)},
            "updated_at": {"S": format_ts(now)},
        }
        if cursor.row_ts is not None:
            item["row_ts"] = {"S": cursor.row_ts}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                # Forward only: of two overlapping runs, the one behind cannot undo the other.
                ConditionExpression="attribute_not_exists(#s) OR #p < :p",
                ExpressionAttributeNames={"#s": "symbol", "#p": "position"},
                ExpressionAttributeValues={":p": {"S": cursor.position}},
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True


class DynamoAlertLedger:
    """The exactly-once ledger: one item per alert, claimed by a conditional put (the pattern
    of Powertools' idempotency persistence: absent, or in progress with a lapsed lease)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str, ttl: timedelta) -> None:
        self._dynamodb, self._table, self._ttl = dynamodb, table, ttl

    def _key(self, symbol: str, key: str) -> dict[str, Any]:
        return {"symbol": {"S": symbol}, "alert_key": {"S": key}}

    def claim(
        self, symbol: str, key: str, owner: str, now: datetime, lease_until: datetime
    ) -> Claim:
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    **self._key(symbol, key),
                    "status": {"S": PENDING},
                    "owner": {"S": owner},
                    "claimed_at": {"S": format_ts(now)},
                    "lease_until": {"S": format_ts(lease_until)},
                    ALERTS_TTL_ATTRIBUTE: {"N": str(int((now + self._ttl).timestamp()))},
                },
                # New, or pending under a lease that lapsed (its owner crashed or timed out).
                ConditionExpression=(
                    "attribute_not_exists(alert_key) OR (#st = :pending AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": PENDING},
                    ":now": {"S": format_ts(now)},
                },
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            item = self._dynamodb.get_item(
                TableName=self._table, Key=self._key(symbol, key), ConsistentRead=True
            ).get("Item")
            if item is not None and item.get("status", {}).get("S") == SENT:
                return Claim.SENT
            # Pending under a live lease (or expired by TTL between the two calls): not ours.
            return Claim.BUSY
        return Claim.CLAIMED

    def mark_sent(self, symbol: str, key: str, owner: str, message_id: str, now: datetime) -> None:
        # Unconditional: the message is out, whoever holds the lease now must not send again.
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key(symbol, key),
            UpdateExpression="SET #st = :sent, sent_at = :now, message_id = :mid, sent_by = :o",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={
                ":sent": {"S": SENT},
                ":now": {"S": format_ts(now)},
                ":mid": {"S": message_id},
                ":o": {"S": owner},
            },
        )

    def release(self, symbol: str, key: str, owner: str) -> None:
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(symbol, key),
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="#st = :pending AND #o = :o",
                ExpressionAttributeNames={"#st": "status", "#o": "owner"},
                ExpressionAttributeValues={
                    ":zero": {"S": format_ts(_EPOCH)},
                    ":pending": {"S": PENDING},
                    ":o": {"S": owner},
                },
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise


# The rotation's item in the cursor table. '#' is outside the Yahoo symbol grammar
# (producer/tick.py SYMBOL_PATTERN), so no symbol's cursor can ever have this key.
ROTATION_KEY: Final = "#rotation"


class DynamoRotation:
    """Where the fair rotation stands (trend/runner.py): one item of the cursor table.

    Written unconditionally, last run wins: two overlapping runs only disagree about where
    the next one starts, and either answer covers every symbol within the bound."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb, self._table = dynamodb, table

    def resume_after(self) -> str | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"symbol": {"S": ROTATION_KEY}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else item["resume_after"]["S"]

    def save(self, symbol: str, now: datetime) -> None:
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "symbol": {"S": ROTATION_KEY},
                "resume_after": {"S": symbol},
                "updated_at": {"S": format_ts(now)},
            },
        )
