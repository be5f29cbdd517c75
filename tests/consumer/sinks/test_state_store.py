"""DynamoStateStore against moto's DynamoDB: BatchGetItem pages of 100, the owner epoch that
fences every save (a stale owner never overwrites, however far ahead it read; the owner is
never refused), and lineage (a child shard takes a symbol over from the revision it loaded;
a parent shard can then never overwrite it). Windows are built here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from consumer.fencing import FencedOut
from consumer.sinks.state_store import DynamoStateStore, StateSuperseded
from consumer.sinks.types import SavedState
from core.contracts.window import SymbolWindow
from core.settings import Settings

SHARD_A = "shardId-000000000003"
SHARD_B = "shardId-000000000011"  # a child shard after a reshard
SYMBOLS = 230  # three BatchGetItem pages: 100 + 100 + 30
YAHOO_FORMS = ("BRK-B", "^GSPC", "EURUSD=X", "RELIANCE.NS", "GC=F", "BTC-USD")


def _window(seed: int) -> SymbolWindow:
    """1 to 4 recent prices with up to 10 decimal places; sum written out by hand."""
    prices = [Decimal(f"{100 + seed}.{seed * 7919 + k:010d}") for k in range(1 + seed % 4)]
    return SymbolWindow(
        last_ts=datetime(2013, 3, 1, 21, tzinfo=UTC) + timedelta(microseconds=seed),
        last_price=prices[-1],
        recent=prices,
        recent_sum=sum(prices, Decimal(0)),
    )


def _symbols() -> list[str]:
    return [*YAHOO_FORMS, *(f"S{n:03d}" for n in range(SYMBOLS - len(YAHOO_FORMS)))]


class RecordingClient:
    """Forwards everything; on its first ``hold_back`` batch_get_item calls answers only
    half of the keys and hands the rest back as UnprocessedKeys."""

    def __init__(self, client: Any, hold_back: int = 0) -> None:
        self._client = client
        self.hold_back = hold_back
        self.key_counts: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> Any:
        ((table, request),) = RequestItems.items()
        keys = list(request["Keys"])
        self.key_counts.append(len(keys))
        if len(self.key_counts) > self.hold_back:
            return self._client.batch_get_item(RequestItems=RequestItems)
        half = len(keys) // 2
        answered = self._client.batch_get_item(
            RequestItems={table: {**request, "Keys": keys[:half]}}
        )
        answered["UnprocessedKeys"] = {table: {**request, "Keys": keys[half:]}}
        return answered


def _store(dynamodb: Any, settings: Settings, client: Any = None) -> DynamoStateStore:
    return DynamoStateStore(client or dynamodb.meta.client, settings.state_table)


@pytest.mark.parametrize("hold_back", [0, 2])
def test_many_symbols_round_trip_in_pages_of_at_most_100(
    dynamodb: Any, settings: Settings, hold_back: int
) -> None:
    symbols = _symbols()
    saved = {
        symbol: SavedState(_window(n), SHARD_A, str(7 * 10 ** (n % 60) + n))
        for n, symbol in enumerate(symbols)
    }
    writer = _store(dynamodb, settings)
    writer.save(saved, writer.claim(SHARD_A))  # 230 symbols: three transactions

    client = RecordingClient(dynamodb.meta.client, hold_back=hold_back)
    reader = _store(dynamodb, settings, client)
    loaded = reader.load([*reversed(symbols), "NOT-SAVED", symbols[0]])

    assert loaded == saved
    assert max(client.key_counts) <= 100
    assert sum(client.key_counts) >= SYMBOLS + 1
    # A fresh window, not the one handed to save (it went through DynamoDB).
    assert loaded[symbols[3]].window is not saved[symbols[3]].window
    assert loaded["^GSPC"].window.recent == saved["^GSPC"].window.recent


def _item(dynamodb_client: Any, settings: Settings, key: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb_client.get_item(
        TableName=settings.state_table, Key={"symbol": {"S": key}}, ConsistentRead=True
    ).get("Item", {})
    return item


def test_each_claim_is_a_new_larger_epoch_per_shard(
    state_store: DynamoStateStore, dynamodb_client: Any, settings: Settings
) -> None:
    first = state_store.claim(SHARD_A, "worker-1")
    second = state_store.claim(SHARD_A, "worker-2")
    other = state_store.claim(SHARD_B, "worker-1")
    assert (first.epoch, second.epoch, other.epoch) == (1, 2, 1)
    assert not state_store.holds(first)
    assert state_store.holds(second) and state_store.holds(other)
    fence = _item(dynamodb_client, settings, f"#shard#{SHARD_A}")
    assert fence["owner"] == {"S": "worker-2"} and fence["epoch"] == {"N": "2"}
    # No window: the alert Lambda, which discovers symbols in this table, skips the item.
    assert "window" not in fence


def test_a_stale_owner_cannot_save_even_ahead_and_the_owner_is_never_refused(
    dynamodb: Any, settings: Settings
) -> None:
    """The bug this replaces: ordering by sequence number let a stale owner that had read
    further ahead win, and the legitimate owner then stopped."""
    stale, owner = _store(dynamodb, settings), _store(dynamodb, settings)
    old_claim = stale.claim(SHARD_A)
    new_claim = owner.claim(SHARD_A)
    behind = SavedState(_window(1), SHARD_A, "1000")
    owner.save({"AAPL": behind}, new_claim)
    with pytest.raises(FencedOut):
        stale.save({"AAPL": SavedState(_window(2), SHARD_A, "9000")}, old_claim)
    assert owner.load(["AAPL"]) == {"AAPL": behind}
    # Positions are not compared: the owner's next save lands whatever the stale one tried.
    onward = SavedState(_window(3), SHARD_A, "1001")
    owner.save({"AAPL": onward}, new_claim)
    assert owner.load(["AAPL"]) == {"AAPL": onward}


def test_a_fenced_save_writes_no_symbol_at_all(dynamodb: Any, settings: Settings) -> None:
    stale, owner = _store(dynamodb, settings), _store(dynamodb, settings)
    old_claim = stale.claim(SHARD_A)
    owner.claim(SHARD_A)
    with pytest.raises(FencedOut):
        stale.save(
            {s: SavedState(_window(n), SHARD_A, "5") for n, s in enumerate(YAHOO_FORMS)}, old_claim
        )
    assert owner.load(YAHOO_FORMS) == {}


def test_a_child_shard_takes_a_symbol_over_from_the_revision_it_loaded(
    dynamodb: Any, settings: Settings
) -> None:
    parent, child = _store(dynamodb, settings), _store(dynamodb, settings)
    parent_claim = parent.claim(SHARD_A)
    parent.save({"GOOG": SavedState(_window(1), SHARD_A, "900000")}, parent_claim)
    child_claim = child.claim(SHARD_B)
    assert child.load(["GOOG"])["GOOG"].shard_id == SHARD_A
    taken = SavedState(_window(2), SHARD_B, "5")  # a smaller number on another shard
    child.save({"GOOG": taken}, child_claim)
    assert child.load(["GOOG"]) == {"GOOG": taken}
    # The parent's owner - not even stale by its own epoch - can no longer overwrite it: the
    # revision it loaded (its own) is gone. This was the false anomaly of issue 12.
    with pytest.raises(StateSuperseded) as raised:
        parent.save({"GOOG": SavedState(_window(3), SHARD_A, "900001")}, parent_claim)
    assert raised.value.symbol == "GOOG"
    assert child.load(["GOOG"]) == {"GOOG": taken}
    child.save({"GOOG": SavedState(_window(4), SHARD_B, "4")}, child_claim)  # its own: fine


def test_a_child_that_read_nothing_cannot_overwrite_what_another_shard_saved_since(
    dynamodb: Any, settings: Settings
) -> None:
    first, second = _store(dynamodb, settings), _store(dynamodb, settings)
    first_claim, second_claim = first.claim(SHARD_A), second.claim(SHARD_B)
    assert second.load(["IBM"]) == {}
    saved = SavedState(_window(1), SHARD_A, "7")
    first.save({"IBM": saved}, first_claim)
    with pytest.raises(StateSuperseded):
        second.save({"IBM": SavedState(_window(2), SHARD_B, "3")}, second_claim)
    assert first.load(["IBM"]) == {"IBM": saved}


def test_a_merged_child_takes_over_the_symbols_of_both_parents(
    dynamodb: Any, settings: Settings
) -> None:
    left, right, merged = (_store(dynamodb, settings) for _ in range(3))
    left.save({"AAPL": SavedState(_window(1), SHARD_A, "10")}, left.claim(SHARD_A))
    right.save({"MSFT": SavedState(_window(2), SHARD_B, "20")}, right.claim(SHARD_B))
    child = "shardId-000000000012"
    claim = merged.claim(child)
    assert {s: st.shard_id for s, st in merged.load(["AAPL", "MSFT"]).items()} == {
        "AAPL": SHARD_A,
        "MSFT": SHARD_B,
    }
    both = {"AAPL": SavedState(_window(3), child, "1"), "MSFT": SavedState(_window(4), child, "2")}
    merged.save(both, claim)
    assert merged.load(["AAPL", "MSFT"]) == both


def test_loading_nothing_saved_gives_nothing(state_store: DynamoStateStore) -> None:
    assert state_store.load([]) == {}
    assert state_store.load(["AAPL", "IBM"]) == {}


def test_forgotten_symbols_leave_nothing_behind_and_load_again(
    state_store: DynamoStateStore,
) -> None:
    """What the store remembers per symbol (the revision a save is conditioned on) follows the
    processor's evictions, and a forgotten symbol's next load restores it: the save after it
    is still conditioned on the right revision (no StateSuperseded for the owner)."""
    owner = state_store.claim(SHARD_A)
    symbols = _symbols()
    state_store.save(
        {s: SavedState(_window(i), SHARD_A, str(100 + i)) for i, s in enumerate(symbols)}, owner
    )
    assert state_store.remembered == len(symbols)
    state_store.forget(symbols[30:])
    assert state_store.remembered == 30
    reloaded = state_store.load(symbols[30:40])
    assert state_store.remembered == 40 and len(reloaded) == 10
    state_store.save({s: SavedState(_window(1), SHARD_A, "999") for s in symbols[30:40]}, owner)
    assert state_store.load(symbols[30:31])[symbols[30]].sequence_number == "999"
