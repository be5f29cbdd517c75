"""The shard processor: decode -> accept/reject -> enrich -> buffer, and the commit sequence.

Free of amazon-kclpy (consumer/kcl_app.py adapts the daemon's messages to it), so the whole
logic runs in tests against in-memory sinks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Protocol, TypeVar

from consumer.enrichment import Enricher
from consumer.errors import ConsumerError, LeaseGone
from consumer.fencing import FencedOut, Ownership
from consumer.pipeline import DEFAULT_MAX_CLOCK_SKEW, Parsed, TickPipeline, decode
from consumer.residency import Residency
from consumer.retry import STEP_RETRIED, RetryPolicy, is_transient
from consumer.sinks.types import LakeBatch, LakeSink, RowSink, SavedState, StateStore
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick

log = logging.getLogger(__name__)
T = TypeVar("T")

# What the daemon's checkpointer (KCL 3 RecordProcessorCheckpointer) may refuse with, by the
# exception's simple name, and what its javadoc says to do: Throttling ("checkpointing too
# frequently") and KinesisClientLibDependency ("the application can backoff and retry") are
# transient; Shutdown means the lease is gone; InvalidState (the lease table is missing) and
# IllegalArgument (a sequence number out of range) cannot get better by waiting.
RETRYABLE_CHECKPOINT_ERRORS: Final = frozenset(
    {"ThrottlingException", "KinesisClientLibDependencyException"}
)
# 20 s of retries at most: inside the 30 s ECS allows after SIGTERM, and far shorter than the
# lease failover time, so a stuck checkpoint neither delays a shutdown past its kill nor
# holds a shard another worker could serve.
CHECKPOINT_RETRY: Final = RetryPolicy(base_s=0.2, cap_s=5.0, budget_s=20.0)
# A commit step (rows, lake, state) or a state load whose AWS call failed after botocore's
# retries is tried again for up to two minutes (consumer/retry.py says why botocore's alone
# are not enough). Safe to repeat: every step is idempotent (docs/design.md, "Delivery"), and
# before each retry the processor checks that it still owns the shard, so a worker whose
# lease moved during the storm stops instead of writing on. Two minutes outlasts a throttling
# storm of the kind S3 and on-demand DynamoDB go through while they scale, and is still far
# below what the iterator-age alarm waits for.
SINK_RETRY: Final = RetryPolicy(base_s=1.0, cap_s=15.0, budget_s=120.0)
# Windows kept in memory per shard process beyond those touched since the last commit (the
# STOCKPIPE_MAX_RESIDENT_WINDOWS setting; see consumer/residency.py).
DEFAULT_MAX_RESIDENT_WINDOWS: Final = 20_000


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record as the daemon hands it over."""

    data: bytes
    sequence_number: str
    arrival_millis: int


class CheckpointFailed(ConsumerError):
    """The daemon refused a checkpoint. ``error`` is its exception name."""

    def __init__(self, error: str) -> None:
        super().__init__(f"checkpoint refused: {error}")
        self.error = error


class Checkpointer(Protocol):
    def checkpoint(self, sequence_number: str | None = None) -> None:
        """Raises CheckpointFailed (the adapter translates the daemon's error)."""
        ...


@dataclass
class FlushPolicy:
    records: int
    seconds: float


@dataclass
class _Pending:
    """What has been applied in memory since the last commit."""

    rows: list[EnrichedRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    touched: dict[str, str] = field(default_factory=dict)  # symbol -> last applied sequence
    # Per UTC day (a proleptic ordinal: formatting a date string per record would cost more
    # than the rest of the bookkeeping), the smallest sequence number seen that day.
    tick_keys: dict[int, int] = field(default_factory=dict)
    dead_letter_keys: dict[int, int] = field(default_factory=dict)
    records: int = 0
    last_sequence: str | None = None


_DAY_MILLIS: Final = 86_400_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _by_date(keys: dict[int, int]) -> dict[str, int]:
    return {date.fromordinal(day).isoformat(): sequence for day, sequence in keys.items()}


def _first(keys: dict[int, int], dt: int, sequence: int) -> None:
    if sequence < keys.get(dt, sequence + 1):
        keys[dt] = sequence


class ShardProcessor:
    def __init__(
        self,
        rows: RowSink,
        lake: LakeSink,
        state: StateStore,
        policy: FlushPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        worker: str = "",
        max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
        max_resident_windows: int = DEFAULT_MAX_RESIDENT_WINDOWS,
        sink_retry: RetryPolicy = SINK_RETRY,
    ) -> None:
        self._rows = rows
        self._lake = lake
        self._state = state
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._sink_retry = sink_retry
        # Guards the symbol state (_known, _replayed, the windows) against the lake's threads,
        # which load symbols through _replay_positions during a commit.
        self._symbols_lock = threading.Lock()
        # One thread: the lake step of a commit runs there while the rows step runs here.
        self._lake_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake")
        self.shard_id = ""
        self._worker = worker
        self._owner: Ownership | None = None  # claimed at initialize (consumer/fencing.py)
        self._lease_lost = False
        self.pipeline = TickPipeline(Enricher(), max_skew=max_clock_skew)
        self._known: set[str] = set()  # symbols whose saved state was looked up
        self._residency = Residency(max_resident_windows)  # bounds _known (and so windows)
        self._replayed: dict[str, int] = {}  # symbol -> saved position on this shard at load
        self._pending = _Pending()
        self._last_commit = clock()
        self.skipped_replays = 0
        self.committed_records = 0  # for progress reports, not for delivery
        self.last_commit_at: float | None = None  # wall clock

    # -- lifecycle -------------------------------------------------------------------------

    def initialize(self, shard_id: str) -> None:
        # State is loaded lazily, per symbol, when a symbol is first seen (see _load_unknown).
        self.shard_id = shard_id
        # Claimed before anything is read or written: from now on every write of an earlier
        # owner of this shard is refused (consumer/fencing.py). A claim that timed out may have
        # landed: its retry then bumps the epoch once more, which fences nobody but ourselves'
        # lost attempt (epochs only need to grow, not to count owners).
        self._owner = self._retrying("claim", lambda: self._state.claim(shard_id, self._worker))
        log.info(
            "shard initialized",
            extra={"shard_id": shard_id, "epoch": self._owner.epoch, "worker": self._worker},
        )

    def process_records(self, records: Sequence[StreamRecord], checkpointer: Checkpointer) -> None:
        # Per record nothing raises (consumer/pipeline.py turns failures into dead letters):
        # what can still end the process here is the state store or a sink, after retries.
        decoded = [(record, decode(record.data)) for record in records]
        self._load_unknown(t.symbol for _, t in decoded if isinstance(t, Tick))
        for record, tick in decoded:
            self._apply(record, tick)
        if self._due():
            touched = self._pending.touched
            self.commit(checkpointer, self._pending.last_sequence)
            # Only after a commit: every window in memory is saved now, so dropping one loses
            # nothing (consumer/residency.py).
            self._residency.used(touched)
            self._residency.evict(self._pending.touched, self._forget)

    @property
    def lease_gone(self) -> bool:
        """Whether this processor lost its shard (leaseLost, a refused checkpoint, a fence):
        it writes nothing more."""
        return self._lease_lost

    def lease_lost(self) -> None:
        # Another worker owns the shard now and resumes from the last checkpoint: what is
        # buffered here will be produced again there. Writing it could race the new owner;
        # from here on nothing is written (commit refuses).
        dropped = len(self._pending.rows)
        self._pending = _Pending()
        self._lease_lost = True
        log.warning("lease lost", extra={"shard_id": self.shard_id, "dropped_rows": dropped})

    def shard_ended(self, checkpointer: Checkpointer) -> None:
        # The checkpoint at SHARD_END is required: without it the child shards never start.
        self.commit(checkpointer, None)
        log.info("shard ended", extra={"shard_id": self.shard_id})

    def shutdown_requested(self, checkpointer: Checkpointer) -> None:
        # ECS allows 30 s after SIGTERM: one flush of at most one batch, then return.
        self.commit(checkpointer, self._pending.last_sequence)
        log.info("shutdown requested", extra={"shard_id": self.shard_id})

    # -- applying records ------------------------------------------------------------------

    def _load_unknown(self, symbols: Iterable[str]) -> None:
        unknown = {s for s in symbols if s not in self._known}
        if not unknown:
            return
        saved = self._retrying("state load", lambda: self._state.load(unknown))
        self._known |= unknown
        self._residency.loaded(unknown)
        for symbol, state in saved.items():
            self.pipeline.enricher.windows[symbol] = state.window
            if state.shard_id == self.shard_id:
                self._replayed[symbol] = int(state.sequence_number)

    def _forget(self, symbol: str) -> None:
        """Drop a symbol whose window is saved; its next record loads it again."""
        self._known.discard(symbol)
        self._replayed.pop(symbol, None)
        self.pipeline.enricher.windows.pop(symbol, None)
        self._state.forget((symbol,))

    def _replay_positions(self, symbols: Collection[str]) -> dict[str, int]:
        """``ReplayPositions`` for the lake: loads the state of symbols not seen yet. Called
        from the lake's threads, one per object being written, hence the lock."""
        with self._symbols_lock:
            self._load_unknown(symbols)
            return {s: self._replayed[s] for s in symbols if s in self._replayed}

    def _apply(self, record: StreamRecord, tick: Parsed) -> None:
        pending = self._pending
        sequence = int(record.sequence_number)
        arrival = datetime.fromtimestamp(record.arrival_millis / 1000, UTC)
        pending.records += 1
        pending.last_sequence = record.sequence_number
        _first(
            pending.dead_letter_keys,
            _EPOCH_ORDINAL + record.arrival_millis // _DAY_MILLIS,
            sequence,
        )
        if type(tick) is Tick:
            _first(pending.tick_keys, tick.ts.toordinal(), sequence)  # ts is UTC
            position = self._replayed.get(tick.symbol)
            if position is not None and sequence <= position:
                # Applied before a crash or lease move (its state was saved): silently skip.
                self.skipped_replays += 1
                return
        outcome = self.pipeline.apply_parsed(
            record.data, tick, self.shard_id, record.sequence_number, arrival
        )
        if type(outcome) is EnrichedRow:
            pending.rows.append(outcome)
            pending.touched[outcome.symbol] = record.sequence_number
        elif type(outcome) is DeadLetter:
            pending.dead_letters.append(outcome)
            # Late, future or failed: the window did not move, the position did.
            if outcome.symbol is not None:
                pending.touched[outcome.symbol] = record.sequence_number
        elif type(tick) is Tick:  # an exact duplicate, dropped: the position moved
            pending.touched[tick.symbol] = record.sequence_number

    def _due(self) -> bool:
        return (
            self._pending.records >= self._policy.records
            or self._clock() - self._last_commit >= self._policy.seconds
        )

    # -- the commit sequence ---------------------------------------------------------------

    def commit(self, checkpointer: Checkpointer, sequence_number: str | None) -> None:
        """Make everything applied so far durable, then checkpoint. The order is the
        delivery guarantee (docs/design.md, "Delivery: effectively once"); a crash between any
        two steps leaves a state that a replay from the previous checkpoint repairs."""
        pending = self._pending
        owner = self._ownership()
        # 0. Still the shard's owner? One consistent read per flush: a worker that lost the
        #    lease (paused past the hand-off timeout, say) stops before writing anything.
        #    Not what makes it safe - the fenced writes below are - but it ends a stale
        #    owner's commit at the first step instead of the third.
        if not self._retrying("fence check", lambda: self._state.holds(owner)):
            raise FencedOut(owner, "commit")
        # 1 and 2, side by side: rows to DynamoDB, keyed by symbol + ts, so a replay rewrites
        #    the same items; and the batch's Parquet objects (ticks and dead letters), whose
        #    names depend only on the batch's records, so a replay rewrites them too
        #    (consumer/sinks/lake.py). Neither reads what the other writes and both are
        #    idempotent, so their order does not matter - a crash during either replays both
        #    - and overlapping them takes the lake's round trips off the commit's time. Both
        #    must be done before step 3.
        lake_write = self._start_lake_write(pending, owner)
        try:
            if pending.rows:
                self._retrying("rows", lambda: self._rows.write_rows(pending.rows), owner)
        finally:
            # Waited for even when the rows failed: nothing of a commit may still be writing
            # once the commit has ended (the process may be about to exit for a replay).
            lake_error = None if lake_write is None else lake_write.exception()
        if lake_error is not None:
            raise lake_error
        # 3. State of the touched symbols, each with its last applied position. Only after
        #    the sinks: a saved position means "its rows are written" - a replay skips
        #    records at or before it, so saving earlier would lose them. Fenced: one
        #    transaction per 99 symbols that checks this processor's epoch first.
        if pending.touched:
            windows = self.pipeline.enricher.windows
            states = {
                symbol: SavedState(windows[symbol], self.shard_id, sequence)
                for symbol, sequence in pending.touched.items()
                if symbol in windows
            }
            self._retrying("state", lambda: self._state.save(states, owner), owner)
        # 4. Checkpoint last: the daemon resumes after it, so everything before it must
        #    already be durable.
        self._checkpoint(checkpointer, sequence_number)
        log.info(
            "committed",
            extra={
                "shard_id": self.shard_id,
                "records": pending.records,
                "rows": len(pending.rows),
                "dead_letters": len(pending.dead_letters),
                # Counted here for the dashboard and the dead-letter alarm (CloudWatch metric
                # filters on this line; deploy/monitoring.py).
                "anomalies": sum(1 for row in pending.rows if row.anomaly),
                "symbols": len(pending.touched),
                "checkpoint": sequence_number or "SHARD_END",
            },
        )
        self.committed_records += pending.records
        self.last_commit_at = time.time()
        self._pending = _Pending()
        self._last_commit = self._clock()

    def _start_lake_write(self, pending: _Pending, owner: Ownership) -> Future[None] | None:
        """Step 2 of the commit on the lake's own thread; None when the batch has no record."""
        if not (pending.tick_keys or pending.dead_letter_keys):
            return None
        batch = LakeBatch(
            shard_id=self.shard_id,
            rows=pending.rows,
            dead_letters=pending.dead_letters,
            tick_keys=_by_date(pending.tick_keys),
            dead_letter_keys=_by_date(pending.dead_letter_keys),
            # Called on the lake's thread; it touches only the processor's symbol state,
            # which the rows step (on this thread meanwhile) does not.
            replayed=self._replay_positions,
            owner=owner,
            still_owner=lambda: self._state.holds(owner),
        )
        return self._lake_thread.submit(
            self._retrying, "lake", lambda: self._lake.write_batch(batch), owner
        )

    def _ownership(self) -> Ownership:
        if self._owner is None:
            raise ConsumerError("commit before initialize: the shard was never claimed")
        if self._lease_lost:
            raise LeaseGone(f"{self.shard_id}: lease lost, nothing more is written")
        return self._owner

    def _retrying(self, step: str, call: Callable[[], T], owner: Ownership | None = None) -> T:
        """``call()``, tried again while it fails in a way waiting can cure (``is_transient``)
        and the SINK_RETRY budget lasts; before each retry, ``owner`` must still hold the
        shard. Anything else, or the budget spent, is raised (the process exits; the
        replacement resumes at the last checkpoint)."""
        delays = self._sink_retry.delays(self._clock)
        attempt = 1
        while True:
            try:
                return call()
            except Exception as error:
                delay = next(delays, None) if is_transient(error) else None
                if delay is None:
                    raise
                log.warning(
                    STEP_RETRIED,
                    extra={
                        "shard_id": self.shard_id,
                        "step": step,
                        "error": f"{type(error).__name__}: {error}"[:300],
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                    },
                )
            self._sleep(delay)
            attempt += 1
            if owner is not None and not self._still_holds(owner):
                raise FencedOut(owner, f"{step} retry")

    def _still_holds(self, owner: Ownership) -> bool:
        """False only when the fence says another processor owns the shard; a fence read
        that fails (the same storm) leaves the answer to the retried step's own fence."""
        try:
            return self._state.holds(owner)
        except Exception as error:
            if is_transient(error):
                return True
            raise

    def _checkpoint(self, checkpointer: Checkpointer, sequence_number: str | None) -> None:
        delays = CHECKPOINT_RETRY.delays(self._clock)
        attempt = 1
        while True:
            try:
                checkpointer.checkpoint(sequence_number)
                return
            except CheckpointFailed as failure:
                if failure.error == "ShutdownException":
                    # The lease is gone; retrying cannot succeed. The next owner replays from
                    # the previous checkpoint, and the sinks make that harmless.
                    raise LeaseGone(f"{self.shard_id}: lease lost at checkpoint") from failure
                delay = next(delays, None) if failure.error in RETRYABLE_CHECKPOINT_ERRORS else None
                if delay is None:  # not retryable (InvalidStateException: no lease table), or
                    raise  # the budget is spent: exit, the replacement resumes from the last one
                log.warning(
                    "checkpoint refused, retrying",
                    extra={
                        "shard_id": self.shard_id,
                        "error": failure.error,
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                    },
                )
                self._sleep(delay)
                attempt += 1
