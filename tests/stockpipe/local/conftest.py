"""Fixtures of the proxy tests: moto in server mode on 127.0.0.1 and the real proxy process in
front of it (``python -m stockpipe.local.proxy``), driven through its control endpoint."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
PROXY = [sys.executable, "-m", "stockpipe.local.proxy"]


@dataclass
class RunningProxy:
    url: str
    upstream: str
    log: Path
    process: subprocess.Popen[bytes]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/__proxy__/{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_faults(self, rules: list[dict[str, Any]], seed: int = 0) -> None:
        self.control("PUT", "faults", {"seed": seed, "rules": rules})

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))


def client(service: str, endpoint: str, **config: Any) -> Any:
    """A boto3 client on ``endpoint``; retries off unless asked, so each call is one request."""
    retries = config.pop("retries", {"total_max_attempts": 1})
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client(service, endpoint_url=endpoint, config=Config(retries=retries, **config))


def start_proxy(upstream: str, log: Path, *args: str) -> RunningProxy:
    port_file = log.with_suffix(".port")
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [*PROXY, "--upstream", upstream, "--port-file", str(port_file), *args],
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 20
    while not port_file.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"proxy did not start: {log.read_text()}")
        time.sleep(0.02)
    port = json.loads(port_file.read_text())["port"]
    return RunningProxy(f"http://127.0.0.1:{port}", upstream, log, process)


def stop_proxy(proxy: RunningProxy) -> None:
    proxy.process.terminate()
    proxy.process.wait(timeout=10)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy_process(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    proxy = start_proxy(moto_endpoint, tmp_path_factory.mktemp("proxy") / "proxy.log")
    try:
        yield proxy
    finally:
        stop_proxy(proxy)


@pytest.fixture
def proxy(proxy_process: RunningProxy) -> RunningProxy:
    """The module's proxy with no faults, no latency and zeroed counts."""
    proxy_process.set_faults([])
    proxy_process.control("PUT", "latency", {"latency_ms": 0})
    proxy_process.control("POST", "stats/reset")
    return proxy_process


@pytest.fixture
def table(moto_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh DynamoDB table (created directly on moto) holding one item, k="a"."""
    name = f"t-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    dynamodb = client("dynamodb", moto_endpoint)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=name, Item={"k": {"S": "a"}, "v": {"N": "1"}})
    return name


@pytest.fixture
def bucket(moto_endpoint: str, request: pytest.FixtureRequest) -> str:
    name = f"b-{request.node.name[:40]}".lower().replace("_", "-").replace("[", "-").rstrip("]")
    client("s3", moto_endpoint).create_bucket(Bucket=name)
    return name
