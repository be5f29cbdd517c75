"""Fixtures of the proxy tests: the real proxy process in front of moto in server mode
(tests/local_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.local_servers import RunningProxy, client, start_proxy, stop_proxy


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
