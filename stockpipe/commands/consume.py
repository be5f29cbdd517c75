"""``stockpipe consume``: the KCL consumer under the real MultiLangDaemon."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from stockpipe.commands._args import positive_float


def register(commands: Any) -> None:
    consume = commands.add_parser(
        "consume", help="run the consumer under the KCL MultiLangDaemon (Java)"
    )
    consume.add_argument(
        "--until-idle",
        type=positive_float,
        metavar="SECONDS",
        help="stop cleanly after this long without records (tests, batch use)",
    )
    consume.add_argument(
        "--workdir",
        type=Path,
        default=Path(".stockpipe/consumer"),
        help="properties and logs of this worker; several workers side by side each take "
        "their own (README, Running a fleet)",
    )
    consume.add_argument(
        "--worker-id",
        metavar="ID",
        help="this worker's KCL worker id, distinct within the application (default: HOSTNAME-PID)",
    )
    consume.add_argument(
        "--status-dir",
        type=Path,
        metavar="DIR",
        help="the shard processors' progress files; give every worker of a fleet on one "
        "machine the same one, so --until-idle waits for the whole application "
        "(default: WORKDIR/status)",
    )
    consume.add_argument(
        "--daemon-log",
        metavar="PATH",
        help="where the daemon's (and the processors') log lines go; '-' for stderr, as in a "
        "container whose stderr is collected (default: WORKDIR/daemon.log)",
    )
    consume.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time

    from consumer.daemon import (
        daemon_env,
        default_worker_id,
        forget_stale_statuses,
        java_command,
        kcl_jars,
        kcl_properties,
        open_shards,
        run_daemon,
        write_properties,
    )
    from consumer.lease_table import ensure_lease_table, ensure_migration_state
    from core import aws
    from core.settings import Settings

    settings = Settings()
    local = settings.kinesis_endpoint_url is not None
    workdir: Path = args.workdir
    worker_id: str = args.worker_id or default_worker_id()
    workdir.mkdir(parents=True, exist_ok=True)
    status_dir: Path = args.status_dir or workdir / "status"
    status_dir.mkdir(parents=True, exist_ok=True)
    forget_stale_statuses(status_dir, time.time())
    properties = workdir / "kcl.properties"
    write_properties(properties, kcl_properties(settings, local=local, worker_id=worker_id))
    log_path = None if args.daemon_log == "-" else Path(args.daemon_log or workdir / "daemon.log")
    if log_path is not None:
        print(f"consumer: daemon log in {log_path}", file=sys.stderr, flush=True)
    # Before any daemon: workers that start together would race KCL's own two-step table
    # creation and its first migration-state write (consumer/lease_table.py says what each
    # costs).
    dynamodb = aws.client("dynamodb", settings)
    ensure_lease_table(dynamodb, settings.application_name)
    ensure_migration_state(dynamodb, settings.application_name, worker_id)
    return run_daemon(
        java_command(properties, kcl_jars(settings)),
        daemon_env(os.environ, status_dir.resolve(), worker_id),
        status_dir,
        args.until_idle,
        log_path,
        open_shards=lambda: open_shards(settings),
    )
