"""Steps 1 and 2 of the commit (rows, lake) run side by side, and the commit still ends only
when both have: state and checkpoint come after both, a failure of either stops the commit,
and a failed rows step still waits for the lake write in flight."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from consumer.processor import FlushPolicy, ShardProcessor
from consumer.sinks.lake import S3Lake
from consumer.sinks.types import LakeBatch
from core.contracts.row import EnrichedRow
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
