"""A fleet under the real MultiLangDaemon on the local stack, in one run (the daemons' start-up
is the expensive part): three workers (`stockpipe consume` side by side, one shared
--status-dir) on four shards while ticks trickle in; (b) one worker's process group is
SIGSTOPped until its leases have moved, then SIGCONTinued - a stale owner that wakes up;
(c) another is killed with kill -9 and its shards are taken over; (d) a fourth worker joins;
(e) the stream is split 4 -> 8 and merged back to 4. Every worker runs with --until-idle
and stops by itself once the whole application is idle. The DynamoDB rows, every Parquet row
and the dead letters then equal `stockpipe process` over the same file."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stockpipe.local import kcl_tables
from stockpipe.main_job import start_worker
from tests.consumer.pipeline_support import (
    ROOT,
    assert_equals_file_pipeline,
    cli,
    expected_outputs,
    local_stack,
    session,
)
from tests.consumer.sinks.fleet_support import day_of_ticks, with_bad_records

pytestmark = pytest.mark.slow
SYMBOLS = [f"F{n:02d}" for n in range(40)]
CHUNK = 40  # lines per `stockpipe produce` call
PACE_SECONDS = 1.0
RESERVE = 4  # chunks held back until the scenario is over
IDLE = "12"


class Feeder(threading.Thread):
    """Produces the input file chunk by chunk, in order (`stockpipe produce --source file`),
    so records keep arriving while leases move; the last chunks wait for ``finish``."""

    def __init__(self, env: dict[str, str], lines: list[str], directory: Path) -> None:
        super().__init__(daemon=True)
        self._env = env
        self._chunks = [lines[i : i + CHUNK] for i in range(0, len(lines), CHUNK)]
        self._directory = directory
        self.finished = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for index, chunk in enumerate(self._chunks):
                if len(self._chunks) - index <= RESERVE:
                    self.finished.wait(timeout=400)
                path = self._directory / f"chunk-{index:03d}.jsonl"
                path.write_text("".join(line + "\n" for line in chunk))
                cli(
                    ["produce", "--source", "file", "--input", str(path)],
                    self._env,
                    capture_output=True,
                )
                self.sent += 1
                time.sleep(PACE_SECONDS)
        except BaseException as error:  # surfaced by the test
            self.error = error


def _dynamodb(env: dict[str, str]) -> Any:
    return session(env).client("dynamodb", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])


def _owners(env: dict[str, str]) -> dict[str, str]:
    """shard -> lease owner, from KCL's lease table."""
    return kcl_tables.lease_owners(_dynamodb(env), env["STOCKPIPE_APPLICATION_NAME"])


def _leader(env: dict[str, str]) -> set[str]:
    return kcl_tables.leader(_dynamodb(env), env["STOCKPIPE_APPLICATION_NAME"])


def _open_shards(env: dict[str, str]) -> set[str]:
    kinesis = session(env).client("kinesis", endpoint_url=env["STOCKPIPE_KINESIS_ENDPOINT_URL"])
    shards = kinesis.list_shards(StreamName=env["STOCKPIPE_STREAM_NAME"])["Shards"]
    return {s["ShardId"] for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]}


def _leases(env: dict[str, str]) -> str:
    """The lease table's leases, one line each: what a failure needs to be read later (who
    held which shard, and whether a hand-off was pending: ``checkpointOwner``)."""
    items = kcl_tables.leases(_dynamodb(env), env["STOCKPIPE_APPLICATION_NAME"])
    fields = ("leaseOwner", "checkpointOwner", "checkpoint", "leaseCounter")
    return "\n".join(
        f"{i['leaseKey']['S']}: "
        + " ".join(f"{f}={next(iter(i[f].values()))}" for f in fields if f in i)
        for i in sorted(items, key=lambda i: i["leaseKey"]["S"])
    )


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    print(f"{what}: {elapsed:.1f} s")
    return elapsed


def _reshard(env: dict[str, str], target: int) -> None:
    kinesis = session(env).client("kinesis", endpoint_url=env["STOCKPIPE_KINESIS_ENDPOINT_URL"])
    kinesis.update_shard_count(
        StreamName=env["STOCKPIPE_STREAM_NAME"],
        TargetShardCount=target,
        ScalingType="UNIFORM_SCALING",
    )

    def active() -> bool:
        summary = kinesis.describe_stream_summary(StreamName=env["STOCKPIPE_STREAM_NAME"])
        return bool(summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")

    _wait(lambda: active() and len(_open_shards(env)) == target, 60, f"stream at {target} shards")


def test_a_fleet_through_pause_kill_scale_out_split_and_merge_equals_the_file_pipeline(
    tmp_path: Path,
) -> None:
    lines = [x.decode() for x in with_bad_records(day_of_ticks(SYMBOLS, 60, seed=5))]
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_text("".join(line + "\n" for line in lines))
    expected, expected_dead = expected_outputs(ticks, tmp_path)
    assert len(expected) == 2_400
    base = tmp_path / "fleet"
    workers: dict[str, subprocess.Popen[bytes]] = {}
    with local_stack(
        tmp_path / "local",
        shards=4,
        STOCKPIPE_FLUSH_RECORDS="40",
        STOCKPIPE_FLUSH_SECONDS="1",
        STOCKPIPE_KCL_MAX_RECORDS="25",
    ) as env:
        feeder = Feeder(env, lines, tmp_path)
        try:
            for name in ("w1", "w2", "w3"):
                workers[name] = start_worker(env, base, name, IDLE, cwd=ROOT)
            feeder.start()
            # (a) three workers share the four shards.
            _wait(
                lambda: set(_owners(env).values()) == {"w1", "w2", "w3"} and len(_owners(env)) == 4,
                150,
                "(a) four leases spread over three workers",
            )
            # (b) pause a worker that is not the leader (a paused leader holds KCL 3's
            # assignment lock for ~2 min) until its leases have moved, then resume it.
            paused = next(w for w in ("w3", "w2", "w1") if w not in _leader(env))
            os.killpg(workers[paused].pid, signal.SIGSTOP)
            _wait(lambda: paused not in _owners(env).values(), 90, f"(b) {paused}'s leases moved")
            os.killpg(workers[paused].pid, signal.SIGCONT)
            # (c) kill -9 another non-leader; its shards are taken over.
            killed = next(w for w in ("w2", "w1", "w3") if w not in _leader(env) | {paused})
            os.killpg(workers[killed].pid, signal.SIGKILL)
            workers[killed].wait()
            kcl_tables.forget_workers(_dynamodb(env), env["STOCKPIPE_APPLICATION_NAME"], {killed})
            _wait(lambda: killed not in _owners(env).values(), 90, f"(c) {killed}'s leases taken")
            # (d) a worker joins; (e) split 4 -> 8, the new worker gets some of the children.
            workers["w4"] = start_worker(env, base, "w4", IDLE, cwd=ROOT)
            _reshard(env, 8)
            _wait(
                lambda: (
                    "w4" in _owners(env).values()
                    and _open_shards(env) <= {s for s, o in _owners(env).items() if o}
                ),
                150,
                "(d, e) children owned, some by the new worker",
            )
            _reshard(env, 4)
            _wait(
                lambda: _open_shards(env) <= {s for s, o in _owners(env).items() if o},
                120,
                "(e) merged shards owned",
            )
            feeder.finished.set()
            feeder.join(timeout=300)
            assert feeder.error is None, feeder.error
            for name, worker in workers.items():
                if name != killed:
                    assert worker.wait(timeout=240) == 0, f"{name} did not stop cleanly"
        except (AssertionError, subprocess.TimeoutExpired):
            print(f"leases at the failure:\n{_leases(env)}")
            raise
        finally:
            feeder.finished.set()
            for worker in workers.values():
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGCONT)
                    os.killpg(worker.pid, signal.SIGKILL)

        assert_equals_file_pipeline(env, expected, expected_dead)
