"""Which AWS service and operation an HTTP request is, from what the SDKs put on the wire:
``X-Amz-Target`` (JSON protocols: DynamoDB, SQS), the SigV4 credential scope (every signed
request names its service), S3's method + path + query, and the query protocol's ``Action=``
(SNS, older SQS)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

_TARGET_PREFIXES: Final = {
    b"DynamoDB_20120810": "dynamodb",
    b"DynamoDBStreams_20120810": "dynamodbstreams",
    b"AmazonSQS": "sqs",
    b"Kinesis_20131202": "kinesis",
}
# Authorization: AWS4-HMAC-SHA256 Credential=KEY/20261202/us-east-1/s3/aws4_request, ...
_SCOPE: Final = re.compile(rb"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_ACTION: Final = re.compile(rb"(?:^|&)Action=([A-Za-z0-9]+)")


@dataclass(frozen=True, slots=True)
class AwsRequest:
    service: str  # "dynamodb", "s3", "sns", "sqs", ... or "unknown"
    operation: str  # "GetItem", "PutObject", "Publish", ... or "" when not recognised


def classify(method: bytes, target: bytes, fields: dict[bytes, bytes], body: bytes) -> AwsRequest:
    amz_target = fields.get(b"x-amz-target")
    if amz_target:
        prefix, _, operation = amz_target.partition(b".")
        service = _TARGET_PREFIXES.get(prefix) or prefix.decode("latin-1").lower()
        return AwsRequest(service, operation.decode("latin-1"))
    path, _, query = target.partition(b"?")
    scope = _SCOPE.search(fields.get(b"authorization", b"")) or _SCOPE.search(
        query.replace(b"%2F", b"/")  # pre-signed URL: X-Amz-Credential in the query string
    )
    service = scope.group(1).decode("latin-1") if scope else "unknown"
    if service == "s3":
        return AwsRequest("s3", s3_operation(method, path, query, fields))
    action = _ACTION.search(body) if b"urlencoded" in fields.get(b"content-type", b"") else None
    return AwsRequest(service, action.group(1).decode() if action else "")


def s3_operation(method: bytes, path: bytes, query: bytes, fields: dict[bytes, bytes]) -> str:
    """The S3 operation of a path-style request (the SDKs use path style on an IP endpoint).
    Only the operations the pipeline and its tests use are named; the rest are ``Bucket*``
    or ``Object*`` plus the method, still usable in a rule."""
    params = parse_qs(query.decode("latin-1"), keep_blank_values=True)
    parts = path.lstrip(b"/").split(b"/", 1)
    has_key = len(parts) == 2 and parts[1] != b""
    if not parts[0]:
        return "ListBuckets" if method == b"GET" else "Service" + method.decode().title()
    if has_key:
        if "uploadId" in params:
            return {
                b"PUT": "UploadPart",
                b"POST": "CompleteMultipartUpload",
                b"DELETE": "AbortMultipartUpload",
                b"GET": "ListParts",
            }.get(method, "Object" + method.decode().title())
        if method == b"POST" and "uploads" in params:
            return "CreateMultipartUpload"
        if method == b"PUT" and b"x-amz-copy-source" in fields:
            return "CopyObject"
        return {
            b"PUT": "PutObject",
            b"GET": "GetObject",
            b"HEAD": "HeadObject",
            b"DELETE": "DeleteObject",
        }.get(method, "Object" + method.decode().title())
    if method == b"POST" and "delete" in params:
        return "DeleteObjects"
    if method == b"GET" and not params.keys() - {
        "list-type",
        "prefix",
        "delimiter",
        "continuation-token",
        "start-after",
        "max-keys",
        "encoding-type",
        "fetch-owner",
        "marker",
    }:
        return "ListObjectsV2" if params.get("list-type") == ["2"] else "ListObjects"
    if not params:
        return {
            b"PUT": "CreateBucket",
            b"DELETE": "DeleteBucket",
            b"HEAD": "HeadBucket",
        }.get(method, "Bucket" + method.decode().title())
    return "Bucket" + method.decode().title()
