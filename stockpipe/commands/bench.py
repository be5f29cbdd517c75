"""``stockpipe bench TARGET``: benchmarks; each prints its figure and the command."""

from __future__ import annotations

import argparse
import platform
from typing import Any

from stockpipe.commands._args import positive_int


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="benchmarks (print their figure and command)")
    targets = bench.add_subparsers(dest="target", required=True, parser_class=type(bench))
    core = targets.add_parser("core", help="decode + validate + enrich per tick")
    core.add_argument("--ticks", type=positive_int, default=500_000)
    core.add_argument("--symbols", type=positive_int, default=5_000)
    core.add_argument("--seed", type=int, default=7)
    core.add_argument("--repeat", type=positive_int, default=3)
    core.set_defaults(handler=run_core)
    lake = targets.add_parser("lake", help="bytes read: Parquet lake vs one JSON object a tick")
    lake.add_argument("--days", type=positive_int, default=30)
    lake.add_argument("--ticks-per-second", type=positive_int, default=1, help="scaled-down rate")
    lake.add_argument("--symbols", type=positive_int, default=100)
    lake.add_argument("--seed", type=int, default=7)
    lake.set_defaults(handler=run_lake)


def run_core(args: argparse.Namespace) -> int:
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


def run_lake(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from consumer.lake.bench import bench_lake, describe

    with tempfile.TemporaryDirectory(prefix="stockpipe-bench-lake-") as workdir:
        result = bench_lake(
            Path(workdir), args.days, args.ticks_per_second, args.symbols, seed=args.seed
        )
    print("\n".join(describe(result)))
    print(
        f"command: stockpipe bench lake --days {args.days} --ticks-per-second "
        f"{args.ticks_per_second} --symbols {args.symbols} --seed {args.seed}"
    )
    return 0
