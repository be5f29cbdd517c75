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
        "--workdir", type=Path, default=Path(".stockpipe/consumer"), help="properties, logs"
    )
    consume.add_argument(
        "--daemon-log",
        metavar="PATH",
        help="where the daemon's (and the processors') log lines go; '-' for stderr, as in a "
        "container whose stderr is collected (default: WORKDIR/daemon.log)",
    )
    consume.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from consumer.daemon import (
        daemon_env,
        java_command,
        kcl_jars,
        kcl_properties,
        open_shard_count,
        run_daemon,
        write_properties,
    )
    from core.settings import Settings

    settings = Settings()
    local = settings.kinesis_endpoint_url is not None
    workdir: Path = args.workdir
    status_dir = workdir / "status"
    status_dir.mkdir(parents=True, exist_ok=True)
    for stale in status_dir.glob("*.json"):
        stale.unlink()
    properties = workdir / "kcl.properties"
    write_properties(properties, kcl_properties(settings, local=local))
    log_path = None if args.daemon_log == "-" else Path(args.daemon_log or workdir / "daemon.log")
    if log_path is not None:
        print(f"consumer: daemon log in {log_path}", file=sys.stderr, flush=True)
    return run_daemon(
        java_command(properties, kcl_jars(settings)),
        daemon_env(os.environ, status_dir.resolve()),
        status_dir,
        args.until_idle,
        log_path,
        shards=open_shard_count(settings) if args.until_idle else 1,
    )
