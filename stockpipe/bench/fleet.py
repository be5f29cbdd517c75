"""``stockpipe bench fleet``: the consumer as a fleet on the local stack.

Throughput with 1, 2 and 3 workers (`stockpipe consume` side by side, one KCL application,
started together) draining one stream: synthetic ticks are produced first; the figure is the
ticks over the time from the first record any processor received to the last commit. It
includes what a fleet really pays while it forms: KCL 3 assigns leases by measured load, so
the second and third workers get theirs only after the first has started, and each move is a
hand-off (commit, checkpoint, new processor). Waiting for balance first is not possible: on an
idle stream KCL 3 leaves every lease with the first worker (no load to balance).

Take-over: three workers on the stream while ticks trickle in; one (not the leader: a dead
leader holds KCL 3's assignment lock for about two minutes) is stopped with SIGTERM, later
another with kill -9; the figure is the time from the signal to the first commit by another
worker on every shard the stopped one held (read from the shared status files).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumer.status import read_statuses
from stockpipe.local import kcl_tables
from stockpipe.main_job import STOCKPIPE, local_pipeline, local_session, start_worker

IDLE_SECONDS = "5"


@dataclass(frozen=True)
class Throughput:
    workers: int
    ticks: int
    seconds: float


@dataclass(frozen=True)
class Takeover:
    how: str
    shards: int
    seconds: float


@contextmanager
def _fleet(
    env: Mapping[str, str], names: list[str], base: Path, until_idle: bool
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    idle = IDLE_SECONDS if until_idle else None
    workers = {name: start_worker(env, base, name, idle) for name in names}
    try:
        yield workers
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def _produce(env: Mapping[str, str], ticks: int, symbols: int, seconds: int) -> None:
    subprocess.run(
        [
            *STOCKPIPE,
            "produce",
            "--source",
            "synthetic",
            "--symbols",
            str(symbols),
            "--duration",
            str(seconds),
            "--rate",
            str(max(1, ticks // seconds)),
            "--seed",
            "7",
        ],
        env=dict(env),
        check=True,
        capture_output=True,
    )


def bench_throughput(workers: int, ticks: int, symbols: int, shards: int, base: Path) -> Throughput:
    shutil.rmtree(base, ignore_errors=True)  # status files of an earlier run
    base.mkdir(parents=True, exist_ok=True)
    with local_pipeline(shards, STOCKPIPE_FLUSH_RECORDS="2000") as env:
        _produce(env, ticks, symbols, 1)
        names = [f"w{n}" for n in range(1, workers + 1)]
        with _fleet(env, names, base, until_idle=True) as fleet:
            for worker in fleet.values():
                worker.wait(timeout=900)
    statuses = read_statuses(base / "status")
    firsts = [s.first_record_at for s in statuses if s.first_record_at is not None]
    lasts = [s.last_commit_at for s in statuses if s.last_commit_at is not None]
    return Throughput(workers, ticks, max(lasts) - min(firsts))


def _balanced(env: Mapping[str, str], names: set[str], shards: int) -> bool:
    owners = _lease_owners(env)
    return len(owners) == shards and set(owners.values()) == names


def _dynamodb(env: Mapping[str, str]) -> Any:
    return _client(env, "dynamodb", "STOCKPIPE_ENDPOINT_URL")


def _lease_owners(env: Mapping[str, str]) -> dict[str, str]:
    return kcl_tables.lease_owners(_dynamodb(env), env["STOCKPIPE_APPLICATION_NAME"])


def _leader(env: Mapping[str, str]) -> set[str]:
    return kcl_tables.leader(_dynamodb(env), env["STOCKPIPE_APPLICATION_NAME"])


def _client(env: Mapping[str, str], service: str, endpoint: str) -> Any:
    return local_session(env).client(service, endpoint_url=env[endpoint])


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the fleet did not get there in time")
        time.sleep(0.2)


def _taken_over(base: Path, shards: set[str], victim: str, since: float) -> float | None:
    """Seconds from ``since`` until every shard in ``shards`` has a commit by another worker."""
    status = {s.shard_id: s for s in read_statuses(base / "status")}
    times = []
    for shard in shards:
        s = status.get(shard)
        if s is None or s.worker == victim or s.last_commit_at is None:
            return None
        if s.last_commit_at <= since:
            return None
        times.append(s.last_commit_at - since)
    return max(times)


def _stop(
    env: Mapping[str, str],
    fleet: dict[str, subprocess.Popen[bytes]],
    base: Path,
    how: str,
    spared: set[str],
) -> tuple[Takeover, str]:
    victim = next(
        name
        for name in sorted(fleet, reverse=True)
        if name not in _leader(env) | spared and fleet[name].poll() is None
    )
    held = {shard for shard, owner in _lease_owners(env).items() if owner == victim}
    since = time.time()
    os.killpg(fleet[victim].pid, signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
    result: list[float] = []

    def done() -> bool:
        seconds = _taken_over(base, held, victim, since)
        if seconds is not None:
            result.append(seconds)
        return seconds is not None

    _wait(done, 600)
    return Takeover(how, len(held), result[0]), victim


def bench_takeover(shards: int, base: Path) -> list[Takeover]:
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    # Empty commits every second keep last_commit_at moving on every shard.
    with local_pipeline(shards, STOCKPIPE_FLUSH_SECONDS="1") as env:
        names = ["w1", "w2", "w3"]
        trickle = threading.Event()

        def feed() -> None:
            while not trickle.is_set():
                _produce(env, 50, 20, 1)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            with _fleet(env, names, base, until_idle=False) as fleet:
                _wait(lambda: _balanced(env, set(names), shards), 300)
                graceful, stopped = _stop(env, fleet, base, "SIGTERM", set())
                fleet[stopped].wait(timeout=60)
                killed, _ = _stop(env, fleet, base, "kill -9", {stopped})
        finally:
            trickle.set()
            feeder.join(timeout=30)
    return [graceful, killed]
