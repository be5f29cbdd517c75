"""Fencing: why a worker that has lost a shard's lease can never replace, delete or hide what
the shard's current owner wrote.

The problem. KCL moves a lease when a worker stops renewing it (``failoverTimeMillis``) or
when a graceful hand-off times out (``gracefulLeaseHandoffTimeoutMillis``). The old owner's
record processor is not stopped by that: a process paused by a GC, a slow commit or a SIGSTOP
resumes in the middle of its commit and writes. Both owners start their batches at the same
checkpoint, so they compute the same object keys and the same state items. KCL fences only
its own checkpoint (a conditional update on the lease); every other write is ours to fence.

The mechanism: an owner epoch per shard, claimed by every processor at ``initialize``.

1. **Claim.** ``initialize`` increments the shard's epoch in one conditional update of a fence
   item in the state table (key ``#shard#<shardId>``, no window, so the alert Lambda skips
   it) and keeps the new value: a processor that starts later always holds a larger epoch.
   The claim never fails; the newest claimant is the owner.
2. **State** (``consumer/sinks/state_store.py``): every save is a DynamoDB transaction whose
   first action is a ``ConditionCheck`` that the fence item still holds *this processor's*
   epoch. DynamoDB evaluates the condition and applies the puts atomically, so once a newer
   processor has claimed, no save of an older one can land - however long it was paused,
   even between reading and writing. Ordering is by ownership, not by sequence number: a
   stale owner that read further ahead cannot win, and the legitimate owner is never refused
   because a stale one got ahead.
3. **Lineage** (reshards): a state item also carries ``rev``, a token unique to the write
   (shard, epoch, position). A save keeps the item's shard only if the item is new, already
   this shard's, or *exactly the revision this processor loaded* - so a child shard takes a
   symbol over from its parent (or both parents after a merge: each symbol has one) once,
   and from then on no write conditioned on the parent's revision matches. A parent's
   stale owner is refused twice over: by the parent's epoch and by the revision.
4. **Lake objects** (``consumer/sinks/lake.py``): every PUT is conditional on what the writer
   just read - ``If-None-Match: *`` when the key was absent, ``If-Match: <ETag>`` when it
   rewrites an object - and every delete is ``If-Match``. Each object's Parquet footer names
   the writer's shard and epoch (so two owners' bytes, hence ETags, always differ), and a
   writer that reads an object of a *newer* epoch stops. A writer whose condition fails
   (412, or 409 for a concurrent conditional write) re-checks its epoch: the current owner
   re-reads and rewrites (the other writer was stale), a stale one stops.
5. **Rows** (DynamoDB) need no fence: keyed by symbol + ts and computed from the same
   records in the same order from a state that was current when loaded, a stale owner
   writes the same items the current owner writes.
6. **Checkpoint**: KCL's own (``ShutdownException`` for a lost lease).

Why this is sufficient against a stale owner paused mid-commit (SIGSTOP) that resumes after
the new owner has written:

- Its state save cannot land (2): the transaction's check sees the new epoch. It stops there
  (``FencedOut``) before checkpointing, so it writes at most the objects of the one batch in
  flight, which started at the checkpoint the new owner also starts from.
- Its lake write cannot replace the new owner's object (4). If it read before the new owner
  wrote, its ``If-Match``/``If-None-Match`` fails - the new owner's write changed the ETag -
  and it finds it lost the epoch. If it reads after, it sees the newer epoch in the footer
  and stops. If it writes *before* the new owner reads (an object of the in-flight batch),
  the new owner reads that object like one left by a crash: it keeps only the rows covered
  by state saved before its own claim (the only state the stale owner could save) and
  rewrites the rest itself. It always does: the stale batch started at the new owner's
  checkpoint, so each of its keys - per date, the first record of that date after the
  checkpoint - is a key the new owner computes too (``consumer/sinks/lake.py``).
- A stale owner whose processor was started *after* the current one (it was paused before
  its own claim) becomes the epoch holder; the KCL owner's next save is then refused, it
  writes nothing more and, since its daemon goes on sending records, exits after
  ``LEASE_GONE_GRACE_S`` (consumer/kcl_app.py); the MultiLangDaemon then stops the worker,
  and whichever worker takes the lease claims again and continues from the checkpoint.
  Safety holds throughout: whoever holds the epoch writes, the other stops.

What the local endpoint honours (checked in moto 5.2's ``s3/responses.py``): ``If-Match``
and ``If-None-Match: *`` on PutObject, ``If-Match`` on DeleteObject, and DynamoDB
transactions with ``ConditionCheck``. But moto checks a condition and then writes, and
another thread's write can land in between (racing ``If-None-Match: *`` PUTs had two
winners); S3 and DynamoDB do both in one step. So the local stack's moto server runs checked
writes one at a time (``stockpipe/local/moto_server.py``), and the in-process tests
(``tests/consumer/sinks/test_fencing.py``), which force every interleaving a real run
cannot, give moto the same atomicity (``tests/consumer/sinks/fleet_support.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consumer.errors import LeaseGone

FENCE_KEY_PREFIX: Final = "#shard#"
# Parquet footer key naming the writer of an object: "<shard id> <epoch>".
WRITER_METADATA_KEY: Final = b"stockpipe.writer"


@dataclass(frozen=True, slots=True)
class Ownership:
    """A processor's claim on a shard: the epoch it got at ``initialize``."""

    shard_id: str
    epoch: int
    worker: str = ""

    def writer(self) -> bytes:
        return f"{self.shard_id} {self.epoch}".encode()


def fence_key(shard_id: str) -> str:
    return f"{FENCE_KEY_PREFIX}{shard_id}"


def writer_epoch(metadata: dict[bytes, bytes] | None, shard_id: str) -> int:
    """The epoch of an object's writer if it was this shard's; 0 for objects written before
    fencing (or by another shard, which never share a key)."""
    shard, _, epoch = (metadata or {}).get(WRITER_METADATA_KEY, b"").decode().partition(" ")
    return int(epoch) if shard == shard_id and epoch.isdigit() else 0


class FencedOut(LeaseGone):
    """A newer processor has claimed this shard: this one must stop writing at once, and
    stop without a checkpoint (the new owner replays from the last one)."""

    def __init__(self, ownership: Ownership, what: str) -> None:
        super().__init__(
            f"{ownership.shard_id}: epoch {ownership.epoch} is no longer the owner ({what})"
        )
        self.ownership = ownership
