"""The consumer under the real Java MultiLangDaemon, against the local stack (moto server +
kinesis-local on 127.0.0.1): real ticks plus bad records go in through `stockpipe produce`,
`stockpipe consume --until-idle` runs the daemon, and the DynamoDB rows, the Parquet rows (all
files read back) and the dead letters must equal what `stockpipe process` makes of the same
file - the independent oracle here is the file pipeline, run without AWS."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from producer.datasets import load_dataset
from producer.tick import encode_tick, format_ts

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STOCKPIPE = [sys.executable, "-m", "stockpipe"]
CONTENT = ("symbol", "ts", "price", "prev_price", "change", "change_pct", "anomaly", "ma_4")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from stockpipe.local.stack import KINESIS_MOCK_MAIN

    if not KINESIS_MOCK_MAIN.is_file():
        pytest.fail("kinesis-local is not installed: run `make setup`")
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "STOCKPIPE_LOCAL_DIR": str(tmp_path_factory.mktemp("local")),
        # Fresh names: a lease table of an earlier run would resume from its checkpoints.
        "STOCKPIPE_STREAM_NAME": f"ticks-{run}",
        "STOCKPIPE_APPLICATION_NAME": f"consumer-{run}",
        "STOCKPIPE_FLUSH_RECORDS": "150",
        "STOCKPIPE_FLUSH_SECONDS": "2",
    }
    subprocess.run([*STOCKPIPE, "local", "up", "--shards", "2"], env=env, check=True, cwd=ROOT)
    try:
        printed = subprocess.run(
            [*STOCKPIPE, "local", "env"], env=env, check=True, capture_output=True, text=True
        ).stdout
        for line in printed.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        yield env
    finally:
        subprocess.run([*STOCKPIPE, "local", "down"], env=env, check=False, cwd=ROOT)


def _input_file(path: Path) -> Path:
    ticks = load_dataset()[-600:]  # the last months: 5 symbols, 120 trading days
    lines = [encode_tick(t).decode() for t in ticks]
    lines.insert(50, "not json")
    lines.insert(120, '{"symbol":"AAPL","ts":"2012-11-01T16:00:00","price":1}')  # naive
    lines.insert(200, json.dumps({"symbol": "msft", "ts": "2012-12-03T21:00:00Z", "price": 1}))
    lines.insert(300, lines[299])  # an exact duplicate
    lines.append(encode_tick(ticks[10]).decode())  # late
    path.write_text("\n".join(lines) + "\n")
    return path


def _content(record: dict[str, Any]) -> tuple[Any, ...]:
    def norm(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, Decimal | int | float):
            return Decimal(str(value)).normalize()
        return value

    return tuple(norm(record.get(name)) for name in CONTENT)


def _session(env: dict[str, str]) -> Any:
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )


def _dynamodb_rows(env: dict[str, str]) -> list[dict[str, Any]]:
    table = (
        _session(env)
        .resource("dynamodb", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
        .Table("stockpipe-rows")
    )
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _parquet(env: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    s3 = _session(env).client("s3", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
    rows: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="stockpipe-lake", Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket="stockpipe-lake", Key=obj["Key"])["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def test_daemon_run_equals_the_file_pipeline(stack: dict[str, str], tmp_path: Path) -> None:
    ticks = _input_file(tmp_path / "ticks.jsonl")
    subprocess.run(
        [*STOCKPIPE, "produce", "--source", "file", "--input", str(ticks)],
        env=stack,
        check=True,
        cwd=ROOT,
    )
    consumed = subprocess.run(
        [*STOCKPIPE, "consume", "--until-idle", "6", "--workdir", str(tmp_path / "consumer")],
        env=stack,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert consumed.returncode == 0

    subprocess.run(
        [
            *STOCKPIPE,
            "process",
            "--input",
            str(ticks),
            "--output",
            str(tmp_path / "rows.jsonl"),
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
        ],
        check=True,
        cwd=ROOT,
    )
    expected = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    expected_dead = [
        json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()
    ]
    assert len(expected) == 600 and len(expected_dead) == 4

    want = Counter(_content(r) for r in expected)
    dynamo = _dynamodb_rows(stack)
    assert Counter(_content(r) for r in dynamo) == want
    lake = _parquet(stack, "ticks/")
    for row in lake:
        row["ts"] = format_ts(row["ts"])
    assert Counter(_content(r) for r in lake) == want
    # Every Parquet object holds only its own date.
    letters = _parquet(stack, "dead-letter/")
    assert Counter((d["reason"], d["raw"]) for d in letters) == Counter(
        (d["reason"], d["raw"]) for d in expected_dead
    )
