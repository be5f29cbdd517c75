"""``stockpipe chart SYMBOL --from --to --output FILE.png``."""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import UsageError
from stockpipe.commands._args import output_path, positive_int
from stockpipe.commands.compact import _day


def register(commands: Any) -> None:
    chart = commands.add_parser(
        "chart", help="price, SMA-5/SMA-20, crosses and anomalies of a symbol, as a PNG"
    )
    chart.add_argument("symbol", help="e.g. AAPL")
    chart.add_argument("--from", dest="start", required=True, type=_day, help="first UTC day")
    chart.add_argument("--to", dest="end", required=True, type=_day, help="last UTC day")
    chart.add_argument("--output", required=True, type=output_path, help="the PNG to write")
    chart.add_argument("--engine", choices=("auto", "athena", "local"))
    chart.add_argument(
        "--warmup-days",
        type=positive_int,
        default=45,
        help="days read before --from so the averages and crosses start right (default 45)",
    )
    chart.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from lake.chart import chart
    from lake.engine import make_engine

    if args.end < args.start:
        raise UsageError(f"--to {args.end} is before --from {args.start}")
    data = chart(
        make_engine(get_settings(), args.engine),
        args.symbol,
        args.start,
        args.end,
        args.output,
        args.warmup_days,
    )
    print(
        f"{args.output}: {args.symbol} {len(data.ts)} prices, {len(data.crosses)} crosses, "
        f"{len(data.anomalies)} anomalies"
    )
    return 0
