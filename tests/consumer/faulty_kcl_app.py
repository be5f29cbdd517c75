"""The consumer's per-shard executable with the crash tests' fault injection: the daemon runs
this module (``STOCKPIPE_PROCESSOR_MODULE=tests.consumer.faulty_kcl_app``) instead of
``consumer.kcl_app``, which it wraps; ``STOCKPIPE_FAULT_INJECTION`` says where to die
(tests/consumer/faults.py)."""

from __future__ import annotations

import os

from consumer import kcl_app
from consumer.sinks.types import LakeSink, RowSink, StateStore
from tests.consumer.faults import FaultySinks


def _wrap(rows: RowSink, lake: LakeSink, state: StateStore) -> tuple[RowSink, LakeSink, StateStore]:
    spec = os.environ.get("STOCKPIPE_FAULT_INJECTION")
    if not spec:
        return rows, lake, state
    faulty = FaultySinks(spec, rows, lake, state)
    return faulty, faulty, faulty


if __name__ == "__main__":
    kcl_app.run(wrap_sinks=_wrap)
