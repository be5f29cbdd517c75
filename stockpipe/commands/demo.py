"""``stockpipe demo``: the main job over files (real data through process and trend)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.errors import UsageError
from stockpipe.commands._args import positive_int


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="real data through process and trend, summarised")
    demo.add_argument("--workdir", type=Path, default=Path("out"), help="where files go")
    demo.add_argument("--dataset", default="bokeh-stocks", help="bundled real dataset")
    demo.add_argument(
        "--pipeline",
        action="store_true",
        help="also run the whole local pipeline: Kinesis, the KCL daemon, DynamoDB, S3",
    )
    demo.add_argument(
        "--ticks", type=positive_int, default=600, help="--pipeline: the last N real ticks"
    )
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from producer.datasets import DATASETS
    from stockpipe.demo import describe, run_demo

    if args.dataset not in DATASETS:
        raise UsageError(f"--dataset {args.dataset!r} is unknown; choose one of {DATASETS}")
    print(describe(run_demo(args.workdir, args.dataset)), flush=True)
    if args.pipeline:
        from stockpipe.main_job import run_main_job

        print(run_main_job(args.workdir, args.ticks))
    return 0
