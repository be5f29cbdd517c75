"""``stockpipe consume``: write the MultiLangDaemon's properties and run it.

Property names are Java bean properties of the KCL's MultiLangDaemonConfiguration (KCL 3.1):
case-sensitive, and an unknown name is silently ignored - so they are spelled out once, here,
and the integration test proves the daemon honours them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from consumer import daemon_logs
from consumer.status import read_statuses
from core.errors import StockpipeError
from core.settings import Settings

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
# Where `make setup` fetches the jars to in a checkout; ``STOCKPIPE_KCL_JARS_DIR`` says otherwise.
DEFAULT_KCL_JARS: Final = PROJECT_ROOT / ".stockpipe/kcl-jars"
MAIN_CLASS: Final = "software.amazon.kinesis.multilang.MultiLangDaemon"
# ECS gives a task 30 s between SIGTERM and SIGKILL; the daemon's graceful shutdown (which
# asks every processor to flush and checkpoint) must fit well inside it.
SHUTDOWN_GRACE_MILLIS: Final = 20_000


class DaemonError(StockpipeError):
    pass


def kcl_properties(settings: Settings, *, local: bool) -> dict[str, str]:
    properties = {
        # The child process per shard: this interpreter, so the venv's packages are there.
        "executableName": f"{sys.executable} -m {settings.processor_module}",
        "processingLanguage": f"python/{sys.version_info.major}.{sys.version_info.minor}",
        "streamName": settings.stream_name,
        "applicationName": settings.application_name,
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
            # Fast lease take-over and shard discovery for a single local worker.
            "failoverTimeMillis": "3000",
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
    shards: int = 1,
) -> int:
    """Run the daemon; with ``until_idle``, stop it gracefully (SIGTERM: processors flush and
    checkpoint) once all ``shards`` have reported, each caught up with the tip of its shard
    (``millisBehindLatest`` 0), and none has had a record for that long."""
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
        while daemon.poll() is None:
            time.sleep(0.5)
            if until_idle is None or stop["requested"]:
                continue
            statuses = read_statuses(status_dir)
            if len(statuses) < shards:
                continue  # a shard not yet started (leases are assigned one by one)
            if any(s.millis_behind_latest for s in statuses):
                # A shard not caught up with its tip - its lease may be moving between workers
                # (KCL 3 hands leases over with shutdownRequested): quiet is not idle.
                continue
            # A shard that never had a record is idle since the start.
            last = max([started] + [s.last_record_at or started for s in statuses])
            if time.time() - last >= until_idle:
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


def open_shard_count(settings: Settings) -> int:
    """Shards the daemon will work on: the stream's open shards (no ending sequence)."""
    from core.aws import client

    kinesis = client("kinesis", settings)
    shards = kinesis.list_shards(StreamName=settings.stream_name)["Shards"]
    return sum(1 for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"])


def daemon_env(base: Mapping[str, str], status_dir: Path) -> dict[str, str]:
    env = dict(base)
    env["STOCKPIPE_STATUS_DIR"] = str(status_dir)
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # The child processes import the project from the interpreter's environment.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env
