"""``stockpipe bench producer``: the producer's two figures.

1. CPU per tick of building (tick -> wire bytes) and batching (lanes, PutRecords entries),
   against a null client that acknowledges everything: no I/O, no generation of the ticks.
2. Ticks/s pushed to a local Kinesis: a moto server in its own process on 127.0.0.1, so the
   producer's CPU and the server's are measured apart and the bottleneck shows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from core.contracts.tick import Tick, encode_tick
from producer.synthetic import synthetic_ticks
from producer.writer import OrderedBatchWriter
from stockpipe.local import moto_server

if TYPE_CHECKING:
    from mypy_boto3_kinesis.type_defs import PutRecordsOutputTypeDef, PutRecordsRequestEntryTypeDef


class NullKinesis:
    """Acknowledges every record at once (no I/O): isolates the producer's own CPU cost."""

    def __init__(self) -> None:
        self._ok: list[Any] = [{"SequenceNumber": "1", "ShardId": "shardId-0"}] * 500

    def put_records(
        self, *, Records: Sequence[PutRecordsRequestEntryTypeDef], StreamName: str
    ) -> PutRecordsOutputTypeDef:
        result: Any = {"FailedRecordCount": 0, "Records": self._ok[: len(Records)]}
        return result  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CpuResult:
    micros_per_tick: float  # build + batch
    encode_micros_per_tick: float  # of which building the wire bytes
    calls: int


def _ticks(count: int, symbols: int, seed: int) -> list[Tick]:
    return list(islice(synthetic_ticks(symbols, seed), count))


def bench_cpu(count: int, symbols: int, seed: int, repeat: int) -> CpuResult:
    ticks = _ticks(count, symbols, seed)
    best = best_encode = float("inf")
    calls = 0
    for _ in range(repeat):
        start = time.process_time()
        for tick in ticks:
            encode_tick(tick)
        best_encode = min(best_encode, time.process_time() - start)

        writer = OrderedBatchWriter(NullKinesis(), "bench")
        start = time.process_time()
        add, pump = writer.add, writer.pump
        for tick in ticks:
            add(tick.symbol, encode_tick(tick))
            pump()
        writer.flush()
        best = min(best, time.process_time() - start)
        calls = writer.stats.calls
    return CpuResult(best / count * 1e6, best_encode / count * 1e6, calls)


@dataclass(frozen=True)
class PushResult:
    ticks_per_second: float
    client_cpu_share: float  # producer CPU seconds / wall seconds (1.0 = one core busy)
    server_cpu_share: float  # moto server CPU seconds / wall seconds
    calls: int
    sent: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def local_moto() -> Iterator[tuple[str, int]]:
    """The local stack's moto server (stockpipe/local/moto_server.py) as a process on
    127.0.0.1: (endpoint, pid)."""
    port = _free_port()
    process = subprocess.Popen(
        moto_server.command("127.0.0.1", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        yield endpoint, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux); 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def bench_push(count: int, symbols: int, shards: int, seed: int) -> PushResult:
    from botocore.config import Config
    from pydantic import SecretStr

    from core import aws
    from core.settings import Settings

    ticks = _ticks(count, symbols, seed)
    records = [(t.symbol, encode_tick(t)) for t in ticks]
    with local_moto() as (endpoint, pid):
        client = aws.client(
            "kinesis",
            Settings(
                region="us-east-1",
                kinesis_endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key=SecretStr("bench"),
            ),
            Config(retries={"mode": "standard"}),
        )
        client.create_stream(StreamName="bench", ShardCount=shards)
        client.get_waiter("stream_exists").wait(
            StreamName="bench", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        writer = OrderedBatchWriter(client, "bench")
        server_before, cpu_before = _cpu_seconds(pid), time.process_time()
        start = time.perf_counter()
        for key, data in records:
            writer.add(key, data)
            writer.pump()
        writer.flush()
        wall = time.perf_counter() - start
        client_cpu = time.process_time() - cpu_before
        server_cpu = _cpu_seconds(pid) - server_before
    return PushResult(
        writer.stats.sent / wall,
        client_cpu / wall,
        server_cpu / wall,
        writer.stats.calls,
        writer.stats.sent,
    )
