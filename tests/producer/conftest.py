"""Shared fixtures of the producer tests: fake AWS credentials, a fake clock, and a moto
server on 127.0.0.1 for the local-endpoint tests (the doubles themselves are in fakes.py)."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator

import pytest

from tests.producer.fakes import FakeClock, MotoKinesis


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may find real credentials or call out of 127.0.0.1."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from core import settings

    settings.get_settings.cache_clear()
    settings.get_producer_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()
    settings.get_producer_settings.cache_clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def moto_kinesis(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoKinesis]:
    """moto in server mode on 127.0.0.1, a free port, for this test only; the STOCKPIPE_*
    variables point the real CLI code at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("STOCKPIPE_KINESIS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("STOCKPIPE_REGION", "us-east-1")
        # moto's backends are per process, not per server: start each test from nothing.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)
        yield MotoKinesis(endpoint, client)
    finally:
        server.stop()
