"""Errors of the query layer, under one base class (``LakeError``, a ``StockpipeError``); each
carries a message a person can act on; the CLI prints it as one line."""

from __future__ import annotations

from core.errors import StockpipeError


class LakeError(StockpipeError):
    """Base class of every error raised by ``lake``."""


class UnknownQuery(LakeError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no named query {name!r}; choose one of: {', '.join(known)}")
        self.name = name


class BadParameters(LakeError):
    """A parameter is missing, unknown, or not of its declared type."""


class QueryFailed(LakeError):
    """The engine (DuckDB or Athena) rejected or failed the query."""


class CompactionRefused(LakeError):
    """The day may not be compacted (open, too recent, or its files are inconsistent)."""


class ChecksumMismatch(LakeError):
    """Compacted output does not hold exactly the rows of its inputs; nothing was deleted."""
