"""Batches records into PutRecords calls, retries only the records that failed, and never lets
a partition key's later record overtake an earlier one.

Ordering. PutRecords fails record by record: if a call carried two records of one symbol
and only the first failed, the second would land first. So a call carries **at most one
record per partition key** ("lane"), and a lane's next record is only offered once its head
is acknowledged or given up. A lane whose head failed waits out its backoff in ``_delayed``
while the other lanes keep flowing. The price: with few symbols a call is small (one record
per symbol), which the benchmark shows; with hundreds of symbols calls are full.

Loss. A head is given up after ``max_attempts`` attempts, or at once for a non-retryable
error code; each loss is counted in ``stats.lost`` and logged at ERROR, and the command
exits non-zero when any record was lost.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from producer.backoff import Backoff
from producer.errors import KinesisWriteError
from producer.kinesis import (
    MAX_BYTES_PER_CALL,
    MAX_BYTES_PER_RECORD,
    MAX_RECORDS_PER_CALL,
    RETRYABLE_CALL_ERRORS,
    RETRYABLE_RECORD_ERRORS,
    KinesisClient,
)

if TYPE_CHECKING:
    from mypy_boto3_kinesis.type_defs import (
        PutRecordsRequestEntryTypeDef,
        PutRecordsResultEntryTypeDef,
    )

log: Final = logging.getLogger("stockpipe.producer")


@dataclass
class WriterStats:
    accepted: int = 0  # records handed to the writer
    sent: int = 0  # records Kinesis acknowledged
    retries: int = 0  # record re-sends scheduled after a failure
    lost: int = 0  # records given up on (or too large to ever send)
    calls: int = 0  # PutRecords calls made
    failed_calls: int = 0  # whole calls that failed after botocore's own retries


class OrderedBatchWriter:
    def __init__(
        self,
        client: KinesisClient,
        stream: str,
        *,
        max_attempts: int = 8,
        backoff: Backoff | None = None,
        linger: float = 0.05,
        max_pending: int = 20_000,
        max_records: int = MAX_RECORDS_PER_CALL,
        max_bytes: int = MAX_BYTES_PER_CALL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.stream = stream
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self.linger = linger  # how long a record may wait for a fuller batch
        self.max_pending = max_pending  # backpressure: add() sends before buffering more
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.stats = WriterStats()
        self._clock = clock
        self._sleep = sleep
        self._lanes: dict[str, deque[bytes]] = {}  # key -> its unsent records, head first
        self._ready: deque[str] = deque()  # lanes whose head may go in the next call
        self._delayed: list[tuple[float, int, str]] = []  # (not before, tie, key) after a failure
        self._attempts: dict[str, int] = {}  # attempts made of a lane's head, once it failed
        self._tie = itertools.count()
        self._pending = 0
        self._last_send = clock()

    @property
    def pending(self) -> int:
        return self._pending

    def add(self, key: str, data: bytes) -> None:
        """Queue one record. ``key`` is ASCII (Yahoo symbols, or the file source's fixed key)."""
        self.stats.accepted += 1
        if len(data) + len(key) > MAX_BYTES_PER_RECORD:
            self._lose(key, "too_large", f"{len(data) + len(key):,} bytes")
            return
        lane = self._lanes.get(key)
        if lane is None:
            self._lanes[key] = deque((data,))
            self._ready.append(key)
        else:
            lane.append(data)
        self._pending += 1
        while self._pending >= self.max_pending:
            self._step()

    def pump(self) -> None:
        """Send if a full call is ready, the oldest record has lingered long enough, or a
        failed record's backoff is over. Never sleeps."""
        retry_due = bool(self._delayed) and self._delayed[0][0] <= self._clock()
        if retry_due or (
            self._ready
            and (
                len(self._ready) >= self.max_records
                or self._clock() - self._last_send >= self.linger
            )
        ):
            self._send_round()

    def flush(self) -> None:
        """Send everything buffered, waiting out backoffs; returns when nothing is pending."""
        while self._pending:
            self._step()

    def next_due(self) -> float | None:
        """When the earliest backed-off lane may be retried (clock time), if any."""
        return self._delayed[0][0] if self._delayed else None

    def next_wake(self) -> float | None:
        """When ``pump`` will next have something to send (clock time), if ever."""
        wakes = [self._delayed[0][0]] if self._delayed else []
        if self._ready:
            wakes.append(self._last_send + self.linger)
        return min(wakes) if wakes else None

    def _step(self) -> None:
        if not self._send_round():
            due = self.next_due()
            if due is not None:
                self._sleep(max(0.0, due - self._clock()))

    def _send_round(self) -> bool:
        """One PutRecords call with the head of every ready lane (up to the limits)."""
        self._promote_due()
        if not self._ready:
            return False
        ready, lanes = self._ready, self._lanes
        keys: list[str] = []
        entries: list[PutRecordsRequestEntryTypeDef] = []
        size = 0
        while ready and len(keys) < self.max_records:
            key = ready[0]
            data = lanes[key][0]
            record_size = len(data) + len(key)
            if size + record_size > self.max_bytes:
                break
            ready.popleft()
            size += record_size
            keys.append(key)
            entries.append({"Data": data, "PartitionKey": key})
        self._last_send = self._clock()
        self.stats.calls += 1
        results = self._put(entries)
        if results is None:  # the whole call failed transiently: every record failed
            now = self._clock()
            for key in keys:
                self._failed(key, "CallFailed", now)
        elif len(results) != len(keys):
            raise KinesisWriteError(
                f"PutRecords answered {len(results)} results for {len(keys)} records"
            )
        else:
            now = self._clock()
            for key, result in zip(keys, results, strict=True):
                code = result.get("ErrorCode")
                if code is None:
                    self.stats.sent += 1
                    self._advance(key)
                else:
                    self._failed(key, code, now, result.get("ErrorMessage", ""))
        return True

    def _put(
        self, entries: list[PutRecordsRequestEntryTypeDef]
    ) -> list[PutRecordsResultEntryTypeDef] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.put_records(Records=entries, StreamName=self.stream)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in RETRYABLE_CALL_ERRORS:
                raise KinesisWriteError(
                    f"PutRecords to stream {self.stream!r} failed: {code}: "
                    f"{exc.response.get('Error', {}).get('Message', exc)}"
                ) from None
            self._call_failed(code)
            return None
        except BotoCoreError as exc:  # connection refused/reset after botocore's retries
            self._call_failed(type(exc).__name__)
            return None
        return response["Records"]

    def _call_failed(self, reason: str) -> None:
        self.stats.failed_calls += 1
        log.warning("put_records_failed", extra={"fields": {"reason": reason}})

    def _advance(self, key: str) -> None:
        """The lane's head is done (sent or given up): offer its next record, if any."""
        lane = self._lanes[key]
        lane.popleft()
        self._pending -= 1
        if self._attempts:
            self._attempts.pop(key, None)
        if lane:
            self._ready.append(key)
        else:
            del self._lanes[key]

    def _failed(self, key: str, code: str, now: float, message: str = "") -> None:
        made = self._attempts.get(key, 1)
        retryable = code in RETRYABLE_RECORD_ERRORS or code == "CallFailed"
        if not retryable or made >= self.max_attempts:
            self.stats.lost += 1
            log.error(
                "record_lost",
                extra={"fields": {"key": key, "attempts": made, "error": code, "detail": message}},
            )
            self._advance(key)
            return
        self._attempts[key] = made + 1
        self.stats.retries += 1
        heapq.heappush(self._delayed, (now + self.backoff.delay(made), next(self._tie), key))

    def _promote_due(self) -> None:
        if not self._delayed:
            return
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            # Retried heads go first: their lanes have waited longest.
            self._ready.appendleft(heapq.heappop(self._delayed)[2])

    def _lose(self, key: str, reason: str, detail: str) -> None:
        self.stats.lost += 1
        log.error("record_lost", extra={"fields": {"key": key, "error": reason, "detail": detail}})
