"""A DynamoDB + S3 endpoint on 127.0.0.1 that accepts every write and stores nothing, for the
"round trips only" column of ``stockpipe bench catchup``.

Why it exists: moto's DynamoDB costs 10-20 ms of CPU per 25-item BatchWriteItem (it re-sizes
an item on every attribute it sets), so on this 2-core machine moto, not the consumer, caps a
benchmark at about 1,500 rows/s whatever the consumer does. AWS's cost per call is a round
trip, paid in parallel. Behind the latency proxy this server gives exactly that: each call
costs the proxy's delay and next to no CPU, so the figure is the consumer's own (its
processing, its serialization, its overlap of round trips). It is never a stand-in for
correctness: the moto runs of the same benchmark, and the tests, check what lands.

Answers: DynamoDB ``BatchWriteItem`` -> nothing unprocessed; ``BatchGetItem`` -> no items
(every symbol new); ``PutItem``/``UpdateItem`` (conditional or not) -> success; S3 ``GET`` ->
404 NoSuchKey (a new object key, the normal case), ``PUT`` -> 200, ``DELETE`` -> 204.
Run: ``python -m stockpipe.bench.null_aws --port-file F``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Final

_DYNAMODB_ANSWERS: Final = {
    "BatchWriteItem": b'{"UnprocessedItems":{}}',
    "BatchGetItem": b'{"Responses":{},"UnprocessedKeys":{}}',
    # The shard's fence (consumer/fencing.py): the one processor of a bench claims epoch 1, and
    # the commit's ownership check reads epoch 1 back.
    "UpdateItem": b'{"Attributes":{"epoch":{"N":"1"}}}',
    "GetItem": b'{"Item":{"epoch":{"N":"1"}}}',
}
_NO_SUCH_KEY: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
    b"<Message>The specified key does not exist.</Message></Error>"
)


def _response(status: str, body: bytes, content_type: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


def answer(method: bytes, headers: dict[bytes, bytes]) -> bytes:
    target = headers.get(b"x-amz-target")
    if target is not None:  # DynamoDB's JSON protocol
        operation = target.decode().rpartition(".")[2]
        body = _DYNAMODB_ANSWERS.get(operation, b"{}")
        return _response("200 OK", body, b"application/x-amz-json-1.0")
    if method in {b"GET", b"HEAD"}:
        return _response("404 Not Found", _NO_SUCH_KEY, b"application/xml")
    if method == b"DELETE":
        return b"HTTP/1.1 204 No Content\r\n\r\n"
    return _response("200 OK", b"", b"application/xml", b'ETag: "0"\r\n')


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            method = line.split(b" ", 1)[0]
            headers: dict[bytes, bytes] = {}
            while (field := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = field.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if length:
                await reader.readexactly(length)
            writer.write(answer(method, headers))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _main(port_file: Path) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    partial = port_file.with_suffix(".partial")
    partial.write_text(json.dumps({"port": port, "pid": os.getpid()}))
    partial.replace(port_file)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stockpipe.bench.null_aws")
    parser.add_argument("--port-file", type=Path, required=True)
    asyncio.run(_main(parser.parse_args().port_file))


if __name__ == "__main__":
    main()
