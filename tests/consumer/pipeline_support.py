"""Shared by the tests that run the real MultiLangDaemon on the local stack: the CLI as a
subprocess, a fresh stack, the test input, and reading back DynamoDB and the Parquet lake."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from core.contracts.tick import encode_tick, format_ts
from producer.datasets import load_dataset
from stockpipe.main_job import local_session

ROOT = Path(__file__).resolve().parents[2]
STOCKPIPE = [sys.executable, "-m", "stockpipe"]
CONTENT = ("symbol", "ts", "price", "prev_price", "change", "change_pct", "anomaly", "ma_4")


@contextmanager
def local_stack(directory: Path, shards: int = 2, **settings: str) -> Iterator[dict[str, str]]:
    """A local stack of its own, with fresh names (a lease table of an earlier run would
    resume from its checkpoints), and the environment that points everything at it."""
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "STOCKPIPE_LOCAL_DIR": str(directory),
        "STOCKPIPE_STREAM_NAME": f"ticks-{run}",
        "STOCKPIPE_APPLICATION_NAME": f"consumer-{run}",
        **settings,
    }
    subprocess.run(
        [*STOCKPIPE, "local", "up", "--shards", str(shards)], env=env, check=True, cwd=ROOT
    )
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


def input_file(path: Path) -> Path:
    """The last 600 real ticks (5 symbols, 120 trading days) with bad records mixed in: not
    JSON, a naive timestamp, a lower-case symbol, an exact duplicate and a late tick."""
    ticks = load_dataset()[-600:]
    lines = [encode_tick(t).decode() for t in ticks]
    lines.insert(50, "not json")
    lines.insert(120, '{"symbol":"AAPL","ts":"2012-11-01T16:00:00","price":1}')
    lines.insert(200, json.dumps({"symbol": "msft", "ts": "2012-12-03T21:00:00Z", "price": 1}))
    lines.insert(300, lines[299])
    lines.append(encode_tick(ticks[10]).decode())
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(args: list[str], env: dict[str, str] | None = None, **kwargs: Any) -> None:
    subprocess.run([*STOCKPIPE, *args], env=env, cwd=ROOT, check=True, **kwargs)


def expected_outputs(ticks: Path, workdir: Path) -> tuple[list[Any], list[Any]]:
    """``stockpipe process`` over the same file: the oracle the stream run must equal."""
    rows, dead = workdir / "expected-rows.jsonl", workdir / "expected-dead.jsonl"
    cli(["process", "--input", str(ticks), "--output", str(rows), "--dead-letter", str(dead)])
    return (
        [json.loads(x) for x in rows.read_text().splitlines()],
        [json.loads(x) for x in dead.read_text().splitlines()],
    )


def content(record: dict[str, Any]) -> tuple[Any, ...]:
    """A row's content, provenance left out, numbers compared as exact decimals."""

    def norm(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, Decimal | int | float):
            return Decimal(str(value)).normalize()
        return value

    return tuple(norm(record.get(name)) for name in CONTENT)


def session(env: dict[str, str]) -> Any:
    return local_session(env)


def dynamodb_rows(env: dict[str, str]) -> list[dict[str, Any]]:
    table = (
        session(env)
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


def lake(env: dict[str, str], prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every Parquet object under ``prefix``, read back: key -> rows."""
    s3 = session(env).client("s3", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
    objects: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="stockpipe-lake", Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket="stockpipe-lake", Key=obj["Key"])["Body"].read()
            rows = pq.read_table(io.BytesIO(body)).to_pylist()
            for row in rows:
                if "price" in row:
                    row["ts"] = format_ts(row["ts"])
            objects[obj["Key"]] = rows
    return objects


def assert_equals_file_pipeline(
    env: dict[str, str], expected: list[Any], expected_dead: list[Any]
) -> None:
    """The end of every run under the real daemon: DynamoDB rows, every Parquet row (each
    object holding only its own date) and the dead letters equal what ``stockpipe process``
    made of the same input (``expected_outputs``), none lost, none doubled."""
    want = Counter(content(r) for r in expected)
    assert Counter(content(r) for r in dynamodb_rows(env)) == want
    objects = lake(env, "ticks/")
    got = Counter(content(r) for rows in objects.values() for r in rows)
    assert got - want == Counter(), "rows doubled or invented in the lake"
    assert want - got == Counter(), "rows lost from the lake"
    for key, rows in objects.items():
        assert {r["ts"][:10] for r in rows} == {key.split("/")[1].removeprefix("dt=")}, key
    letters = [d for rows in lake(env, "dead-letter/").values() for d in rows]
    assert Counter((d["reason"], d["raw"]) for d in letters) == Counter(
        (d["reason"], d["raw"]) for d in expected_dead
    )
