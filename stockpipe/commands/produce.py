"""``stockpipe produce``: stream ticks from a source into the Kinesis stream."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from core.errors import UsageError
from stockpipe.commands._args import (
    duration,
    existing_file,
    positive_float,
    positive_int,
    symbol_list,
)

if TYPE_CHECKING:
    from producer.run import Runner
    from producer.sources import Record

SOURCES = ("yfinance", "replay", "synthetic", "file")
EXIT_LOST = 1


def register(commands: Any) -> None:
    produce = commands.add_parser(
        "produce",
        help="stream ticks (yfinance, replay, synthetic or a file) into the Kinesis stream",
        description="Endpoint, region and stream come from STOCKPIPE_* variables "
        "(see: stockpipe local env). Exit 1 if any record was given up.",
    )
    produce.add_argument("--source", required=True, choices=SOURCES)
    produce.add_argument(
        "--symbols",
        help="yfinance: comma-separated symbols (AAPL,MSFT); synthetic: how many (default 100)",
    )
    produce.add_argument(
        "--interval", type=duration, default=30.0, help="yfinance: poll every (default 30s)"
    )
    produce.add_argument("--dataset", help="replay: the real dataset (default bokeh-stocks)")
    produce.add_argument(
        "--speed", type=positive_float, help="replay: event time / wall time (default: no pacing)"
    )
    produce.add_argument("--rate", type=positive_float, help="records per second (default: max)")
    produce.add_argument(
        "--duration",
        type=duration,
        help="stop after this long; synthetic with --rate sends exactly rate x duration ticks",
    )
    produce.add_argument("--seed", type=int, help="synthetic: random seed (default 7)")
    produce.add_argument("--input", type=existing_file, help="file: one record per line")
    produce.add_argument("--stream", help="stream name (default: STOCKPIPE_STREAM_NAME)")
    produce.add_argument(
        "--max-attempts",
        type=positive_int,
        help="PutRecords attempts per record before it is given up (default 8)",
    )
    produce.set_defaults(handler=run)


def _check_options(args: argparse.Namespace) -> None:
    only = {
        "--interval": ("yfinance", args.interval != 30.0),
        "--dataset": ("replay", args.dataset is not None),
        "--speed": ("replay", args.speed is not None),
        "--seed": ("synthetic", args.seed is not None),
        "--input": ("file", args.input is not None),
    }
    for option, (source, given) in only.items():
        if given and args.source != source:
            raise UsageError(f"{option} only applies to --source {source}")
    if args.symbols is not None and args.source not in ("yfinance", "synthetic"):
        raise UsageError("--symbols only applies to --source yfinance or synthetic")
    if args.source == "file" and args.input is None:
        raise UsageError("--source file needs --input FILE")
    if args.source == "yfinance" and args.symbols is None:
        raise UsageError("--source yfinance needs --symbols, e.g. --symbols AAPL,MSFT")
    # --symbols means a list for yfinance and a count for synthetic: parsed here, per source.
    try:
        if args.source == "yfinance":
            args.symbols = symbol_list(args.symbols)
        elif args.source == "synthetic":
            args.symbols = positive_int(args.symbols) if args.symbols is not None else 100
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--symbols: {exc}") from None


def _records(args: argparse.Namespace, runner: Runner) -> Iterator[Record]:
    from producer import pacing, sources

    if args.source == "file":
        records: Iterator[Record] = sources.file_records(args.input)
    elif args.source == "synthetic":
        exact = int(args.rate * args.duration) if args.rate and args.duration else None
        synthetic = sources.SyntheticSource(
            args.symbols, 7 if args.seed is None else args.seed, exact
        )
        records = sources.tick_records(synthetic.ticks())
        if exact is not None:
            return pacing.at_rate(records, args.rate, runner.idle)  # count bounds the run
    elif args.source == "replay":
        from producer.datasets import DATASETS, DEFAULT_DATASET

        dataset = args.dataset or DEFAULT_DATASET
        if dataset not in DATASETS:
            raise UsageError(f"--dataset {dataset!r} is unknown; choose one of {DATASETS}")
        ticks = sources.ReplaySource(dataset).ticks()
        if args.speed is not None:
            ticks = pacing.at_event_time(ticks, args.speed, runner.idle)
        records = sources.tick_records(ticks)
    else:
        from producer.yahoo import YahooPoller, YFinanceFetcher

        poller = YahooPoller(
            args.symbols,
            YFinanceFetcher(),
            every=args.interval,
            sleep=runner.idle,
            stopped=runner.stopping,
        )
        records = sources.tick_records(poller.ticks())
    if args.rate is not None:
        records = pacing.at_rate(records, args.rate, runner.idle)
    if args.duration is not None:
        records = pacing.until(records, args.duration)
    return records


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    from core.settings import get_producer_settings, get_settings
    from producer import logs
    from producer.kinesis import make_client
    from producer.progress import Progress
    from producer.run import Runner
    from producer.writer import OrderedBatchWriter

    settings, tuning = get_settings(), get_producer_settings()
    stream = args.stream or settings.stream_name
    logs.configure()
    writer = OrderedBatchWriter(
        make_client(settings),
        stream,
        max_attempts=args.max_attempts or tuning.max_attempts,
        linger=tuning.linger_seconds,
    )
    runner = Runner(writer, Progress())
    # A ProducerError (the stream cannot be written at all) reaches the CLI's one handler:
    # one line, exit 1 (ProducerError.exit_code).
    result = runner.run(_records(args, runner))
    stats = result.stats
    print(
        f"sent={stats.sent} lost={stats.lost} retries={stats.retries} calls={stats.calls} "
        f"elapsed={result.elapsed:.2f}s rate={stats.sent / max(result.elapsed, 1e-9):.0f}/s "
        f"stream={stream}" + (" (interrupted, flushed)" if result.interrupted else "")
    )
    if stats.lost:
        print(
            f"stockpipe produce: error: {stats.lost} record(s) lost after retries "
            f"(see the record_lost log events)",
            file=sys.stderr,
        )
        return EXIT_LOST
    return 0
