"""The seam between the query layer and its two engines (Athena, local DuckDB)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.settings import Settings
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


def engine_kind(settings: Settings) -> str:
    if settings.query_engine != "auto":
        return settings.query_engine
    # A configured endpoint means the local AWS stand-in (moto); Athena exists only on AWS.
    return "local" if settings.endpoint_url or settings.lake_root else "athena"


def make_engine(settings: Settings, kind: str | None = None) -> Engine:
    kind = kind or engine_kind(settings)
    if kind == "athena":
        from lake.athena import AthenaEngine

        return AthenaEngine.from_settings(settings)
    from lake.local_engine import LocalEngine
    from lake.store import lake_from_settings

    return LocalEngine(lake_from_settings(settings))
