"""Per-symbol state in DynamoDB: the window plus the position of the last record applied, and
the shard fences (``consumer/fencing.py``) in the same table.

A save is ordered by ownership, not by sequence number: one transaction per ≤ 99 symbols
whose first action checks that the shard's fence still holds the saver's epoch. A symbol's
item changes shard (a child shard taking it over from its parent after a reshard) only from
exactly the revision the saver loaded (shard + position), so a parent's stale owner can never
overwrite what a child saved.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from consumer.errors import LeaseGone
from consumer.fencing import FencedOut, Ownership, fence_key
from consumer.sinks.types import SavedState
from core.contracts.tick import format_ts
from core.contracts.window import decode_window, encode_window

BATCH_GET_LIMIT: Final = 100  # DynamoDB's BatchGetItem maximum
TRANSACTION_LIMIT: Final = 100  # DynamoDB's TransactWriteItems maximum (one is the fence)
# Kinesis sequence numbers are decimal strings of up to 128 digits; padded, string order is
# numeric order (kept on the item for readers that sort or compare positions).
POSITION_WIDTH: Final = 128
# A transaction conflicting with another on the same items (the fence) is retried; anything
# else ends the commit. Bounded: 6 attempts within about 1.3 s.
CONFLICT_ATTEMPTS: Final = 6


def padded(sequence_number: str) -> str:
    return sequence_number.zfill(POSITION_WIDTH)


class StateSuperseded(LeaseGone):
    """Another shard saved this symbol after this processor loaded it (the symbol moved on
    to another shard): this processor must stop without checkpointing."""

    def __init__(self, symbol: str, shard_id: str) -> None:
        super().__init__(f"state of {symbol} was saved by another shard since {shard_id} read it")
        self.symbol = symbol
        self.shard_id = shard_id


class DynamoStateStore:
    """The ``StateStore`` over DynamoDB (hash key ``symbol``). ``client`` is a resource's
    client, so values are plain Python (str, bytes). One store per processor: it remembers
    the revision (shard, position) of each symbol it loaded or saved."""

    def __init__(self, client: Any, table_name: str, sleep: Any = time.sleep) -> None:
        self._client = client
        self._table_name = table_name
        self._sleep = sleep
        self._revisions: dict[str, tuple[str, str]] = {}  # symbol -> (shard, position)

    # -- fencing -------------------------------------------------------------------------

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        response = self._client.update_item(
            TableName=self._table_name,
            Key={"symbol": fence_key(shard_id)},
            UpdateExpression=(
                "SET epoch = if_not_exists(epoch, :zero) + :one, #owner = :worker, "
                "claimed_at = :now"
            ),
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={
                ":zero": 0,
                ":one": 1,
                ":worker": worker,
                ":now": format_ts(datetime.now(UTC)),
            },
            ReturnValues="UPDATED_NEW",
        )
        return Ownership(shard_id, int(response["Attributes"]["epoch"]), worker)

    def holds(self, ownership: Ownership) -> bool:
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"symbol": fence_key(ownership.shard_id)},
            ConsistentRead=True,
            ProjectionExpression="epoch",
        ).get("Item")
        return item is not None and int(item["epoch"]) == ownership.epoch

    # -- state ---------------------------------------------------------------------------

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
        for symbol in wanted:
            state = loaded.get(symbol)
            if state is None:
                self._revisions.pop(symbol, None)
            else:
                self._revisions[symbol] = (state.shard_id, padded(state.sequence_number))
        return loaded

    @property
    def remembered(self) -> int:
        """How many symbols' revisions this store holds (for tests and the memory bench)."""
        return len(self._revisions)

    def forget(self, symbols: Iterable[str]) -> None:
        # Without this the revisions of every symbol ever seen would stay (about 300 B each):
        # memory would again grow with the symbols a shard has seen, not the resident ones.
        for symbol in symbols:
            self._revisions.pop(symbol, None)

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        symbols = sorted(states)
        step = TRANSACTION_LIMIT - 1
        for start in range(0, len(symbols), step):
            chunk = {s: states[s] for s in symbols[start : start + step]}
            self._transact(chunk, ownership)
            for symbol, state in chunk.items():
                self._revisions[symbol] = (state.shard_id, padded(state.sequence_number))

    def _transact(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        actions: list[dict[str, Any]] = [
            {
                "ConditionCheck": {
                    "TableName": self._table_name,
                    "Key": {"symbol": fence_key(ownership.shard_id)},
                    "ConditionExpression": "epoch = :epoch",
                    "ExpressionAttributeValues": {":epoch": ownership.epoch},
                }
            }
        ]
        now = format_ts(datetime.now(UTC))
        for symbol, state in states.items():
            loaded_shard, loaded_position = self._revisions.get(symbol, ("", ""))
            actions.append(
                {
                    "Put": {
                        "TableName": self._table_name,
                        "Item": {
                            "symbol": symbol,
                            "window": encode_window(state.window),
                            "shard_id": state.shard_id,
                            "sequence_number": state.sequence_number,
                            "position": padded(state.sequence_number),
                            "epoch": ownership.epoch,
                            "updated_at": now,
                        },
                        # New, this shard's (fenced by the check above), or exactly the
                        # revision this processor loaded (a child taking over from a parent).
                        "ConditionExpression": (
                            "attribute_not_exists(symbol) OR shard_id = :shard"
                            " OR (shard_id = :loaded_shard AND #pos = :loaded_pos)"
                        ),
                        "ExpressionAttributeNames": {"#pos": "position"},
                        "ExpressionAttributeValues": {
                            ":shard": state.shard_id,
                            ":loaded_shard": loaded_shard,
                            ":loaded_pos": loaded_position,
                        },
                    }
                }
            )
        delay = 0.04
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=actions)
                return
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                cancelled: list[Any] = list(error.response.get("CancellationReasons", []))
                reasons = [str(r.get("Code", "None")) for r in cancelled]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise FencedOut(ownership, "state save") from None
                failed = [
                    symbol
                    for symbol, code in zip(states, reasons[1:], strict=False)
                    if code == "ConditionalCheckFailed"
                ]
                if failed:
                    raise StateSuperseded(failed[0], ownership.shard_id) from None
                if not reasons and not self.holds(ownership):
                    raise FencedOut(ownership, "state save") from None
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                self._sleep(delay)
                delay *= 2

    def close(self) -> None:
        """Nothing to release (kept for the processor's lifecycle)."""
