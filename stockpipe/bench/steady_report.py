"""Runs ``stockpipe bench latency`` / ``soak`` and returns their lines (figures + command)."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from core.settings import Settings
from stockpipe.bench.services import services
from stockpipe.bench.steady import Steady, run_steady

WORKDIR = Path(".stockpipe/bench-steady")


def _flush(args: argparse.Namespace) -> tuple[int, float]:
    defaults = Settings()
    records = args.flush_records or defaults.flush_records
    seconds = args.flush_seconds or defaults.flush_seconds
    return records, seconds


def _run(args: argparse.Namespace, seconds: float, name: str) -> tuple[Steady, list[str]]:
    records, flush_seconds = _flush(args)
    load_start = _load()
    with services(args.latency_ms, WORKDIR / name / "services", kinesis=True) as running:
        result = run_steady(
            running,
            rate=args.rate * args.shards,
            seconds=seconds,
            shards=args.shards,
            symbols=args.symbols,
            flush_records=records,
            flush_seconds=flush_seconds,
            workdir=WORKDIR / name / "consumer",
        )
    header = [
        f"bench {name}: real consumer (`stockpipe consume`: KCL MultiLangDaemon + Python shard "
        f"processors), {args.shards} shard(s) at {args.rate:,} ticks/s each "
        f"({args.symbols} symbols), flush every {records:,} records or {flush_seconds:g} s; "
        f"DynamoDB + S3 on moto behind the proxy at {args.latency_ms:g} ms a call (the "
        "daemon's lease table too), Kinesis on ministack (no added delay). Latency = row "
        "first seen by a reader polling every 50 ms minus the start of the PutRecords that "
        "carried the tick (every 10th tick watched). 2 cores, Python "
        f"{platform.python_version()}, load average {load_start} at start, {_load()} at end.",
        f"  sent {result.sent:,} ticks in {result.seconds:.0f} s "
        f"({result.sent / result.seconds:,.0f} ticks/s); watched {result.samples:,}, "
        f"seen {result.seen:,}",
    ]
    return result, header


def run_latency(args: argparse.Namespace) -> list[str]:
    result, lines = _run(args, args.duration, "latency")
    lines.append(
        f"  latency p50 {_ms(result, 50)}, p90 {_ms(result, 90)}, p99 {_ms(result, 99)}, "
        f"max {_ms(result, 100)}; largest millisBehindLatest {result.max_lag_ms:,} ms"
    )
    lines.append(f"command: stockpipe bench latency {_flags(args)} --duration {args.duration}")
    return lines


def run_soak(args: argparse.Namespace) -> list[str]:
    result, lines = _run(args, args.minutes * 60, "soak")
    lines.append(
        f"  RSS of the consumer's {result.processes} processes: {result.rss_start_mib:,.0f} MiB "
        f"at start, {result.rss_end_mib:,.0f} MiB at end; latency overall p50 "
        f"{_ms(result, 50)}, p99 {_ms(result, 99)}; largest lag {result.max_lag_ms:,} ms"
    )
    lines.append(
        "  RSS by process, start -> end: "
        + "; ".join(
            f"{role} {result.rss_start_roles.get(role, 0):,.0f} -> {end:,.0f} MiB"
            for role, end in sorted(result.rss_end_roles.items())
        )
    )
    lines.append(
        f"  {'minute':>6} {'rows':>8} {'p50 ms':>8} {'p99 ms':>8} {'lag ms':>8} {'RSS MiB':>8}"
    )
    # A last "minute" holding only the wait for the final rows is not a minute of load.
    for index, minute in enumerate(result.minutes[: args.minutes], start=1):
        lines.append(
            f"  {index:>6} {len(minute.latencies):>8,} {minute.percentile(50) * 1000:>8.0f} "
            f"{minute.percentile(99) * 1000:>8.0f} {minute.lag_ms:>8,} {minute.rss_mib:>8,.0f}"
        )
    lines.append(f"command: stockpipe bench soak {_flags(args)} --minutes {args.minutes}")
    return lines


def _ms(result: Steady, p: float) -> str:
    from stockpipe.bench.steady import percentile

    return f"{percentile(result.latencies, p) * 1000:,.0f} ms"


def _flags(args: argparse.Namespace) -> str:
    records, seconds = _flush(args)
    return (
        f"--rate {args.rate} --shards {args.shards} --symbols {args.symbols} "
        f"--flush-records {records} --flush-seconds {seconds:g} --latency-ms {args.latency_ms:g}"
    )


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
