"""``stockpipe bench proxy``: what the local proxy costs, and that its latency is what it says.

Every process is separate (the client here, moto server, the proxy, a stub upstream), each on
127.0.0.1, as on the local stack. One boto3 client per path, keep-alive, retries off.

1. Overhead at 0 ms: DynamoDB GetItem direct to moto vs through the proxy, calls interleaved
   (direct, proxy, direct, ...) so that drift in moto or the machine hits both alike. moto
   takes milliseconds per call with a wide spread, so the same is also measured against a stub
   upstream that answers at once: that difference is the proxy's own cost.
2. At ``--latency-ms N``: p50 through the proxy, against N + the direct p50 (direct calls made
   after an untimed N ms pause, so both meet an equally idle moto and machine).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config
from pydantic import SecretStr

from core import aws
from core.settings import Settings
from stockpipe.local import moto_server, proxy_process
from stockpipe.local.latency import Latency
from stockpipe.local.proxy_options import ProxyOptions

TABLE = "bench-proxy"


@dataclass(frozen=True)
class Percentiles:
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Percentiles:
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        return cls(cuts[49] * 1000, cuts[98] * 1000)


@dataclass(frozen=True)
class Pair:
    direct: Percentiles
    proxied: Percentiles

    @property
    def overhead_p50_ms(self) -> float:
        return self.proxied.p50_ms - self.direct.p50_ms

    @property
    def overhead_p99_ms(self) -> float:
        return self.proxied.p99_ms - self.direct.p99_ms


@dataclass(frozen=True)
class ProxyBench:
    latency_ms: float
    moto: Pair  # direct vs the proxy at 0 ms
    stub: Pair
    moto_latency: Pair  # direct vs the proxy at latency_ms
    stub_latency: Pair
    cpu_us_per_request: float  # the proxy process's CPU (user + system) per proxied request


def bench_proxy(calls: int, latency_ms: float) -> ProxyBench:
    # At N ms a call, fewer calls are enough for a stable p50 (and keep the run short).
    slow_calls, gap = min(calls, 400), latency_ms / 1000
    with tempfile.TemporaryDirectory(prefix="stockpipe-bench-proxy-") as work:
        directory = Path(work)
        port = _free_port()
        with _process(moto_server.command("127.0.0.1", port)):
            moto = f"http://127.0.0.1:{port}"
            _wait_for(port)
            _create_table(moto)
            with (
                _stub(directory) as stub,
                _proxy(moto, directory / "moto-0", 0.0) as (moto_0, _),
                _proxy(stub, directory / "stub-0", 0.0) as (stub_0, stub_0_pid),
                _proxy(moto, directory / "moto-n", latency_ms) as (moto_n, _),
                _proxy(stub, directory / "stub-n", latency_ms) as (stub_n, _),
            ):
                moto_pair = _interleaved(_get_item(moto), _get_item(moto_0), calls)
                before = _cpu_and_requests(stub_0, stub_0_pid)
                stub_pair = _interleaved(_get_item(stub), _get_item(stub_0), calls)
                after = _cpu_and_requests(stub_0, stub_0_pid)
                cpu = (after[0] - before[0]) / (after[1] - before[1]) * 1e6
                return ProxyBench(
                    latency_ms,
                    moto_pair,
                    stub_pair,
                    _interleaved(_get_item(moto), _get_item(moto_n), slow_calls, gap),
                    _interleaved(_get_item(stub), _get_item(stub_n), slow_calls, gap),
                    cpu,
                )


def _cpu_and_requests(proxy_url: str, pid: int) -> tuple[float, int]:
    """CPU seconds the proxy process has used (Linux /proc, clock-tick resolution) and the
    requests it has counted: the difference of two is its cost per request, independent of how
    loaded the machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    with urllib.request.urlopen(f"{proxy_url}/__proxy__/stats", timeout=10) as response:
        requests = int(json.loads(response.read())["requests"])
    return ticks / os.sysconf("SC_CLK_TCK"), requests


def _interleaved(
    direct: Callable[[], Any], proxied: Callable[[], Any], calls: int, gap: float = 0.0
) -> Pair:
    """``gap``: an untimed pause before each direct call, so that, like a call the proxy
    delays, it meets a client, a server and a machine that were idle that long (on a loaded
    2-core machine a call after 20 ms of idleness is measurably slower than one right after
    another)."""
    for _ in range(min(200, calls)):  # warm up: connections, botocore's caches
        direct()
        proxied()
    direct_times, proxied_times = [], []
    for i in range(calls):
        # Alternate which goes first, so neither always follows the other's cache effects.
        if i % 2:
            time.sleep(gap)
            direct_times.append(_timed(direct))
            proxied_times.append(_timed(proxied))
        else:
            proxied_times.append(_timed(proxied))
            time.sleep(gap)
            direct_times.append(_timed(direct))
    return Pair(Percentiles.of(direct_times), Percentiles.of(proxied_times))


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _client(endpoint: str) -> Any:
    settings = Settings(
        region="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key=SecretStr("testing"),
    )
    return aws.client("dynamodb", settings, Config(retries={"total_max_attempts": 1}))


def _get_item(endpoint: str) -> Callable[[], Any]:
    client = _client(endpoint)
    return lambda: client.get_item(TableName=TABLE, Key={"k": {"S": "a"}})


def _create_table(endpoint: str) -> None:
    client = _client(endpoint)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName=TABLE, Item={"k": {"S": "a"}, "v": {"N": "1"}})


@contextmanager
def _proxy(upstream: str, directory: Path, latency_ms: float) -> Iterator[tuple[str, int]]:
    directory.mkdir()
    # A fixed latency, so the p50 check has one expected value.
    started = proxy_process.start(upstream, ProxyOptions(Latency(latency_ms)), directory)
    try:
        yield f"http://127.0.0.1:{started.port}", started.pid
    finally:
        proxy_process.stop(started.pid)


@contextmanager
def _stub(directory: Path) -> Iterator[str]:
    port_file = directory / "stub.port"
    with _process([sys.executable, "-m", "stockpipe.bench.http_stub", str(port_file)]):
        deadline = time.monotonic() + 20
        while not port_file.is_file() or not port_file.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("the stub upstream did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port_file.read_text()}"


@contextmanager
def _process(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def describe(result: ProxyBench, calls: int) -> list[str]:
    def pair(name: str, p: Pair) -> str:
        return (
            f"  {name}: direct p50 {p.direct.p50_ms:.3f} ms p99 {p.direct.p99_ms:.3f} ms; "
            f"through the proxy p50 {p.proxied.p50_ms:.3f} ms p99 {p.proxied.p99_ms:.3f} ms; "
            f"added p50 {p.overhead_p50_ms * 1000:+.0f} us, p99 {p.overhead_p99_ms * 1000:+.0f} us"
        )

    n = result.latency_ms
    return [
        "bench proxy: DynamoDB GetItem, boto3 keep-alive, direct and proxied calls interleaved",
        f"at 0 ms ({calls:,} calls each way):",
        pair("moto", result.moto),
        pair("stub upstream (the proxy's own cost)", result.stub),
        f"  the proxy's CPU: {result.cpu_us_per_request:.0f} us per request (user + system, "
        "one process, one core)",
        f"at --latency-ms {n:g} ({min(calls, 400):,} calls each way; each direct call after "
        f"an idle {n:g} ms, as the proxy's are):",
        pair("moto", result.moto_latency) + f"; p50 - ({n:g} + direct p50) = "
        f"{result.moto_latency.overhead_p50_ms - n:+.2f} ms",
        pair("stub upstream", result.stub_latency) + f"; p50 - ({n:g} + direct p50) = "
        f"{result.stub_latency.overhead_p50_ms - n:+.2f} ms",
    ]
