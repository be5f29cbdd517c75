"""The consumer's boto3 clients retry throttling, 5xx and S3 SlowDown a bounded number of times
with jittered exponential waits, against a local HTTP server that keeps failing. botocore's
sleep is recorded instead of slept (the waits are checked against the documented formula)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.endpoint
import pytest
from botocore.exceptions import ClientError

from core.aws import (
    CONNECT_TIMEOUT_S,
    MAX_ATTEMPTS,
    READ_TIMEOUT_S,
    RETRY_BUDGET_S,
    dynamodb_resource,
    s3_client,
)
from core.settings import Settings

FAILURES = {
    # path prefix -> (status, content type, body)
    "dynamo-500": (500, "application/x-amz-json-1.0", b'{"__type":"InternalServerError"}'),
    "dynamo-throttle": (
        400,
        "application/x-amz-json-1.0",
        b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}',
    ),
    "s3-slowdown": (
        503,
        "application/xml",
        b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
    ),
}


class FailingServer(ThreadingHTTPServer):
    mode = "dynamo-500"
    requests = 0


class Handler(BaseHTTPRequestHandler):
    server: FailingServer

    def _fail(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.requests += 1
        status, content_type, body = FAILURES[self.server.mode]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_GET = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FailingServer]:
    httpd = FailingServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", recorded.append)
    return recorded


def settings_for(server: FailingServer) -> Settings:
    host, port = server.server_address[:2]
    return Settings(
        endpoint_url=f"http://{host!s}:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # type: ignore[arg-type]
    )


def assert_backoff(waits: list[float], base: float) -> None:
    assert len(waits) == MAX_ATTEMPTS - 1
    for i, wait in enumerate(waits):
        assert 0 <= wait <= min(base * 2**i, 20)


def test_dynamodb_5xx_is_retried_then_raised(server: FailingServer, waits: list[float]) -> None:
    server.mode = "dynamo-500"
    client = dynamodb_resource(settings_for(server)).meta.client
    with pytest.raises(ClientError):
        client.put_item(TableName="t", Item={"k": {"S": "v"}})
    assert server.requests == MAX_ATTEMPTS
    assert_backoff(waits, base=0.025)


def test_dynamodb_throttling_backs_off_longer(server: FailingServer, waits: list[float]) -> None:
    server.mode = "dynamo-throttle"
    client = dynamodb_resource(settings_for(server)).meta.client
    with pytest.raises(ClientError) as raised:
        client.put_item(TableName="t", Item={"k": {"S": "v"}})
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert server.requests == MAX_ATTEMPTS
    assert_backoff(waits, base=1.0)


def test_s3_slowdown_is_retried_as_throttling(server: FailingServer, waits: list[float]) -> None:
    server.mode = "s3-slowdown"
    client = s3_client(settings_for(server))
    with pytest.raises(ClientError) as raised:
        client.put_object(Bucket="b", Key="k", Body=b"x")
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert server.requests == MAX_ATTEMPTS
    assert_backoff(waits, base=1.0)


def test_the_stated_budget() -> None:
    """README: about 2.8 minutes for one call that keeps failing."""
    backoff_ceilings = [1, 2, 4, 8, 16, 20, 20]
    assert len(backoff_ceilings) == MAX_ATTEMPTS - 1
    assert RETRY_BUDGET_S == MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + 71 == 167
