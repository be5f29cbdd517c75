"""kill -9 of the daemon and all its children at exact points of the commit sequence (mid rows
write, after the Parquet write but before the state, after the state but before the
checkpoint), then a restart, again and again, then a clean run to the end: DynamoDB, every
Parquet row and the dead letters equal an uninterrupted run (``stockpipe process`` on the same
file) - nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.consumer.pipeline_support import (
    ROOT,
    STOCKPIPE,
    cli,
    content,
    dynamodb_rows,
    expected_outputs,
    input_file,
    lake,
    local_stack,
    session,
)

pytestmark = pytest.mark.slow
FAULTS = ("mid_rows@2", "after_lake@2", "after_state@2")


def _consume_until_killed(env: dict[str, str], fault: str, workdir: Path) -> None:
    started = time.monotonic()
    consumer = subprocess.Popen(
        [*STOCKPIPE, "consume", "--workdir", str(workdir)],
        env={
            **env,
            "STOCKPIPE_FAULT_INJECTION": fault,
            "STOCKPIPE_PROCESSOR_MODULE": "tests.consumer.faulty_kcl_app",
        },
        cwd=ROOT,
        start_new_session=True,  # its own process group: the fault kills all of it
    )
    try:
        code = consumer.wait(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(consumer.pid, signal.SIGKILL)
        raise
    assert code == -signal.SIGKILL, f"{fault}: the consumer was not killed (exit {code})"
    print(f"{fault}: killed after {time.monotonic() - started:.0f} s")


def _forget_dead_workers(env: dict[str, str]) -> None:
    """What time would do after a kill -9, sooner. KCL 3 keeps the dead worker's leader lock
    (item ``Leader`` of ``<app>-CoordinatorState``) for about two minutes, with no property to
    shorten it, and until its metrics in ``<app>-WorkerMetricStats`` go stale it may assign
    leases to the dead worker. No worker is alive at this point, so deleting both is what
    their expiry would leave. Leader election is the KCL's business, not this test's."""
    client = session(env).client("dynamodb", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
    app = env["STOCKPIPE_APPLICATION_NAME"]
    for table, only in ((f"{app}-CoordinatorState", "Leader"), (f"{app}-WorkerMetricStats", None)):
        schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
        key_names = [k["AttributeName"] for k in schema]
        for item in client.scan(TableName=table)["Items"]:
            if only is None or any(value == {"S": only} for value in item.values()):
                client.delete_item(TableName=table, Key={k: item[k] for k in key_names})


def test_killed_at_every_commit_step_then_finished_equals_uninterrupted(tmp_path: Path) -> None:
    ticks = input_file(tmp_path / "ticks.jsonl")
    expected, expected_dead = expected_outputs(ticks, tmp_path)
    with local_stack(
        tmp_path / "local",
        STOCKPIPE_FLUSH_RECORDS="30",
        STOCKPIPE_FLUSH_SECONDS="1",
        STOCKPIPE_KCL_MAX_RECORDS="20",
    ) as env:
        cli(["produce", "--source", "file", "--input", str(ticks)], env)
        rows_seen = []
        for fault in FAULTS:
            _consume_until_killed(env, fault, tmp_path / "consumer")
            rows_seen.append(len(dynamodb_rows(env)))
            _forget_dead_workers(env)
        assert 0 < rows_seen[0] < len(expected), "the first kill came mid-stream"
        cli(
            ["consume", "--until-idle", "6", "--workdir", str(tmp_path / "consumer")],
            env,
            timeout=600,
        )

        want = Counter(content(r) for r in expected)
        assert Counter(content(r) for r in dynamodb_rows(env)) == want
        objects = lake(env, "ticks/")
        got = Counter(content(r) for rows in objects.values() for r in rows)
        assert got - want == Counter(), "rows doubled or invented in the lake"
        assert want - got == Counter(), "rows lost from the lake"
        letters = [d for rows in lake(env, "dead-letter/").values() for d in rows]
        assert Counter((d["reason"], d["raw"]) for d in letters) == Counter(
            (d["reason"], d["raw"]) for d in expected_dead
        )
