"""A lake built the way the consumer's sink lays it out, from the real dataset.

``write_lake`` stands in for ``consumer/sinks/parquet.py`` until that exists: real ticks go
through the consumer's own ``TickPipeline`` (one pipeline per shard, as KCL would run them),
each shard's outcomes are cut into batches, a batch is split at UTC-date boundaries, and each
piece is written to ``ticks/dt=<date>/shard=<id>/<first sequence number>.parquet`` (zstd,
ROW_SCHEMA); dead letters likewise under ``dead-letter/``. Swap it for the sink when it lands.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from consumer.pipeline import TickPipeline
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA, partition_date
from core.contracts.tick import Tick, encode_tick
from lake.local_engine import LocalEngine
from lake.store import Lake

REAL_LAKE_START = datetime(2011, 1, 1, tzinfo=UTC)
FIRST_DAY = "2011-01-01"
LAST_DAY = "2013-12-31"
SHARDS = ("shardId-000000000000", "shardId-000000000001")
# Broken records appended to a shard's input, so the dead-letter table has every kind.
BAD_RECORDS = (
    b"this is not json",
    b'{"symbol":"AAPL","ts":"2013-03-01T16:00:00","price":430.47}',
    b'{"symbol":"MSFT","ts":"2013-03-04T21:00:00Z","price":-1}',
    b'{"symbol":"IBM","ts":"2001-01-02T21:00:00Z","price":87.0}',
)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no instance-metadata lookups: nothing may leave 127.0.0.1."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


def rows_to_table(rows: Sequence[EnrichedRow]) -> pa.Table:
    """Enriched rows as a ROW_SCHEMA table (Decimals and datetimes go in exactly)."""
    return pa.Table.from_pylist([msgspec.structs.asdict(r) for r in rows], schema=ROW_SCHEMA)


def dead_letters_to_table(letters: Sequence[DeadLetter]) -> pa.Table:
    names = DEAD_LETTER_SCHEMA.names
    records = [{n: getattr(d, n) for n in names} for d in letters]
    return pa.Table.from_pylist(records, schema=DEAD_LETTER_SCHEMA)


def shard_of(symbol: str) -> str:
    # Kinesis hashes the partition key (the symbol); any stable hash does for the tests.
    return SHARDS[zlib.crc32(symbol.encode()) % len(SHARDS)]


@dataclass
class BuiltLake:
    root: Path
    rows: list[EnrichedRow]
    dead_letters: list[DeadLetter]
    files: int

    @property
    def lake(self) -> Lake:
        return Lake(pafs.LocalFileSystem(), str(self.root))

    def frame(self) -> pd.DataFrame:
        """The oracle's view: the rows as pandas, prices as float, dt from ts."""
        frame = pd.DataFrame(
            {
                "symbol": [r.symbol for r in self.rows],
                "ts": [r.ts for r in self.rows],
                "price": [float(r.price) for r in self.rows],
                "volume": [r.volume for r in self.rows],
                "anomaly": [r.anomaly for r in self.rows],
            }
        )
        frame["dt"] = [t.strftime("%Y-%m-%d") for t in frame["ts"]]
        return frame


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_batches(
    filesystem: pafs.FileSystem,
    table_dir: str,
    outcomes: Sequence[tuple[str, str, Any]],  # (dt, sequence number, row or letter)
    shard: str,
    to_table: Any,
    batch_size: int,
) -> int:
    """The sink's layout: batches cut at date boundaries, keyed by their first sequence number."""
    files = 0
    for batch in _batches(outcomes, batch_size):
        by_day: dict[str, list[tuple[str, str, Any]]] = {}
        for item in batch:
            by_day.setdefault(item[0], []).append(item)
        for day, items in by_day.items():
            directory = f"{table_dir}/dt={day}/shard={shard}"
            filesystem.create_dir(directory)
            path = f"{directory}/{items[0][1]}.parquet"
            pq.write_table(
                to_table([i[2] for i in items]), path, filesystem=filesystem, compression="zstd"
            )
            files += 1
    return files


def write_lake(
    filesystem: pafs.FileSystem,
    root: str,
    ticks: Iterable[Tick],
    *,
    batch_size: int = 256,
    bad_records: Sequence[bytes] = BAD_RECORDS,
) -> tuple[list[EnrichedRow], list[DeadLetter], int]:
    per_shard: dict[str, list[bytes]] = {s: [] for s in SHARDS}
    arrivals: dict[str, list[datetime | None]] = {s: [] for s in SHARDS}
    for tick in ticks:
        shard = shard_of(tick.symbol)
        per_shard[shard].append(encode_tick(tick))
        arrivals[shard].append(tick.ts + timedelta(seconds=1))
    for raw in bad_records:  # each on the shard its symbol hashes to, as Kinesis would
        symbol = raw.split(b'"symbol":"')[1].split(b'"')[0].decode() if b'"symbol"' in raw else ""
        shard = shard_of(symbol)
        per_shard[shard].append(raw)
        arrivals[shard].append(datetime(2013, 12, 31, 22, tzinfo=UTC))

    rows: list[EnrichedRow] = []
    letters: list[DeadLetter] = []
    files = 0
    for shard, records in per_shard.items():
        pipeline = TickPipeline()
        row_items: list[tuple[str, str, Any]] = []
        letter_items: list[tuple[str, str, Any]] = []
        for number, (raw, arrival) in enumerate(zip(records, arrivals[shard], strict=True)):
            sequence = f"{number + 1:056d}"  # Kinesis sequence numbers: fixed-width digits
            outcome = pipeline.apply(raw, shard, sequence, arrival)
            if type(outcome) is EnrichedRow:
                rows.append(outcome)
                row_items.append((partition_date(outcome.ts), sequence, outcome))
            elif type(outcome) is DeadLetter:
                letters.append(outcome)
                assert arrival is not None
                letter_items.append((partition_date(arrival), sequence, outcome))
        files += write_batches(
            filesystem, f"{root}/ticks", row_items, shard, rows_to_table, batch_size
        )
        files += write_batches(
            filesystem, f"{root}/dead-letter", letter_items, shard, dead_letters_to_table, 64
        )
    rows.sort(key=lambda r: (r.ts, r.symbol))
    return rows, letters, files


@pytest.fixture(scope="session")
def real_lake(real_ticks: list[Tick], tmp_path_factory: pytest.TempPathFactory) -> BuiltLake:
    """The real dataset from 2011 to its end (March 2013; five stocks, FB from its IPO) as a
    local lake. Daily bars make one small file per day and shard (~1,300 files); all 14 years
    would be 6,500 files and make every test slow without testing anything more."""
    root = tmp_path_factory.mktemp("lake")
    recent = [t for t in real_ticks if t.ts >= REAL_LAKE_START]
    rows, letters, files = write_lake(pafs.LocalFileSystem(), str(root), recent)
    return BuiltLake(root, rows, letters, files)


@pytest.fixture(scope="session")
def real_engine(real_lake: BuiltLake) -> LocalEngine:
    return LocalEngine(real_lake.lake)


def lake_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


def env_without_aws() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
