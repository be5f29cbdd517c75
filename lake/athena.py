"""Athena SQL on Amazon Athena: the statement is sent as written, its ``?`` placeholders bound
through ``ExecutionParameters`` (Athena substitutes each as a literal of the SQL, so strings
are sent quoted; the value is never spliced into the statement by us)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from core.settings import Settings
from lake.catalog import Bound
from lake.errors import QueryFailed
from lake.types import QueryResult

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

_DONE: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def execution_parameter(value: Bound) -> str:
    """An Athena execution parameter: the literal the placeholder becomes."""
    if isinstance(value, bool):  # bool is an int: refuse rather than send 1/0 or True
        raise QueryFailed(f"unsupported parameter value {value!r}")
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


class AthenaEngine:
    name = "athena"

    def __init__(
        self,
        client: AthenaClient,
        database: str,
        workgroup: str,
        output_location: str | None = None,
        *,
        timeout_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.database = database
        self.workgroup = workgroup
        self.output_location = output_location
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> AthenaEngine:
        from core.aws import session

        # Athena has no local stand-in, so the endpoint_url of the local stack is not used.
        client = session(settings).client("athena")
        return cls(
            client,
            settings.athena_database,
            settings.athena_workgroup,
            settings.athena_output_location,
        )

    def start(self, sql: str, params: Sequence[Bound] = ()) -> str:
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if params:
            request["ExecutionParameters"] = [execution_parameter(v) for v in params]
        if self.output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return self.client.start_query_execution(**request)["QueryExecutionId"]

    def wait(self, execution_id: str) -> None:
        deadline = time.monotonic() + self.timeout_seconds
        delay = 0.2
        while True:
            status = self.client.get_query_execution(QueryExecutionId=execution_id)[
                "QueryExecution"
            ]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in _DONE:
                reason = status.get("StateChangeReason", "no reason given")
                raise QueryFailed(f"Athena query {execution_id} {state}: {reason}")
            if time.monotonic() > deadline:
                self.client.stop_query_execution(QueryExecutionId=execution_id)
                raise QueryFailed(
                    f"Athena query {execution_id} still {state} after "
                    f"{self.timeout_seconds:.0f} s; stopped it"
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def results(self, execution_id: str) -> QueryResult:
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        token: str | None = None
        first_page = True
        while True:
            request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
            if token:
                request["NextToken"] = token
            page = self.client.get_query_results(**request)
            result_set = page["ResultSet"]
            if first_page:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c["Name"] for c in info]
            data = result_set.get("Rows", [])
            # A SELECT's first row is its header; a DDL statement has neither.
            if first_page and columns and data:
                header = tuple(d.get("VarCharValue") for d in data[0]["Data"])
                if list(header) == columns:
                    data = data[1:]
            rows.extend(tuple(d.get("VarCharValue") for d in row["Data"]) for row in data)
            first_page = False
            token = page.get("NextToken")
            if not token:
                return QueryResult(columns, rows)

    def run(self, sql: str, params: Sequence[Bound] = ()) -> QueryResult:
        execution_id = self.start(sql, params)
        self.wait(execution_id)
        return self.results(execution_id)
