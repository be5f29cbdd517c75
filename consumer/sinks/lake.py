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

Fencing (consumer/fencing.py). Every PUT is conditional on what was just read: ``If-None-Match:
*`` where the key was absent, ``If-Match: <ETag>`` where an object was read; a delete is
``If-Match``. The footer names the writer (shard, epoch), so two owners' bytes never share an
ETag. A writer that reads an object of a newer epoch stops (``FencedOut``); one whose condition
fails asks whether it still holds the shard: if so (the other writer was stale) it reads and
merges again, else it stops. So a worker that lost the lease can never replace, delete or hide
an object the current owner wrote.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from consumer.fencing import WRITER_METADATA_KEY, FencedOut, Ownership, writer_epoch
from consumer.sinks.arrow import dead_letters_to_table, rows_to_table
from consumer.sinks.types import LakeBatch, ReplayPositions
from core.contracts.schema import partition_date

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

PARQUET_CONTENT_TYPE: Final = "application/vnd.apache.parquet"
# S3 answers a failed precondition with 412, and a conditional write racing another
# conditional write on the same key with 409; moto answers If-Match on a missing key with 404.
_CONDITION_FAILED: Final = frozenset(
    {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404", "412", "409"}
)
# The current owner loses a race only to a stale writer, which stops after its one failed or
# refused write: two rounds suffice; more means something else is wrong.
REWRITE_ATTEMPTS: Final = 5


class _Old(NamedTuple):
    table: pa.Table
    etag: str


def object_key(prefix: str, dt: str, shard_id: str, sequence: int) -> str:
    return f"{prefix}/dt={dt}/shard={shard_id}/{sequence}.parquet"


def _to_parquet(table: pa.Table, owner: Ownership) -> bytes:
    metadata = dict(table.schema.metadata or {})
    metadata[WRITER_METADATA_KEY] = owner.writer()
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), sink, compression="zstd")
    return sink.getvalue()


def _condition_failed(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _CONDITION_FAILED


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


def _parts(
    prefix: str, table: pa.Table, dates: list[str], keys: dict[str, int], batch: LakeBatch
) -> list[tuple[str, pa.Table]]:
    """One object per date of ``keys`` (key, the table's rows of that date)."""
    by_date: dict[str, list[int]] = {}
    for index, dt in enumerate(dates):
        by_date.setdefault(dt, []).append(index)
    return [
        (
            object_key(prefix, dt, batch.shard_id, sequence),
            table.take(pa.array(by_date.get(dt, []), type=pa.int64())),
        )
        for dt, sequence in keys.items()
    ]


class S3Lake:
    """The ``LakeSink`` over S3. A batch's objects (one per date, ticks and dead letters) are
    independent keys, so they are read and written side by side, up to ``writers`` at once:
    at 20 ms a round trip, a batch spanning several dates costs one GET + PUT, not one per
    object. ``write_batch`` returns (or raises) only once every object's write has ended."""

    def __init__(
        self, s3: S3Client, bucket: str, ticks_prefix: str, dead_prefix: str, writers: int = 8
    ) -> None:
        if writers < 1:
            raise ValueError(f"writers must be >= 1, got {writers}")
        self._s3 = s3
        self._bucket = bucket
        self._ticks_prefix = ticks_prefix
        self._dead_prefix = dead_prefix
        self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="lake-object")

    def write_batch(self, batch: LakeBatch) -> None:
        row_dates = [partition_date(row.ts) for row in batch.rows]
        letter_dates = [_arrival_date(letter.arrival_ts) for letter in batch.dead_letters]
        parts = [
            *_parts(
                self._ticks_prefix, rows_to_table(batch.rows), row_dates, batch.tick_keys, batch
            ),
            *_parts(
                self._dead_prefix,
                dead_letters_to_table(batch.dead_letters),
                letter_dates,
                batch.dead_letter_keys,
                batch,
            ),
        ]
        if len(parts) == 1:  # one object: no hand-over to a thread
            self._rewrite(*parts[0], batch)
            return
        futures = [self._pool.submit(self._rewrite, key, part, batch) for key, part in parts]
        wait(futures)  # all of them, even after a failure: nothing may still be writing
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error

    def _rewrite(self, key: str, new: pa.Table, batch: LakeBatch) -> None:
        for _attempt in range(REWRITE_ATTEMPTS):
            if self._try_rewrite(key, new, batch):
                return
            # Someone wrote the key between our read and our write.
            if not batch.still_owner():
                raise FencedOut(batch.owner, f"lost the race for {key}")
            log.warning(
                "lake object changed under us by a stale owner, merging again",
                extra={"key": key, "epoch": batch.owner.epoch},
            )
        raise FencedOut(batch.owner, f"{key} kept changing")

    def _try_rewrite(self, key: str, new: pa.Table, batch: LakeBatch) -> bool:
        """One read-merge-write of ``key``; False when the write's condition failed."""
        # Always look for an object of an earlier attempt: whether one may hold rows of a
        # replay-skipped record depends on saved states this processor may not have loaded
        # yet (it loads them lazily). Normally the key is new: one GET answered 404, per
        # object per flush.
        old = self._read(key)
        condition: dict[str, Any] = {"IfNoneMatch": "*"}
        if old is not None:
            if writer_epoch(old.table.schema.metadata, batch.shard_id) > batch.owner.epoch:
                raise FencedOut(batch.owner, f"{key} was written by a newer owner")
            condition = {"IfMatch": old.etag}
            kept = _keep_replayed(old.table, batch.shard_id, batch.replayed)
            if kept.num_rows:
                kept = kept.replace_schema_metadata(new.schema.metadata)
                new = _sorted_by_sequence(pa.concat_tables([kept, new]))
        try:
            if new.num_rows == 0:
                # Every record of this date in the batch was late, a duplicate or skipped: an
                # object left by an earlier attempt would hold rows produced again elsewhere.
                if old is not None:
                    self._s3.delete_object(Bucket=self._bucket, Key=key, **condition)
                return True
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=_to_parquet(new, batch.owner),
                ContentType=PARQUET_CONTENT_TYPE,
                # For operators (head-object); the footer is what the writers compare.
                Metadata={"owner-epoch": str(batch.owner.epoch)},
                **condition,
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def _read(self, key: str) -> _Old | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        body = response["Body"].read()
        return _Old(pq.read_table(io.BytesIO(body)), str(response["ETag"]))


def _arrival_date(arrival_ts: str | None) -> str:
    # Stream records always carry an arrival time; a file run has none and no lake.
    return "unknown" if arrival_ts is None else arrival_ts[:10]
