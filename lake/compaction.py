"""``stockpipe compact``: merge a closed day's small files into one file per shard (or parts
of at least ``target_bytes``), with nothing lost or doubled.

What a reader (Athena, the local engine) sees. S3 has no rename and no multi-object
transaction, so no layout change is atomic for a reader listing ``dt=<day>/``. The order is
chosen so that the worst case is *extra* rows, never missing ones:

1. write the merged part(s) under new keys (each object appears whole: an S3 PUT is atomic;
   on a local disk the file is written under a hidden ``_`` name and renamed);
2. read them back and check their row count and content checksum equal the inputs';
3. delete the small input files.

A query that lists the day between 1 and 3 counts that shard's rows twice; one that listed it
before 3 and opens a deleted file after it fails (Athena: ``HIVE_CANNOT_OPEN_SPLIT``) and is
re-run. Both windows last as long as step 3 (a few DELETEs). Deleting first would instead make
rows vanish for a moment, which an analyst cannot tell from missing data.

Crash safety and idempotence: a part's name is derived from its inputs and its Parquet footer
lists them, so a rerun recognises a half-finished run (parts written, inputs not yet deleted),
re-verifies the checksums and finishes the deletes. A shard already in one file (or only in
compacted parts) is left alone: a rerun is a no-op.

Only closed days are compacted: never the current UTC day, and not until ``min_age`` after the
day ended, because until then the consumer may still rewrite one of the day's objects (a replay
after a crash rewrites the batch's key), which would bring its rows back next to the compacted
copy. Rows are sorted by (symbol, ts) inside a part, so row-group statistics let a one-symbol
query skip most of a day. Memory: one part at a time, roughly 10x its size on disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lake.errors import ChecksumMismatch, CompactionRefused
from lake.store import Lake

COMPACTED_PREFIX: Final = "compacted-"
ROW_GROUP_ROWS: Final = 128 * 1024  # small enough for symbol pruning, big enough for Athena
_META_SOURCES: Final = b"stockpipe.compacted_from"
_META_GROUP: Final = b"stockpipe.group"
_META_PARTS: Final = b"stockpipe.parts"


@dataclass(frozen=True)
class TableLayout:
    prefix: str
    schema: pa.Schema
    sort_keys: tuple[str, ...] = ()  # order of rows in a compacted part
    unique_keys: tuple[str, ...] = ()  # a duplicate means a replay raced compaction: refuse


@dataclass(frozen=True)
class Checksum:
    """Row count and an order-independent content digest (sum of per-row hashes mod 2^64):
    equal for the same multiset of rows however they are split into files or ordered."""

    rows: int
    digest: int

    def __str__(self) -> str:
        return f"rows={self.rows} checksum={self.digest:016x}"


@dataclass
class DayReport:
    prefix: str
    day: str
    files_before: int = 0
    files_after: int = 0
    before: Checksum = Checksum(0, 0)
    after: Checksum = Checksum(0, 0)
    merged_shards: list[str] = field(default_factory=list)
    recovered_shards: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.merged_shards or self.recovered_shards)

    def summary(self) -> str:
        what = "compacted" if self.changed else "nothing to do"
        return (
            f"{self.prefix} dt={self.day}: {what}; files {self.files_before} -> "
            f"{self.files_after}; before {self.before}; after {self.after}"
        )


def checksum(filesystem: pafs.FileSystem, paths: Sequence[str], schema: pa.Schema) -> Checksum:
    if not paths:
        return Checksum(0, 0)
    dataset = ds.dataset(list(paths), schema=schema, format="parquet", filesystem=filesystem)
    columns = ", ".join(f'"{name}"' for name in schema.names)
    con = duckdb.connect(":memory:")
    try:
        con.register("rows_", dataset)
        count, digest = con.execute(
            f"SELECT count(*), coalesce(sum(hash({columns})::HUGEINT), 0) FROM rows_"
        ).fetchone() or (0, 0)
    finally:
        con.close()
    return Checksum(int(count), int(digest) % 2**64)


def check_closed(day: date, now: datetime, min_age: timedelta) -> None:
    today = now.astimezone(UTC).date()
    if day >= today:
        raise CompactionRefused(
            f"{day} is not closed (today is {today} UTC); the consumer is still writing it"
        )
    closed_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    if now < closed_at + min_age:
        raise CompactionRefused(
            f"{day} ended less than {min_age} ago; the consumer may still rewrite its files "
            f"after a replay. Retry after {closed_at + min_age:%Y-%m-%d %H:%M} UTC "
            "(STOCKPIPE_COMPACT_MIN_AGE_HOURS sets the margin)"
        )


@dataclass(frozen=True)
class _File:
    path: str
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def compacted(self) -> bool:
        return self.name.startswith(COMPACTED_PREFIX)


class Compactor:
    def __init__(self, lake: Lake, target_bytes: int = 64 * 2**20) -> None:
        self.lake = lake
        self.fs = lake.filesystem
        self.target_bytes = target_bytes

    # ----------------------------------------------------------------------------- listing
    def _shards(self, day_dir: str) -> dict[str, list[_File]]:
        selector = pafs.FileSelector(day_dir, recursive=True, allow_not_found=True)
        shards: dict[str, list[_File]] = {}
        for info in self.fs.get_file_info(selector):
            name = info.base_name
            if info.type != pafs.FileType.File or not name.endswith(".parquet"):
                continue
            if name.startswith(("_", ".")):
                continue  # hidden: what a crashed local write left; readers skip it too
            shards.setdefault(info.path.rsplit("/", 1)[0], []).append(
                _File(info.path, int(info.size or 0))
            )
        for files in shards.values():
            files.sort(key=lambda f: f.name)
        return shards

    def _metadata(self, path: str) -> dict[bytes, bytes]:
        return dict(pq.read_schema(path, filesystem=self.fs).metadata or {})

    # ----------------------------------------------------------------------------- the day
    def compact_day(self, layout: TableLayout, day: str) -> DayReport:
        day_dir = self.lake.day_dir(layout.prefix, day)
        report = DayReport(layout.prefix, day)
        # First make every shard consistent (finish a crashed run, each step verified), so the
        # day-level before/after comparison is between two states a reader should see.
        listed = self._shards(day_dir)
        report.files_before = sum(len(files) for files in listed.values())
        shards: dict[str, list[_File]] = {}
        for shard_dir, files in sorted(listed.items()):
            shards[shard_dir] = self._recover(layout, files)
            if len(shards[shard_dir]) != len(files):
                report.recovered_shards.append(shard_dir.rsplit("/", 1)[-1])
        every = [f.path for files in shards.values() for f in files]
        report.before = checksum(self.fs, every, layout.schema)
        for shard_dir, files in shards.items():
            if len(files) > 1 and not all(f.compacted for f in files):
                self._merge(layout, shard_dir, files)
                report.merged_shards.append(shard_dir.rsplit("/", 1)[-1])
        after = [f.path for files in self._shards(day_dir).values() for f in files]
        report.files_after = len(after)
        report.after = checksum(self.fs, after, layout.schema)
        if report.after != report.before:  # each step was checked; this is the day-level proof
            raise ChecksumMismatch(
                f"{day_dir}: before {report.before}, after {report.after}; inspect the day"
            )
        return report

    def _recover(self, layout: TableLayout, files: list[_File]) -> list[_File]:
        """Finish or undo a crashed run; returns the shard's files afterwards."""
        by_name = {f.name: f for f in files}
        groups: dict[str, list[tuple[_File, dict[bytes, bytes]]]] = {}
        for f in files:
            if f.compacted:
                meta = self._metadata(f.path)
                groups.setdefault(meta.get(_META_GROUP, b"").decode(), []).append((f, meta))
        for parts in groups.values():
            meta = parts[0][1]
            sources = json.loads(meta.get(_META_SOURCES, b"[]"))
            present = [by_name[s] for s in sources if s in by_name]
            if not present:
                continue  # a finished group
            part_files = [p for p, _ in parts]
            complete = len(parts) == int(meta.get(_META_PARTS, b"0"))
            if complete and len(present) == len(sources):
                # Crashed after writing every part, before the deletes: verify, then delete.
                self._verify(layout, [f.path for f in present], [p.path for p in part_files])
                doomed = present
            elif len(present) == len(sources):
                doomed = part_files  # crashed while writing parts: drop them and start over
            else:
                raise CompactionRefused(
                    f"{part_files[0].path}: only some of its inputs remain; inspect the shard"
                )
            for f in doomed:
                self.fs.delete_file(f.path)
                del by_name[f.name]
        return sorted(by_name.values(), key=lambda f: f.name)

    def _plan(self, files: list[_File]) -> list[list[_File]]:
        """Consecutive runs of files of >= target bytes; a short tail joins the last run."""
        parts: list[list[_File]] = [[]]
        size = 0
        for f in files:
            if size >= self.target_bytes:
                parts.append([])
                size = 0
            parts[-1].append(f)
            size += f.size
        if len(parts) > 1 and size < self.target_bytes:
            parts[-2].extend(parts.pop())
        return parts

    def _merge(self, layout: TableLayout, shard_dir: str, files: list[_File]) -> None:
        plan = self._plan(files)
        identity = "\n".join(f"{f.name}:{f.size}" for f in files).encode()
        group = hashlib.sha256(identity).hexdigest()[:16]
        written: list[str] = []
        try:
            for index, part in enumerate(plan):
                path = f"{shard_dir}/{COMPACTED_PREFIX}{group}-{index:03d}.parquet"
                self._write_part(layout, part, path, group, [f.name for f in files], len(plan))
                written.append(path)
            self._verify(layout, [f.path for f in files], written)
        except ChecksumMismatch:
            for path in written:
                self.fs.delete_file(path)
            raise
        for f in files:
            self.fs.delete_file(f.path)

    def _write_part(
        self,
        layout: TableLayout,
        part: list[_File],
        path: str,
        group: str,
        sources: list[str],
        parts: int,
    ) -> None:
        paths = [f.path for f in part]
        table = ds.dataset(paths, schema=layout.schema, format="parquet", filesystem=self.fs)
        rows = table.to_table()
        if layout.unique_keys and rows.num_rows:
            distinct = rows.group_by(list(layout.unique_keys)).aggregate([]).num_rows
            if distinct != rows.num_rows:
                raise CompactionRefused(
                    f"{path.rsplit('/', 1)[0]}: {rows.num_rows - distinct} rows repeat a "
                    f"({', '.join(layout.unique_keys)}) key across files - a replay raced "
                    "compaction? Nothing was changed; inspect the shard"
                )
        if layout.sort_keys:
            rows = rows.take(pc.sort_indices(rows, [(k, "ascending") for k in layout.sort_keys]))
        schema = layout.schema.with_metadata(
            {
                _META_GROUP: group.encode(),
                _META_SOURCES: json.dumps(sources).encode(),
                _META_PARTS: str(parts).encode(),
            }
        )
        # A local file is visible while it is written, so write it hidden and rename it into
        # place; an S3 object only appears when its upload completes, so it is written in place.
        local = isinstance(self.fs, pafs.LocalFileSystem)
        target = path.rsplit("/", 1)
        staging = f"{target[0]}/_{target[1]}" if local else path
        with pq.ParquetWriter(staging, schema, filesystem=self.fs, compression="zstd") as writer:
            writer.write_table(rows.cast(schema), row_group_size=ROW_GROUP_ROWS)
        if local:
            self.fs.move(staging, path)

    def _verify(self, layout: TableLayout, inputs: list[str], outputs: list[str]) -> None:
        before = checksum(self.fs, inputs, layout.schema)
        after = checksum(self.fs, outputs, layout.schema)
        if before != after:
            raise ChecksumMismatch(
                f"compacted {outputs[0]}: {after}, but its inputs hold {before}; "
                "the inputs were kept"
            )


def layouts(lake: Lake) -> list[TableLayout]:
    from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA

    return [
        # (symbol, ts) is unique among accepted ticks (docs/design.md, "Acceptance").
        TableLayout(lake.ticks_prefix, ROW_SCHEMA, ("symbol", "ts"), ("symbol", "ts")),
        TableLayout(lake.dead_letter_prefix, DEAD_LETTER_SCHEMA),
    ]


def compact_date(
    lake: Lake,
    day: date,
    *,
    now: datetime,
    min_age: timedelta,
    target_bytes: int = 64 * 2**20,
) -> list[DayReport]:
    """Compact one closed day of every table of the lake (ticks and dead letters)."""
    check_closed(day, now, min_age)
    compactor = Compactor(lake, target_bytes)
    return [compactor.compact_day(layout, day.isoformat()) for layout in layouts(lake)]
