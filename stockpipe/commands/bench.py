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
