"""The proxy process between boto3 and moto server: traffic passes unchanged (DynamoDB, S3
with multi-MB bodies, chunked bodies, keep-alive, concurrency), latency is added, each fault
kind reaches boto3 as the error AWS would give, and the control endpoint's counts agree with
what the client saw."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from tests.local_servers import PROXY, RunningProxy, client, start_proxy, stop_proxy


def _get(dynamodb: Any, table: str) -> dict[str, Any]:
    return dict(dynamodb.get_item(TableName=table, Key={"k": {"S": "a"}})["Item"])


# ---- traffic passes unchanged ----------------------------------------------------------------


def test_dynamodb_calls_through_the_proxy_reach_moto(
    proxy: RunningProxy, moto_endpoint: str, table: str
) -> None:
    via_proxy = client("dynamodb", proxy.url)
    items = [{"k": {"S": f"k{i}"}, "v": {"N": str(i)}} for i in range(60)]
    for start in range(0, len(items), 25):
        via_proxy.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        )
    # The oracle: moto itself, read directly.
    direct = client("dynamodb", moto_endpoint)
    stored = {i["k"]["S"]: i for i in direct.scan(TableName=table)["Items"]}
    assert all(stored[i["k"]["S"]] == i for i in items)
    assert _get(via_proxy, table) == _get(direct, table)
    assert proxy.stats()["by_service"] == {"dynamodb": 4}


def test_s3_multi_megabyte_put_and_get(
    proxy: RunningProxy, moto_endpoint: str, bucket: str
) -> None:
    body = random.Random(1).randbytes(7 * 1024 * 1024 + 13)
    s3 = client("s3", proxy.url)
    s3.put_object(Bucket=bucket, Key="big/object.bin", Body=body)
    direct = client("s3", moto_endpoint).get_object(Bucket=bucket, Key="big/object.bin")
    assert hashlib.sha256(direct["Body"].read()).digest() == hashlib.sha256(body).digest()
    fetched = s3.get_object(Bucket=bucket, Key="big/object.bin")["Body"].read()
    assert hashlib.sha256(fetched).digest() == hashlib.sha256(body).digest()
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("big/object.bin", len(body))]
    assert s3.head_object(Bucket=bucket, Key="big/object.bin")["ContentLength"] == len(body)


def test_s3_multipart_upload_with_concurrent_parts(
    proxy: RunningProxy, moto_endpoint: str, bucket: str
) -> None:
    from io import BytesIO

    from boto3.s3.transfer import TransferConfig

    body = random.Random(2).randbytes(13 * 1024 * 1024)
    transfer = TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=3
    )
    client("s3", proxy.url).upload_fileobj(BytesIO(body), bucket, "multi", Config=transfer)
    stored = client("s3", moto_endpoint).get_object(Bucket=bucket, Key="multi")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(body).digest()
    operations = proxy.stats()["by_operation"]
    assert operations["s3.UploadPart"] == 3
    assert operations["s3.CreateMultipartUpload"] == operations["s3.CompleteMultipartUpload"] == 1


def test_chunked_request_body_is_forwarded(
    proxy: RunningProxy, moto_endpoint: str, bucket: str
) -> None:
    parts = [os.urandom(70_000), b"", os.urandom(3)]
    connection = http.client.HTTPConnection(urlsplit(proxy.url).netloc, timeout=10)
    connection.request("PUT", f"/{bucket}/chunked", body=iter(parts), encode_chunked=True)
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    stored = client("s3", moto_endpoint).get_object(Bucket=bucket, Key="chunked")["Body"].read()
    assert stored == b"".join(parts)


def test_keep_alive_one_connection_for_many_calls(proxy: RunningProxy, table: str) -> None:
    dynamodb = client("dynamodb", proxy.url)
    for _ in range(25):
        _get(dynamodb, table)
    stats = proxy.stats()
    assert stats["requests"] == 25
    assert stats["connections"] == 1


def test_concurrent_connections(proxy: RunningProxy, table: str) -> None:
    workers = 24

    def calls(_: int) -> int:
        dynamodb = client("dynamodb", proxy.url)  # one client, one connection, per worker
        return sum(_get(dynamodb, table)["v"] == {"N": "1"} for _ in range(10))

    with ThreadPoolExecutor(workers) as pool:
        assert list(pool.map(calls, range(workers))) == [10] * workers
    stats = proxy.stats()
    assert stats["requests"] == workers * 10
    assert stats["connections"] == workers


def test_delayed_requests_overlap(proxy: RunningProxy, table: str) -> None:
    """Latency is waited per request, not per proxy: 16 concurrent calls delayed 300 ms each
    take far less than 16 x 300 ms (the consumer's overlapped sink calls stay overlapped)."""
    proxy.control("PUT", "latency", {"latency_ms": 300})
    clients = [client("dynamodb", proxy.url) for _ in range(16)]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(lambda c: _get(c, table), clients))
    assert time.perf_counter() - started < 16 * 0.300 / 2


class _ChunkedUpstream(BaseHTTPRequestHandler):
    """An upstream that answers in the framings moto rarely uses: chunked, and close-delimited."""

    protocol_version = "HTTP/1.1"
    payload = b"".join(bytes([i % 251]) * 1000 for i in range(300))

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(self.payload), 40_000):
                piece = self.payload[start : start + 40_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(self.payload)
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def odd_upstream(tmp_path: Path) -> Iterator[RunningProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChunkedUpstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = start_proxy(f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "odd.log")
    try:
        yield proxy
    finally:
        stop_proxy(proxy)
        server.shutdown()


def test_chunked_and_close_delimited_responses_are_relayed(odd_upstream: RunningProxy) -> None:
    connection = http.client.HTTPConnection(urlsplit(odd_upstream.url).netloc, timeout=10)
    for _ in range(2):  # the same connection twice: a chunked answer keeps it alive
        connection.request("GET", "/chunked")
        response = connection.getresponse()
        assert response.read() == _ChunkedUpstream.payload
        assert not response.will_close
    connection.request("GET", "/until-close")
    response = connection.getresponse()
    assert response.read() == _ChunkedUpstream.payload
    assert response.will_close  # no framing: the proxy must close the client's connection too


# ---- latency ---------------------------------------------------------------------------------


def test_fixed_latency_is_added_to_each_request(proxy: RunningProxy, table: str) -> None:
    proxy.control("PUT", "latency", {"latency_ms": 60})
    dynamodb = client("dynamodb", proxy.url)
    for _ in range(8):
        started = time.perf_counter()
        _get(dynamodb, table)
        # A lower bound only: the configured delay is waited before forwarding.
        assert time.perf_counter() - started >= 0.060


def test_uniform_latency_lower_bound(proxy: RunningProxy, table: str) -> None:
    proxy.control("PUT", "latency", {"latency_ms": 50, "jitter_ms": 20})
    dynamodb = client("dynamodb", proxy.url)
    for _ in range(8):
        started = time.perf_counter()
        _get(dynamodb, table)
        assert time.perf_counter() - started >= 0.030


# ---- faults ----------------------------------------------------------------------------------


def _rule(fault: str, service: str = "*", **extra: Any) -> dict[str, Any]:
    return {"name": f"{fault}-{service}", "fault": fault, "service": service, **extra}


def test_dynamodb_throttle_is_provisioned_throughput_exceeded(
    proxy: RunningProxy, table: str
) -> None:
    proxy.set_faults([_rule("throttle", "dynamodb")])
    dynamodb = client("dynamodb", proxy.url)
    with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException) as caught:
        _get(dynamodb, table)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert proxy.stats()["faults_by_kind"] == {"throttle": 1}


def test_s3_throttle_is_slow_down(proxy: RunningProxy, bucket: str) -> None:
    proxy.set_faults([_rule("throttle", "s3", operation="PutObject")])
    s3 = client("s3", proxy.url)
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3.list_objects_v2(Bucket=bucket)  # another operation of S3 is not targeted
    assert proxy.stats()["faults_by_rule"] == {"throttle-s3": 1}


@pytest.mark.parametrize(
    ("service", "fault", "code"),
    [
        ("dynamodb", "500", "InternalServerError"),
        ("dynamodb", "503", "ServiceUnavailable"),
        ("s3", "500", "InternalError"),
        ("s3", "503", "ServiceUnavailable"),
    ],
)
def test_server_errors(
    proxy: RunningProxy, table: str, bucket: str, service: str, fault: str, code: str
) -> None:
    proxy.set_faults([_rule(fault, service)])
    with pytest.raises(ClientError) as caught:
        if service == "dynamodb":
            _get(client("dynamodb", proxy.url), table)
        else:
            client("s3", proxy.url).get_object(Bucket=bucket, Key="absent")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(fault)
    assert caught.value.response["Error"]["Code"] == code


def test_fault_on_a_head_request_keeps_the_connection_usable(
    proxy: RunningProxy, bucket: str
) -> None:
    """A HEAD answer has no body: an error body sent anyway would be read as the next answer."""
    client("s3", proxy.url).put_object(Bucket=bucket, Key="k", Body=b"12345")
    proxy.set_faults([{"name": "head", "fault": "503", "operation": "HeadObject", "limit": 1}])
    s3 = client("s3", proxy.url)
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key="k")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"12345"
    assert proxy.stats()["connections"] == 2  # the PUT's client, then one for HEAD and GET


def test_timeout_holds_the_request(proxy: RunningProxy, table: str) -> None:
    proxy.set_faults([_rule("timeout", "dynamodb", hold_seconds=5)])
    dynamodb = client("dynamodb", proxy.url, read_timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(ReadTimeoutError):
        _get(dynamodb, table)
    assert time.perf_counter() - started >= 0.5
    assert proxy.stats()["faults_by_kind"] == {"timeout": 1}


def test_reset_closes_the_connection_abruptly(proxy: RunningProxy, table: str) -> None:
    proxy.set_faults([_rule("reset", "dynamodb")])
    with pytest.raises(ConnectionClosedError):
        _get(client("dynamodb", proxy.url), table)
    assert proxy.stats()["faults_by_kind"] == {"reset": 1}


def test_reset_is_a_tcp_rst(proxy: RunningProxy, table: str) -> None:
    """Below boto3: the client's socket sees ECONNRESET, not an orderly end of stream."""
    proxy.set_faults([_rule("reset")])
    connection = http.client.HTTPConnection(urlsplit(proxy.url).netloc, timeout=5)
    connection.request(
        "POST", "/", body=b"{}", headers={"X-Amz-Target": "DynamoDB_20120810.GetItem"}
    )
    with pytest.raises(ConnectionResetError):
        connection.getresponse()


def test_probability_draws_follow_the_seed_and_counts_agree(
    proxy: RunningProxy, table: str
) -> None:
    seed, probability, calls = 42, 0.3, 60
    proxy.set_faults([_rule("throttle", "dynamodb", probability=probability)], seed=seed)
    dynamodb = client("dynamodb", proxy.url)
    seen = []
    for _ in range(calls):
        try:
            _get(dynamodb, table)
            seen.append(False)
        except dynamodb.exceptions.ProvisionedThroughputExceededException:
            seen.append(True)
    # The oracle: one draw per matching request from random.Random(seed), in order.
    draws = random.Random(seed)
    assert seen == [draws.random() < probability for _ in range(calls)]
    stats = proxy.stats()
    assert stats["faults_total"] == sum(seen) > 0
    assert stats["requests"] == calls


def test_probability_zero_windows_elsewhere_and_disabled_rules_inject_nothing(
    proxy: RunningProxy, table: str
) -> None:
    proxy.set_faults(
        [
            _rule("500", probability=0),
            {"name": "later", "fault": "500", "start": 3600},
            {"name": "over", "fault": "500", "start": 0, "stop": 0.2},
            {"name": "off", "fault": "500", "enabled": False},
            {"name": "other-op", "fault": "500", "operation": "PutItem"},
        ]
    )
    time.sleep(0.3)  # past "over"'s window
    dynamodb = client("dynamodb", proxy.url)
    for _ in range(20):
        _get(dynamodb, table)
    assert proxy.stats()["faults_total"] == 0
    assert not any(rule["active"] for rule in proxy.control("GET", "faults")["rules"][1:4])


def test_rules_toggled_at_run_time(proxy: RunningProxy, table: str) -> None:
    proxy.set_faults([{"name": "flaky", "fault": "503", "enabled": False}])
    dynamodb = client("dynamodb", proxy.url)
    _get(dynamodb, table)
    proxy.control("POST", "faults/flaky/enable")
    with pytest.raises(ClientError):
        _get(dynamodb, table)
    proxy.control("POST", "faults/flaky/disable")
    _get(dynamodb, table)
    assert proxy.stats()["faults_by_rule"] == {"flaky": 1}


def test_window_and_limit(proxy: RunningProxy, table: str) -> None:
    proxy.set_faults([{"name": "burst", "fault": "500", "stop": 30, "limit": 3}])
    dynamodb = client("dynamodb", proxy.url)
    failed = 0
    for _ in range(10):
        try:
            _get(dynamodb, table)
        except ClientError:
            failed += 1
    assert failed == 3
    assert proxy.stats()["faults_by_rule"] == {"burst": 3}


def test_faults_are_logged_as_json(proxy: RunningProxy, table: str) -> None:
    proxy.set_faults([{"name": "logged", "fault": "throttle", "service": "dynamodb"}])
    with pytest.raises(ClientError):
        _get(client("dynamodb", proxy.url), table)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in proxy.log.read_text().splitlines() if line]
        faults = [
            e for e in events if e.get("message") == "fault injected" and e["rule"] == "logged"
        ]
        if faults:
            break
        time.sleep(0.05)
    assert faults[-1]["fault"] == "throttle"
    assert (faults[-1]["service"], faults[-1]["operation"]) == ("dynamodb", "GetItem")


def test_control_endpoint_errors(proxy: RunningProxy) -> None:
    connection = http.client.HTTPConnection(urlsplit(proxy.url).netloc, timeout=5)
    connection.request("PUT", "/__proxy__/faults", body=json.dumps([{"fault": "explode"}]))
    response = connection.getresponse()
    assert response.status == 400
    assert "explode" in json.loads(response.read())["error"]
    connection.request("GET", "/__proxy__/nothing")
    response = connection.getresponse()
    assert response.status == 404
    response.read()


# ---- bad flags and config --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--upstream", "http://10.0.0.1:4566"], "--upstream"),
        (["--upstream", "http://127.0.0.1:1", "--latency-ms", "-5"], "--latency-ms"),
        (
            ["--upstream", "http://127.0.0.1:1", "--latency-ms", "10", "--latency-jitter-ms", "30"],
            "jitter",
        ),
        (
            ["--upstream", "http://127.0.0.1:1", "--latency-ms", "20", "--latency-p99-ms", "5"],
            "p99",
        ),
        (
            ["--upstream", "http://127.0.0.1:1", "--faults", "/nonexistent/faults.json"],
            "faults.json",
        ),
        (["--upstream", "http://127.0.0.1:1", "--seed", "x"], "--seed"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], named: str) -> None:
    done = subprocess.run([*PROXY, *args], check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("not json", "not JSON"),
        ('{"rules": [{"fault": "explode"}]}', "explode"),
        ('{"rules": [{"fault": "500", "probability": 2}]}', "probability"),
        ('{"rules": [{"fault": "500", "start": 5, "stop": 1}]}', "start"),
        ('{"rules": [{"fault": "500", "colour": "red"}]}', "colour"),
        ('[{"name": "a", "fault": "500"}, {"name": "a", "fault": "503"}]', "'a'"),
    ],
)
def test_bad_fault_file_is_one_line_and_exit_2(tmp_path: Path, content: str, named: str) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(content)
    done = subprocess.run(
        [*PROXY, "--upstream", "http://127.0.0.1:1", "--faults", str(faults)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
