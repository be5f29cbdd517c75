"""Exceptions of the consumer package: one base class, each carrying what a reader needs."""

from __future__ import annotations

from core.errors import StockpipeError


class ConsumerError(StockpipeError):
    """Base class of every error raised by ``consumer``."""


class LeaseGone(ConsumerError):
    """The shard's lease is no longer this worker's (the daemon refused a checkpoint with
    ShutdownException, or a newer owner's epoch fenced a write): write and checkpoint nothing
    more (consumer/kcl_app.py says why the process does not exit)."""


class SinkBusy(ConsumerError):
    """A sink gave up on a call that waiting can cure (its store stayed throttled through the
    sink's own retries): the commit step is retried (consumer/retry.py)."""
