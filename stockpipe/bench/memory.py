"""``stockpipe bench memory``: peak RSS and commit time of one shard processor that sees many
distinct symbols, with windows evicted beyond a cap and with every window kept.

In-process. The state store is SQLite in a file (a put per symbol, a batched select per load,
windows encoded as the DynamoDB store encodes them), so the saved states live outside the
process's memory as they do in DynamoDB; rows and lake are no-ops (their cost does not
depend on how many windows are resident). Each configuration runs in a child process of its
own, because peak RSS (``ru_maxrss``) only ever grows within a process.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consumer.fencing import Ownership
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.types import LakeBatch, SavedState
from core.contracts.row import EnrichedRow
from core.contracts.window import decode_window, encode_window

SHARD = "shardId-000000000000"
START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
ARRIVAL_MILLIS = int((START + timedelta(days=365)).timestamp() * 1000)


class _NoSinks:
    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        pass

    def write_batch(self, batch: LakeBatch) -> None:
        pass


class SqliteStateStore:
    """The ``StateStore`` on a SQLite file (no conditions: one writer)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE state (symbol TEXT PRIMARY KEY, window BLOB, shard TEXT, seq TEXT)"
        )

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        wanted = list(symbols)
        loaded: dict[str, SavedState] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for symbol, window, shard, seq in self._db.execute(
                f"SELECT symbol, window, shard, seq FROM state WHERE symbol IN ({marks})", chunk
            ):
                loaded[symbol] = SavedState(decode_window(window), shard, seq)
        return loaded

    def forget(self, symbols: Iterable[str]) -> None:
        pass  # nothing is kept per symbol here

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        return Ownership(shard_id, 1, worker)  # one processor: no other owner to fence

    def holds(self, ownership: Ownership) -> bool:
        return True

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?)",
                [
                    (symbol, encode_window(s.window), s.shard_id, s.sequence_number)
                    for symbol, s in states.items()
                ],
            )


class _Checkpointer:
    def checkpoint(self, sequence_number: str | None = None) -> None:
        pass


@dataclass(frozen=True)
class MemoryBench:
    symbols: int
    rounds: int
    max_windows: int
    peak_rss_mib: float
    baseline_rss_mib: float
    resident_windows: int
    commits: int
    commit_mean_ms: float
    commit_max_ms: float
    seconds: float


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _batch(symbols: int, round_: int, first: int, size: int) -> list[StreamRecord]:
    """Records ``first``..``first + size`` of round ``round_``: every symbol once a round, in
    symbol order, one second apart per round."""
    ts = (START + timedelta(seconds=round_)).isoformat()
    records = []
    for index in range(first, min(first + size, symbols)):
        price = 10 + (index % 997) / 100 + round_ / 1000
        data = f'{{"symbol":"S{index:X}","ts":"{ts}","price":{price}}}'.encode()
        sequence = 10**20 + round_ * symbols + index
        records.append(StreamRecord(data, str(sequence), ARRIVAL_MILLIS))
    return records


def run_one(symbols: int, rounds: int, max_windows: int, flush: int, batch: int) -> MemoryBench:
    with tempfile.TemporaryDirectory() as tmp:
        state = SqliteStateStore(Path(tmp) / "state.db")
        sinks = _NoSinks()
        processor = ShardProcessor(
            rows=sinks,
            lake=sinks,
            state=state,
            policy=FlushPolicy(records=flush, seconds=1e9),
            max_resident_windows=max_windows,
        )
        processor.initialize(SHARD)
        checkpointer = _Checkpointer()
        baseline = _rss_mib()
        commit_times: list[float] = []
        started = time.perf_counter()
        for round_ in range(rounds):
            for first in range(0, symbols, batch):
                records = _batch(symbols, round_, first, batch)
                before = processor.committed_records
                call_started = time.perf_counter()
                processor.process_records(records, checkpointer)
                if processor.committed_records != before:
                    # The call's commit (state saves, eviction) plus applying one batch.
                    commit_times.append(time.perf_counter() - call_started)
        processor.shutdown_requested(checkpointer)
        elapsed = time.perf_counter() - started
        accepted = processor.pipeline.counts().accepted
        if accepted != symbols * rounds:
            raise AssertionError(f"expected {symbols * rounds} rows, got {accepted}")
        return MemoryBench(
            symbols=symbols,
            rounds=rounds,
            max_windows=max_windows,
            peak_rss_mib=_rss_mib(),
            baseline_rss_mib=baseline,
            resident_windows=len(processor.pipeline.enricher.windows),
            commits=len(commit_times),
            commit_mean_ms=1000 * sum(commit_times) / max(1, len(commit_times)),
            commit_max_ms=1000 * max(commit_times, default=0.0),
            seconds=elapsed,
        )


def run_in_child(
    symbols: int, rounds: int, max_windows: int, flush: int, batch: int
) -> MemoryBench:
    """``run_one`` in a fresh interpreter, so its peak RSS is its own."""
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "stockpipe.bench.memory",
            *("--symbols", str(symbols), "--rounds", str(rounds)),
            *("--max-windows", str(max_windows), "--flush", str(flush), "--batch", str(batch)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return MemoryBench(**json.loads(output))


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--symbols", "--rounds", "--max-windows", "--flush", "--batch"):
        parser.add_argument(name, type=int, required=True)
    args = parser.parse_args()
    result = run_one(args.symbols, args.rounds, args.max_windows, args.flush, args.batch)
    sys.stdout.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
