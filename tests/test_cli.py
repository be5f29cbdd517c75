"""The ``stockpipe`` command: process, trend and demo, in-process and once as a real process."""

from __future__ import annotations

import base64
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.contracts.tick import Tick
from stockpipe.cli import main
from tests.oracles import CrossoverOracle, MixedLine, expected_counts, read_jsonl

STOCKPIPE = Path(sys.executable).with_name("stockpipe")
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def invoke(argv: Sequence[str | Path]) -> int:
    """main() in-process; argparse's usage errors exit via SystemExit: return its code."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def summary_of(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if "accepted=" in line]
    assert len(lines) == 1, stdout
    return dict(re.findall(r"(\w+)=(\S+)", lines[0]))


def assert_one_line_error(stderr: str, *mentions: str) -> None:
    assert stderr.endswith("\n")
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for mention in mentions:
        assert mention in stderr


def check_dead_letter_file(path: Path, lines: list[MixedLine]) -> None:
    expected = [line for line in lines if line.expect not in ("row", "duplicate", "blank")]
    letters = read_jsonl(path)
    assert [(d["line"], d["reason"]) for d in letters] == [(x.number, x.expect) for x in expected]
    for letter, line in zip(letters, expected, strict=True):
        assert letter["raw"] == line.raw.decode("utf-8", errors="replace")  # the exact text
        assert base64.b64decode(letter["raw_base64"]) == line.raw


# --------------------------------------------------------------------------- process


def test_process_mixed_file(
    tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]], capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, lines = mixed_ticks
    rows, dead = tmp_path / "rows.jsonl", tmp_path / "dl.jsonl"
    assert invoke(["process", "--input", ticks, "--output", rows, "--dead-letter", dead]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    summary = summary_of(out)
    want = expected_counts(lines)
    assert {k: int(summary[k]) for k in want} == want
    assert Path(summary["output"]) == rows
    assert Path(summary["dead_letter"]) == dead
    assert len(read_jsonl(rows)) == want["accepted"]
    check_dead_letter_file(dead, lines)


def test_process_default_dead_letter_path(
    tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]], capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, lines = mixed_ticks
    rows = tmp_path / "out" / "rows.jsonl"
    rows.parent.mkdir()
    assert invoke(["process", "--input", ticks, "--output", rows]) == 0
    default = rows.parent / "rows.jsonl.dead-letter.jsonl"  # --help: OUTPUT.dead-letter.jsonl
    assert Path(summary_of(capsys.readouterr().out)["dead_letter"]) == default
    check_dead_letter_file(default, lines)
    assert sorted(p.name for p in rows.parent.iterdir()) == sorted([rows.name, default.name])


def test_process_missing_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-ticks.jsonl"
    rows = tmp_path / "rows.jsonl"
    assert invoke(["process", "--input", missing, "--output", rows]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(err, "no-such-ticks.jsonl")
    assert not rows.exists()


def test_subprocess_exit_codes(tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]]) -> None:
    ticks, lines = mixed_ticks
    bad = subprocess.run(
        [STOCKPIPE, "process", "--input", "no-such-ticks.jsonl", "--output", "rows.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert_one_line_error(bad.stderr, "no-such-ticks.jsonl")

    good = subprocess.run(
        [STOCKPIPE, "process", "--input", ticks, "--output", "rows.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert good.stderr == ""
    want = expected_counts(lines)
    summary = summary_of(good.stdout)
    assert {k: int(summary[k]) for k in want} == want
    assert (tmp_path / "rows.jsonl.dead-letter.jsonl").is_file()


def test_process_output_is_a_directory_is_one_line_exit_2(
    tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]], capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, _ = mixed_ticks
    assert invoke(["process", "--input", ticks, "--output", tmp_path]) == 2
    assert_one_line_error(capsys.readouterr().err)


def test_process_output_same_as_input_is_refused(
    tmp_path: Path, mixed_ticks: tuple[Path, list[MixedLine]], capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, _ = mixed_ticks
    before = ticks.read_bytes()
    code = invoke(["process", "--input", ticks, "--output", ticks])
    assert ticks.read_bytes() == before
    assert code == 2


# --------------------------------------------------------------------------- trend


def check_signals_file(path: Path, oracle: CrossoverOracle) -> None:
    records = read_jsonl(path)
    got = [
        (r["symbol"], datetime.strptime(r["ts"], TS_FORMAT).replace(tzinfo=UTC), r["signal"])
        for r in records
    ]
    assert len(got) == len(set(got)), "a crossing reported twice"
    assert set(got) == set(oracle.signals)
    for key, record in zip(got, records, strict=True):
        sma5, sma20 = oracle.signals[key]
        assert math.isclose(float(record["sma_5"]), sma5, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(float(record["sma_20"]), sma20, rel_tol=1e-9, abs_tol=1e-9)


def test_trend_on_processed_real_dataset(
    tmp_path: Path,
    real_ticks: list[Tick],
    real_ticks_jsonl: Path,
    real_crossover_oracle: CrossoverOracle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows, signals = tmp_path / "rows.jsonl", tmp_path / "signals.jsonl"
    assert invoke(["process", "--input", real_ticks_jsonl, "--output", rows]) == 0
    processed = summary_of(capsys.readouterr().out)
    assert int(processed["accepted"]) == len(real_ticks)
    assert int(processed["invalid"]) == int(processed["late"]) == 0

    assert invoke(["trend", "--input", rows, "--output", signals]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"rows={len(real_ticks)}" in out
    assert f"signals={len(real_crossover_oracle.signals)}" in out
    assert real_crossover_oracle.ambiguous == []
    check_signals_file(signals, real_crossover_oracle)


def test_trend_skips_a_bad_line_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"symbol":"AAPL","ts":"2024-03-08T21:00:00.000000Z","price":1.5}\nnot a row\n')
    assert invoke(["trend", "--input", rows, "--output", tmp_path / "s.jsonl"]) == 0
    out, err = capsys.readouterr()
    assert "rows=1" in out
    assert "invalid_lines=1" in out
    assert "line 2" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- demo


def test_demo(
    tmp_path: Path,
    real_ticks: list[Tick],
    real_crossover_oracle: CrossoverOracle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workdir = tmp_path / "demo"
    assert invoke(["demo", "--workdir", workdir]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    summary = summary_of(out)
    assert int(summary["accepted"]) == len(real_ticks)
    assert int(summary["invalid"]) > 0  # the demo shows dead-lettering
    for symbol in ("AAPL", "FB", "GOOG", "IBM", "MSFT"):
        assert re.search(rf"^{symbol}\s", out, re.MULTILINE), out
    files = {p.name for p in workdir.iterdir()}
    assert {"ticks.jsonl", "rows.jsonl", "signals.jsonl"} <= files
    assert len(read_jsonl(workdir / "rows.jsonl")) == len(real_ticks)
    check_signals_file(workdir / "signals.jsonl", real_crossover_oracle)


def test_process_never_shows_a_traceback_for_any_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's examples (0.00001 then 1e15, uint64 volume, a 450 KB source, a tick dated
    2100) and raw garbage: each line is a row or a dead letter; exit 0, nothing on stderr."""
    lines = [
        b'{"symbol":"PENNY","ts":"2024-01-02T14:30:00Z","price":0.00001}',
        b'{"symbol":"PENNY","ts":"2024-01-02T14:31:00Z","price":1e15}',
        b'{"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":1,"volume":18446744073709551615}',
        b'{"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","price":1,"source":"'
        + b"x" * 450_000
        + b'"}',
        b'{"symbol":"AAPL","ts":"2100-01-01T00:00:00Z","price":1}',
        b'{"symbol":"AAPL","ts":"2024-01-02T14:32:00Z","price":2}',
        b"\xff\x00\x01",
        b"[" * 100_000,
        b'{"symbol":"AAPL","ts":"9999-12-31T23:59:59+00:00","price":1e308}',
        b'{"symbol":"AAPL","ts":"0001-01-01T00:00:00+01:00","price":1}',
    ]
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_bytes(b"\n".join(lines) + b"\n")
    rows, dead = tmp_path / "rows.jsonl", tmp_path / "dl.jsonl"
    assert invoke(["process", "--input", ticks, "--output", rows, "--dead-letter", dead]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    summary = summary_of(out)
    assert (summary["accepted"], summary["future"], summary["errors"]) == ("2", "1", "0")
    assert [(d["line"], d["reason"]) for d in read_jsonl(dead)] == [
        (2, "bad_price"),
        (3, "bad_value"),
        (4, "bad_value"),
        (5, "future_timestamp"),
        (7, "not_json"),
        (8, "not_object"),
        (9, "bad_price"),
        (10, "bad_timestamp"),
    ]


def test_process_max_clock_skew_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_text(f'{{"symbol":"AAPL","ts":"{soon.isoformat()}","price":1}}\n')
    rows = tmp_path / "rows.jsonl"
    assert invoke(["process", "--input", ticks, "--output", rows]) == 0
    assert summary_of(capsys.readouterr().out)["future"] == "1"
    argv = ["process", "--input", ticks, "--output", rows, "--max-clock-skew", "3600"]
    assert invoke(argv) == 0
    assert summary_of(capsys.readouterr().out)["accepted"] == "1"
    assert invoke([*argv[:-1], "soon"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--max-clock-skew", "seconds")
