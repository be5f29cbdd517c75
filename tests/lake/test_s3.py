"""The same query layer over S3: moto in server mode on 127.0.0.1, read and written through
pyarrow's S3 filesystem (endpoint override, http), configured from STOCKPIPE_* settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from core.contracts.tick import Tick
from core.settings import Settings
from lake.catalog import get_query
from lake.compaction import compact_date
from lake.engine import make_engine
from lake.store import lake_from_settings
from tests.lake.conftest import write_lake

BUCKET = "lake-test"


@pytest.fixture
def s3_settings() -> Iterator[Settings]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(
            Bucket=BUCKET
        )
        yield Settings(
            endpoint_url=endpoint,
            bucket=BUCKET,
            region="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # type: ignore[arg-type]  # pydantic coerces
        )
    finally:
        server.stop()


@pytest.mark.slow
def test_query_and_compact_on_s3(s3_settings: Settings, real_ticks: list[Tick]) -> None:
    lake = lake_from_settings(s3_settings)
    ticks = [t for t in real_ticks if date(2012, 5, 1) <= t.ts.date() < date(2012, 6, 1)]
    rows, _, _ = write_lake(lake.filesystem, BUCKET, ticks, batch_size=2, bad_records=())
    day = "2012-05-21"
    expected = sorted(r.symbol for r in rows if r.ts.date().isoformat() == day)

    engine = make_engine(s3_settings)
    assert engine.name == "local"  # a configured endpoint means the local stand-in
    query = get_query("daily_summary")
    params = query.bind({"from_date": day, "to_date": day})
    before = engine.run(query.sql, params).rows
    assert [row[1] for row in before] == expected

    reports = compact_date(
        lake, date.fromisoformat(day), now=datetime.now(UTC), min_age=timedelta(hours=24)
    )
    assert reports[0].changed and reports[0].before == reports[0].after
    assert make_engine(s3_settings).run(query.sql, params).rows == before
