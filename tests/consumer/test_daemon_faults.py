"""AWS faults under the real MultiLangDaemon (docs/design.md, "Poison and faults"): while the
consumer drains the stream, the local proxy (stockpipe/local/proxy.py) throttles, fails with
500/503, holds and resets the sink calls its children make — DynamoDB BatchWriteItem, the
state store's PutItem, S3 PutObject and GetObject. When the faults end the shards catch up
(``--until-idle`` returns only with every shard at its tip), and DynamoDB, the Parquet rows and
the dead letters equal what ``stockpipe process`` makes of the same file: no row, object or
dead letter lost or doubled, and no worker died (one child's exit would stop the daemon).

The oracle is the file pipeline, run without AWS; the proxy's own counts prove the faults
really happened."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

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
)

pytestmark = pytest.mark.slow

# Windows count from the moment the schedule is loaded, just before the consumer starts; the
# daemon needs 15-30 s to lease its shards, so the faults cover the whole drain.
FAULTS: dict[str, Any] = {
    "seed": 11,
    "rules": [
        {"name": "rows-throttled", "fault": "throttle", "service": "dynamodb",
         "operation": "BatchWriteItem", "probability": 0.3, "start": 0, "stop": 75},
        {"name": "rows-500", "fault": "500", "service": "dynamodb",
         "operation": "BatchWriteItem", "probability": 0.1, "start": 0, "stop": 75},
        {"name": "state-throttled", "fault": "throttle", "service": "dynamodb",
         "operation": "PutItem", "probability": 0.2, "start": 0, "stop": 75},
        {"name": "s3-slowdown", "fault": "throttle", "service": "s3",
         "operation": "PutObject", "probability": 0.3, "start": 0, "stop": 75},
        {"name": "s3-503", "fault": "503", "service": "s3",
         "operation": "GetObject", "probability": 0.2, "start": 0, "stop": 75},
        {"name": "rows-held", "fault": "timeout", "service": "dynamodb",
         "operation": "BatchWriteItem", "probability": 0.05, "hold_seconds": 2,
         "start": 0, "stop": 75},
        {"name": "s3-reset", "fault": "reset", "service": "s3", "operation": "PutObject",
         "probability": 0.05, "start": 0, "stop": 75},
    ],
}  # fmt: skip


def _proxy(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(
        [*STOCKPIPE, "local", "proxy", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_sink_faults_lose_and_double_nothing(tmp_path: Path) -> None:
    ticks = input_file(tmp_path / "ticks.jsonl")
    expected, expected_dead = expected_outputs(ticks, tmp_path)
    quiet = tmp_path / "no-faults.json"
    quiet.write_text(json.dumps({"rules": []}))
    schedule = tmp_path / "faults.json"
    schedule.write_text(json.dumps(FAULTS))
    with local_stack(
        tmp_path / "local",
        STOCKPIPE_FLUSH_RECORDS="100",
        STOCKPIPE_FLUSH_SECONDS="2",
        STOCKPIPE_LOCAL_FAULTS=str(quiet),  # the proxy runs, injecting nothing yet
    ) as env:
        cli(["produce", "--source", "file", "--input", str(ticks)], env)
        _proxy(["faults", "--load", str(schedule)], env)
        cli(
            ["consume", "--until-idle", "6", "--workdir", str(tmp_path / "consumer")],
            env,
            timeout=600,
        )
        stats = json.loads(_proxy(["stats"], env))

        want = Counter(content(r) for r in expected)
        assert Counter(content(r) for r in dynamodb_rows(env)) == want
        objects = lake(env, "ticks/")
        assert Counter(content(r) for rows in objects.values() for r in rows) == want
        letters = [d for rows in lake(env, "dead-letter/").values() for d in rows]
        assert Counter((d["reason"], d["raw"]) for d in letters) == Counter(
            (d["reason"], d["raw"]) for d in expected_dead
        )

    # The faults did happen, of every kind the schedule names.
    by_kind = stats["faults_by_kind"]
    print("faults injected:", json.dumps(stats["faults_by_rule"], sort_keys=True))
    assert by_kind.get("throttle", 0) >= 3, stats
    assert by_kind.get("500", 0) + by_kind.get("503", 0) >= 1, stats
