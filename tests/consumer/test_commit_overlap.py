"""Steps 1 and 2 of the commit (rows, lake) run side by side, and the commit still ends only
when both have: state and checkpoint come after both, a failure of either stops the commit,
and a failed rows step still waits for the lake write in flight."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq
import pytest

from consumer.processor import FlushPolicy, ShardProcessor
from consumer.sinks.lake import S3Lake
from consumer.sinks.types import LakeBatch
from core.contracts.row import EnrichedRow
from core.contracts.schema import partition_date
from core.contracts.tick import Tick
from tests.consumer.fakes import MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState
from tests.consumer.test_sink_retry import SHARD, records

WAIT_S = 10  # a deadlock guard only: every wait here ends at once when the code is right


class Meeting:
    """Both steps must be in flight at once: each waits at the barrier, which breaks (and
    fails the test) if the other never comes, as it would if the steps ran in turn."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=WAIT_S)


class MeetingRows(MemoryRows):
    def __init__(self, meeting: Meeting, fail: bool = False) -> None:
        super().__init__()
        self.meeting, self.fail = meeting, fail

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        self.meeting.barrier.wait()
        if self.fail:
            raise PermissionError("AccessDenied on the rows table")
        super().write_rows(rows)


class MeetingLake:
    def __init__(self, inner: S3Lake, meeting: Meeting, fail: bool = False) -> None:
        self.inner, self.meeting, self.fail = inner, meeting, fail
        self.finished = threading.Event()

    def write_batch(self, batch: LakeBatch) -> None:
        self.meeting.barrier.wait()
        try:
            if self.fail:
                raise PermissionError("AccessDenied on the bucket")
            self.inner.write_batch(batch)
        finally:
            self.finished.set()


def _processor(rows: Any, lake: Any, state: MemoryState) -> ShardProcessor:
    processor = ShardProcessor(
        rows=rows, lake=lake, state=state, policy=FlushPolicy(records=6, seconds=3600)
    )
    processor.initialize(SHARD)
    return processor


def test_rows_and_lake_are_written_at_the_same_time(real_ticks: list[Tick]) -> None:
    meeting = Meeting()
    rows, s3, state = MeetingRows(meeting), MemoryS3(), MemoryState()
    lake = MeetingLake(S3Lake(s3, "lake", "ticks", "dead-letter"), meeting)  # type: ignore[arg-type]
    checkpointer = MemoryCheckpointer()
    stream = records(real_ticks)
    processor = _processor(rows, lake, state)
    for start in range(0, len(stream), 6):
        processor.process_records(stream[start : start + 6], checkpointer)
    assert checkpointer.checkpoint_at == stream[-1].sequence_number
    assert len(rows.items) == 23 and s3.objects and state.items


@pytest.mark.parametrize("failing", ["rows", "lake"])
def test_a_failure_of_either_step_stops_the_commit_after_both_ended(
    real_ticks: list[Tick], failing: str
) -> None:
    meeting = Meeting()
    rows = MeetingRows(meeting, fail=failing == "rows")
    lake = MeetingLake(
        S3Lake(MemoryS3(), "lake", "ticks", "dead-letter"),  # type: ignore[arg-type]
        meeting,
        fail=failing == "lake",
    )
    state, checkpointer = MemoryState(), MemoryCheckpointer()
    processor = _processor(rows, lake, state)
    with pytest.raises(PermissionError, match="rows table" if failing == "rows" else "bucket"):
        processor.process_records(records(real_ticks)[:6], checkpointer)
    # The lake write had ended by the time the commit raised: nothing still writing.
    assert lake.finished.is_set()
    assert state.items == {} and checkpointer.checkpoint_at is None


def test_the_objects_of_one_batch_are_read_and_written_side_by_side(
    real_ticks: list[Tick],
) -> None:
    """One commit of 24 records spanning several dates: one tick object per date and one
    dead-letter object. Every object's first GET must be in flight at once (the barrier
    breaks otherwise), and the objects hold exactly the batch's rows."""
    stream = records(real_ticks)
    dates = {partition_date(t.ts) for t in real_ticks[:23]}
    objects = len(dates) + 1  # + the dead-letter object of the arrival date

    class MeetingS3(MemoryS3):
        def __init__(self) -> None:
            super().__init__()
            self.barrier = threading.Barrier(objects, timeout=WAIT_S)
            self.met: set[str] = set()

        def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
            if Key not in self.met:  # each object's first read
                self.met.add(Key)
                with contextlib.suppress(threading.BrokenBarrierError):
                    self.barrier.wait()
            return super().get_object(Bucket=Bucket, Key=Key)

    s3 = MeetingS3()
    lake = S3Lake(s3, "lake", "ticks", "dead-letter", writers=objects)  # type: ignore[arg-type]
    processor = ShardProcessor(
        rows=MemoryRows(), lake=lake, state=MemoryState(), policy=FlushPolicy(24, 3600)
    )
    processor.initialize(SHARD)
    processor.process_records(stream, MemoryCheckpointer())
    assert not s3.barrier.broken, "the objects were not written side by side"
    assert len(s3.objects) == objects
    written = {
        (row["symbol"], row["sequence_number"])
        for body in s3.objects.values()
        for row in pq.read_table(io.BytesIO(body)).to_pylist()
        if "price" in row
    }
    assert written == {
        (t.symbol, r.sequence_number)
        for t, r in zip(real_ticks[:23], [r for r in stream if r.data != b"not json"], strict=True)
    }
