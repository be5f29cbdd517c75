"""Rows and dead letters as Arrow tables with the storage schema of core/contracts/schema.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow
from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA


def rows_to_table(rows: Sequence[EnrichedRow]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in ROW_SCHEMA.names}
    for row in rows:
        for name, values in columns.items():
            values.append(getattr(row, name))
    return pa.table(columns, schema=ROW_SCHEMA)


def dead_letters_to_table(dead_letters: Sequence[DeadLetter]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in DEAD_LETTER_SCHEMA.names}
    for letter in dead_letters:
        for name, values in columns.items():
            values.append(getattr(letter, name))
    return pa.table(columns, schema=DEAD_LETTER_SCHEMA)
