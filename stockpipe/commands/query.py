"""``stockpipe query``: Athena SQL (a named query from ``sql/queries`` or a statement) on
Athena or locally on DuckDB over the same Parquet files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.errors import UsageError

ENGINES = ("auto", "athena", "local")


def _param(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE (e.g. from_date=2013-01-02)")
    return name, text


def register(commands: Any) -> None:
    query = commands.add_parser(
        "query",
        help="run Athena SQL (named or literal) on Athena or locally on DuckDB",
        description="Run a named query from sql/queries (--name) or a statement in Athena's "
        "dialect. Engine: Athena on AWS; locally DuckDB over the lake's Parquet files.",
    )
    query.add_argument("sql", nargs="?", help="a statement in Athena's dialect ('?' placeholders)")
    query.add_argument("--name", help="a named query (see --list)")
    query.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="a named query's parameter (repeatable); for a statement, bound to '?' in order",
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.add_argument("--engine", choices=ENGINES, help="default: STOCKPIPE_QUERY_ENGINE")
    query.add_argument("--list", action="store_true", help="list the named queries and exit")
    query.add_argument(
        "--ddl", action="store_true", help="print the DDL (database, tables) for these settings"
    )
    query.add_argument(
        "--create-tables", action="store_true", help="run the DDL on Athena (not needed locally)"
    )
    query.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lake.catalog import load_catalog

    if args.list:
        for named in load_catalog().values():
            params = " ".join(f"{p.name}=<{p.type}>" for p in named.unique_params)
            print(f"{named.name}  {params}\n    {named.answers}")
        return 0
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from lake.catalog import get_query
    from lake.ddl import all_ddl
    from lake.engine import make_engine
    from lake.output import render

    settings = get_settings()
    if args.ddl or args.create_tables:
        statements = all_ddl(
            settings.athena_database,
            settings.bucket,
            settings.ticks_prefix,
            settings.dead_letter_prefix,
        )
        if args.ddl:
            print(";\n\n".join(s.rstrip() for s in statements.values()) + ";")
            return 0
        engine = make_engine(settings, "athena")
        for name, statement in statements.items():
            engine.run(statement)
            print(f"ran sql/ddl/{name}")
        return 0
    if bool(args.sql) == bool(args.name):
        raise UsageError("pass either a SQL statement or --name NAME (see --list)")
    if args.name:
        named = get_query(args.name)
        sql, params = named.sql, named.bind(dict(args.param))
    else:
        sql, params = args.sql, [value for _, value in args.param]
    result = make_engine(settings, args.engine).run(sql, params)
    sys.stdout.write(render(result, args.format))
    return 0
