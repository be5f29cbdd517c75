"""The query layer over the Parquet lake the consumer writes (``ticks/dt=YYYY-MM-DD/...``).

Athena SQL lives in ``sql/`` (one dialect, Athena engine v3); it runs on Athena, or locally on
DuckDB over the same files after a sqlglot translation. Also here: compaction of closed days,
charts, and the lake benchmark.
"""
