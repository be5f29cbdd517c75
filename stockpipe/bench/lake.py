"""``stockpipe bench lake``: bytes read and time of a one-symbol, one-day query over a month
of synthetic ticks, in the lake's layout (Parquet, dt partitions, compacted) against the
earlier pipeline's layout (one JSON object per tick).

Scale, honestly: the issue's month at 1,000 ticks/s is 2.6 billion rows, too many for a
benchmark anyone runs on a laptop. This one generates the month at ``rate`` ticks/s (default
1/s: 2.6 million rows), measures, and extrapolates to 1,000 ticks/s *linearly*, printing
which figures are measured and which are extrapolated. The JSON figure scales exactly (every
object is read whole). The Parquet figure is conservative: at low rates one symbol's day is
smaller than a row group, so the reader also pays for neighbouring symbols and for footers,
costs that shrink relative to the data as the rate grows.

The rows are a seeded geometric random walk with jumps (as ``producer.synthetic``), generated
with numpy, every ROW_SCHEMA column filled as the consumer would (prev_price, change,
change_pct, anomaly, ma_4, provenance), so the files compress like real ones.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.contracts.schema import ROW_SCHEMA
from lake.compaction import ROW_GROUP_ROWS
from lake.local_engine import LocalEngine
from lake.store import Lake

START: Final = date(2024, 1, 1)
QUERY: Final = (
    "SELECT count(*) AS ticks, min(price) AS low, max(price) AS high, "
    "max_by(price, ts) AS close FROM ticks WHERE dt = ? AND symbol = ?"
)
TARGET_RATE: Final = 1_000


# --------------------------------------------------------------------------- counting reads
class _CountingFile(io.RawIOBase):
    def __init__(self, inner: BinaryIO, counter: list[int]) -> None:
        self._inner = inner
        self._counter = counter

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        self._counter[0] += n or 0
        return int(n or 0)

    def close(self) -> None:
        self._inner.close()
        super().close()


class CountingHandler(pafs.FileSystemHandler):  # type: ignore[misc]
    """A read-only local filesystem that counts the bytes its files hand out: the bytes a
    query *reads*, what Athena bills as data scanned."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()
        self.counter = [0]

    def get_type_name(self) -> str:
        return "counting"

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> Any:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> Any:
        return self.local.get_file_info(selector)

    def open_input_file(self, path: str) -> Any:
        return pa.PythonFile(_CountingFile(open(path, "rb"), self.counter), mode="r")

    def open_input_stream(self, path: str) -> Any:
        return self.open_input_file(path)

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the benchmark filesystem is read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


# --------------------------------------------------------------------------- data
def _decimal(unscaled: np.ndarray[Any, Any]) -> pa.Array:
    """int64 values at scale 12 -> DECIMAL(38, 12), built from little-endian int128 words."""
    words = np.empty((len(unscaled), 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63  # sign extension into the high word
    return pa.Array.from_buffers(
        pa.decimal128(38, 12), len(unscaled), [None, pa.py_buffer(words.tobytes())]
    )


@dataclass
class _Walk:
    cents: np.ndarray[Any, Any]  # the last price of each symbol, in cents
    history: np.ndarray[Any, Any]  # the last 3 prices of each symbol (3 x symbols)
    rng: np.random.Generator


def _day_table(walk: _Walk, day: date, rate: int, symbols: int, shards: int) -> pa.Table:
    n = 86_400 * rate
    rng = walk.rng
    sym = np.arange(n) % symbols
    per_symbol = n // symbols
    shock = rng.normal(0.0, 0.002, size=(per_symbol, symbols))
    jumps = rng.random(size=shock.shape) < 0.002
    shock += (
        jumps * rng.choice([-1.0, 1.0], size=shock.shape) * rng.uniform(0.05, 0.12, shock.shape)
    )
    path = np.maximum(1, np.rint(walk.cents * np.exp(np.cumsum(shock, axis=0)))).astype(np.int64)
    full = np.vstack([walk.history, path])  # the 3 previous prices, for the first ma_4s
    prev = full[2:-1]
    ma_sum = full[3:] + full[2:-1] + full[1:-2] + full[:-3]
    walk.history, walk.cents = full[-3:], path[-1]
    price, previous, sum4 = path.reshape(-1), prev.reshape(-1), ma_sum.reshape(-1)
    change = price - previous
    pct = np.rint(change / previous * 100 * 1e10).astype(np.int64) * 100  # rounded to 10 dp
    start = datetime.combine(day, datetime.min.time(), UTC)
    micros = (np.arange(n) * 1_000_000 // rate) + int(start.timestamp() * 1_000_000)
    names = np.array([f"SYN{i:04d}" for i in range(symbols)])
    volume = rng.integers(0, 5_000, size=n)
    shard_ids = np.array([f"shardId-{i:012d}" for i in range(shards)])
    table = pa.table(
        {
            "symbol": pa.array(names[sym]),
            "ts": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "price": _decimal(price * 10**10),
            "open": pa.nulls(n, pa.decimal128(38, 12)),
            "high": pa.nulls(n, pa.decimal128(38, 12)),
            "low": pa.nulls(n, pa.decimal128(38, 12)),
            "volume": pa.array(volume, pa.int64()),
            "source": pa.array(np.full(n, "synthetic")),
            "prev_price": _decimal(previous * 10**10),
            "change": _decimal(change * 10**10),
            "change_pct": _decimal(pct),
            "anomaly": pa.array(np.abs(change) * 100 > 5 * previous),
            "ma_4": _decimal(sum4 * 25 * 10**8),
            "shard_id": pa.array(shard_ids[sym % shards]),
            "sequence_number": pa.array(np.char.zfill((np.arange(n) + 1).astype(str), 56)),
            "arrival_ts": pa.array(micros + 200_000, pa.timestamp("us", tz="UTC")),
        }
    )
    return table.cast(ROW_SCHEMA)


def _legacy_json(table: pa.Table) -> bytes:
    """The earlier Lambda pipeline's record, one object per tick (timestamp, previous_close,
    change, change_percent), newline-separated so DuckDB can time a scan of it."""
    cols = {
        name: table.column(name).to_pylist()
        for name in ("symbol", "ts", "price", "prev_price", "change", "change_pct", "volume")
    }
    out = io.StringIO()
    for s, ts, p, prev, ch, pct, vol in zip(*cols.values(), strict=True):
        out.write(
            f'{{"symbol":"{s}","timestamp":"{ts:%Y-%m-%dT%H:%M:%S.%f}Z","price":{p:f},'
            f'"previous_close":{prev:f},"change":{ch:f},"change_percent":{pct:f},'
            f'"volume":{vol}}}\n'
        )
    return out.getvalue().encode()


# --------------------------------------------------------------------------- the benchmark
@dataclass(frozen=True)
class LakeBenchResult:
    days: int
    rate: int
    symbols: int
    rows: int
    parquet_month_bytes: int
    parquet_read_bytes: int
    parquet_seconds: float
    unsorted_read_bytes: int  # the same day as the consumer writes it, before compaction
    json_day_bytes: int
    json_seconds: float
    answer: tuple[Any, ...]

    @property
    def ratio(self) -> float:
        return self.json_day_bytes / self.parquet_read_bytes

    @property
    def scale(self) -> float:
        return TARGET_RATE / self.rate


def _timed_query(
    lake: Lake, handler: CountingHandler, day: str, symbol: str
) -> tuple[Any, int, float]:
    engine = LocalEngine(lake)
    handler.counter[0] = 0
    started = time.perf_counter()
    answer = engine.run(QUERY, [day, symbol]).rows[0]
    seconds = time.perf_counter() - started
    engine.close()
    return answer, handler.counter[0], seconds


def bench_lake(
    workdir: Path,
    days: int = 30,
    rate: int = 1,
    symbols: int = 100,
    shards: int = 4,
    seed: int = 7,
    flush_records: int = 5_000,
) -> LakeBenchResult:
    rng = np.random.default_rng(seed)
    first = np.rint(rng.uniform(1_000, 50_000, size=symbols)).astype(np.int64)
    walk = _Walk(first, np.vstack([first] * 3), rng)
    compacted, raw = workdir / "parquet", workdir / "parquet-uncompacted"
    query_day = START + timedelta(days=days // 2)
    rows = 0
    json_path = workdir / "legacy-json" / f"{query_day}.jsonl"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    for offset in range(days):
        day = START + timedelta(days=offset)
        table = _day_table(walk, day, rate, symbols, shards)
        rows += table.num_rows
        for index in range(shards):
            shard = f"shardId-{index:012d}"
            part = table.filter(pc.equal(table["shard_id"], shard))
            directory = compacted / "ticks" / f"dt={day}" / f"shard={shard}"
            directory.mkdir(parents=True, exist_ok=True)
            ordered = part.sort_by([("symbol", "ascending"), ("ts", "ascending")])
            pq.write_table(
                ordered,
                directory / "compacted.parquet",
                compression="zstd",
                row_group_size=ROW_GROUP_ROWS,
            )
            if day == query_day:  # the consumer's own files: arrival order, one per flush
                directory = raw / "ticks" / f"dt={day}" / f"shard={shard}"
                directory.mkdir(parents=True, exist_ok=True)
                for start_row in range(0, part.num_rows, flush_records):
                    pq.write_table(
                        part.slice(start_row, flush_records),
                        directory / f"{start_row:012d}.parquet",
                        compression="zstd",
                    )
        if day == query_day:
            json_path.write_bytes(_legacy_json(table))
    handler = CountingHandler()
    fs = pafs.PyFileSystem(handler)
    symbol = "SYN0000"
    answer, read, seconds = _timed_query(Lake(fs, str(compacted)), handler, str(query_day), symbol)
    _, unsorted, _ = _timed_query(Lake(fs, str(raw)), handler, str(query_day), symbol)
    import duckdb

    con = duckdb.connect(":memory:")
    started = time.perf_counter()
    json_answer = con.execute(
        "SELECT count(*) FROM read_json(?, format='newline_delimited') WHERE symbol = ?",
        [str(json_path), symbol],
    ).fetchone()
    con.close()
    json_seconds = time.perf_counter() - started
    if json_answer is None or json_answer[0] != answer[0]:
        raise AssertionError(f"the layouts disagree: {json_answer} vs {answer}")
    month = sum(p.stat().st_size for p in compacted.rglob("*.parquet"))
    return LakeBenchResult(
        days,
        rate,
        symbols,
        rows,
        month,
        read,
        seconds,
        unsorted,
        json_path.stat().st_size,
        json_seconds,
        tuple(answer),
    )


def describe(r: LakeBenchResult) -> list[str]:
    mib = 2**20
    x = r.scale
    return [
        f"bench lake: one symbol, one day ({QUERY!r})",
        f"  measured at {r.rate} tick/s x {r.days} days, {r.symbols} symbols: {r.rows:,} rows; "
        f"Parquet lake ({r.days} days) {r.parquet_month_bytes / mib:,.1f} MiB",
        f"  measured: Parquet (compacted, sorted) read {r.parquet_read_bytes / mib:,.3f} MiB in "
        f"{r.parquet_seconds * 1000:,.0f} ms; as the consumer writes it (before compaction) "
        f"{r.unsorted_read_bytes / mib:,.3f} MiB; JSON-per-tick day "
        f"{r.json_day_bytes / mib:,.1f} MiB, scanned in {r.json_seconds * 1000:,.0f} ms "
        "(one local file; on S3 that is one GET per tick)",
        f"  measured ratio: {r.ratio:,.0f}x fewer bytes read "
        f"({r.json_day_bytes / r.unsorted_read_bytes:,.0f}x before compaction)",
        f"  extrapolated linearly to {TARGET_RATE:,} ticks/s (x{x:,.0f}; {r.rows * x / 1e9:,.2f} "
        f"billion rows): Parquet ~{r.parquet_read_bytes * x / mib:,.0f} MiB vs JSON "
        f"~{r.json_day_bytes * x / 2**30:,.1f} GiB per query, ~{r.ratio:,.0f}x "
        "(conservative for Parquet; see stockpipe/bench/lake.py)",
    ]
