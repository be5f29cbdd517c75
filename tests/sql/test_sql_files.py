"""Every file in sql/ is Athena SQL that sqlglot parses; the DDL matches the consumer's schema;
every named query documents itself, binds its parameters and lets Athena prune partitions."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from core.contracts.schema import DEAD_LETTER_SCHEMA, ROW_SCHEMA
from lake.catalog import DDL_DIR, QUERIES_DIR, SQL_DIR, load_catalog, parse_named_query
from lake.ddl import all_ddl

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))
QUERY_FILES = sorted(QUERIES_DIR.glob("*.sql"))

# The oracle: how Athena reads each Arrow type of the schemas, written out independently of
# lake.ddl.glue_type.
ATHENA_TYPE = {
    pa.string(): "string",
    pa.timestamp("us", tz="UTC"): "timestamp",
    pa.decimal128(38, 12): "decimal(38,12)",
    pa.int64(): "bigint",
    pa.bool_(): "boolean",
}


def _parse(path: Path) -> list[exp.Expr]:
    return [e for e in sqlglot.parse(path.read_text(encoding="utf-8"), read="athena") if e]


def test_sql_dir_has_the_ddl_and_the_named_queries() -> None:
    assert {p.name for p in DDL_DIR.glob("*.sql")} == {
        "01_database.sql",
        "02_ticks.sql",
        "03_dead_letters.sql",
    }
    assert {p.stem for p in QUERY_FILES} >= {
        "latest_price",
        "daily_summary",
        "anomalies",
        "crossovers",
        "dead_letters_by_reason",
    }


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_every_sql_file_parses_in_athena_dialect(path: Path) -> None:
    statements = _parse(path)
    assert len(statements) == 1
    assert not any(isinstance(node, exp.Command) for node in statements[0].walk()), (
        "sqlglot fell back to an unparsed command: the SQL is not understood"
    )


@pytest.mark.parametrize(
    ("file", "schema"), [("02_ticks.sql", ROW_SCHEMA), ("03_dead_letters.sql", DEAD_LETTER_SCHEMA)]
)
def test_ddl_columns_equal_the_consumer_schema(file: str, schema: pa.Schema) -> None:
    create = _parse(DDL_DIR / file)[0]
    assert isinstance(create, exp.Create)
    columns = [(c.name, c.args["kind"]) for c in create.this.expressions]
    assert [name for name, _ in columns] == schema.names
    for (name, kind), field in zip(columns, schema, strict=True):
        assert kind == exp.DataType.build(ATHENA_TYPE[field.type], dialect="athena"), name
    partitioned = create.find(exp.PartitionedByProperty)
    assert partitioned is not None
    assert [c.name for c in partitioned.find_all(exp.ColumnDef)] == ["dt"]
    assert "dt" not in schema.names, "dt is the partition, never a column of the files"


@pytest.mark.parametrize("file", ["02_ticks.sql", "03_dead_letters.sql"])
def test_ddl_projects_dt_partitions(file: str) -> None:
    create = _parse(DDL_DIR / file)[0]
    properties = {
        p.name: p.args["value"].name
        for p in create.find_all(exp.Property)
        if type(p) is exp.Property
    }
    assert properties["projection.enabled"] == "true"
    assert properties["projection.dt.type"] == "date"
    assert properties["projection.dt.format"] == "yyyy-MM-dd"
    assert properties["projection.dt.interval"] == "1"
    assert properties["projection.dt.interval.unit"] == "DAYS"
    assert properties["projection.dt.range"].endswith(",NOW")
    location = create.find(exp.LocationProperty)
    assert location is not None
    assert properties["storage.location.template"] == location.this.name + "dt=${dt}/"


def test_ddl_files_are_generated_from_the_schema() -> None:
    expected = all_ddl("stockpipe", "stockpipe-lake", "ticks", "dead-letter")
    for name, text in expected.items():
        assert (DDL_DIR / name).read_text(encoding="utf-8") == text, (
            f"sql/ddl/{name} is stale: regenerate it from lake.ddl.all_ddl"
        )


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.stem)
def test_named_query_header_matches_its_placeholders(path: Path) -> None:
    query = parse_named_query(path)
    assert query.answers
    placeholders = list(_parse(path)[0].find_all(exp.Placeholder))
    assert len(placeholders) == len(query.params) > 0


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.stem)
def test_named_query_filters_every_table_scan_on_dt(path: Path) -> None:
    statement = _parse(path)[0]
    scans = [t for t in statement.find_all(exp.Table) if t.name in ("ticks", "dead_letters")]
    assert scans
    for table in scans:
        select = table.find_ancestor(exp.Select)
        assert select is not None
        where = select.args.get("where")
        assert where is not None and any(c.name == "dt" for c in where.find_all(exp.Column)), (
            f"{path.name}: a scan of {table.name} without a dt predicate reads every partition"
        )
        assert not any(isinstance(lit, exp.Literal) and lit.is_string for lit in where.walk()), (
            "values are bound as parameters, never written into the SQL"
        )


def test_catalog_loads_every_query() -> None:
    assert sorted(load_catalog()) == sorted(p.stem for p in QUERY_FILES)
