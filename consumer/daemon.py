"""``stockpipe consume``: write the MultiLangDaemon's properties and run it.

Property names are Java bean properties of the KCL's MultiLangDaemonConfiguration (KCL 3.1):
case-sensitive, and an unknown name is silently ignored - so they are spelled out once, here,
and the integration test proves the daemon honours them.

Several workers (``stockpipe consume`` side by side, or one per Fargate task) form one KCL
application: same ``applicationName`` (lease table), distinct ``workerId``. The properties
that govern lease movement are set explicitly below with their reasons (README, "Running a
fleet"); none of them is what keeps the data exact - fencing is (consumer/fencing.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from consumer import daemon_logs
from consumer.status import ShardStatus, read_statuses
from core.errors import StockpipeError
from core.settings import Settings

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
# Where `make setup` fetches the jars to in a checkout; ``STOCKPIPE_KCL_JARS_DIR`` says otherwise.
DEFAULT_KCL_JARS: Final = PROJECT_ROOT / ".stockpipe/kcl-jars"
MAIN_CLASS: Final = "software.amazon.kinesis.multilang.MultiLangDaemon"
# ECS gives a task 30 s between SIGTERM and SIGKILL; the daemon's graceful shutdown (which
# asks every processor to flush and checkpoint) must fit well inside it.
SHUTDOWN_GRACE_MILLIS: Final = 20_000
# A lease not renewed for this long is taken by another worker (KCL default 10 s). A worker
# renews every third of it; a pause longer than this (GC, SIGSTOP, a stuck host) moves its
# leases - and leaves a stale owner that fencing stops.
FAILOVER_MILLIS: Final = 10_000
# KCL 3 moves leases for load balance by a graceful hand-off: the old owner gets
# shutdownRequested, commits its one buffered batch and checkpoints; after this long the new
# owner takes the lease anyway. One commit is at most STOCKPIPE_FLUSH_RECORDS records, seconds
# at most; 30 s (the KCL default) leaves room for a slow DynamoDB without inviting a race.
HANDOFF_TIMEOUT_MILLIS: Final = 30_000
# The leader reassigns leases this often (KCL default: 2 x failover).
LEASE_ASSIGNMENT_MILLIS: Final = 2 * FAILOVER_MILLIS
# A status file whose heartbeat is older than this belongs to no live processor (a live one
# reports at every processRecords, at least every idleTimeBetweenReads + one commit).
STATUS_STALE_SECONDS: Final = 15.0
# --until-idle re-reads the stream's open shards this often (they change on a reshard).
SHARDS_REFRESH_SECONDS: Final = 5.0


class DaemonError(StockpipeError):
    pass


def kcl_properties(settings: Settings, *, local: bool, worker_id: str) -> dict[str, str]:
    properties = {
        # The child process per shard: this interpreter, so the venv's packages are there.
        "executableName": f"{sys.executable} -m {settings.processor_module}",
        "processingLanguage": f"python/{sys.version_info.major}.{sys.version_info.minor}",
        "streamName": settings.stream_name,
        "applicationName": settings.application_name,
        # Distinct per worker: KCL balances leases between worker ids, and the fence item
        # (consumer/fencing.py) names the worker that claimed a shard last.
        "workerId": worker_id,
        "regionName": settings.region,
        "initialPositionInStream": "TRIM_HORIZON",
        # Polling (GetRecords) rather than enhanced fan-out: works on every endpoint and costs
        # nothing per consumer; one worker per shard is far below the 5 reads/s limit.
        "retrievalMode": "POLLING",
        "idleTimeBetweenReadsInMillis": "500",
        "maxRecords": str(settings.kcl_max_records),
        # Empty calls too, so a quiet shard still flushes and checkpoints every T seconds.
        "callProcessRecordsEvenForEmptyRecordList": "true",
        "shutdownGraceMillis": str(SHUTDOWN_GRACE_MILLIS),
        "failoverTimeMillis": str(FAILOVER_MILLIS),
        "isGracefulLeaseHandoffEnabled": "true",
        "gracefulLeaseHandoffTimeoutMillis": str(HANDOFF_TIMEOUT_MILLIS),
        "leaseAssignmentIntervalMillis": str(LEASE_ASSIGNMENT_MILLIS),
        # After a reshard the children start only once their parents are checkpointed at
        # SHARD_END (KCL's default order), so a symbol's window continues from its parent;
        # the finished parents' leases are then removed.
        "cleanupLeasesUponShardCompletion": "true",
        "AWSCredentialsProvider": "DefaultCredentialsProvider",
        "metricsLevel": "SUMMARY",
    }
    if local:
        assert settings.kinesis_endpoint_url and settings.endpoint_url
        properties |= {
            "kinesisEndpoint": settings.kinesis_endpoint_url,
            "dynamoDBEndpoint": settings.endpoint_url,
            "AWSCredentialsProvider": "EnvironmentVariableCredentialsProvider",
            # No CloudWatch locally, and no worker metrics: off ECS/EC2 they probe the
            # instance-metadata address, and nothing may leave 127.0.0.1.
            "metricsLevel": "NONE",
            "disableWorkerMetrics": "true",
            # Fast lease take-over, hand-off, assignment and shard discovery, so the fleet
            # tests move leases in seconds; the order of events is the same as on AWS.
            "failoverTimeMillis": "3000",
            "gracefulLeaseHandoffTimeoutMillis": "5000",
            "leaseAssignmentIntervalMillis": "2000",
            "shardSyncIntervalMillis": "1000",
            "parentShardPollIntervalMillis": "1000",
            "idleTimeBetweenReadsInMillis": "250",
        }
    return properties


def write_properties(path: Path, properties: Mapping[str, str]) -> None:
    lines = ["# Written by `stockpipe consume`; see consumer/daemon.py for the reasons."]
    lines += [f"{key} = {value}" for key, value in properties.items()]
    path.write_text("\n".join(lines) + "\n")


def kcl_jars(settings: Settings) -> Path:
    return Path(settings.kcl_jars_dir) if settings.kcl_jars_dir else DEFAULT_KCL_JARS


def java_command(properties_path: Path, jars: Path) -> list[str]:
    if not any(jars.glob("amazon-kinesis-client-multilang-*.jar")):
        raise DaemonError(
            f"the KCL jars are not in {jars}; run `make setup` first, or point "
            "STOCKPIPE_KCL_JARS_DIR at the directory that holds them"
        )
    # UTC log times (consumer/daemon_logs.py reads them as UTC).
    return [
        "java",
        "-Duser.timezone=UTC",
        "-cp",
        f"{jars}/*",
        MAIN_CLASS,
        "--properties-file",
        str(properties_path),
    ]


def run_daemon(
    command: list[str],
    env: Mapping[str, str],
    status_dir: Path,
    until_idle: float | None,
    log_path: Path | None,
    open_shards: Callable[[], set[str]] = set,
) -> int:
    """Run the daemon; with ``until_idle``, stop it gracefully (SIGTERM: processors flush and
    checkpoint) once the application is idle (``fleet_idle``)."""
    log = None if log_path is None else log_path.open("ab")
    daemon = subprocess.Popen(
        command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert daemon.stdout is not None
    # The daemon's text logs, and the processors' JSON lines it wraps, as JSON lines.
    logs = daemon_logs.pump(daemon.stdout, log or sys.stderr.buffer)
    stop = {"requested": False}

    def forward(signum: int, _frame: object) -> None:
        stop["requested"] = True
        daemon.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, forward)
    previous_int = signal.signal(signal.SIGINT, forward)
    try:
        started = time.time()
        shards: set[str] = set()
        shards_read = 0.0
        while daemon.poll() is None:
            time.sleep(0.5)
            if until_idle is None or stop["requested"]:
                continue
            if time.monotonic() - shards_read >= SHARDS_REFRESH_SECONDS:
                shards, shards_read = open_shards(), time.monotonic()
            if fleet_idle(read_statuses(status_dir), shards, started, until_idle, time.time()):
                stop["requested"] = True
                daemon.send_signal(signal.SIGTERM)
        return 0 if stop["requested"] else daemon.returncode
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if daemon.poll() is None:
            daemon.kill()
        logs.join(timeout=5)  # the last lines (EOF once the daemon is gone)
        if log is not None:
            log.close()


def fleet_idle(
    statuses: list[ShardStatus], open_shards: set[str], started: float, idle: float, now: float
) -> bool:
    """Whether the whole application - every worker sharing ``status_dir`` - is idle: every
    open shard has a live processor (a heartbeat within STATUS_STALE_SECONDS) caught up with
    the tip of its shard (``millisBehindLatest`` 0), and no shard has had a record for
    ``idle`` seconds. A shard whose owner is paused or dead has no live heartbeat, and a
    lease in hand-over reports lag, so neither is idle: the fleet waits for the move."""
    live = {s.shard_id: s for s in statuses if now - s.heartbeat_at < STATUS_STALE_SECONDS}
    if not open_shards or not open_shards <= live.keys():
        return False  # a shard not started yet (leases are assigned one by one)
    if any(live[shard].millis_behind_latest for shard in open_shards):
        return False
    # A shard that never had a record is idle since the start.
    last = max([started] + [s.last_record_at or started for s in live.values()])
    return now - last >= idle


def forget_stale_statuses(status_dir: Path, now: float) -> None:
    """At start: files of processors that are gone (an earlier run). Live ones are kept - the
    directory may be shared by the workers of a fleet."""
    for status in read_statuses(status_dir):
        if now - status.heartbeat_at >= STATUS_STALE_SECONDS:
            (status_dir / f"{status.shard_id}.json").unlink(missing_ok=True)


def open_shards(settings: Settings) -> set[str]:
    """The stream's open shards (no ending sequence): the ones the fleet must work on."""
    from core.aws import client

    kinesis = client("kinesis", settings)
    found: set[str] = set()
    kwargs: dict[str, Any] = {"StreamName": settings.stream_name}
    while True:
        page = kinesis.list_shards(**kwargs)
        found |= {
            s["ShardId"]
            for s in page["Shards"]
            if "EndingSequenceNumber" not in s["SequenceNumberRange"]
        }
        if not page.get("NextToken"):
            return found
        kwargs = {"NextToken": page["NextToken"]}


def default_worker_id() -> str:
    """Readable and distinct for workers side by side on one host (KCL's default is a UUID)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def daemon_env(base: Mapping[str, str], status_dir: Path, worker_id: str) -> dict[str, str]:
    env = dict(base)
    env["STOCKPIPE_STATUS_DIR"] = str(status_dir)
    env["STOCKPIPE_WORKER_ID"] = worker_id  # the processors name it in the fence and logs
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # The child processes import the project from the interpreter's environment.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env
