"""`stockpipe query`, `compact` and `chart` on a local lake: outputs, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import get_settings
from stockpipe.cli import main
from tests.lake.conftest import BuiltLake


@pytest.fixture
def local_lake(real_lake: BuiltLake, monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltLake]:
    monkeypatch.setenv("STOCKPIPE_LAKE_ROOT", str(real_lake.root))
    monkeypatch.setenv("STOCKPIPE_QUERY_ENGINE", "local")
    get_settings.cache_clear()
    yield real_lake
    get_settings.cache_clear()


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_named_query_as_json(local_lake: BuiltLake, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "query",
            "--name",
            "latest_price",
            "--param",
            "from_date=2012-01-01",
            "--param",
            "to_date=2012-12-31",
            "--format",
            "json",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["symbol"] for r in records] == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert records[0]["ts"] == "2012-12-31T21:00:00.000000Z"


def test_statement_as_csv_and_table(
    local_lake: BuiltLake, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        "SELECT symbol, count(*) AS n FROM ticks WHERE dt BETWEEN ? AND ? "
        "GROUP BY symbol ORDER BY symbol"
    )
    assert (
        main(
            ["query", sql, "--param", "a=2012-01-01", "--param", "b=2012-01-31", "--format", "csv"]
        )
        == 0
    )
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["symbol", "n"] and len(rows) == 5  # FB was not listed yet
    assert main(["query", sql, "--param", "a=2012-01-01", "--param", "b=2012-01-31"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(4 rows)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "--name", "nope"], "no named query 'nope'; choose one of"),
        (["query", "--name", "daily_summary", "--param", "from_date=2012-01-01"], "needs to_date"),
        (
            [
                "query",
                "--name",
                "daily_summary",
                "--param",
                "from_date=2012-13-01",
                "--param",
                "to_date=2012-12-31",
            ],
            "is not a date",
        ),
        (["query", "SELEC nonsense"], "error"),
        (["compact", "--date", datetime.now(UTC).date().isoformat()], "is not closed"),
    ],
)
def test_mistakes_are_one_line(
    local_lake: BuiltLake, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in one_line_error(capsys)


def test_chart_command(
    local_lake: BuiltLake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "ibm.png"
    assert (
        main(
            ["chart", "IBM", "--from", "2012-01-01", "--to", "2012-06-30", "--output", str(output)]
        )
        == 0
    )
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "crosses" in capsys.readouterr().out


def test_list_names_every_query(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "latest_price",
        "daily_summary",
        "anomalies",
        "crossovers",
        "dead_letters_by_reason",
    ):
        assert name in out
