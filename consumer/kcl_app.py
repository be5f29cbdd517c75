"""The executable the MultiLangDaemon starts, one per shard: amazon-kclpy's v3 protocol on
stdin/stdout, adapted to ``ShardProcessor``.

stdout belongs to the protocol. Before anything else runs, ``sys.stdout`` is pointed at
stderr, and only the protocol's writer keeps the real stdout: a stray ``print`` anywhere
(ours or a library's) becomes a stderr line instead of corrupting the protocol.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from consumer.errors import ConsumerError, LeaseGone
from consumer.processor import (
    CheckpointFailed,
    FlushPolicy,
    ShardProcessor,
    StreamRecord,
)
from consumer.sinks.types import LakeSink, RowSink, StateStore
from consumer.status import StatusReporter

log = logging.getLogger(__name__)


class _CheckpointerAdapter:
    """kclpy's checkpointer, raising our CheckpointFailed with the daemon's error name."""

    def __init__(self, checkpointer: Any) -> None:
        self._checkpointer = checkpointer

    def checkpoint(self, sequence_number: str | None = None) -> None:
        from amazon_kclpy.checkpoint_error import CheckpointError

        try:
            self._checkpointer.checkpoint(sequence_number)
        except CheckpointError as error:
            raise CheckpointFailed(str(error.value)) from None


def _fail_stop(action: str, error: BaseException) -> None:
    """kclpy logs and *swallows* an exception raised by a processor, then reports the action
    done: the daemon would carry on and a later checkpoint could cover records that were
    never written. So any failure ends this process instead; the daemon starts a new one,
    which resumes at the last checkpoint, and the sinks make the replay harmless."""
    log.error("processor failed, exiting for a replay", extra={"action": action}, exc_info=error)
    raise SystemExit(1)


# How long a processor that lost its shard keeps answering the daemon before it concludes the
# daemon will not end it (see _LeaseGoneGuard). Well past a lease renewal (failoverTimeMillis
# / 3: 3.3 s on AWS) and a graceful hand-off's timeout (30 s), by when the daemon of a worker
# whose lease moved has always noticed. Kept short because of the other case: a processor
# fenced by a stale process that claimed the shard after it (consumer/fencing.py) still holds
# the KCL lease, and only a restart replays its shard from the checkpoint.
LEASE_GONE_GRACE_S: Final = 60.0


class _LeaseGoneGuard:
    """What a processor does once its shard is no longer its own (the daemon refused a
    checkpoint with ShutdownException, or a newer owner's epoch fenced a write).

    Exiting would not stop one shard: the MultiLangDaemon takes a child that ends in the middle
    of an action for a failed one and exits the whole worker (``System.exit``), stopping every
    shard it runs. So the processor drops its buffer, writes and checkpoints nothing more, and
    answers each action as done; the next owner replays from the last checkpoint. The daemon's
    lease renewer notices the lost lease within a renewal and ends this processor (leaseLost).
    Only if the daemon goes on sending records past LEASE_GONE_GRACE_S does the process exit,
    so that a worker that somehow still holds the lease is restarted, not left unread."""

    def __init__(self, processor: ShardProcessor) -> None:
        self._processor = processor
        self._since: float | None = None

    def handled(self, action: str, error: BaseException) -> bool:
        """True if ``error`` means the shard is gone (the action then counts as done)."""
        if not isinstance(error, LeaseGone):
            return False
        self._processor.lease_lost()
        self._since = time.monotonic()
        log.warning(
            "lease gone, writing nothing more", extra={"action": action, "error": str(error)}
        )
        return True

    def fail(self, action: str, error: BaseException) -> None:
        """The answer to an action that raised: a gone lease counts as done (``handled``);
        anything else ends the process (``_fail_stop``)."""
        if not self.handled(action, error):
            _fail_stop(action, error)

    def skip(self, action: str) -> bool:
        """True if the shard is gone: the action is answered without touching anything."""
        if not self._processor.lease_gone:
            return False
        if self._since is not None and time.monotonic() - self._since > LEASE_GONE_GRACE_S:
            log.error(
                "lease gone but the daemon still sends records; exiting so the worker restarts",
                extra={"action": action, "seconds": round(time.monotonic() - self._since)},
            )
            raise SystemExit(1)
        return True


# Wraps the three real sinks (fault injection in the crash tests); production passes none.
SinkWrapper = Callable[[RowSink, LakeSink, StateStore], tuple[RowSink, LakeSink, StateStore]]


def build_processor(wrap_sinks: SinkWrapper | None = None) -> ShardProcessor:
    from consumer.sinks.lake import S3Lake
    from consumer.sinks.rows_table import DynamoRowsTable
    from consumer.sinks.state_store import DynamoStateStore
    from core.aws import dynamodb_client, dynamodb_resource, s3_client
    from core.settings import get_settings

    settings = get_settings()
    dynamodb = dynamodb_resource(settings)
    client = dynamodb.meta.client
    rows: RowSink = DynamoRowsTable(
        dynamodb_client(settings), settings.rows_table, timedelta(days=settings.row_ttl_days)
    )
    lake: LakeSink = S3Lake(
        s3_client(settings), settings.bucket, settings.ticks_prefix, settings.dead_letter_prefix
    )
    state: StateStore = DynamoStateStore(client, settings.state_table)
    if wrap_sinks is not None:  # a test's wrapper (tests/consumer/faulty_kcl_app.py)
        rows, lake, state = wrap_sinks(rows, lake, state)
    return ShardProcessor(
        rows=rows,
        lake=lake,
        state=state,
        policy=FlushPolicy(records=settings.flush_records, seconds=settings.flush_seconds),
        worker=worker_id(),
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        max_resident_windows=settings.max_resident_windows,
    )


def worker_id() -> str:
    """The worker this processor belongs to, for the fence item and the logs: the id
    ``stockpipe consume`` gave the daemon (its ``workerIdentifier``), else host + pid."""
    import socket

    return os.environ.get("STOCKPIPE_WORKER_ID") or f"{socket.gethostname()}:{os.getppid()}"


def make_record_processor(processor: ShardProcessor, status_dir: Path | None = None) -> Any:
    """A kclpy v3 ``RecordProcessorBase`` delegating to ``processor``."""
    from amazon_kclpy.v3.processor import RecordProcessorBase

    reporter: StatusReporter | None = None
    gone = _LeaseGoneGuard(processor)

    class KclRecordProcessor(RecordProcessorBase):  # type: ignore[misc]
        def initialize(self, initialize_input: Any) -> None:
            nonlocal reporter
            try:
                processor.initialize(initialize_input.shard_id)
                if status_dir is not None:
                    reporter = StatusReporter(status_dir, initialize_input.shard_id, worker_id())
            except Exception as error:
                _fail_stop("initialize", error)

        def process_records(self, process_records_input: Any) -> None:
            if gone.skip("processRecords"):
                return
            try:
                records = [
                    StreamRecord(
                        data=record.binary_data,
                        sequence_number=record.sequence_number,
                        arrival_millis=record.timestamp_millis,
                    )
                    for record in process_records_input.records
                ]
                processor.process_records(
                    records, _CheckpointerAdapter(process_records_input.checkpointer)
                )
                if reporter is not None:
                    reporter.report(
                        len(records),
                        process_records_input.millis_behind_latest,
                        processor.skipped_replays,
                        processor.committed_records,
                        processor.last_commit_at,
                    )
            except Exception as error:
                gone.fail("processRecords", error)

        def lease_lost(self, lease_lost_input: Any) -> None:
            processor.lease_lost()

        def shard_ended(self, shard_ended_input: Any) -> None:
            if gone.skip("shardEnded"):
                return  # the shard's next owner checkpoints its end
            try:
                processor.shard_ended(_CheckpointerAdapter(shard_ended_input.checkpointer))
            except Exception as error:
                gone.fail("shardEnded", error)

        def shutdown_requested(self, shutdown_requested_input: Any) -> None:
            if gone.skip("shutdownRequested"):
                return
            try:
                processor.shutdown_requested(
                    _CheckpointerAdapter(shutdown_requested_input.checkpointer)
                )
            except Exception as error:
                gone.fail("shutdownRequested", error)

    return KclRecordProcessor()


def run(
    processor: ShardProcessor | None = None,
    stdin: TextIO | None = None,
    protocol_out: TextIO | None = None,
    wrap_sinks: SinkWrapper | None = None,
) -> None:
    from amazon_kclpy import kcl

    from core.logs import configure

    protocol_out = protocol_out or sys.stdout
    sys.stdout = sys.stderr  # see the module docstring
    configure()
    try:
        processor = processor or build_processor(wrap_sinks)
    except ConsumerError as error:
        log.error("cannot start the processor", extra={"error": str(error)})
        raise SystemExit(1) from None
    from core.settings import get_settings

    status_dir = get_settings().status_dir
    kcl.KCLProcess(
        make_record_processor(processor, None if status_dir is None else Path(status_dir)),
        input_file=stdin or sys.stdin,
        output_file=protocol_out,
        error_file=sys.stderr,
    ).run()


if __name__ == "__main__":
    run()
