"""Fault injection for the crash tests: kill -9 the whole consumer (the daemon and every
child) at an exact point of the commit sequence. Enabled only by
``STOCKPIPE_FAULT_INJECTION=<point>@<commit number>`` (e.g. ``after_lake@3``); without it the
real sinks are used untouched. The daemon runs tests/consumer/faulty_kcl_app.py (setting
``STOCKPIPE_PROCESSOR_MODULE``) to get here: production code never imports this module.

Points: ``mid_rows`` (half of the batch's rows written), ``after_rows`` (rows written, no
Parquet), ``after_lake`` (Parquet written, no state), ``after_state`` (state saved, no
checkpoint).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Final

from consumer.errors import ConsumerError
from consumer.fencing import Ownership
from consumer.sinks.types import LakeBatch, LakeSink, RowSink, SavedState, StateStore
from core.contracts.row import EnrichedRow
from tests.consumer.fakes import DelegatingState

POINTS: Final = ("mid_rows", "after_rows", "after_lake", "after_state")


def _kill_everything() -> None:
    # The daemon and its children share one process group: a kill -9 of all of it, as a
    # crashed host or an OOM-killed task would look.
    os.killpg(os.getpgid(0), signal.SIGKILL)


class FaultySinks(DelegatingState):
    """Wraps the three sinks; counts commits (a commit always writes state last)."""

    def __init__(self, spec: str, rows: RowSink, lake: LakeSink, state: StateStore) -> None:
        super().__init__(state)
        point, _, number = spec.partition("@")
        if point not in POINTS or not number.isdigit():
            raise ConsumerError(
                f"STOCKPIPE_FAULT_INJECTION={spec!r}: expected POINT@N, POINT in {POINTS}"
            )
        self._point, self._at = point, int(number)
        self._rows, self._lake = rows, lake
        self._commit = 1

    def _due(self, point: str) -> bool:
        return self._point == point and self._commit == self._at

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        if self._due("mid_rows"):
            self._rows.write_rows(rows[: len(rows) // 2])
            _kill_everything()
        self._rows.write_rows(rows)
        if self._due("after_rows"):
            _kill_everything()

    def write_batch(self, batch: LakeBatch) -> None:
        self._lake.write_batch(batch)
        if self._due("after_lake"):
            _kill_everything()

    def save(self, states: Mapping[str, SavedState], ownership: Ownership) -> None:
        self.inner.save(states, ownership)
        if self._due("after_state"):
            _kill_everything()
        self._commit += 1
