"""The main job (``make run``): the whole pipeline on the local stack, end to end.

local up -> the bundled real dataset (its last 600 ticks, plus a few broken records) produced
into Kinesis -> the consumer under the real MultiLangDaemon until the stream is idle -> rows
in DynamoDB and Parquet in S3 -> a summary -> local down.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import SecretStr

from consumer.status import read_statuses
from core import aws
from core.contracts.tick import encode_tick
from core.settings import Settings
from producer.datasets import load_dataset

_BROKEN = (
    b"this is not json",
    b'{"symbol":"AAPL","ts":"2013-03-01T16:00:00","price":430.47}',
    b'{"symbol":"MSFT","ts":"2013-03-04T21:00:00Z","price":-1}',
)
STOCKPIPE = [sys.executable, "-m", "stockpipe"]


def _cli(args: list[str], env: dict[str, str], capture: bool = False) -> str:
    done = subprocess.run(
        [*STOCKPIPE, *args], env=env, check=True, text=True, capture_output=capture
    )
    return done.stdout if capture else ""


def local_session(env: Mapping[str, str]) -> Any:
    """A session for the local stack that ``env`` (the subprocesses' environment) points at."""
    return aws.session(
        Settings(
            region=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SecretStr(env["AWS_SECRET_ACCESS_KEY"]),
        )
    )


def start_worker(
    env: Mapping[str, str],
    base: Path,
    name: str,
    until_idle: str | None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """One worker of a local fleet: `stockpipe consume` with its own work directory under
    ``base`` and worker id ``name``; every worker shares ``base/status``, so --until-idle waits
    for the whole application. The worker gets a process group of its own (daemon and shard
    processes together): one signal pauses, resumes or kills all of it, as a stopped task."""
    command = [
        *STOCKPIPE,
        "consume",
        "--workdir",
        str(base / name),
        "--worker-id",
        name,
        "--status-dir",
        str(base / "status"),
    ]
    if until_idle is not None:
        command += ["--until-idle", until_idle]
    return subprocess.Popen(command, env=dict(env), cwd=cwd, start_new_session=True)


@contextmanager
def local_pipeline(shards: int = 2, **settings: str) -> Iterator[dict[str, str]]:
    """A local stack of its own (fresh KCL application name: no checkpoints of an earlier run),
    up for the duration, and the environment that points every command at it."""
    env = {
        **os.environ,
        "STOCKPIPE_LOCAL_DIR": tempfile.mkdtemp(prefix="stockpipe-local-"),
        "STOCKPIPE_APPLICATION_NAME": f"stockpipe-consumer-{uuid.uuid4().hex[:8]}",
        **settings,
    }
    _cli(["local", "up", "--shards", str(shards)], env)
    try:
        for line in _cli(["local", "env"], env, capture=True).splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        yield env
    finally:
        _cli(["local", "down"], env)


def run_main_job(workdir: Path, ticks: int) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with local_pipeline(STOCKPIPE_FLUSH_SECONDS="2") as env:
        input_path = workdir / "stream-input.jsonl"
        with input_path.open("wb") as out:
            for tick in load_dataset()[-ticks:]:
                out.write(encode_tick(tick) + b"\n")
            for raw in _BROKEN:
                out.write(raw + b"\n")
        _cli(["produce", "--source", "file", "--input", str(input_path)], env)
        consumer_dir = workdir / "consumer"
        _cli(["consume", "--until-idle", "6", "--workdir", str(consumer_dir)], env)
        # The scheduled alert Lambda's code, run once over what the consumer wrote; the local
        # stack's SQS queue subscribed to the topic shows what on-call would have received.
        _cli(["alerts", "run-once"], env, capture=True)
        alerts = _cli(["alerts", "tail", "--json"], env, capture=True)
        (workdir / "alerts.jsonl").write_text(alerts)
        summary = _summary(env, consumer_dir, time.monotonic() - started)
        return summary + "\n" + _alerts_summary(alerts, workdir / "alerts.jsonl")


def _alerts_summary(tail_json: str, path: Path) -> str:
    signals: Counter[str] = Counter()
    example = ""
    for line in tail_json.splitlines():
        if not line.startswith("{"):
            continue
        envelope = json.loads(line)
        attributes = envelope.get("MessageAttributes", {})
        signals[attributes.get("signal", {}).get("Value", "?")] += 1
        if not example:
            example = envelope.get("Subject", "")
    counts = ", ".join(f"{k}={v}" for k, v in sorted(signals.items())) or "none"
    lines = [f"alerts (SNS -> local SQS): {counts}; all in {path}"]
    if example:
        lines.append(f"e.g. {example}")
    return "\n".join(lines)


def _summary(env: dict[str, str], consumer_dir: Path, elapsed: float) -> str:
    session = local_session(env)
    table = session.resource("dynamodb", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"]).Table(
        "stockpipe-rows"
    )
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    s3 = session.client("s3", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
    files: Counter[str] = Counter()
    parquet_rows = 0
    reasons: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="stockpipe-lake"):
        for obj in page.get("Contents", []):
            kind = obj["Key"].split("/")[0]
            files[kind] += 1
            body = s3.get_object(Bucket="stockpipe-lake", Key=obj["Key"])["Body"].read()
            table_ = pq.read_table(io.BytesIO(body))
            if kind == "ticks":
                parquet_rows += table_.num_rows
            else:
                reasons.update(table_.column("reason").to_pylist())
    per_symbol = Counter(i["symbol"] for i in items)
    anomalies = Counter(i["symbol"] for i in items if i["anomaly"])
    statuses = read_statuses(consumer_dir / "status")
    lag = max((s.millis_behind_latest or 0 for s in statuses), default=0)
    lines = [
        "",
        "stockpipe main job: local stack (moto + kinesis-local) -> Kinesis -> KCL daemon -> sinks",
        f"{'symbol':<8}{'rows':>6}{'anomalies':>11}",
        *(f"{s:<8}{per_symbol[s]:>6}{anomalies[s]:>11}" for s in sorted(per_symbol)),
        f"DynamoDB rows: {len(items)}; Parquet: {parquet_rows} rows in {files['ticks']} files",
        "dead letters: "
        + (", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "none")
        + f" in {files['dead-letter']} files",
        f"shards: {len(statuses)}; lag at stop: {lag} ms behind latest; "
        f"wall time {elapsed:.0f} s (daemon log: {consumer_dir / 'daemon.log'})",
    ]
    return "\n".join(lines)
