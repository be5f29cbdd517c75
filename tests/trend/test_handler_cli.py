"""The Lambda entry point (Powertools Logger/Metrics/event typing, settings from the
environment, clients built on first call) and ``stockpipe alerts run-once | tail``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import trend.handlers
from core.settings import get_settings
from stockpipe.cli import main
from stockpipe.commands.alerts import _LocalContext, scheduled_event
from tests.trend.conftest import Stack, alert_identity, dataset_rows
from tests.trend.helpers import oracle_crossings

CUT = datetime(2000, 5, 1, tzinfo=UTC)


@pytest.fixture
def configured(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The stack's names in the environment, as the CDK stack / ``local env`` set them."""
    monkeypatch.setenv("STOCKPIPE_ALERTS_TOPIC_ARN", stack.settings.alerts_topic_arn or "")
    monkeypatch.setenv("STOCKPIPE_ALERTS_QUEUE_URL", stack.queue_url)
    monkeypatch.setenv("STOCKPIPE_ALERT_SETTLE_SECONDS", "1")
    get_settings.cache_clear()
    trend.handlers._runtime.cache_clear()
    stack.write_rows([r for r in dataset_rows() if r.ts < CUT])
    yield stack
    get_settings.cache_clear()
    trend.handlers._runtime.cache_clear()


def test_import_makes_no_aws_client() -> None:
    """A cold start (or a test) importing the handler must not touch AWS: clients are made on
    the first invocation. Checked in a fresh interpreter where creating a client raises."""
    code = (
        "import botocore.session\n"
        "def refuse(*a, **k): raise SystemExit('client created at import')\n"
        "botocore.session.Session.create_client = refuse\n"
        "import trend.handlers\n"
        "assert trend.handlers._runtime.cache_info().currsize == 0\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_handler_runs_with_powertools(
    configured: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    result = trend.handlers.handler(scheduled_event(datetime.now(UTC)), _LocalContext())
    assert result["rows"] > 0 and result["sent"] > 0 and not result["failed"]
    out = capsys.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert emf, "metrics flushed as CloudWatch EMF"
    assert emf[-1]["CrossingAlertsSent"] == [result["crossings_sent"]]
    assert len(configured.received()) == result["sent"]
    again = trend.handlers.handler(scheduled_event(datetime.now(UTC)), _LocalContext())
    assert again["sent"] == 0


def test_cli_run_once_then_tail(configured: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "run-once"]) == 0
    out = capsys.readouterr().out
    assert "alerts run-once: 3 symbols" in out
    assert main(["alerts", "tail"]) == 0
    tail = capsys.readouterr().out
    assert "stockpipe: " in tail and "[severity=" in tail
    assert tail.strip().endswith("alert(s)") and "alerts tail: 0" not in tail
    assert main(["alerts", "tail"]) == 0  # drained: nothing left
    assert "alerts tail: 0 alert(s)" in capsys.readouterr().out


def test_cli_names_missing_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STOCKPIPE_ALERTS_TOPIC_ARN", raising=False)
    monkeypatch.delenv("STOCKPIPE_ALERTS_QUEUE_URL", raising=False)
    get_settings.cache_clear()
    assert main(["alerts", "run-once"]) == 2
    assert main(["alerts", "tail"]) == 2
    err = capsys.readouterr().err
    assert "STOCKPIPE_ALERTS_TOPIC_ARN is not set" in err
    assert "STOCKPIPE_ALERTS_QUEUE_URL is not set" in err
    get_settings.cache_clear()


@pytest.mark.parametrize("value", ["0", "-5", "abc", "nan", "inf", ""])
def test_cli_time_budget_must_be_a_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["alerts", "run-once", "--time-budget", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--time-budget" in err and "positive number" in err


def test_local_context_gives_the_handler_the_budget_asked_for() -> None:
    from trend.runner import SAFETY_MARGIN_SECONDS

    remaining = _LocalContext(2.5).get_remaining_time_in_millis() / 1000
    assert 2.4 < remaining - SAFETY_MARGIN_SECONDS <= 2.5
    assert _LocalContext().get_remaining_time_in_millis() > 14 * 60 * 1000


def test_out_of_time_run_is_incomplete_metered_and_resumed(
    configured: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A context with less time left than the safety margin: a zero budget, so each run
    finishes exactly its first symbol (the rotation always moves) and says it is incomplete;
    three runs reach the three symbols, and the crossings sent are exactly the oracle's."""
    from trend.runner import SAFETY_MARGIN_SECONDS

    reached = []
    for _ in range(3):
        context = _LocalContext(0.0)
        assert context.get_remaining_time_in_millis() <= SAFETY_MARGIN_SECONDS * 1000
        result = trend.handlers.handler(scheduled_event(datetime.now(UTC)), context)
        assert result["status"] == "incomplete" and result["complete"] is False
        assert result["out_of_time"] is True
        assert (result["symbols_total"], result["symbols_remaining"]) == (3, 2)
        reached.append(result["resume_after"])
        emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
        assert emf[-1]["RunOutOfTime"] == [1] and emf[-1]["SymbolsRemaining"] == [2]
    assert reached == ["AAPL", "IBM", "MSFT"]
    rows = [r for r in dataset_rows() if r.ts < CUT]
    crossings = [i for i in map(alert_identity, configured.received()) if i[2] != "anomaly"]
    assert len(crossings) == len(set(crossings))
    assert set(crossings) == oracle_crossings(rows)
    # With time for everything, the next run is complete and finds nothing new.
    result = trend.handlers.handler(scheduled_event(datetime.now(UTC)), _LocalContext(60))
    assert result["status"] == "complete" and result["symbols_remaining"] == 0
    assert result["sent"] == 0


def test_cli_says_incomplete_and_exits_3(
    configured: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "run-once", "--time-budget", "0.000001"]) == 3
    out = capsys.readouterr().out
    assert "incomplete: out of time after" in out
    assert "1 of 3 symbols reached, 2 remaining; the next run resumes after AAPL" in out
    assert main(["alerts", "run-once", "--time-budget", "600"]) == 0
    assert "complete: all 3 symbols reached" in capsys.readouterr().out
