"""Replay order, synthetic determinism, and the file source's verbatim lines and keys."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from core.contracts.tick import decode_tick
from producer.sources import (
    UNPARSED_KEY,
    ReplaySource,
    SyntheticSource,
    file_records,
    tick_records,
)


def test_replay_is_the_real_dataset_in_event_time_order() -> None:
    ticks = list(ReplaySource("bokeh-stocks").ticks())
    assert len(ticks) > 10_000
    assert all((a.ts, a.symbol) <= (b.ts, b.symbol) for a, b in pairwise(ticks))
    assert {t.symbol for t in ticks} == {"AAPL", "FB", "GOOG", "IBM", "MSFT"}


def test_synthetic_same_seed_same_records_other_seed_other_records() -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        return list(tick_records(SyntheticSource(2_000, seed, count=5_000).ticks()))

    first, again, other = run(11), run(11), run(12)
    assert first == again and first != other
    assert len(first) == 5_000 and len({key for key, _ in first}) == 2_000
    assert decode_tick(first[0][1]).symbol == first[0][0]  # the wire form decodes


def test_synthetic_walk_has_jumps_that_are_anomalies() -> None:
    ticks = list(SyntheticSource(50, 3, count=50 * 400).ticks())
    last: dict[str, float] = {}
    jumps = 0
    for tick in ticks:
        price = float(tick.price)
        if tick.symbol in last and abs(price / last[tick.symbol] - 1) > 0.05:
            jumps += 1
        last[tick.symbol] = price
    assert jumps > 0


def test_file_lines_are_sent_verbatim_with_symbol_keys(tmp_path: Path) -> None:
    lines = [
        b'{"symbol":"AAPL","ts":"2024-03-08T14:30:00Z","price":1}',
        b'{"symbol":"AAPL","ts":"2024-03-08T14:31:00Z","price":-5}',  # bad price, AAPL's key
        b"not json at all",
        b'{"symbol":"aapl lower","price":1}',
        b"",
        b'\xff\xfe{"symbol":"MSFT"}',
        b'{"symbol":"BRK-B","ts":"2024-03-08T14:30:00Z","price":2}',
        b'{"symbol":"AAPL\\n","price":1}',
        b'{"symbol":"MSFT","source":"caf\xe9"}',
        b'{"symbol":"MSFT","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines))  # no final newline: the last line still counts
    records = list(file_records(path))
    assert [data for _, data in records] == lines
    assert [key for key, _ in records] == [
        "AAPL",
        "AAPL",
        UNPARSED_KEY,
        UNPARSED_KEY,
        UNPARSED_KEY,
        UNPARSED_KEY,
        "BRK-B",
        UNPARSED_KEY,  # "AAPL\n" is not AAPL
        "MSFT",  # bad UTF-8 elsewhere in the line: the symbol still keys it
        UNPARSED_KEY,  # too deep for msgspec: must not stop the run
    ]
