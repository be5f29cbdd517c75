"""consumer/daemon_logs.py over output recorded from the real MultiLangDaemon (KCL 3, the
jars `make setup` fetches) running our processors: tests/stockpipe/data/daemon_output.log."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from pathlib import Path

from consumer.daemon_logs import pump, to_json

RECORDED = Path(__file__).parent / "data" / "daemon_output.log"
WRAPPED = "Received error line from subprocess ["


def recorded_lines() -> list[str]:
    return RECORDED.read_text().splitlines()


def inner(line: str) -> str:
    """A wrapped processor line's payload, cut out by position (not by the module's regex)."""
    start = line.index(WRAPPED) + len(WRAPPED)
    return line[start : line.rindex("] for shard ")]


def test_every_output_line_is_one_json_object_with_the_common_fields() -> None:
    out = [to_json(line) for line in recorded_lines()]
    kept = [json.loads(line) for line in out if line is not None]
    assert kept
    for entry in kept:
        assert isinstance(entry, dict)
        assert {"level", "logger", "message"} <= set(entry)


def test_each_processor_line_appears_once_as_it_was_written() -> None:
    lines = recorded_lines()
    wrapped = [inner(line) for line in lines if WRAPPED in line]
    printed = [line for line in lines if line.startswith("{")]
    assert wrapped and sorted(wrapped) == sorted(printed)  # the daemon prints each twice
    out = [to_json(line) for line in lines]
    # The wrapped ERROR twins are dropped; the plain copies pass unchanged (byte for byte).
    assert [to_json(line) for line in lines if WRAPPED in line] == [None] * len(wrapped)
    assert sorted(line for line in out if line is not None and '"consumer.' in line) == sorted(
        printed
    )
    assert not any(line is not None and WRAPPED in line for line in out)


def test_kcl_lines_become_fields() -> None:
    line = next(
        line for line in recorded_lines() if " WARN " in line and "LeaseAssignmentManager" in line
    )
    converted = to_json(line)
    assert converted is not None
    entry = json.loads(converted)
    assert entry["level"] == "WARNING"  # Python's name, like every other component
    assert entry["logger"] == "kcl.s.a.k.c.a.LeaseAssignmentManager"
    assert entry["thread"] == "lam-thread"
    assert entry["message"] == "Not able to assign all expiredOrUnAssignedLeases"
    # UTC, ISO-8601, fixed width: the logback time read as UTC.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["ts"])
    logback_time = line.split(" [", 1)[0]
    assert datetime.fromisoformat(entry["ts"]).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] == (
        logback_time
    )
    assert "shard_id" not in entry  # logback's [NONE]


def test_continuation_lines_are_kept_as_records_of_their_own() -> None:
    trace = [line for line in recorded_lines() if line.startswith("\tat ")]
    assert trace
    for line in trace:
        converted = to_json(line)
        assert converted is not None
        assert json.loads(converted)["message"] == line


def test_an_unknown_non_json_line_is_kept() -> None:
    converted = to_json("Exception in thread main: something\n")
    assert converted is not None
    assert json.loads(converted)["message"] == "Exception in thread main: something"
    # A line that only looks like JSON is not passed through raw.
    broken = to_json('{"ts": "2026-11-24T00:00:00", "level"')
    assert broken is not None and json.loads(broken)["logger"] == "kcl"


def test_pump_copies_line_by_line_until_eof() -> None:
    source = io.BytesIO(RECORDED.read_bytes())
    sink = io.BytesIO()
    pump(source, sink).join(timeout=10)
    written = sink.getvalue().decode().splitlines()
    expected = [c for c in (to_json(line) for line in recorded_lines()) if c is not None]
    assert written == expected
