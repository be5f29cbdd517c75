"""The record processor as the daemon runs it (``consumer.kcl_app.run``), with in-memory sinks
that append what they receive to files in OUTDIR, so the protocol test can see what was made
durable and when. A sink also prints to stdout on purpose: the protocol must stay clean.

Usage: python protocol_child.py OUTDIR [fail-rows]
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import msgspec

from consumer.kcl_app import run
from consumer.processor import FlushPolicy, ShardProcessor
from consumer.sinks.types import LakeBatch, SavedState
from core.contracts.row import EnrichedRow, row_to_record

_encoder = msgspec.json.Encoder(decimal_format="number")


class FileSinks:
    def __init__(self, directory: Path, fail_rows: bool) -> None:
        self.directory = directory
        self.fail_rows = fail_rows

    def _append(self, name: str, line: bytes) -> None:
        with (self.directory / name).open("ab") as out:
            out.write(line + b"\n")

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        print("a stray print from a sink")  # must not reach the protocol's stdout
        if self.fail_rows:
            raise OSError("DynamoDB unreachable")
        for row in rows:
            self._append("rows.jsonl", _encoder.encode(row_to_record(row)))

    def write_batch(self, batch: LakeBatch) -> None:
        for letter in batch.dead_letters:
            self._append("dead.jsonl", _encoder.encode(letter))

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        return {}

    def save(self, states: Mapping[str, SavedState]) -> None:
        for symbol, state in sorted(states.items()):
            self._append("state.jsonl", _encoder.encode([symbol, state.sequence_number]))


def main() -> None:
    directory = Path(sys.argv[1])
    sinks = FileSinks(directory, fail_rows="fail-rows" in sys.argv[2:])
    run(ShardProcessor(sinks, sinks, sinks, FlushPolicy(records=3, seconds=3600)))


if __name__ == "__main__":
    main()
