"""The lake read back by a real SQL engine: objects written by S3Lake to moto, copied to
local files, queried with DuckDB. The oracle is Python arithmetic over the rows put in."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from consumer.sinks.lake import S3Lake
from core.contracts.row import EnrichedRow
from core.settings import Settings
from tests.consumer.sinks.helpers import lake_batch, list_keys, utc_day

BATCH = 37  # records a flush: batches cut across dates at every offset


def _download(s3: Any, bucket: str, root: Path) -> list[Path]:
    paths = []
    for key in sorted(list_keys(s3, bucket, "ticks/")):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        paths.append(path)
    return paths


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join(f"'{p.as_posix()}'" for p in paths) + "]"


def test_duckdb_over_the_lake_counts_and_sums_what_went_in(
    lake: S3Lake, s3: Any, settings: Settings, lake_rows: list[EnrichedRow], tmp_path: Path
) -> None:
    # Batches 0..3 flushed; a crash before batch 3's checkpoint; the restart replays from
    # batch 3's first record with other cuts (11 records, then 31), and carries on.
    crash = 3 * BATCH
    for start in range(0, crash + 1, BATCH):
        lake.write_batch(lake_batch(lake_rows[start : start + BATCH]))
    cuts = [crash, crash + 11, crash + 42, *range(crash + 42 + BATCH, len(lake_rows), BATCH)]
    for start, end in zip(cuts, [*cuts[1:], len(lake_rows)], strict=True):
        lake.write_batch(lake_batch(lake_rows[start:end]))

    paths = _download(s3, settings.bucket, tmp_path)
    days = {utc_day(r.ts) for r in lake_rows}
    assert len(paths) > len(days)  # several objects a date: batches cut across dates

    ((count, total),) = duckdb.sql(
        f"select count(*), sum(price) from read_parquet({_sql_list(paths)})"
    ).fetchall()
    assert count == len(lake_rows)
    assert total == sum((r.price for r in lake_rows), Decimal(0))
    assert isinstance(total, Decimal)

    per_day = duckdb.sql(
        f"""
        select dt, count(*), sum(price), sum(volume), count(ma_4), count(*) filter (anomaly)
        from read_parquet({_sql_list(paths)}, hive_partitioning = true)
        group by dt order by dt
        """
    ).fetchall()
    expected: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), 0, 0, 0])
    for r in lake_rows:
        e = expected[utc_day(r.ts)]
        e[0] += 1
        e[1] += r.price
        e[2] += r.volume or 0
        e[3] += r.ma_4 is not None
        e[4] += r.anomaly
    assert [(str(day), *rest) for day, *rest in per_day] == [
        (day, *values) for day, values in sorted(expected.items())
    ]

    sequences = duckdb.sql(
        f"select sequence_number from read_parquet({_sql_list(paths)})"
    ).fetchall()
    assert Counter(s for (s,) in sequences) == Counter(r.sequence_number for r in lake_rows)
