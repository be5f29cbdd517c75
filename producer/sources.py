"""The quote sources other than live Yahoo: replay of a real dataset, seeded synthetic load,
and a file sent line by line. Each ends in ``Record``s, what the Kinesis writer takes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Final, Protocol

import msgspec

from core.contracts.tick import Tick, encode_tick, is_valid_symbol
from producer.datasets import load_dataset
from producer.synthetic import synthetic_ticks

Record = tuple[str, bytes]  # (partition key, data)

# Partition key of file lines without a valid symbol. One key keeps them in one shard, in file
# order, which is what an end-to-end test of bad input wants to reason about.
UNPARSED_KEY: Final = "_unparsed"


class QuoteSource(Protocol):
    """Anything that yields ticks in the order they should be sent."""

    def ticks(self) -> Iterator[Tick]: ...


def tick_records(ticks: Iterable[Tick]) -> Iterator[Record]:
    """Ticks on the wire: partition key = symbol, so one symbol's ticks share a shard."""
    for tick in ticks:
        yield tick.symbol, encode_tick(tick)


class ReplaySource:
    """A real dataset (see ``producer.datasets``) in event-time order; pace it with
    ``pacing.at_event_time``."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def ticks(self) -> Iterator[Tick]:
        yield from load_dataset(self.dataset)


class SyntheticSource:
    """``count`` ticks (endless if None) of the seeded random walk over ``symbols`` symbols."""

    def __init__(self, symbols: int, seed: int, count: int | None = None) -> None:
        self.symbols = symbols
        self.seed = seed
        self.count = count

    def ticks(self) -> Iterator[Tick]:
        stream = synthetic_ticks(self.symbols, self.seed)
        return stream if self.count is None else islice(stream, self.count)


class _SymbolOnly(msgspec.Struct):
    symbol: str


_symbol_decoder: Final = msgspec.json.Decoder(_SymbolOnly)


def partition_key(line: bytes) -> str:
    """The line's symbol if it has a valid one (even if the rest of the tick is bad, so the
    consumer sees it in order with that symbol's ticks), else ``UNPARSED_KEY``."""
    try:
        symbol = _symbol_decoder.decode(line).symbol
    # msgspec lets UnicodeDecodeError (bad UTF-8 in a string) and RecursionError (deep
    # nesting) escape; a file of bad input must not stop the run.
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return UNPARSED_KEY
    # is_valid_symbol's `$` also matches before a final newline: "AAPL\n" is not AAPL's key.
    return symbol if is_valid_symbol(symbol) and not symbol.endswith("\n") else UNPARSED_KEY


def file_records(path: Path) -> Iterator[Record]:
    """Each line of the file as one record, byte for byte (bad lines included); only the
    line terminator ``\\n`` is removed. Read in binary so invalid UTF-8 survives as is."""
    with path.open("rb") as handle:
        for raw in handle:
            line = raw[:-1] if raw.endswith(b"\n") else raw
            yield partition_key(line), line
