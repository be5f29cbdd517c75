"""Runs ``stockpipe bench catchup`` on both backends and returns its table and command."""

from __future__ import annotations

import argparse
import os
import platform
from itertools import islice
from pathlib import Path

from producer.synthetic import synthetic_ticks
from stockpipe.bench.catchup import (
    Catchup,
    PerRecord,
    RowsOnly,
    backlog,
    bench_catchup,
    bench_per_record,
    bench_rows_only,
    enriched,
)
from stockpipe.bench.services import services

STEPS = ("rows", "lake", "state", "checkpoint")
BACKENDS = {
    "moto": "moto server behind the proxy (moto's CPU, ~15 ms a BatchWriteItem, caps it)",
    "null": "null endpoint behind the proxy (round trips only: stockpipe/bench/null_aws.py)",
}
ROWS_ONLY = 5_000


def run(args: argparse.Namespace, logs: Path) -> list[str]:
    lines = [
        f"bench catchup: one shard processor draining a backlog ({args.symbols:,} symbols), "
        f"{args.latency_ms:g} ms per AWS call (fixed; stockpipe.local.proxy). In-process: "
        "ShardProcessor with the real sinks, process_records fed one GetRecords of N "
        f"records a call, flush every {args.flush_records:,} records (so a commit holds "
        f"max(N, {args.flush_records:,}) records), checkpoint = one conditional "
        "UpdateItem on a lease table; Kinesis and the daemon left out. "
        f"{args.writers} BatchWriteItem calls in flight. 2 cores, Python "
        f"{platform.python_version()}; load average at start {_load()}.",
    ]
    for backend in args.backends:
        title = BACKENDS[backend]
        ticks = args.moto_ticks if backend == "moto" else args.ticks
        records = backlog(ticks, args.symbols, args.seed)
        with services(args.latency_ms, logs / backend, backend=backend) as running:
            per_record = bench_per_record(
                running,
                list(islice(synthetic_ticks(args.symbols, args.seed), args.per_record_ticks)),
                "per-record",
            )
            rows_only = bench_rows_only(
                running,
                enriched(list(islice(synthetic_ticks(args.symbols, args.seed), ROWS_ONLY))),
                args.writers,
            )
            runs = [
                (
                    size,
                    bench_catchup(
                        running, records, args.flush_records, size, args.writers, f"get{size}"
                    ),
                )
                for size in args.get_records
            ]
        lines += ["", f"{title}, backlog {ticks:,} ticks:"]
        lines += _table(per_record, runs, rows_only, args.writers)
    sizes = ",".join(str(size) for size in args.get_records)
    lines.append(f"load average at end {_load()} (other work on the machine slows every figure)")
    lines.append(
        f"command: stockpipe bench catchup --ticks {args.ticks} --moto-ticks {args.moto_ticks} "
        f"--symbols {args.symbols} --flush-records {args.flush_records} --get-records {sizes} "
        f"--writers {args.writers} --latency-ms {args.latency_ms:g} "
        f"--per-record-ticks {args.per_record_ticks} --backends {','.join(args.backends)} "
        f"--seed {args.seed}"
    )
    return lines


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _table(
    per_record: PerRecord, runs: list[tuple[int, Catchup]], rows_only: RowsOnly, writers: int
) -> list[str]:
    lines = [
        f"  {'design':<40}{'ticks/s':>9}{'CPU':>6}  mean ms per commit: "
        + " ".join(f"{s:>10}" for s in STEPS)
    ]
    lines.append(
        f"  {'per-record: PutItem + S3 object a tick':<40}{per_record.ticks_per_second:>9,.0f}"
        f"{'':>6}  ({per_record.ticks} ticks, one call after another)"
    )
    for size, result in runs:
        cells = " ".join(f"{result.timings.mean_ms(step):>10.0f}" for step in STEPS)
        cpu = result.cpu_seconds / result.seconds
        lines.append(
            f"  {f'batched, GetRecords of {size:,}':<40}{result.ticks_per_second:>9,.0f}"
            f"{cpu:>6.0%}  {'':20}{cells}   ({result.commits} commits)"
        )
    lines.append(
        f"  rows sink alone, {rows_only.rows:,} rows: boto3 batch_writer (one call at a time) "
        f"{rows_only.rows / rows_only.serial_seconds:,.0f} rows/s; DynamoRowsTable "
        f"({writers} in flight) {rows_only.rows / rows_only.overlapped_seconds:,.0f} rows/s"
    )
    return lines
