"""consumer/kcl_app.py's _LeaseGoneGuard in-process: a lost shard answers actions without
touching anything, and only a daemon that keeps sending records past the grace period makes
the process exit (tests/consumer/test_protocol.py drives the same over the real protocol)."""

from __future__ import annotations

import pytest

from consumer import kcl_app
from consumer.errors import ConsumerError, LeaseGone
from consumer.kcl_app import LEASE_GONE_GRACE_S, _LeaseGoneGuard
from consumer.processor import FlushPolicy, ShardProcessor
from consumer.sinks.lake import S3Lake
from tests.consumer.fakes import MemoryRows, MemoryS3, MemoryState


@pytest.fixture
def processor() -> ShardProcessor:
    lake = S3Lake(MemoryS3(), "lake", "ticks", "dead-letter")  # type: ignore[arg-type]
    processor = ShardProcessor(MemoryRows(), lake, MemoryState(), FlushPolicy(10, 60.0))
    processor.initialize("shardId-0")
    return processor


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """kcl_app's monotonic clock, moved by the test (``clock[0] += seconds``)."""
    now = [1_000.0]
    monkeypatch.setattr(kcl_app.time, "monotonic", lambda: now[0])
    return now


def test_only_a_gone_lease_is_handled(processor: ShardProcessor) -> None:
    guard = _LeaseGoneGuard(processor)
    assert not guard.skip("processRecords")
    assert not guard.handled("processRecords", ConsumerError("a sink broke"))
    assert not processor.lease_gone
    assert guard.handled("processRecords", LeaseGone("lease lost at checkpoint"))
    assert processor.lease_gone
    assert guard.skip("processRecords")


def test_a_daemon_that_keeps_sending_past_the_grace_ends_the_process(
    processor: ShardProcessor, clock: list[float]
) -> None:
    guard = _LeaseGoneGuard(processor)
    guard.handled("processRecords", LeaseGone("fenced"))
    clock[0] += LEASE_GONE_GRACE_S
    assert guard.skip("processRecords")  # at the limit: still answered
    clock[0] += 1
    with pytest.raises(SystemExit) as stopped:
        guard.skip("processRecords")
    assert stopped.value.code == 1


def test_a_lease_lost_by_the_daemon_itself_is_skipped_without_a_deadline(
    processor: ShardProcessor, clock: list[float]
) -> None:
    guard = _LeaseGoneGuard(processor)
    processor.lease_lost()  # the daemon's leaseLost: it ends the child itself
    clock[0] += 10 * LEASE_GONE_GRACE_S
    assert guard.skip("shutdownRequested")
