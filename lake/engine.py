"""Which engine runs a query: Athena on AWS, DuckDB over the lake locally. This module picks
and builds one; the engines themselves import only ``lake.types``."""

from __future__ import annotations

from core.settings import Settings
from lake.types import Engine


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
