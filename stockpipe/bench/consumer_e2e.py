"""``stockpipe bench consumer --end-to-end``: ticks/s through the whole consumer on the local
stack - the real daemon, DynamoDB rows, Parquet to S3, state and checkpoints.

Synthetic ticks are produced first, then the consumer drains the stream; the figure is the
records made durable and checkpointed over the time from the first record a processor received
to the last commit (the daemon's start-up, 15-30 s of lease assignment, is left out: it is paid
once per deployment, not per tick)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from consumer.status import read_statuses
from stockpipe.main_job import STOCKPIPE, local_pipeline


@dataclass(frozen=True)
class EndToEnd:
    records: int
    seconds: float
    shards: int


def bench_end_to_end(ticks: int, symbols: int, shards: int, workdir: Path) -> EndToEnd:
    workdir.mkdir(parents=True, exist_ok=True)
    with local_pipeline(shards, STOCKPIPE_FLUSH_RECORDS="2000") as env:
        subprocess.run(
            [
                *STOCKPIPE,
                "produce",
                "--source",
                "synthetic",
                "--symbols",
                str(symbols),
                "--duration",
                "1",
                "--rate",
                str(ticks),
                "--seed",
                "7",
            ],
            env=env,
            check=True,
        )
        subprocess.run(
            [*STOCKPIPE, "consume", "--until-idle", "5", "--workdir", str(workdir)],
            env=env,
            check=True,
        )
    statuses = read_statuses(workdir / "status")
    firsts = [s.first_record_at for s in statuses if s.first_record_at is not None]
    lasts = [s.last_commit_at for s in statuses if s.last_commit_at is not None]
    records = sum(s.committed_records for s in statuses)
    return EndToEnd(records, max(lasts) - min(firsts), len(statuses))
