"""The daemon's output as the same JSON log lines as the rest of stockpipe.

The MultiLangDaemon logs through logback as text (its bundled logback.xml:
``%d [%thread] %-5level %logger{36} [%mdc{ShardId:-NONE}] - %msg``). A line a record processor
writes to stderr - our JSON - it prints twice: as it is (``System.err.println``), and logged
as an ERROR, ``Received error line from subprocess [<line>] for shard <id>``
(DrainChildSTDERRTask). Shipped as they are, CloudWatch would show every consumer log twice,
once as an error. So `stockpipe consume` reads the daemon's output and writes one JSON object a
line: a processor's own line as it is, its wrapped ERROR twin dropped, a KCL line turned into
``ts``/``level``/``logger``/``message`` fields; a line of neither shape (a stack trace's
continuation) is kept, as the message of a record of its own.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import IO, Any, Final

import msgspec

_KCL_LINE: Final = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) \[(?P<thread>[^\]]*)\] "
    r"(?P<level>[A-Z]+)\s+(?P<logger>\S+) \[(?P<shard>[^\]]*)\] - (?P<message>.*)$"
)
_CHILD_LINE: Final = re.compile(
    r"^Received error line from subprocess \[(?P<line>.*)\] for shard (?P<shard>\S+)$"
)
_LEVELS: Final = {"WARN": "WARNING", "TRACE": "DEBUG"}
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def _utc_iso(logback_ts: str) -> str:
    # The daemon runs with -Duser.timezone=UTC (consumer/daemon.py), so the time is UTC.
    parsed = datetime.strptime(logback_ts, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    return parsed.isoformat(timespec="milliseconds")


def _is_json_object(text: str) -> bool:
    if not text.startswith("{"):
        return False
    try:
        _decoder.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def to_json(line: str) -> str | None:
    """One line of daemon output -> one JSON log line (no newline), or None to drop it."""
    text = line.rstrip("\r\n")
    match = _KCL_LINE.match(text)
    if match is None:
        if _is_json_object(text):
            return text  # a processor's own line, printed as it is by the daemon
        return _encoder.encode({"level": "INFO", "logger": "kcl", "message": text}).decode()
    message = match["message"].rstrip()
    if _CHILD_LINE.match(message):
        return None  # the wrapped twin of a line the daemon also printed as it is
    entry: dict[str, Any] = {
        "ts": _utc_iso(match["ts"]),
        "level": _LEVELS.get(match["level"], match["level"]),
        "logger": f"kcl.{match['logger']}",
        "message": message,
        "thread": match["thread"],
    }
    if match["shard"] != "NONE":
        entry["shard_id"] = match["shard"]
    return _encoder.encode(entry).decode()


def pump(source: IO[bytes], sink: IO[bytes]) -> threading.Thread:
    """Copy ``source`` to ``sink`` line by line as JSON, on a daemon thread, until EOF."""

    def run() -> None:
        for raw in source:
            converted = to_json(raw.decode("utf-8", errors="replace"))
            if converted is not None:
                sink.write(converted.encode() + b"\n")
                sink.flush()

    thread = threading.Thread(target=run, name="daemon-logs", daemon=True)
    thread.start()
    return thread
