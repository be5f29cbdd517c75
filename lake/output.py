"""A query result as a terminal table, CSV or JSON lines. Decimals are printed exactly."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from core.contracts.tick import format_ts
from lake.types import QueryResult

FORMATS: Final = ("table", "csv", "json")
_encoder: Final = msgspec.json.Encoder(decimal_format="number")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, Decimal):
        return _plain(value)
    return str(value)


def _plain(value: Decimal) -> str:
    # DECIMAL(38, 12) prints 12 decimals; trailing zeros carry no information here.
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, Decimal):
        return Decimal(_plain(value))
    return value


def render(result: QueryResult, fmt: str) -> str:
    if fmt == "json":
        return "".join(
            _encoder.encode(
                {c: _json_value(v) for c, v in zip(result.columns, row, strict=True)}
            ).decode()
            + "\n"
            for row in result.rows
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_text(v) for v in row] for row in result.rows)
        return buffer.getvalue()
    cells = [[_text(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    noun = "row" if len(cells) == 1 else "rows"
    lines.append(f"({len(cells)} {noun})")
    return "\n".join(lines) + "\n"
