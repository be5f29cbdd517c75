"""Athena SQL on DuckDB over the lake's Parquet files (read through pyarrow datasets).

``ticks`` and ``dead_letters`` are registered as pyarrow datasets: DuckDB pushes the column
list and the filters (``dt`` and e.g. ``symbol``) into the pyarrow scanner, so a query reads
only the partitions it names and, inside them, only the row groups whose statistics match.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from lake.athena_sql import to_duckdb
from lake.catalog import Bound
from lake.errors import QueryFailed
from lake.store import Lake
from lake.types import QueryResult


class LocalEngine:
    name = "local"

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._connection: duckdb.DuckDBPyConnection | None = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # Lazily, so a mistake in the SQL is reported before the lake is listed.
        if self._connection is None:
            con = duckdb.connect(":memory:")
            # Athena's timestamps are zone-less UTC; make DuckDB's TIMESTAMPTZ behave alike
            # (date(ts), hour(ts), printed values) whatever the machine's zone.
            con.execute("SET TimeZone = 'UTC'")
            con.register("ticks", self.lake.ticks())
            con.register("dead_letters", self.lake.dead_letters())
            self._connection = con
        return self._connection

    def run(self, sql: str, params: Sequence[Bound] = ()) -> QueryResult:
        translated = to_duckdb(sql)
        con = self._connect()
        try:
            cursor = con.execute(translated, list(params))
            rows = cursor.fetchall()
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise QueryFailed(f"local engine (DuckDB): {first}") from None
        columns = [d[0] for d in cursor.description or []]
        return QueryResult(columns, rows)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
