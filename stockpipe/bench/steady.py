"""``stockpipe bench latency`` and ``stockpipe bench soak``: the real consumer (``stockpipe
consume``: the KCL MultiLangDaemon and its Python shard processors) at a steady rate, every
DynamoDB and S3 call behind the latency proxy, Kinesis on ministack (see services.py).

The producer here is a paced loop of its own: every ``PUT_INTERVAL`` it sends the ticks due in
one PutRecords (as ``stockpipe produce`` does with its 50 ms linger) and notes the time the
call started for every 10th tick. A watcher reads those rows (BatchGetItem, ConsistentRead,
straight on moto so the observation pays no proxy delay) every ``POLL_INTERVAL``; a row's
latency is the time it was first seen minus the start of the PutRecords that carried its tick.
The poll interval bounds the resolution (latencies are up to one interval late).

RSS: the resident memory of the consumer's whole process tree (the Java daemon and one
Python child per shard), from /proc. Lag: the processors' ``millisBehindLatest``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Final

from botocore.config import Config

from consumer.status import read_statuses
from consumer.tables import create_tables
from core.contracts.tick import encode_tick, format_ts
from core.settings import Settings
from producer.synthetic import synthetic_ticks
from stockpipe.bench.services import Services, stop_process

PUT_INTERVAL: Final = 0.05
POLL_INTERVAL: Final = 0.05
SAMPLE_EVERY: Final = 10  # every 10th tick's row is watched
BATCH_GET: Final = 100  # DynamoDB's BatchGetItem maximum
STREAM: Final = "bench-steady"
READY_TIMEOUT: Final = 180.0


@dataclass
class Minute:
    """What one minute (by put time) of the run saw."""

    latencies: list[float] = field(default_factory=list)  # sorted, seconds
    lag_ms: int = 0  # the largest millisBehindLatest reported during the minute
    rss_mib: float = 0.0  # at the minute's end

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p)


@dataclass
class Steady:
    rate: int
    seconds: float
    sent: int
    samples: int  # ticks whose row was watched
    seen: int  # of which seen
    latencies: list[float]  # sorted
    minutes: list[Minute]
    rss_start_mib: float
    rss_end_mib: float
    rss_start_roles: dict[str, float]
    rss_end_roles: dict[str, float]
    max_lag_ms: int
    processes: int


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def _settings(shards: int) -> Settings:
    return Settings(
        stream_name=STREAM,
        rows_table="bench-steady-rows",
        state_table="bench-steady-state",
        bucket="bench-steady-lake",
        application_name=f"bench-steady-{uuid.uuid4().hex[:8]}",
    )


def prepare(services: Services, shards: int) -> Settings:
    settings = _settings(shards)
    create_tables(services.client("dynamodb", direct=True), settings)
    services.client("s3", direct=True).create_bucket(Bucket=settings.bucket)
    kinesis = services.client("kinesis")
    kinesis.create_stream(StreamName=settings.stream_name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=settings.stream_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    return settings


def consumer_env(
    services: Services, settings: Settings, flush_records: int, flush_seconds: float
) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        **services.environment(),
        "STOCKPIPE_STREAM_NAME": settings.stream_name,
        "STOCKPIPE_ROWS_TABLE": settings.rows_table,
        "STOCKPIPE_STATE_TABLE": settings.state_table,
        "STOCKPIPE_BUCKET": settings.bucket,
        "STOCKPIPE_APPLICATION_NAME": settings.application_name,
        "STOCKPIPE_FLUSH_RECORDS": str(flush_records),
        "STOCKPIPE_FLUSH_SECONDS": f"{flush_seconds:g}",
    }


def tree_rss_mib(root: int) -> tuple[float, int]:
    """Resident memory of ``root`` and all its descendants, and how many processes that is."""
    parts = tree_rss_by_role(root)
    return sum(parts.values()), len(_descendants(root))


def tree_rss_by_role(root: int) -> dict[str, float]:
    """MiB per role in the consumer's tree: the Java daemon, the shard processors (summed), the
    ``stockpipe consume`` parent."""
    roles: dict[str, float] = {}
    for pid in _descendants(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            rss = next(
                int(line.split()[1])
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
        except (OSError, StopIteration):
            continue
        if b"consumer.kcl_app" in cmdline:
            role = "shard processors"
        elif cmdline.startswith(b"java"):
            role = "daemon (java)"
        else:
            role = "stockpipe consume"
        roles[role] = roles.get(role, 0.0) + rss / 1024
    return roles


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


class Watcher:
    """Finds when sampled rows become readable, with BatchGetItem (a Query would cost moto time
    growing with the table): each poll asks for the oldest unseen samples of every symbol, at
    most 100 keys, and polls again at once while it finds some."""

    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table
        self._pending: dict[tuple[str, str], float] = {}  # (symbol, ts) -> put time, in order
        self._lock = threading.Lock()
        self.latencies: list[tuple[float, float]] = []  # (put time, seconds to readable)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        self.error: BaseException | None = None

    def expect(self, symbol: str, ts: str, put_at: float) -> None:
        with self._lock:
            self._pending[(symbol, ts)] = put_at

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._poll():
                    self._stop.wait(POLL_INTERVAL)
        except Exception as error:  # reported by run_steady: a run without a watcher is void
            self.error = error

    def _oldest(self) -> list[tuple[str, str]]:
        """Up to 100 keys: the oldest pending ones, spread over the symbols."""
        per_symbol: dict[str, list[tuple[str, str]]] = {}
        with self._lock:
            for key in self._pending:  # insertion order: oldest first
                per_symbol.setdefault(key[0], []).append(key)
        quota = max(1, BATCH_GET // max(1, len(per_symbol)))
        return [key for keys in per_symbol.values() for key in keys[:quota]][:BATCH_GET]

    def _poll(self) -> bool:
        keys = self._oldest()
        if not keys:
            return False
        request: dict[str, Any] = {
            self._table: {
                "Keys": [{"symbol": {"S": s}, "ts": {"S": t}} for s, t in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "#s, #t",
                "ExpressionAttributeNames": {"#s": "symbol", "#t": "ts"},
            }
        }
        found: list[tuple[str, str]] = []
        while request:
            page = self._client.batch_get_item(RequestItems=request)
            found += [(i["symbol"]["S"], i["ts"]["S"]) for i in page["Responses"][self._table]]
            request = page.get("UnprocessedKeys") or {}
        seen = time.monotonic()
        with self._lock:
            for key in found:
                put_at = self._pending.pop(key)
                self.latencies.append((put_at, seen - put_at))
        return bool(found)


# ministack re-encodes its JSON answer as CBOR, so ApproximateArrivalTimestamp reaches the
# daemon as epoch *seconds* where the Java SDK reads CBOR timestamps as epoch *milliseconds*:
# every record seems to arrive on 1970-01-21. The consumer dead-letters a tick dated more than
# STOCKPIPE_MAX_CLOCK_SKEW_SECONDS after its arrival (future_timestamp), so the ticks here are
# dated from 1970-01-01 (5 symbols at 1,000 ticks/s advance 200 s a second: 10 days of ticks
# last 72 minutes). The latency is measured on this process's clock, never from those dates.
TICKS_START: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _ticks(symbols: int, seed: int) -> Iterator[tuple[str, str, bytes]]:
    for tick in synthetic_ticks(symbols, seed, start=TICKS_START):
        yield tick.symbol, format_ts(tick.ts), encode_tick(tick)


@dataclass
class _Produced:
    sent: int
    samples: int
    minutes: list[Minute]
    started: float
    elapsed: float
    max_lag_ms: int


def run_steady(
    services: Services,
    *,
    rate: int,
    seconds: float,
    shards: int,
    symbols: int,
    flush_records: int,
    flush_seconds: float,
    workdir: Path,
    seed: int = 7,
) -> Steady:
    settings = prepare(services, shards)
    env = consumer_env(services, settings, flush_records, flush_seconds)
    workdir.mkdir(parents=True, exist_ok=True)
    consumer = subprocess.Popen(
        [sys.executable, "-m", "stockpipe", "consume", "--workdir", str(workdir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "consume.stderr").open("wb"),
        start_new_session=True,
    )
    kinesis = services.client("kinesis", config=Config(retries={"mode": "standard"}))
    reader = services.client("dynamodb", direct=True)
    ticks = _ticks(symbols, seed)
    watcher = Watcher(reader, settings.rows_table)
    try:
        _wait_ready(kinesis, settings, ticks, symbols, shards, workdir, consumer)
        watcher.start()
        rss_start, processes = tree_rss_mib(consumer.pid)
        roles_start = tree_rss_by_role(consumer.pid)
        produced = _produce(
            kinesis, settings.stream_name, ticks, rate, seconds, workdir, consumer, watcher
        )
        # The last ticks: give them time to land (a flush interval or more).
        deadline = time.monotonic() + max(30.0, 3 * flush_seconds)
        while watcher.pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        rss_end, _ = tree_rss_mib(consumer.pid)
        roles_end = tree_rss_by_role(consumer.pid)
        produced.minutes[-1].rss_mib = rss_end
    finally:
        watcher.stop()
        stop_process(consumer)
    if watcher.error is not None:
        raise RuntimeError(f"the row watcher failed: {watcher.error}") from watcher.error
    if not watcher.latencies:
        raise RuntimeError(
            f"none of the {produced.samples:,} watched rows arrived; see {workdir}/daemon.log "
            "(were the ticks dead-lettered?)"
        )
    minutes = produced.minutes
    for put, latency in watcher.latencies:
        minute = min(int((put - produced.started) // 60), len(minutes) - 1)
        minutes[minute].latencies.append(latency)
    for minute_ in minutes:
        minute_.latencies.sort()
    latencies = sorted(latency for _, latency in watcher.latencies)
    return Steady(
        rate=rate,
        seconds=produced.elapsed,
        sent=produced.sent,
        samples=produced.samples,
        seen=len(latencies),
        latencies=latencies,
        minutes=minutes,
        rss_start_mib=rss_start,
        rss_end_mib=rss_end,
        rss_start_roles=roles_start,
        rss_end_roles=roles_end,
        max_lag_ms=produced.max_lag_ms,
        processes=processes,
    )


def _produce(
    kinesis: Any,
    stream: str,
    ticks: Iterator[tuple[str, str, bytes]],
    rate: int,
    seconds: float,
    workdir: Path,
    consumer: subprocess.Popen[bytes],
    watcher: Watcher,
) -> _Produced:
    """Sends ``rate`` ticks a second for ``seconds``, one PutRecords every PUT_INTERVAL;
    samples lag every call and RSS at each minute's end."""
    minutes: list[Minute] = [Minute()]
    started = next_put = time.monotonic()
    sent = samples = max_lag = 0
    while (now := time.monotonic()) - started < seconds:
        if now < next_put:
            time.sleep(next_put - now)
        due = int((time.monotonic() - started) * rate) - sent
        if due > 0:
            batch = list(islice(ticks, min(due, 500)))
            call_started = time.monotonic()
            _put(kinesis, stream, batch)
            for index, (symbol, ts, _) in enumerate(batch, start=sent):
                if index % SAMPLE_EVERY == 0:
                    watcher.expect(symbol, ts, call_started)
                    samples += 1
            sent += len(batch)
        next_put += PUT_INTERVAL
        minute = int((time.monotonic() - started) // 60)
        while len(minutes) <= minute:
            minutes[-1].rss_mib = tree_rss_mib(consumer.pid)[0]
            minutes.append(Minute())
        lag = _lag(workdir)
        minutes[minute].lag_ms = max(minutes[minute].lag_ms, lag)
        max_lag = max(max_lag, lag)
    return _Produced(sent, samples, minutes, started, time.monotonic() - started, max_lag)


def _put(kinesis: Any, stream: str, batch: list[tuple[str, str, bytes]]) -> None:
    entries = [{"Data": data, "PartitionKey": symbol} for symbol, _, data in batch]
    while entries:
        response = kinesis.put_records(StreamName=stream, Records=entries)
        if not response.get("FailedRecordCount"):
            return
        entries = [
            entry
            for entry, result in zip(entries, response["Records"], strict=True)
            if "ErrorCode" in result
        ]
        time.sleep(0.05)


def _lag(workdir: Path) -> int:
    statuses = read_statuses(workdir / "status")
    return max((s.millis_behind_latest or 0 for s in statuses), default=0)


def _wait_ready(
    kinesis: Any,
    settings: Settings,
    ticks: Iterator[tuple[str, str, bytes]],
    symbols: int,
    shards: int,
    workdir: Path,
    consumer: subprocess.Popen[bytes],
) -> None:
    """Sends a tick of every symbol each second until every shard's processor has reported
    and committed (KCL lease assignment takes 15-30 s): the measured run then starts with
    every processor running."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if consumer.poll() is not None:
            raise RuntimeError(f"the consumer exited with {consumer.returncode} at start")
        _put(kinesis, settings.stream_name, list(islice(ticks, symbols)))
        time.sleep(1.0)
        statuses = read_statuses(workdir / "status")
        if len(statuses) >= shards and all(s.committed_records for s in statuses):
            return
    raise RuntimeError(
        f"the consumer's {shards} shards did not all commit in {READY_TIMEOUT:.0f} s"
    )
