"""``stockpipe process``'s engine (consumer.file_run.process_file): a ticks file in, enriched rows
and dead letters out, counted."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from consumer.file_run import process_file
from core.contracts.rejects import RejectReason
from core.contracts.tick import Tick
from tests.oracles import (
    OUTCOMES,
    MixedLine,
    assert_rows_match_oracle,
    enrichment_oracle,
    expected_counts,
    read_jsonl,
)

TS_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def parse_ts(text: str) -> datetime:
    assert TS_FORMAT.fullmatch(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def run(tmp_path: Path, ticks_path: Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    rows_path, dead_path = tmp_path / "rows.jsonl", tmp_path / "dead.jsonl"
    counts = process_file(ticks_path, rows_path, dead_path)
    return counts, read_jsonl(rows_path), read_jsonl(dead_path)


def check_dead_letters(dead: list[dict[str, Any]], lines: list[MixedLine]) -> None:
    expected = [line for line in lines if line.expect not in ("row", "duplicate", "blank")]
    assert [d["line"] for d in dead] == [line.number for line in expected]
    for letter, line in zip(dead, expected, strict=True):
        assert letter["reason"] == line.expect
        assert base64.b64decode(letter["raw_base64"]) == line.raw  # the exact bytes
        assert letter["raw"] == line.raw.decode("utf-8", errors="replace")
        assert letter["detail"]


def test_mixed_file(tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]]) -> None:
    path, lines = mixed_ticks
    counts, rows, dead = run(tmp_path, path)
    want = expected_counts(lines)
    assert (counts.accepted, counts.duplicates, counts.late, counts.invalid) == (
        want["accepted"],
        want["duplicates"],
        want["late"],
        want["invalid"],
    )
    assert counts.summary() == (
        f"accepted={want['accepted']} duplicates={want['duplicates']} "
        f"late={want['late']} invalid={want['invalid']} future=0 errors=0"
    )
    assert len(rows) == want["accepted"]
    check_dead_letters(dead, lines)
    # Nothing silently lost: every non-blank line is a row, a counted duplicate or a dead letter.
    assert len(rows) + counts.duplicates + len(dead) == sum(
        line.expect != "blank" for line in lines
    )


def test_mixed_file_rows(tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]]) -> None:
    path, _ = mixed_ticks
    _, rows, _ = run(tmp_path, path)
    got = [(r["symbol"], r["ts"], r["price"]) for r in rows]
    assert got == [
        ("AAPL", "2024-03-08T21:00:00.000000Z", Decimal("170.73")),
        ("MSFT", "2024-03-08T21:00:00.000000Z", Decimal("406.22")),
        ("AAPL", "2024-03-11T20:00:00.000000Z", Decimal("172.75")),
        ("MSFT", "2024-03-11T20:00:00.000000Z", Decimal("409.14")),
        ("AAPL", "2024-03-12T20:00:00.000000Z", Decimal("181.39")),
        ("AAPL", "2024-03-13T20:00:00.000000Z", Decimal("181.5")),
    ]
    first, msft, _, legacy, jump, last = rows
    assert first["prev_price"] is None and first["change_pct"] is None and not first["anomaly"]
    assert first["volume"] == 76114600
    assert msft["prev_price"] is None
    # The legacy record's own change fields are ignored: the consumer derives them.
    assert legacy["prev_price"] == Decimal("406.22")
    assert legacy["change"] == Decimal("2.92")  # exact in the file: no float noise
    assert abs(legacy["change_pct"] - Decimal("2.92") * 100 / Decimal("406.22")) < Decimal("1e-9")
    # 172.75 -> 181.39 is +5.0014 %: an anomaly (the late 171.0 in between changed nothing).
    assert jump["prev_price"] == Decimal("172.75")
    assert jump["anomaly"] is True
    assert last["anomaly"] is False
    assert (
        last["ma_4"]
        == (Decimal("170.73") + Decimal("172.75") + Decimal("181.39") + Decimal("181.5")) / 4
    )
    assert {r["shard_id"] for r in rows} == {"file"}


def test_crlf_line_ends(tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]]) -> None:
    _, lines = mixed_ticks
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"".join(line.raw + b"\r\n" for line in lines))
    counts, rows, dead = run(tmp_path, path)
    assert counts.accepted == expected_counts(lines)["accepted"] == len(rows)
    check_dead_letters(dead, lines)  # raw without the "\r"


def test_every_reason_in_the_mixed_file_is_a_real_reason(
    mixed_ticks: tuple[Path, list[MixedLine]],
) -> None:
    _, lines = mixed_ticks
    reasons = {line.expect for line in lines} - set(OUTCOMES)
    assert reasons <= {r.value for r in RejectReason}
    assert len(reasons) >= 5


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n\n   \n")
    counts, rows, dead = run(tmp_path, path)
    assert (counts.accepted, counts.duplicates, counts.late, counts.invalid) == (0, 0, 0, 0)
    assert rows == dead == []


def test_real_dataset_file_matches_pandas(
    tmp_path: Path, real_ticks: list[Tick], real_ticks_jsonl: Path
) -> None:
    counts, rows, dead = run(tmp_path, real_ticks_jsonl)
    assert dead == []
    assert counts.accepted == len(real_ticks)
    oracle = enrichment_oracle(real_ticks)
    parsed = [{**r, "ts": parse_ts(r["ts"])} for r in rows]
    assert_rows_match_oracle(parsed, oracle.rows)


def test_deeply_nested_line_is_a_dead_letter(tmp_path: Path) -> None:
    good = b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":170.73}'
    nested = b'{"symbol":"AAPL","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    path = tmp_path / "nested.jsonl"
    path.write_bytes(good + b"\n" + nested + b"\n")
    counts, rows, dead = run(tmp_path, path)
    assert len(rows) == 1
    assert [d["line"] for d in dead] == [2]
    assert counts.invalid == 1


def test_latin1_string_value_is_a_dead_letter(tmp_path: Path) -> None:
    good = b'{"symbol":"AAPL","ts":"2024-03-08T21:00:00Z","price":170.73}'
    latin1 = '{"symbol":"RY.TO","ts":"2024-03-08T21:00:00Z","price":133.5,"source":"Montréal"}'
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(good + b"\n" + latin1.encode("latin-1") + b"\n")
    _, rows, dead = run(tmp_path, path)
    assert len(rows) == 1
    assert [(d["line"], d["reason"]) for d in dead] == [(2, "not_json")]
    assert base64.b64decode(dead[0]["raw_base64"]) == latin1.encode("latin-1")
