"""Service and operation recognition, checked against botocore itself: every request a real
boto3 client builds is caught before it is sent, and botocore's own operation name is the
oracle for what ``classify`` reads off the wire."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from stockpipe.local.aws_request import AwsRequest, classify

ENDPOINT = "http://127.0.0.1:9"  # never reached: requests are answered before they are sent


def _capture(service: str, call: str, **params: Any) -> tuple[AwsRequest, str]:
    seen: list[tuple[AwsRequest, str]] = []

    def before_send(request: Any, event_name: str, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        fields = {
            k.lower().encode(): (v if isinstance(v, bytes) else v.encode())
            for k, v in request.headers.items()
        }
        body = (
            request.body
            if isinstance(request.body, bytes)
            else (request.body or "").encode()
            if isinstance(request.body, str)
            else b""
        )
        seen.append(
            (
                classify(request.method.encode(), target.encode(), fields, body),
                event_name.rsplit(".", maxsplit=1)[-1],
            )
        )
        return AWSResponse(request.url, 500, {}, None)  # type: ignore[arg-type]

    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client = session.client(
        service,
        endpoint_url=ENDPOINT,
        config=boto3.session.Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register("before-send", before_send)
    with contextlib.suppress(Exception):  # the fake 500 answer; only the request matters
        getattr(client, call)(**params)
    return seen[0]


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("dynamodb", "get_item", {"TableName": "t", "Key": {"k": {"S": "a"}}}),
    (
        "dynamodb",
        "batch_write_item",
        {"RequestItems": {"t": [{"PutRequest": {"Item": {"k": {"S": "a"}}}}]}},
    ),
    ("dynamodb", "put_item", {"TableName": "t", "Item": {"k": {"S": "a"}}}),
    ("s3", "put_object", {"Bucket": "b", "Key": "k/x.parquet", "Body": b"x"}),
    ("s3", "get_object", {"Bucket": "b", "Key": "k/x.parquet"}),
    ("s3", "head_object", {"Bucket": "b", "Key": "k"}),
    ("s3", "delete_object", {"Bucket": "b", "Key": "k"}),
    ("s3", "list_objects_v2", {"Bucket": "b", "Prefix": "ticks/"}),
    ("s3", "delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}]}}),
    ("s3", "create_bucket", {"Bucket": "b"}),
    ("s3", "head_bucket", {"Bucket": "b"}),
    ("s3", "create_multipart_upload", {"Bucket": "b", "Key": "k"}),
    (
        "s3",
        "upload_part",
        {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1, "Body": b"x"},
    ),
    ("s3", "complete_multipart_upload", {"Bucket": "b", "Key": "k", "UploadId": "u"}),
    ("sns", "publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "m"}),
    ("sqs", "send_message", {"QueueUrl": f"{ENDPOINT}/123456789012/q", "MessageBody": "m"}),
]


@pytest.mark.parametrize(("service", "call", "params"), CASES, ids=[c[1] for c in CASES])
def test_operation_is_what_botocore_sent(service: str, call: str, params: dict[str, Any]) -> None:
    recognised, operation = _capture(service, call, **params)
    assert recognised == AwsRequest(service, operation)
