"""``stockpipe produce`` from the command line: one-line errors, exit codes, and the file
source end to end against a local moto endpoint (no traffic off 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockpipe.cli import main
from tests.producer.fakes import FaultyKinesis, MemoryKinesis, MotoKinesis


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "file"], "--source file needs --input FILE"),
        (["--source", "yfinance"], "--source yfinance needs --symbols"),
        (["--source", "yfinance", "--symbols", "AAPL,ms ft"], "not a valid Yahoo symbol"),
        (["--source", "synthetic", "--symbols", "many"], "--symbols: 'many' is not a positive"),
        (["--source", "synthetic", "--speed", "2"], "--speed only applies to --source replay"),
        (["--source", "replay", "--dataset", "nope"], "--dataset 'nope' is unknown"),
        (["--source", "replay", "--speed", "0"], "'0' is not a positive number"),
        (["--source", "synthetic", "--duration", "5x"], "'5x' is not a positive duration"),
        (["--source", "file", "--input", "/no/such"], "'/no/such' is not a readable file"),
        (["--source", "carrier-pigeon"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["produce", *argv])
    except SystemExit as exc:  # argparse's own checks
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_lost_records_exit_non_zero_with_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    memory = MemoryKinesis()
    faulty = FaultyKinesis(memory, faulty_calls=0.0, always_fail={"AAPL"})
    monkeypatch.setattr("producer.kinesis.make_client", lambda settings: faulty)
    path = tmp_path / "ticks.jsonl"
    path.write_text(
        '{"symbol":"AAPL","ts":"2024-03-08T14:30:00Z","price":1}\n'
        '{"symbol":"MSFT","ts":"2024-03-08T14:30:00Z","price":2}\n'
    )
    code = main(["produce", "--source", "file", "--input", str(path), "--max-attempts", "3"])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 record(s) lost" in captured.err and "sent=1 lost=1" in captured.out
    assert list(memory.by_key) == ["MSFT"] and faulty.failed == 3


def test_file_source_sends_bad_lines_verbatim_to_the_local_stream(
    tmp_path: Path, moto_kinesis: MotoKinesis
) -> None:
    moto_kinesis.create_stream("stockpipe-ticks", shards=1)
    lines = [
        b'{"symbol":"AAPL","ts":"2024-03-08T14:30:00Z","price":1}',
        b"garbage",
        b'{"symbol":"AAPL","ts":"2024-03-08T14:31:00Z","price":0}',
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["produce", "--source", "file", "--input", str(path)]) == 0
    (records,) = moto_kinesis.read_all("stockpipe-ticks").values()
    assert sorted(data for _, data in records) == sorted(lines)
    assert [d for k, d in records if k == "AAPL"] == [lines[0], lines[2]]  # order per key
