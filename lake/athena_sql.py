"""Athena (Trino) SQL -> DuckDB SQL with sqlglot, so ``sql/`` is written once, in Athena's
dialect, and runs locally too. ``?`` placeholders survive the translation unchanged."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lake.errors import QueryFailed


def parse_athena(sql: str) -> list[exp.Expr]:
    try:
        return [e for e in sqlglot.parse(sql, read="athena") if e is not None]
    except ParseError as exc:
        raise QueryFailed(f"not valid Athena SQL: {_first_line(str(exc))}") from None


def to_duckdb(sql: str) -> str:
    """One Athena statement as DuckDB SQL."""
    statements = parse_athena(sql)
    if len(statements) != 1:
        raise QueryFailed(f"expected one SQL statement, got {len(statements)}")
    translated: str = statements[0].sql(dialect="duckdb")
    return translated


def count_placeholders(sql: str) -> int:
    return sum(1 for statement in parse_athena(sql) for _ in statement.find_all(exp.Placeholder))


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
