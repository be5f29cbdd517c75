"""Drives the record processor over stdin/stdout exactly as the MultiLangDaemon does
(amazon-kclpy's line protocol): initialize, processRecords, checkpoint requests and the
daemon's replies (including errors), leaseLost, shardEnded, shutdownRequested."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.contracts.tick import encode_tick
from producer.datasets import load_dataset

CHILD = Path(__file__).with_name("protocol_child.py")
ROOT = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000007"
TICKS = load_dataset()[:8]


class Daemon:
    """The daemon's side of the protocol."""

    def __init__(self, outdir: Path, *extra: str) -> None:
        self.child = subprocess.Popen(
            [sys.executable, str(CHILD), str(outdir), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        self.protocol_lines: list[str] = []

    def send(self, message: dict[str, Any]) -> None:
        assert self.child.stdin is not None
        self.child.stdin.write(json.dumps(message) + "\n")
        self.child.stdin.flush()

    def receive(self) -> dict[str, Any] | None:
        """The child's next message; kclpy surrounds each with blank lines."""
        assert self.child.stdout is not None
        while True:
            line = self.child.stdout.readline()
            if not line:
                return None
            self.protocol_lines.append(line)
            if line.strip():
                message: dict[str, Any] = json.loads(line)  # anything else: protocol corrupted
                return message

    def expect_status(self, action: str) -> None:
        assert self.receive() == {"action": "status", "responseFor": action}

    def finish(self) -> tuple[int, str]:
        _, stderr = self.child.communicate(timeout=30)  # closes stdin: the daemon is gone
        return self.child.returncode, stderr


def _records(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "action": "record",
            "data": base64.b64encode(encode_tick(TICKS[i])).decode(),
            "partitionKey": TICKS[i].symbol,
            "sequenceNumber": str(1000 + i),
            "subSequenceNumber": 0,
            "approximateArrivalTimestamp": 1_700_000_000_000 + i,
        }
        for i in range(start, start + count)
    ]


def _initialize(daemon: Daemon) -> None:
    daemon.send(
        {
            "action": "initialize",
            "shardId": SHARD,
            "sequenceNumber": "TRIM_HORIZON",
            "subSequenceNumber": 0,
        }
    )
    daemon.expect_status("initialize")


def _process(daemon: Daemon, records: list[dict[str, Any]]) -> None:
    daemon.send({"action": "processRecords", "millisBehindLatest": 0, "records": records})


def _lines(path: Path) -> list[Any]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_full_lifecycle_with_a_throttled_checkpoint(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    _initialize(daemon)

    # Two records: below the flush size (3), so no checkpoint yet.
    _process(daemon, _records(0, 2))
    daemon.expect_status("processRecords")
    assert _lines(tmp_path / "rows.jsonl") == []

    # A third record reaches the flush size: rows, state, then a checkpoint at the last record.
    _process(daemon, _records(2, 1))
    request = daemon.receive()
    assert request == {"action": "checkpoint", "sequenceNumber": "1002", "subSequenceNumber": None}
    assert [r["sequence_number"] for r in _lines(tmp_path / "rows.jsonl")] == [
        "1000",
        "1001",
        "1002",
    ]
    assert _lines(tmp_path / "state.jsonl"), "state is saved before the checkpoint is asked"
    # The daemon answers with a throttling error: the processor backs off and asks again.
    daemon.send(
        {
            "action": "checkpoint",
            "sequenceNumber": "1002",
            "subSequenceNumber": 0,
            "error": "ThrottlingException",
        }
    )
    assert daemon.receive() == request
    daemon.send({"action": "checkpoint", "sequenceNumber": "1002", "subSequenceNumber": 0})
    daemon.expect_status("processRecords")

    # Two more records, then the shard ends: everything is flushed and the checkpoint carries
    # no sequence number (SHARD_END).
    _process(daemon, _records(3, 2))
    daemon.expect_status("processRecords")
    daemon.send({"action": "shardEnded"})
    assert daemon.receive() == {
        "action": "checkpoint",
        "sequenceNumber": None,
        "subSequenceNumber": None,
    }
    assert len(_lines(tmp_path / "rows.jsonl")) == 5
    daemon.send({"action": "checkpoint", "sequenceNumber": "SHARD_END", "subSequenceNumber": 0})
    daemon.expect_status("shardEnded")

    code, stderr = daemon.finish()
    assert code == 0
    assert "a stray print from a sink" in stderr  # redirected, not on the protocol stream
    assert all(not line.strip() or line.lstrip().startswith("{") for line in daemon.protocol_lines)
    # Logs are JSON lines on stderr.
    assert any(
        json.loads(x).get("message") == "committed"
        for x in stderr.splitlines()
        if x.startswith("{")
    )


def test_lease_lost_drops_the_buffer_without_a_checkpoint(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    _initialize(daemon)
    _process(daemon, _records(0, 2))
    daemon.expect_status("processRecords")
    daemon.send({"action": "leaseLost"})
    daemon.expect_status("leaseLost")  # no checkpoint request before it
    code, _ = daemon.finish()
    assert code == 0
    assert _lines(tmp_path / "rows.jsonl") == []


def test_shutdown_requested_flushes_and_checkpoints(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    _initialize(daemon)
    _process(daemon, _records(0, 2))
    daemon.expect_status("processRecords")
    daemon.send({"action": "shutdownRequested"})
    assert daemon.receive() == {
        "action": "checkpoint",
        "sequenceNumber": "1001",
        "subSequenceNumber": None,
    }
    assert len(_lines(tmp_path / "rows.jsonl")) == 2
    daemon.send({"action": "checkpoint", "sequenceNumber": "1001", "subSequenceNumber": 0})
    daemon.expect_status("shutdownRequested")
    assert daemon.finish()[0] == 0


def test_shutdown_exception_at_checkpoint_writes_nothing_more_and_keeps_the_child(
    tmp_path: Path,
) -> None:
    """The lease is gone (the daemon refuses the checkpoint): no retry, and the child must not
    exit - the MultiLangDaemon would take that for a failure and stop the whole worker. It
    answers the action, writes and checkpoints nothing more, and ends at the daemon's
    leaseLost like any processor."""
    daemon = Daemon(tmp_path)
    _initialize(daemon)
    _process(daemon, _records(0, 3))
    assert daemon.receive() is not None  # the checkpoint request
    daemon.send(
        {
            "action": "checkpoint",
            "sequenceNumber": "1002",
            "subSequenceNumber": 0,
            "error": "ShutdownException",
        }
    )
    daemon.expect_status("processRecords")  # no retry: the answer comes at once
    rows_before = _lines(tmp_path / "rows.jsonl")
    state_before = _lines(tmp_path / "state.jsonl")
    # Records the daemon sends before it notices: enough to flush, yet nothing is written and
    # no checkpoint is asked for.
    _process(daemon, _records(3, 3))
    daemon.expect_status("processRecords")
    daemon.send({"action": "shutdownRequested"})
    daemon.expect_status("shutdownRequested")
    daemon.send({"action": "leaseLost"})
    daemon.expect_status("leaseLost")
    code, stderr = daemon.finish()
    assert code == 0
    assert "lease gone, writing nothing more" in stderr
    assert _lines(tmp_path / "rows.jsonl") == rows_before
    assert _lines(tmp_path / "state.jsonl") == state_before


def test_a_sink_failure_stops_the_process_before_any_checkpoint(tmp_path: Path) -> None:
    """kclpy would swallow the exception and report success; the processor must exit instead
    so the daemon restarts it at the last checkpoint (nothing after it was made durable)."""
    daemon = Daemon(tmp_path, "fail-rows")
    _initialize(daemon)
    _process(daemon, _records(0, 3))
    assert daemon.receive() is None  # neither a checkpoint request nor a status
    code, stderr = daemon.finish()
    assert code == 1
    assert "processor failed" in stderr
    assert _lines(tmp_path / "state.jsonl") == []
