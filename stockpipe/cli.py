"""The ``stockpipe`` command. User mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from stockpipe.errors import StockpipeError, UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line that names the problem and the fix."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value!r} is not a readable file; pass an existing file")
    return path


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _output_path(value: str) -> Path:
    path = Path(value)
    if path.parent != Path() and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"directory {str(path.parent)!r} does not exist; create it or choose another path"
        )
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stockpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    process = commands.add_parser(
        "process", help="enrich a file of ticks as the consumer would (one shard, no AWS)"
    )
    process.add_argument("--input", required=True, type=_existing_file, help="ticks, JSON lines")
    process.add_argument("--output", required=True, type=_output_path, help="enriched rows")
    process.add_argument(
        "--dead-letter",
        type=_output_path,
        help="rejected lines with line number, text and reason (default: OUTPUT.dead-letter.jsonl)",
    )

    trend = commands.add_parser("trend", help="every SMA-5/SMA-20 crossover in a rows file")
    trend.add_argument("--input", required=True, type=_existing_file, help="enriched rows")
    trend.add_argument("--output", required=True, type=_output_path, help="signals, JSON lines")

    demo = commands.add_parser("demo", help="the main job: real data through process and trend")
    demo.add_argument("--workdir", type=Path, default=Path("out"), help="where files go")
    demo.add_argument("--dataset", default="bokeh-stocks", help="bundled real dataset")

    bench = commands.add_parser("bench", help="benchmarks (print their figure and command)")
    bench_targets = bench.add_subparsers(dest="target", required=True, parser_class=_Parser)
    core = bench_targets.add_parser("core", help="decode + validate + enrich per tick")
    core.add_argument("--ticks", type=_positive_int, default=500_000)
    core.add_argument("--symbols", type=_positive_int, default=5_000)
    core.add_argument("--seed", type=int, default=7)
    core.add_argument("--repeat", type=_positive_int, default=3)
    return parser


def _cmd_process(args: argparse.Namespace) -> int:
    from consumer.file_run import process_file

    dead_letter: Path = args.dead_letter or args.output.with_name(
        args.output.name + ".dead-letter.jsonl"
    )
    counts = process_file(args.input, args.output, dead_letter)
    print(f"{counts.summary()} output={args.output} dead_letter={dead_letter}")
    return 0


def _cmd_trend(args: argparse.Namespace) -> int:
    from trend.file_run import trend_file

    summary = trend_file(args.input, args.output)
    for number, reason in summary.invalid_lines[:10]:
        print(f"stockpipe trend: skipped line {number}: {reason}", file=sys.stderr)
    print(
        f"rows={summary.rows} signals={summary.signals} "
        f"invalid_lines={len(summary.invalid_lines)} output={args.output}"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from producer.datasets import DATASETS
    from stockpipe.demo import describe, run_demo

    if args.dataset not in DATASETS:
        raise UsageError(f"--dataset {args.dataset!r} is unknown; choose one of {DATASETS}")
    print(describe(run_demo(args.workdir, args.dataset)))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import platform

    from stockpipe.bench import bench_core

    result = bench_core(args.ticks, args.symbols, args.seed, args.repeat)
    print(
        f"bench core: {result.ticks_per_second:,.0f} ticks/s, {result.micros_per_tick:.2f} us/tick "
        f"(decode+validate+enrich, {args.ticks:,} ticks over {args.symbols:,} symbols, "
        f"best of {args.repeat}, one core, Python {platform.python_version()})"
    )
    print(
        f"command: stockpipe bench core --ticks {args.ticks} --symbols {args.symbols} "
        f"--seed {args.seed} --repeat {args.repeat}"
    )
    return 0


_COMMANDS = {
    "process": _cmd_process,
    "trend": _cmd_trend,
    "demo": _cmd_demo,
    "bench": _cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except StockpipeError as exc:
        print(f"stockpipe {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"stockpipe {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
