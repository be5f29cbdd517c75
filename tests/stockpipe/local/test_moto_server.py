"""The local stack's moto server (stockpipe/local/moto_server.py): which requests take the
lock, that those never overlap while the rest do, and - with the real server process - that
the conditions the fencing relies on are answered as S3 and DynamoDB answer them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stockpipe.bench.producer import local_moto
from stockpipe.local.moto_server import AtomicCheckedWrites, is_checked_write
from tests.local_servers import client


def _dynamodb(action: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{action}"}


@pytest.mark.parametrize(
    ("environ", "checked"),
    [
        ({"REQUEST_METHOD": "PUT", "HTTP_IF_NONE_MATCH": "*"}, True),
        ({"REQUEST_METHOD": "PUT", "HTTP_IF_MATCH": '"e1"'}, True),
        ({"REQUEST_METHOD": "DELETE", "HTTP_IF_MATCH": '"e1"'}, True),
        ({"REQUEST_METHOD": "PUT"}, False),  # an unconditional PUT: last writer wins anyway
        ({"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": '"e1"'}, False),  # a cache check
        (_dynamodb("PutItem"), True),
        (_dynamodb("TransactWriteItems"), True),
        (_dynamodb("BatchWriteItem"), True),
        (_dynamodb("UpdateItem"), True),
        (_dynamodb("GetItem"), False),
        (_dynamodb("Query"), False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "Kinesis_20131202.PutRecord"}, False),
    ],
)
def test_which_requests_are_checked_writes(environ: dict[str, Any], checked: bool) -> None:
    assert is_checked_write(environ) is checked


class _SlowApp:
    """A WSGI app that takes 20 ms per request and records how many ran at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.02)
        with self._lock:
            self.running -= 1
        start_response("200 OK", [])
        return [b"ok"]


def _concurrently(app: AtomicCheckedWrites, environ: dict[str, Any], count: int = 8) -> None:
    with ThreadPoolExecutor(count) as pool:
        bodies = list(pool.map(lambda _: list(app(dict(environ), lambda *a: None)), range(count)))
    assert bodies == [[b"ok"]] * count


def test_checked_writes_run_one_at_a_time() -> None:
    inner = _SlowApp()
    _concurrently(AtomicCheckedWrites(inner), {"REQUEST_METHOD": "PUT", "HTTP_IF_NONE_MATCH": "*"})
    assert inner.most_at_once == 1


def test_reads_and_unconditional_writes_still_overlap() -> None:
    inner = _SlowApp()
    app = AtomicCheckedWrites(inner)
    _concurrently(app, {"REQUEST_METHOD": "GET"})
    _concurrently(app, {"REQUEST_METHOD": "PUT"})
    assert inner.most_at_once > 1


# -- the real server process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with local_moto() as (endpoint, _pid):
        yield endpoint


def _error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def test_racing_creates_of_one_key_have_one_winner(server: str) -> None:
    s3 = client("s3", server)
    s3.create_bucket(Bucket="race")
    winners: list[int] = []

    def create(writer: int) -> None:
        try:
            s3.put_object(Bucket="race", Key="k", Body=f"{writer}".encode(), IfNoneMatch="*")
            winners.append(writer)
        except ClientError as error:
            assert error.response["Error"]["Code"] in {"PreconditionFailed", "412"}

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(8)))
    assert len(winners) == 1
    assert s3.get_object(Bucket="race", Key="k")["Body"].read() == f"{winners[0]}".encode()
    etag = s3.head_object(Bucket="race", Key="k")["ETag"]
    assert _error_code(lambda: s3.put_object(Bucket="race", Key="k", Body=b"x", IfMatch='"0"'))
    s3.put_object(Bucket="race", Key="k", Body=b"replaced", IfMatch=etag)
    assert s3.get_object(Bucket="race", Key="k")["Body"].read() == b"replaced"


def test_dynamodb_conditions_are_honoured(server: str) -> None:
    dynamodb = client("dynamodb", server)
    dynamodb.create_table(
        TableName="fence",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    put = {"TableName": "fence", "ConditionExpression": "attribute_not_exists(k)"}
    dynamodb.put_item(Item={"k": {"S": "a"}}, **put)
    code = _error_code(lambda: dynamodb.put_item(Item={"k": {"S": "a"}}, **put))
    assert code == "ConditionalCheckFailedException"
