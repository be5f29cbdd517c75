"""The Athena engine against a fake client: the SQL goes as written, values as execution
parameters (quoted literals), results are paged and the header row dropped."""

from __future__ import annotations

from typing import Any, cast

import pytest

from lake.athena import AthenaEngine, execution_parameter
from lake.catalog import get_query
from lake.errors import QueryFailed


class FakeAthena:
    def __init__(self, states: list[str], pages: list[dict[str, Any]]) -> None:
        self.states = states
        self.pages = pages
        self.started: list[dict[str, Any]] = []
        self.page_requests: list[dict[str, Any]] = []

    def start_query_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, **_: Any) -> dict[str, Any]:
        state = self.states.pop(0)
        return {"QueryExecution": {"Status": {"State": state, "StateChangeReason": "boom"}}}

    def get_query_results(self, **request: Any) -> dict[str, Any]:
        self.page_requests.append(request)
        return self.pages.pop(0)

    def stop_query_execution(self, **_: Any) -> None:
        pass


def _row(*values: str | None) -> dict[str, Any]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def _engine(fake: FakeAthena) -> AthenaEngine:
    return AthenaEngine(cast(Any, fake), "stockpipe", "analysts", "s3://out/", sleep=lambda _: None)


def test_named_query_runs_with_bound_parameters() -> None:
    meta = {"ColumnInfo": [{"Name": "symbol"}, {"Name": "price"}]}
    fake = FakeAthena(
        ["QUEUED", "RUNNING", "SUCCEEDED"],
        [
            {
                "ResultSet": {
                    "ResultSetMetadata": meta,
                    "Rows": [_row("symbol", "price"), _row("AAPL", "1.5")],
                },
                "NextToken": "t",
            },
            {"ResultSet": {"ResultSetMetadata": meta, "Rows": [_row("IBM", None)]}},
        ],
    )
    query = get_query("latest_price")
    result = _engine(fake).run(
        query.sql, query.bind({"from_date": "2013-01-02", "to_date": "2013-01-31"})
    )
    assert result.columns == ["symbol", "price"]
    assert result.rows == [("AAPL", "1.5"), ("IBM", None)]
    request = fake.started[0]
    assert request["QueryString"] == query.sql
    assert request["ExecutionParameters"] == ["'2013-01-02'", "'2013-01-31'"]
    assert request["QueryExecutionContext"] == {"Database": "stockpipe"}
    assert request["WorkGroup"] == "analysts"
    assert request["ResultConfiguration"] == {"OutputLocation": "s3://out/"}
    assert fake.page_requests[1]["NextToken"] == "t"


def test_string_parameters_are_quoted_literals() -> None:
    assert execution_parameter("O'Neil") == "'O''Neil'"
    assert execution_parameter(5) == "5"


def test_a_failed_query_is_one_error() -> None:
    fake = FakeAthena(["FAILED"], [])
    with pytest.raises(QueryFailed, match="FAILED: boom"):
        _engine(fake).run("SELECT 1")
