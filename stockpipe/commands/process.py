"""``stockpipe process`` and ``stockpipe trend``: the analytics over files, no AWS."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.errors import UsageError
from stockpipe.commands._args import existing_file, output_path


def register(commands: Any) -> None:
    process = commands.add_parser(
        "process", help="enrich a file of ticks as the consumer would (one shard, no AWS)"
    )
    process.add_argument("--input", required=True, type=existing_file, help="ticks, JSON lines")
    process.add_argument("--output", required=True, type=output_path, help="enriched rows")
    process.add_argument(
        "--dead-letter",
        type=output_path,
        help="rejected lines with line number, text and reason (default: OUTPUT.dead-letter.jsonl)",
    )
    process.add_argument(
        "--max-clock-skew",
        type=non_negative_seconds,
        default=300.0,
        metavar="SECONDS",
        help="a tick dated more than this after its line is read is dead-lettered as "
        "future_timestamp (default: 300, as the consumer's STOCKPIPE_MAX_CLOCK_SKEW_SECONDS)",
    )
    process.set_defaults(handler=run_process)

    trend = commands.add_parser("trend", help="every SMA-5/SMA-20 crossover in a rows file")
    trend.add_argument("--input", required=True, type=existing_file, help="enriched rows")
    trend.add_argument("--output", required=True, type=output_path, help="signals, JSON lines")
    trend.set_defaults(handler=run_trend)


def non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def run_process(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from consumer.file_run import process_file

    dead_letter: Path = args.dead_letter or args.output.with_name(
        args.output.name + ".dead-letter.jsonl"
    )
    paths = [args.input.resolve(), args.output.resolve(), dead_letter.resolve()]
    if len(set(paths)) < len(paths):
        raise UsageError("--input, --output and --dead-letter must be three different files")
    counts = process_file(
        args.input, args.output, dead_letter, max_skew=timedelta(seconds=args.max_clock_skew)
    )
    print(f"{counts.summary()} output={args.output} dead_letter={dead_letter}")
    return 0


def run_trend(args: argparse.Namespace) -> int:
    from trend.file_run import trend_file

    summary = trend_file(args.input, args.output)
    for number, reason in summary.invalid_lines[:10]:
        print(f"stockpipe trend: skipped line {number}: {reason}", file=sys.stderr)
    print(
        f"rows={summary.rows} signals={summary.signals} "
        f"invalid_lines={len(summary.invalid_lines)} output={args.output}"
    )
    return 0
