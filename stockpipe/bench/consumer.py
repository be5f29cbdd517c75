"""``stockpipe bench consumer``: ticks/s through the shard processor, from the daemon's
``processRecords`` JSON line (base64 records) to rows ready for the sinks. Sinks are no-ops
here: this measures the processor's own CPU cost, not DynamoDB or S3."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

from consumer.fencing import Ownership
from consumer.processor import FlushPolicy, ShardProcessor, StreamRecord
from consumer.sinks.types import LakeBatch, SavedState
from core.contracts.row import EnrichedRow
from core.contracts.tick import encode_tick
from producer.synthetic import synthetic_ticks


class _NullSinks:
    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        pass

    def write_batch(self, batch: LakeBatch) -> None:
        pass

    def claim(self, shard_id: str, worker: str = "") -> Ownership:
        return Ownership(shard_id, 1, worker)

    def holds(self, ownership: Ownership) -> bool:
        return True

    def load(self, symbols: Iterable[str]) -> dict[str, SavedState]:
        return {}

    def forget(self, symbols: Iterable[str]) -> None:
        pass

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        pass


class _NullCheckpointer:
    def checkpoint(self, sequence_number: str | None = None) -> None:
        pass


@dataclass(frozen=True)
class ConsumerBench:
    ticks: int
    seconds: float


def bench_consumer(ticks: int, symbols: int, batch: int, seed: int) -> ConsumerBench:
    records = [encode_tick(t) for t in islice(synthetic_ticks(symbols, seed), ticks)]
    lines = []
    for start in range(0, ticks, batch):
        lines.append(
            json.dumps(
                {
                    "action": "processRecords",
                    "millisBehindLatest": 0,
                    "records": [
                        {
                            "data": base64.b64encode(raw).decode(),
                            "partitionKey": "k",
                            "sequenceNumber": str(10**20 + start + i),
                            "subSequenceNumber": 0,
                            # After every synthetic tick: none is from the future.
                            "approximateArrivalTimestamp": 1_800_000_000_000,
                        }
                        for i, raw in enumerate(records[start : start + batch])
                    ],
                }
            )
        )
    sinks = _NullSinks()
    processor = ShardProcessor(sinks, sinks, sinks, FlushPolicy(records=10**9, seconds=1e9))
    processor.initialize("shardId-000000000000")
    checkpointer = _NullCheckpointer()
    started = time.perf_counter()
    for line in lines:
        message = json.loads(line)
        processor.process_records(
            [
                StreamRecord(
                    base64.b64decode(r["data"]),
                    r["sequenceNumber"],
                    r["approximateArrivalTimestamp"],
                )
                for r in message["records"]
            ],
            checkpointer,
        )
    elapsed = time.perf_counter() - started
    if processor.pipeline.counts().accepted != ticks:
        raise AssertionError("benchmark data was not all accepted")
    return ConsumerBench(ticks, elapsed)
