"""``stockpipe compact --date YYYY-MM-DD``: merge a closed day's small Parquet files."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def register(commands: Any) -> None:
    compact = commands.add_parser(
        "compact",
        help="merge a closed day's small Parquet files (one per shard, or >= 64 MiB parts)",
    )
    compact.add_argument("--date", required=True, type=_day, help="the UTC day, YYYY-MM-DD")
    compact.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from core.settings import get_settings
    from lake.compaction import compact_date
    from lake.store import lake_from_settings

    settings = get_settings()
    reports = compact_date(
        lake_from_settings(settings),
        args.date,
        now=datetime.now(UTC),
        min_age=timedelta(hours=settings.compact_min_age_hours),
        target_bytes=settings.compact_target_mib * 2**20,
    )
    for report in reports:
        print(report.summary())
    return 0
