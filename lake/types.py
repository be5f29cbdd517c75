"""The seam between the query layer and its two engines (Athena, local DuckDB): what a query
returns and what an engine is. Implementations import this module, never the factory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lake.catalog import Bound


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]  # typed locally; Athena returns every value as text (or None)

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Engine(Protocol):
    """Runs one statement written in Athena's dialect, ``?`` placeholders bound in order."""

    name: str

    def run(self, sql: str, params: Sequence[Bound] = ()) -> QueryResult: ...
