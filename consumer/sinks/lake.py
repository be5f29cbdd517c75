"""Parquet objects in S3: ``ticks/dt=D/shard=S/<seq>.parquet`` and the same under
``dead-letter/``, written so that a replay after a crash leaves exactly what an uninterrupted
run leaves.

Why the naming is safe. A processor restarts at its shard's checkpoint, which is always the
start of a flush batch, and at most one batch after the checkpoint was written (flush, then
checkpoint). Each object is named by the smallest sequence number, among the batch's records
that belong to its date partition, *whatever became of them* (row, late, duplicate, replay
skip). The replay batch that contains that record contains no smaller one of the same date
(it starts at or after the original start), so it computes the same key and rewrites that
object. A batch that spans two dates therefore rewrites both of its objects, never stranding
one, even when the replay cuts batches at different records.

What a rewrite contains. The rows the replay produced, plus the rows of the old object that
the replay skipped because the symbol's saved state already covered them (the state store
may have been written for some symbols before the crash): those rows are nowhere else. The
other old rows will be produced again, in this batch or a later one, so they are dropped.
If nothing remains, the old object is deleted.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.parquet as pq

from consumer.sinks.arrow import dead_letters_to_table, rows_to_table
from consumer.sinks.types import LakeBatch, ReplayPositions
from core.contracts.schema import partition_date

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PARQUET_CONTENT_TYPE: Final = "application/vnd.apache.parquet"


def object_key(prefix: str, dt: str, shard_id: str, sequence: int) -> str:
    return f"{prefix}/dt={dt}/shard={shard_id}/{sequence}.parquet"


def _to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _keep_replayed(old: pa.Table, shard_id: str, positions: ReplayPositions) -> pa.Table:
    """The rows of ``old`` that a replay skipped (so will not produce again)."""
    symbols = old.column("symbol").to_pylist()
    shards = old.column("shard_id").to_pylist()
    sequences = old.column("sequence_number").to_pylist()
    # Includes symbols the replay has not reached yet: their saved state may already be past
    # their rows here, which the replay will then skip - so those rows must stay.
    replayed = positions(
        {s for s, shard in zip(symbols, shards, strict=True) if s and shard == shard_id}
    )
    mask = [
        shard == shard_id and symbol in replayed and int(sequence) <= replayed[symbol]
        for symbol, shard, sequence in zip(symbols, shards, sequences, strict=True)
    ]
    return old.filter(pa.array(mask, type=pa.bool_()))


def _sorted_by_sequence(table: pa.Table) -> pa.Table:
    sequences = [int(s) for s in table.column("sequence_number").to_pylist()]
    order = sorted(range(len(sequences)), key=sequences.__getitem__)
    return table.take(pa.array(order, type=pa.int64()))


class S3Lake:
    """The ``LakeSink`` over S3."""

    def __init__(self, s3: S3Client, bucket: str, ticks_prefix: str, dead_prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ticks_prefix = ticks_prefix
        self._dead_prefix = dead_prefix

    def write_batch(self, batch: LakeBatch) -> None:
        row_dates = [partition_date(row.ts) for row in batch.rows]
        self._write_parts(
            self._ticks_prefix, rows_to_table(batch.rows), row_dates, batch.tick_keys, batch
        )
        letter_dates = [_arrival_date(letter.arrival_ts) for letter in batch.dead_letters]
        self._write_parts(
            self._dead_prefix,
            dead_letters_to_table(batch.dead_letters),
            letter_dates,
            batch.dead_letter_keys,
            batch,
        )

    def _write_parts(
        self,
        prefix: str,
        table: pa.Table,
        dates: list[str],
        keys: dict[str, int],
        batch: LakeBatch,
    ) -> None:
        """One object per date of ``keys``, holding the table's rows of that date."""
        by_date: dict[str, list[int]] = {}
        for index, dt in enumerate(dates):
            by_date.setdefault(dt, []).append(index)
        for dt, sequence in keys.items():
            part = table.take(pa.array(by_date.get(dt, []), type=pa.int64()))
            key = object_key(prefix, dt, batch.shard_id, sequence)
            self._rewrite(key, part, batch)

    def _rewrite(self, key: str, new: pa.Table, batch: LakeBatch) -> None:
        # Always look for an object of an earlier attempt: whether one may hold rows of a
        # replay-skipped record depends on saved states this processor may not have loaded
        # yet (it loads them lazily). Normally the key is new: one GET answered 404, per
        # object per flush.
        old = self._read(key)
        if old is not None:
            kept = _keep_replayed(old, batch.shard_id, batch.replayed)
            if kept.num_rows:
                new = _sorted_by_sequence(pa.concat_tables([kept, new]))
        if new.num_rows == 0:
            # Every record of this date in the batch was late, a duplicate or skipped: an
            # object left by an earlier attempt would hold rows produced again elsewhere.
            self._s3.delete_object(Bucket=self._bucket, Key=key)
            return
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=_to_parquet(new),
            ContentType=PARQUET_CONTENT_TYPE,
        )

    def _read(self, key: str) -> pa.Table | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return pq.read_table(io.BytesIO(body))


def _arrival_date(arrival_ts: str | None) -> str:
    # Stream records always carry an arrival time; a file run has none and no lake.
    return "unknown" if arrival_ts is None else arrival_ts[:10]
