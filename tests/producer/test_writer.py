"""The Kinesis writer under partial failures: every record arrives exactly once, per-key order
holds, the give-up bound is kept and reported, and the PutRecords limits are respected."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from producer.backoff import Backoff
from producer.errors import KinesisWriteError
from producer.kinesis import MAX_BYTES_PER_CALL, MAX_BYTES_PER_RECORD
from producer.writer import OrderedBatchWriter
from tests.producer.fakes import FakeClock, FaultyKinesis, MemoryKinesis


def _records(keys: int, count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        key = f"K{rnd.randrange(keys)}"
        out.append((key, f"{key}:{i}".encode()))
    return out


def _writer(client: Any, clock: FakeClock, **kw: Any) -> OrderedBatchWriter:
    return OrderedBatchWriter(
        client, "s", backoff=Backoff(rng=random.Random(3)), clock=clock, sleep=clock.sleep, **kw
    )


def _expected(records: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for key, data in records:
        out.setdefault(key, []).append(data)
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("keys", [1, 7, 800])
def test_partial_failures_deliver_everything_once_in_key_order(
    seed: int, keys: int, clock: FakeClock
) -> None:
    memory = MemoryKinesis()
    faulty = FaultyKinesis(memory, rng=random.Random(seed), record_failure=0.3)
    writer = _writer(faulty, clock, max_attempts=50, max_pending=300)
    records = _records(keys, 3_000, seed)
    for key, data in records:
        writer.add(key, data)
        writer.pump()
    writer.flush()

    assert faulty.failed > 0  # the test did inject faults
    assert memory.by_key == _expected(records)  # exactly once, and in order per key
    assert writer.stats.sent == len(records) and writer.stats.lost == 0
    assert writer.stats.retries == faulty.failed
    assert writer.pending == 0


def test_a_call_never_carries_two_records_of_one_key(clock: FakeClock) -> None:
    seen: list[list[str]] = []

    class Spy(MemoryKinesis):
        def put_records(self, *, Records: Any, StreamName: str) -> dict[str, Any]:
            seen.append([r["PartitionKey"] for r in Records])
            return super().put_records(Records=Records, StreamName=StreamName)

    writer = _writer(Spy(), clock)
    for key, data in _records(3, 100):
        writer.add(key, data)
    writer.flush()
    assert all(len(call) == len(set(call)) for call in seen)


def test_calls_respect_count_and_size_limits(clock: FakeClock) -> None:
    memory = MemoryKinesis()
    writer = _writer(memory, clock)
    for i in range(1_200):
        writer.add(f"K{i}", b"x" * 10)
    writer.flush()
    assert memory.calls == [500, 500, 200]

    memory = MemoryKinesis()
    writer = _writer(memory, clock)
    big = b"x" * (MAX_BYTES_PER_RECORD - 100)  # just under 1 MiB: five fit in 5 MiB, six not
    for i in range(12):
        writer.add(f"K{i:02d}", big)
    writer.flush()
    assert memory.calls == [5, 5, 2]
    assert 5 * (len(big) + 3) <= MAX_BYTES_PER_CALL < 6 * len(big)


def test_give_up_is_bounded_counted_and_does_not_block_the_key(clock: FakeClock) -> None:
    memory = MemoryKinesis()
    faulty = FaultyKinesis(memory, faulty_calls=0.0, always_fail={"BAD"})
    writer = _writer(faulty, clock, max_attempts=4)
    writer.add("BAD", b"1")
    writer.add("OK", b"a")
    writer.add("BAD", b"2")
    writer.flush()
    # Each BAD record: 4 attempts, then given up; the other key is unaffected.
    assert writer.stats.lost == 2
    assert faulty.failed == 8
    assert writer.stats.retries == 6
    assert memory.by_key == {"OK": [b"a"]}
    # Backoff grew between attempts (full jitter under a doubling ceiling), no real sleeping.
    assert clock.slept and all(0 <= s <= 5.0 for s in clock.slept)


def test_non_retryable_error_is_lost_at_once(clock: FakeClock) -> None:
    faulty = FaultyKinesis(
        MemoryKinesis(), faulty_calls=0.0, always_fail={"K"}, codes=("KMSAccessDeniedException",)
    )
    writer = _writer(faulty, clock)
    writer.add("K", b"x")
    writer.flush()
    assert writer.stats.lost == 1 and faulty.failed == 1 and writer.stats.retries == 0


def test_oversized_record_is_lost_not_sent(clock: FakeClock) -> None:
    memory = MemoryKinesis()
    writer = _writer(memory, clock)
    writer.add("K", b"x" * MAX_BYTES_PER_RECORD)
    writer.add("K", b"ok")
    writer.flush()
    assert writer.stats.lost == 1 and memory.by_key == {"K": [b"ok"]}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutRecords")


def test_whole_call_failures_are_retried_then_recover(clock: FakeClock) -> None:
    memory = MemoryKinesis()
    failures = [
        _client_error("ProvisionedThroughputExceededException"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ]

    class Flaky:
        def put_records(self, *, Records: Any, StreamName: str) -> Any:
            if failures:
                raise failures.pop(0)
            return memory.put_records(Records=Records, StreamName=StreamName)

    writer = _writer(Flaky(), clock)
    for key, data in _records(5, 50):
        writer.add(key, data)
    writer.flush()
    assert memory.total == 50 and writer.stats.failed_calls == 2 and writer.stats.lost == 0


def test_missing_stream_stops_the_run_with_one_message(clock: FakeClock) -> None:
    class Missing:
        def put_records(self, *, Records: Any, StreamName: str) -> Any:
            raise _client_error("ResourceNotFoundException")

    writer = _writer(Missing(), clock)
    writer.add("K", b"x")
    with pytest.raises(KinesisWriteError, match="ResourceNotFoundException"):
        writer.flush()


def test_backoff_is_full_jitter_under_a_doubling_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(0))
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        draws = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # jitter spans the range
