"""The commit steps' own retries (consumer/retry.py, ShardProcessor._retrying), in-process with
a fake clock: a sink whose AWS call failed after botocore's retries in a way waiting can cure
is tried again, and the run ends exactly as a run without faults (the oracle: the same
records through a processor whose sinks never fail); a permanent error, a spent budget or a
lease that moved meanwhile stop the commit before its checkpoint."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from consumer.fencing import FencedOut
from consumer.processor import SINK_RETRY, FlushPolicy, ShardProcessor, StreamRecord
from consumer.retry import RetryPolicy, is_transient
from consumer.sinks.lake import S3Lake
from consumer.sinks.rows_table import RowsNotWritten
from core.contracts.tick import Tick, encode_tick
from tests.consumer.fakes import FakeClock, MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState

SHARD = "shardId-000000000001"
ARRIVAL_MS = 1_735_689_600_000  # 2025-01-01, after every tick of the dataset
ENDPOINT = "http://127.0.0.1:1"


def client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


def cancelled(*reasons: str) -> ClientError:
    error = client_error("TransactionCanceledException", 400, "TransactWriteItems")
    error.response["CancellationReasons"] = [{"Code": r} for r in reasons]  # type: ignore[typeddict-unknown-key]
    return error


# What AWS answers when it wants the caller to wait (the codes botocore's standard mode
# treats as throttling or transient, and the connection-level failures).
TRANSIENT: dict[str, Callable[[], BaseException]] = {
    "s3-slowdown": lambda: client_error("SlowDown", 503),
    "s3-500": lambda: client_error("InternalError", 500),
    "ddb-throttled": lambda: client_error("ProvisionedThroughputExceededException", 400),
    "ddb-throttling": lambda: client_error("ThrottlingException", 400),
    "ddb-503": lambda: client_error("ServiceUnavailable", 503),
    "unknown-5xx": lambda: client_error("SomethingNew", 502),
    "transaction-conflict": lambda: cancelled("None", "TransactionConflict"),
    "connect": lambda: EndpointConnectionError(endpoint_url=ENDPOINT),
    "read-timeout": lambda: ReadTimeoutError(endpoint_url=ENDPOINT),
    "reset": lambda: ConnectionClosedError(endpoint_url=ENDPOINT),
    "unprocessed-rows": lambda: RowsNotWritten("rows", 25, 8, 30.0),
}
PERMANENT: dict[str, Callable[[], BaseException]] = {
    "access-denied": lambda: client_error("AccessDenied", 403),
    "no-bucket": lambda: client_error("NoSuchBucket", 404),
    "no-table": lambda: client_error("ResourceNotFoundException", 400),
    "validation": lambda: client_error("ValidationException", 400),
    "condition": lambda: client_error("ConditionalCheckFailedException", 400),
    "a-bug": lambda: TypeError("unsupported operand"),
}


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_failures_that_waiting_cures_are_transient(name: str) -> None:
    assert is_transient(TRANSIENT[name]())


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_failures_that_waiting_cannot_cure_are_not(name: str) -> None:
    assert not is_transient(PERMANENT[name]())


# ---- a processor over in-memory sinks that fail on demand -----------------------------------


@dataclass
class Flaky:
    """Wraps a sink or store: the next calls of ``method`` raise ``errors`` in turn, then the
    calls go through. ``before`` runs at each failure (a lease moving meanwhile, say)."""

    inner: Any
    method: str
    errors: list[BaseException] = field(default_factory=list)
    before: Callable[[], None] | None = None
    failed: int = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.errors:
                self.failed += 1
                if self.before is not None:
                    self.before()
                raise self.errors.pop(0)
            return target(*args, **kwargs)

        return call


@dataclass
class Run:
    rows: MemoryRows
    s3: MemoryS3
    state: MemoryState
    checkpointer: MemoryCheckpointer
    clock: FakeClock


def records(real_ticks: list[Tick]) -> list[StreamRecord]:
    """The first 23 ticks of the real dataset (five symbols a day) and one line that is not a
    tick (a dead letter), in stream order: four commits of 6 records."""
    ticks = real_ticks[:23]
    raw = [encode_tick(t) for t in ticks]
    raw.insert(7, b"not json")
    return [StreamRecord(data, str(10**20 + 3 * i), ARRIVAL_MS + i) for i, data in enumerate(raw)]


def build(
    step: str | None = None,
    errors: list[BaseException] | None = None,
    policy: RetryPolicy = SINK_RETRY,
    before: Callable[[MemoryState], None] | None = None,
) -> tuple[ShardProcessor, Run]:
    """A processor over in-memory sinks, committing every 6 records; the sink or store
    method named by ``step`` fails with ``errors`` first."""
    clock = FakeClock()
    rows, s3, state = MemoryRows(), MemoryS3(), MemoryState()
    sinks: dict[str, Any] = {
        "rows": rows,
        "lake": S3Lake(s3, "lake", "ticks", "dead-letter"),  # type: ignore[arg-type]
        "state": state,
    }
    if step is not None:
        kind, method = step.split(".")
        hook = None if before is None else (lambda: before(state))
        sinks[kind] = Flaky(sinks[kind], method, list(errors or []), hook)
    processor = ShardProcessor(
        rows=sinks["rows"],
        lake=sinks["lake"],
        state=sinks["state"],
        policy=FlushPolicy(records=6, seconds=3600),
        clock=clock,
        sleep=clock.sleep,
        sink_retry=policy,
    )
    return processor, Run(rows, s3, state, MemoryCheckpointer(), clock)


def feed(processor: ShardProcessor, into: Run, stream: list[StreamRecord]) -> Run:
    processor.initialize(SHARD)
    for start in range(0, len(stream), 6):
        processor.process_records(stream[start : start + 6], into.checkpointer)
    return into


def run(
    stream: list[StreamRecord],
    step: str | None = None,
    errors: list[BaseException] | None = None,
    before: Callable[[MemoryState], None] | None = None,
) -> Run:
    return feed(*build(step, errors, before=before), stream)


STEPS = ["rows.write_rows", "lake.write_batch", "state.save", "state.load", "state.holds"]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kinds", [["s3-slowdown"], ["ddb-throttled", "reset", "s3-500"] * 3])
def test_a_step_that_fails_for_a_while_ends_as_a_run_without_faults(
    real_ticks: list[Tick], step: str, kinds: list[str]
) -> None:
    stream = records(real_ticks)
    oracle = run(stream)
    faulty = run(stream, step, [TRANSIENT[k]() for k in kinds])

    assert faulty.rows.items == oracle.rows.items
    assert faulty.s3.objects.keys() == oracle.s3.objects.keys()
    assert faulty.state.items == oracle.state.items
    assert faulty.checkpointer.checkpoint_at == oracle.checkpointer.checkpoint_at
    assert faulty.checkpointer.checkpoint_at == stream[-1].sequence_number
    # One wait per failure, each within its full-jitter ceiling, all within the budget.
    assert len(faulty.clock.sleeps) == len(kinds)
    for attempt, slept in enumerate(faulty.clock.sleeps):
        assert 0 <= slept <= min(SINK_RETRY.cap_s, SINK_RETRY.base_s * 2**attempt)
    assert sum(faulty.clock.sleeps) <= SINK_RETRY.budget_s


def _lake_rows(s3: MemoryS3) -> dict[str, list[dict[str, Any]]]:
    return {key: pq.read_table(io.BytesIO(body)).to_pylist() for key, body in s3.objects.items()}


def test_a_lake_batch_retried_after_some_objects_landed_writes_each_row_once(
    real_ticks: list[Tick],
) -> None:
    """The lake step fails after its first PUT landed (the storm hit the second object): the
    retry rewrites the first object conditionally and every object holds its rows once."""
    stream = records(real_ticks)
    oracle = run(stream)

    class FailsSecondPut(MemoryS3):
        failures = 2

        def put_object(self, **kwargs: Any) -> None:
            if self.puts == 1 and self.failures:
                self.failures -= 1
                raise client_error("SlowDown", 503)
            super().put_object(**kwargs)

    clock = FakeClock()
    s3 = FailsSecondPut()
    rows, state = MemoryRows(), MemoryState()
    processor = ShardProcessor(
        rows=rows,
        lake=S3Lake(s3, "lake", "ticks", "dead-letter"),  # type: ignore[arg-type]
        state=state,
        policy=FlushPolicy(records=6, seconds=3600),
        clock=clock,
        sleep=clock.sleep,
    )
    processor.initialize(SHARD)
    checkpointer = MemoryCheckpointer()
    for start in range(0, len(stream), 6):
        processor.process_records(stream[start : start + 6], checkpointer)
    assert s3.failures == 0 and len(clock.sleeps) == 2
    assert _lake_rows(s3) == _lake_rows(oracle.s3)
    assert state.items == oracle.state.items


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kind", sorted(PERMANENT))
def test_a_permanent_error_ends_the_commit_at_once_without_a_checkpoint(
    real_ticks: list[Tick], step: str, kind: str
) -> None:
    error = PERMANENT[kind]()
    with pytest.raises(type(error)):
        run(records(real_ticks), step, [error])


def test_a_spent_budget_ends_the_commit_without_a_checkpoint(real_ticks: list[Tick]) -> None:
    errors: list[BaseException] = [client_error("SlowDown", 503) for _ in range(1000)]
    processor, faulty = build("lake.write_batch", errors)
    with pytest.raises(ClientError, match="SlowDown"):
        feed(processor, faulty, records(real_ticks))
    assert faulty.checkpointer.checkpoint_at is None
    assert faulty.state.items == {}  # the state step never ran: nothing claims rows unwritten
    assert 8 < len(faulty.clock.sleeps) < len(errors)  # it kept trying, then stopped
    assert faulty.clock.now - 1000.0 <= SINK_RETRY.budget_s


def test_the_step_policy_stops_within_its_budget() -> None:
    clock = FakeClock()
    waits = 0
    for delay in SINK_RETRY.delays(clock):
        clock.sleep(delay)
        waits += 1
    assert clock.now - 1000.0 <= SINK_RETRY.budget_s
    assert waits > 8  # it keeps trying for a while: more than botocore's attempts


def another_worker_claims(state: MemoryState) -> None:
    state.claim(SHARD, "the-new-owner")


def test_a_lease_that_moved_during_the_storm_stops_the_retries(real_ticks: list[Tick]) -> None:
    """While the rows step is failing, another worker claims the shard: the next retry finds
    the fence moved and stops (FencedOut) without writing or checkpointing."""
    stream = records(real_ticks)
    with pytest.raises(FencedOut):
        run(
            stream,
            "rows.write_rows",
            [client_error("ProvisionedThroughputExceededException", 400)],
            before=another_worker_claims,
        )


def test_a_fence_read_that_fails_in_the_same_storm_does_not_stop_the_retry(
    real_ticks: list[Tick],
) -> None:
    """holds() is part of the storm too: a transient failure there leaves the decision to the
    retried step's own fence, which still holds."""
    stream = records(real_ticks)
    oracle = run(stream)
    faulty = run(stream, "state.holds", [client_error("ThrottlingException", 400)] * 2)
    assert faulty.rows.items == oracle.rows.items
    assert faulty.state.items == oracle.state.items
    assert faulty.checkpointer.checkpoint_at == stream[-1].sequence_number
