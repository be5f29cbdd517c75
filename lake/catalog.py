"""Named queries: the files of ``sql/queries/``, each with a header comment::

    -- name: daily_summary
    -- answers: what the query answers, for people (may continue on ``--   `` lines)
    -- param: from_date date  first UTC day (inclusive)

One ``-- param:`` line per ``?`` placeholder, in the order they appear in the SQL; a name may
repeat (the same value is bound to each of its placeholders). Values are bound as parameters
(Athena ``ExecutionParameters``, DuckDB prepared statements), never formatted into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final, Literal

from lake.errors import BadParameters, LakeError, UnknownQuery

SQL_DIR: Final = Path(__file__).resolve().parents[1] / "sql"
QUERIES_DIR: Final = SQL_DIR / "queries"
DDL_DIR: Final = SQL_DIR / "ddl"

ParamType = Literal["date", "varchar", "integer"]
_PARAM_TYPES: Final = ("date", "varchar", "integer")
# A bound value. Dates stay ISO strings: ``dt`` is a string partition column on both engines.
Bound = str | int

_HEADER_RE: Final = re.compile(r"^--\s*(name|answers|param):\s*(.*)$")
_CONTINUATION_RE: Final = re.compile(r"^--\s{2,}(.*)$")
_PARAM_RE: Final = re.compile(r"^(\w+)\s+(\w+)(?:\s+(.*))?$")
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    help: str


@dataclass(frozen=True)
class NamedQuery:
    name: str
    answers: str
    params: tuple[Param, ...]  # one per placeholder, in order (names may repeat)
    sql: str  # the whole file, header included (comments are harmless to both engines)
    path: Path

    @property
    def unique_params(self) -> list[Param]:
        seen: dict[str, Param] = {}
        for param in self.params:
            seen.setdefault(param.name, param)
        return list(seen.values())

    def bind(self, values: Mapping[str, str]) -> list[Bound]:
        """Typed values for the placeholders, from ``name -> text``. Every declared name is
        required and nothing else is accepted: a typo should fail, not be ignored."""
        declared = {p.name for p in self.params}
        unknown = sorted(set(values) - declared)
        missing = [p.name for p in self.unique_params if p.name not in values]
        usage = " ".join(f"--param {p.name}=<{p.type}>" for p in self.unique_params)
        if unknown:
            raise BadParameters(
                f"query {self.name!r} has no parameter {', '.join(unknown)}; it takes: {usage}"
            )
        if missing:
            raise BadParameters(f"query {self.name!r} needs {', '.join(missing)}; pass: {usage}")
        return [_convert(p, values[p.name]) for p in self.params]


def _convert(param: Param, text: str) -> Bound:
    if param.type == "integer":
        try:
            return int(text)
        except ValueError:
            raise BadParameters(f"{param.name}={text!r} is not a whole number") from None
    if param.type == "date":
        try:
            if not _DATE_RE.match(text):
                raise ValueError(text)
            date.fromisoformat(text)
        except ValueError:
            raise BadParameters(f"{param.name}={text!r} is not a date YYYY-MM-DD") from None
    return text


def parse_named_query(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    fields: dict[str, str] = {}
    params: list[Param] = []
    last = ""
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header = _HEADER_RE.match(line)
        if header is None:
            continuation = _CONTINUATION_RE.match(line)
            if continuation and last == "answers":
                fields["answers"] += " " + continuation.group(1).strip()
            continue
        key, value = header.group(1), header.group(2).strip()
        last = key
        if key != "param":
            fields[key] = value
            continue
        match = _PARAM_RE.match(value)
        if match is None or match.group(2) not in _PARAM_TYPES:
            raise LakeError(
                f"{path}: bad param line {line!r} (want: NAME {'|'.join(_PARAM_TYPES)})"
            )
        kind: ParamType = match.group(2)  # type: ignore[assignment]  # checked just above
        params.append(Param(match.group(1), kind, (match.group(3) or "").strip()))
    if "name" not in fields or "answers" not in fields:
        raise LakeError(f"{path}: the header needs '-- name:' and '-- answers:' lines")
    if fields["name"] != path.stem:
        raise LakeError(f"{path}: '-- name: {fields['name']}' differs from the file name")
    return NamedQuery(fields["name"], fields["answers"], tuple(params), text, path)


def load_catalog(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    return {q.name: q for q in map(parse_named_query, sorted(directory.glob("*.sql")))}


def get_query(name: str, directory: Path = QUERIES_DIR) -> NamedQuery:
    catalog = load_catalog(directory)
    if name not in catalog:
        raise UnknownQuery(name, sorted(catalog))
    return catalog[name]
