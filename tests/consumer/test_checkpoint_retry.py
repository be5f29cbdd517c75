"""The checkpoint's retries, in-process with a fake checkpointer and a fake clock: the daemon's
retryable refusals are retried with exponential backoff and full jitter within the budget;
ShutdownException and InvalidStateException stop at once, as does a budget spent."""

from __future__ import annotations

import random

import pytest

from consumer.errors import LeaseGone
from consumer.processor import (
    CHECKPOINT_RETRY,
    CheckpointFailed,
    FlushPolicy,
    ShardProcessor,
    StreamRecord,
)
from consumer.retry import RetryPolicy
from tests.consumer.fakes import FakeClock, MemoryRows, MemoryState

SHARD = "shardId-000000000003"
RECORD = StreamRecord(b'{"symbol":"A","ts":"2024-01-02T00:00:00Z","price":1}', "100", 1704153600000)


class RefusingCheckpointer:
    """Refuses with ``errors`` in turn, then accepts."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.checkpoint_at: str | None = None

    def checkpoint(self, sequence_number: str | None = None) -> None:
        self.calls += 1
        if self.errors:
            raise CheckpointFailed(self.errors.pop(0))
        self.checkpoint_at = sequence_number


class NullLake:
    def write_batch(self, batch: object) -> None:
        pass


def processor(clock: FakeClock) -> ShardProcessor:
    shard = ShardProcessor(
        rows=MemoryRows(),
        lake=NullLake(),  # type: ignore[arg-type]
        state=MemoryState(),
        policy=FlushPolicy(records=1, seconds=3600),
        clock=clock,
        sleep=clock.sleep,
    )
    shard.initialize(SHARD)
    return shard


@pytest.mark.parametrize("error", ["ThrottlingException", "KinesisClientLibDependencyException"])
def test_retryable_refusals_are_retried_with_growing_jittered_waits(error: str) -> None:
    clock = FakeClock()
    checkpointer = RefusingCheckpointer(*[error] * 5)
    processor(clock).process_records([RECORD], checkpointer)
    assert checkpointer.checkpoint_at == "100"
    assert checkpointer.calls == 6
    assert len(clock.sleeps) == 5
    for attempt, slept in enumerate(clock.sleeps):
        assert 0 <= slept <= min(CHECKPOINT_RETRY.cap_s, CHECKPOINT_RETRY.base_s * 2**attempt)


def test_waits_are_full_jitter() -> None:
    """Uniform in [0, ceiling]: over many draws, both small and near-ceiling waits occur."""
    policy = RetryPolicy(base_s=1.0, cap_s=1.0, budget_s=10_000.0, rng=random.Random(3))
    clock = FakeClock()
    delays = policy.delays(clock)
    draws = [next(delays) for _ in range(400)]
    assert min(draws) < 0.05 and max(draws) > 0.95
    assert 0.45 < sum(draws) / len(draws) < 0.55


@pytest.mark.parametrize(
    "error", ["InvalidStateException", "IllegalArgumentException", "SomethingNew"]
)
def test_non_retryable_refusals_fail_at_once(error: str) -> None:
    clock = FakeClock()
    checkpointer = RefusingCheckpointer(error)
    with pytest.raises(CheckpointFailed) as failed:
        processor(clock).process_records([RECORD], checkpointer)
    assert failed.value.error == error
    assert checkpointer.calls == 1 and clock.sleeps == []


def test_shutdown_exception_is_a_lost_lease_without_retry() -> None:
    clock = FakeClock()
    checkpointer = RefusingCheckpointer("ShutdownException")
    with pytest.raises(LeaseGone):
        processor(clock).process_records([RECORD], checkpointer)
    assert checkpointer.calls == 1 and clock.sleeps == []


def test_retries_stop_within_the_budget() -> None:
    clock = FakeClock()
    checkpointer = RefusingCheckpointer(*["ThrottlingException"] * 1000)
    start = clock.now
    with pytest.raises(CheckpointFailed):
        processor(clock).process_records([RECORD], checkpointer)
    assert clock.now - start <= CHECKPOINT_RETRY.budget_s
    assert checkpointer.calls == len(clock.sleeps) + 1
    assert checkpointer.calls > 5  # it did keep trying for a while
