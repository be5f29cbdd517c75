"""DynamoStateStore against moto's DynamoDB: BatchGetItem pages of 100, the conditional put
(an older position on the same shard never overwrites a newer one), numeric order of
sequence numbers of different lengths. Windows are built here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

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
    try:
        writer.save(saved)
    finally:
        writer.close()

    client = RecordingClient(dynamodb.meta.client, hold_back=hold_back)
    reader = _store(dynamodb, settings, client)
    try:
        loaded = reader.load([*reversed(symbols), "NOT-SAVED", symbols[0]])
    finally:
        reader.close()

    assert loaded == saved
    assert max(client.key_counts) <= 100
    assert sum(client.key_counts) >= SYMBOLS + 1
    # A fresh window, not the one handed to save (it went through DynamoDB).
    assert loaded[symbols[3]].window is not saved[symbols[3]].window
    assert loaded["^GSPC"].window.recent == saved["^GSPC"].window.recent


def test_an_older_position_on_the_same_shard_raises_and_does_not_overwrite(
    state_store: DynamoStateStore,
) -> None:
    newer = SavedState(
        _window(1), SHARD_A, "49590338271490256608559692538361571095921575989136588898"
    )
    older = SavedState(
        _window(2), SHARD_A, "49590338271490256608559692538361571095921575989136500000"
    )
    state_store.save({"AAPL": newer})
    with pytest.raises(StateSuperseded) as raised:
        state_store.save({"AAPL": older})
    assert raised.value.symbol == "AAPL"
    assert raised.value.shard_id == SHARD_A
    assert state_store.load(["AAPL"]) == {"AAPL": newer}


def test_the_same_position_again_is_a_silent_no_op(state_store: DynamoStateStore) -> None:
    first = SavedState(_window(1), SHARD_A, "1000")
    state_store.save({"IBM": first})
    state_store.save({"IBM": SavedState(_window(5), SHARD_A, "1000")})  # no error
    assert state_store.load(["IBM"]) == {"IBM": first}


def test_a_newer_position_on_the_same_shard_overwrites(state_store: DynamoStateStore) -> None:
    state_store.save({"MSFT": SavedState(_window(1), SHARD_A, "1000")})
    newer = SavedState(_window(2), SHARD_A, "1001")
    state_store.save({"MSFT": newer})
    assert state_store.load(["MSFT"]) == {"MSFT": newer}


def test_another_shard_overwrites_whatever_its_position(state_store: DynamoStateStore) -> None:
    state_store.save({"GOOG": SavedState(_window(1), SHARD_A, "900000")})
    child = SavedState(_window(2), SHARD_B, "5")
    state_store.save({"GOOG": child})  # after a reshard: a smaller number, another shard
    assert state_store.load(["GOOG"]) == {"GOOG": child}
    # ... and the child shard's positions are compared from then on.
    with pytest.raises(StateSuperseded):
        state_store.save({"GOOG": SavedState(_window(3), SHARD_B, "4")})
    assert state_store.load(["GOOG"]) == {"GOOG": child}


LENGTH_PAIRS = [
    ("9", "10"),
    ("99", "100"),
    ("999999999", "1000000000"),
    ("9" * 56, "1" + "0" * 56),
    ("49590338271490256608559692538361571095921575989136588898", "1" + "0" * 127),
]


@pytest.mark.parametrize(("smaller", "larger"), LENGTH_PAIRS)
def test_positions_of_different_lengths_compare_as_numbers(
    state_store: DynamoStateStore, smaller: str, larger: str
) -> None:
    assert int(smaller) < int(larger) and len(smaller) < len(larger)
    up = SavedState(_window(2), SHARD_A, larger)
    state_store.save({"FB": SavedState(_window(1), SHARD_A, smaller)})
    state_store.save({"FB": up})
    assert state_store.load(["FB"]) == {"FB": up}

    state_store.save({"BRK-B": up})
    with pytest.raises(StateSuperseded):
        state_store.save({"BRK-B": SavedState(_window(3), SHARD_A, smaller)})
    assert state_store.load(["BRK-B"]) == {"BRK-B": up}


def test_one_superseded_symbol_does_not_stop_the_others(state_store: DynamoStateStore) -> None:
    state_store.save({"AAPL": SavedState(_window(1), SHARD_A, "500")})
    others = {s: SavedState(_window(n), SHARD_A, "400") for n, s in enumerate(YAHOO_FORMS)}
    with pytest.raises(StateSuperseded):
        state_store.save({"AAPL": SavedState(_window(9), SHARD_A, "400"), **others})
    # save() raises at the first failed future; the other puts may still be in flight.
    state_store.close()
    loaded = state_store.load(["AAPL", *YAHOO_FORMS])
    assert loaded == {"AAPL": SavedState(_window(1), SHARD_A, "500"), **others}


def test_loading_nothing_saved_gives_nothing(state_store: DynamoStateStore) -> None:
    assert state_store.load([]) == {}
    assert state_store.load(["AAPL", "IBM"]) == {}
