"""``stockpipe demo``: the main job over files (real data through process and trend)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stockpipe.errors import UsageError


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="real data through process and trend, summarised")
    demo.add_argument("--workdir", type=Path, default=Path("out"), help="where files go")
    demo.add_argument("--dataset", default="bokeh-stocks", help="bundled real dataset")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from producer.datasets import DATASETS
    from stockpipe.demo import describe, run_demo

    if args.dataset not in DATASETS:
        raise UsageError(f"--dataset {args.dataset!r} is unknown; choose one of {DATASETS}")
    print(describe(run_demo(args.workdir, args.dataset)))
    return 0
