"""Compaction: same rows (count and an independent content checksum) before and after, the
same query result, a rerun is a no-op, a crashed run is finished, open days are refused."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from lake.catalog import get_query
from lake.compaction import COMPACTED_PREFIX, compact_date
from lake.errors import CompactionRefused
from lake.local_engine import LocalEngine
from lake.store import Lake
from producer.synthetic import synthetic_ticks
from tests.lake.conftest import SHARDS, write_lake

DAY = date(2024, 1, 3)
LATER = datetime(2024, 2, 1, tzinfo=UTC)
MARGIN = timedelta(hours=24)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 minutes of synthetic ticks (6 symbols on two shards, one a second) across midnight,
    in batches of 150: a dozen small files per shard and day, as the consumer leaves them."""
    root = tmp_path_factory.mktemp("template")
    start = datetime(2024, 1, 2, 23, 40, tzinfo=UTC)
    ticks = list(islice(synthetic_ticks(6, seed=3, start=start), 6 * 2_400))
    write_lake(pafs.LocalFileSystem(), str(root), ticks, batch_size=150, bad_records=())
    return root


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Lake:
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    return Lake(pafs.LocalFileSystem(), str(root))


def day_files(lake: Lake) -> list[Path]:
    return sorted(Path(lake.day_dir("ticks", DAY.isoformat())).rglob("*.parquet"))


def oracle(files: list[Path]) -> tuple[int, list[str]]:
    """Count and the sorted per-row digests, from pyarrow and hashlib alone."""
    digests = []
    for path in files:
        for row in pq.read_table(path).to_pylist():
            digests.append(hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest())
    return len(digests), sorted(digests)


def summary(lake: Lake) -> list[tuple[object, ...]]:
    query = get_query("daily_summary")
    return (
        LocalEngine(lake)
        .run(query.sql, query.bind({"from_date": "2024-01-02", "to_date": "2024-01-03"}))
        .rows
    )


def test_compaction_keeps_every_row_and_every_answer(lake: Lake) -> None:
    before_files = day_files(lake)
    assert len(before_files) > 10
    before, answer = oracle(before_files), summary(lake)

    reports = compact_date(lake, DAY, now=LATER, min_age=MARGIN)

    ticks = reports[0]
    assert ticks.changed and ticks.before == ticks.after and ticks.before.rows == before[0]
    after_files = day_files(lake)
    assert len(after_files) == len({p.parent for p in before_files}) == len(SHARDS)
    assert all(p.name.startswith(COMPACTED_PREFIX) for p in after_files)
    assert oracle(after_files) == before
    assert summary(lake) == answer
    # The other day was not touched.
    assert len(list(Path(lake.day_dir("ticks", "2024-01-02")).rglob("*.parquet"))) > len(SHARDS)


def test_rerun_is_a_no_op(lake: Lake) -> None:
    compact_date(lake, DAY, now=LATER, min_age=MARGIN)
    state = {p: p.stat().st_mtime_ns for p in day_files(lake)}
    reports = compact_date(lake, DAY, now=LATER, min_age=MARGIN)
    assert not any(r.changed for r in reports)
    assert {p: p.stat().st_mtime_ns for p in day_files(lake)} == state


def test_a_run_that_crashed_before_deleting_is_finished(lake: Lake, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    shutil.copytree(lake.day_dir("ticks", DAY.isoformat()), saved)
    before = oracle(day_files(lake))
    compact_date(lake, DAY, now=LATER, min_age=MARGIN)
    # Put the inputs back: the state a crash between "write parts" and "delete inputs" leaves.
    shutil.copytree(saved, lake.day_dir("ticks", DAY.isoformat()), dirs_exist_ok=True)
    assert oracle(day_files(lake))[0] == 2 * before[0]

    reports = compact_date(lake, DAY, now=LATER, min_age=MARGIN)
    assert reports[0].recovered_shards and not reports[0].merged_shards
    assert oracle(day_files(lake)) == before


def test_big_days_are_split_into_parts_of_at_least_the_target(lake: Lake) -> None:
    before = oracle(day_files(lake))
    target = 30_000
    compact_date(lake, DAY, now=LATER, min_age=MARGIN, target_bytes=target)
    parts = day_files(lake)
    assert len(parts) > len({p.parent for p in parts})
    assert oracle(parts) == before
    assert not any(
        r.changed for r in compact_date(lake, DAY, now=LATER, min_age=MARGIN, target_bytes=target)
    )


@pytest.mark.parametrize(
    "now",
    [
        datetime(2024, 1, 3, 12, tzinfo=UTC),  # today
        datetime(2024, 1, 2, 12, tzinfo=UTC),  # the future
        datetime(2024, 1, 4, 23, 59, tzinfo=UTC),  # closed, but within the 24 h margin
    ],
)
def test_open_or_recent_days_are_refused(lake: Lake, now: datetime) -> None:
    files = day_files(lake)
    with pytest.raises(CompactionRefused):
        compact_date(lake, DAY, now=now, min_age=MARGIN)
    assert day_files(lake) == files


def test_a_replayed_duplicate_is_refused_not_merged(lake: Lake) -> None:
    one = day_files(lake)[0]
    shutil.copy(one, one.with_name("99999999999999999999.parquet"))  # a replay under a new key
    files = day_files(lake)
    with pytest.raises(CompactionRefused, match="repeat"):
        compact_date(lake, DAY, now=LATER, min_age=MARGIN)
    assert day_files(lake) == files
