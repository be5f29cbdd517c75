"""Test doubles of the producer tests: a fake clock, an in-memory Kinesis, a fault-injecting
wrapper that stands in for boto3 (no mocks), and a reader of a whole (moto) stream."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class FakeClock:
    """Monotonic time that only moves when someone sleeps: retries without real waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


class MemoryKinesis:
    """Accepts every record; keeps them per partition key in arrival order."""

    def __init__(self) -> None:
        self.by_key: dict[str, list[bytes]] = {}
        self.calls: list[int] = []  # records per call

    def put_records(self, *, Records: Sequence[Any], StreamName: str) -> dict[str, Any]:
        self.calls.append(len(Records))
        results = []
        for entry in Records:
            key = entry["PartitionKey"]
            self.by_key.setdefault(key, []).append(entry["Data"])
            results.append({"SequenceNumber": str(len(self.by_key[key])), "ShardId": "shard-0"})
        return {"FailedRecordCount": 0, "Records": results}

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_key.values())


@dataclass
class FaultyKinesis:
    """Wraps a client and fails some records of some calls, as PutRecords does under load:
    the failed records are *not* passed on; the rest are, in request order."""

    inner: MemoryKinesis
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    record_failure: float = 0.2  # chance a record of a faulty call fails
    faulty_calls: float = 0.5  # chance a call has faults at all
    always_fail: set[str] = field(default_factory=set)  # keys that fail every time
    codes: tuple[str, ...] = ("ProvisionedThroughputExceededException", "InternalFailure")
    failed: int = 0

    def put_records(self, *, Records: Sequence[Any], StreamName: str) -> dict[str, Any]:
        faulty = self.rng.random() < self.faulty_calls
        passed, results = [], []
        for entry in Records:
            fail = entry["PartitionKey"] in self.always_fail or (
                faulty and self.rng.random() < self.record_failure
            )
            if fail:
                self.failed += 1
                code = self.rng.choice(self.codes)
                results.append({"ErrorCode": code, "ErrorMessage": "injected"})
            else:
                passed.append(entry)
                results.append(None)
        inner = self.inner.put_records(Records=passed, StreamName=StreamName)["Records"]
        ok = iter(inner)
        records = [r if r is not None else next(ok) for r in results]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in records), "Records": records}


@dataclass
class MotoKinesis:
    endpoint: str
    client: Any

    def create_stream(self, name: str, shards: int) -> None:
        self.client.create_stream(StreamName=name, ShardCount=shards)
        self.client.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
        )

    def read_all(self, name: str) -> dict[str, list[tuple[str, bytes]]]:
        """Every record of every shard, per shard in sequence order: (partition key, data)."""
        out: dict[str, list[tuple[str, bytes]]] = {}
        for shard in self.client.list_shards(StreamName=name)["Shards"]:
            iterator = self.client.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records: list[tuple[str, bytes]] = []
            while iterator:
                page = self.client.get_records(ShardIterator=iterator, Limit=10_000)
                records.extend((r["PartitionKey"], r["Data"]) for r in page["Records"])
                if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                    break
                iterator = page.get("NextShardIterator")
            out[shard["ShardId"]] = records
        return out
