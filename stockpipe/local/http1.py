"""Just enough HTTP/1.1 for a reverse proxy between the AWS SDKs and moto: message heads,
request bodies (Content-Length or chunked) read whole, response bodies relayed as they arrive.

Request bodies are read whole (and de-chunked) because the proxy must know the operation (an
SNS/SQS ``Action=`` lives in the body) before it decides on a fault, and because moto's
server (werkzeug) is happiest with a Content-Length. Responses are streamed, so a multi-MB
GetObject costs no extra memory or latency.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

# The SDKs' heads are a few KB; a bigger head is a broken or hostile client.
MAX_HEAD_BYTES: Final = 1 << 20
_RELAY_CHUNK: Final = 1 << 18
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones this proxy rewrites itself.
_NOT_FORWARDED: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"content-length",
    }
)


class HttpError(Exception):
    """A message this proxy cannot frame: the connection is closed (after a 400 if possible)."""


@dataclass(slots=True)
class Head:
    start_line: bytes
    headers: list[tuple[bytes, bytes]]  # as sent (name case kept)
    fields: dict[bytes, bytes]  # lower-cased name -> value (the last one wins)

    def field(self, name: bytes) -> bytes | None:
        return self.fields.get(name)

    @property
    def chunked(self) -> bool:
        return b"chunked" in self.fields.get(b"transfer-encoding", b"").lower()

    def content_length(self) -> int | None:
        value = self.fields.get(b"content-length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            raise HttpError(f"bad Content-Length {value!r}") from None
        if length < 0:
            raise HttpError(f"bad Content-Length {value!r}")
        return length

    def wants_close(self, version: bytes) -> bool:
        connection = self.fields.get(b"connection", b"").lower()
        if version == b"HTTP/1.0":
            return b"keep-alive" not in connection
        return b"close" in connection


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next message head, or None at a clean end of stream (no byte of a new message)."""
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(f"message head longer than {MAX_HEAD_BYTES} bytes") from None
    lines = data[:-4].split(b"\r\n")
    while lines and not lines[0]:  # tolerated empty lines before a request (RFC 9112 2.2)
        lines.pop(0)
    if not lines:
        raise HttpError("empty message head")
    headers: list[tuple[bytes, bytes]] = []
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise HttpError(f"bad header line {line[:80]!r}")
        value = value.strip()
        headers.append((name, value))
        fields[name.lower()] = value
    return Head(lines[0], headers, fields)


async def read_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    """A request's whole body, de-chunked (trailers dropped: the SDKs send none at HTTP level;
    S3's aws-chunked checksum trailers live inside the body and pass untouched)."""
    if head.chunked:
        parts: list[bytes] = []
        while True:
            size = _chunk_size(await _read_line(reader))
            if size == 0:
                while await _read_line(reader):  # trailer fields, then the empty line
                    pass
                return b"".join(parts)
            parts.append(await _read_exactly(reader, size))
            if await _read_exactly(reader, 2) != b"\r\n":
                raise HttpError("chunk not followed by CRLF")
    length = head.content_length()
    return await _read_exactly(reader, length) if length else b""


def request_head_bytes(start_line: bytes, head: Head, body_length: int | None) -> bytes:
    """The head to send upstream: hop-by-hop headers dropped, the body's framing made a
    Content-Length (``None``: the request had no body framing at all)."""
    out = [start_line]
    out.extend(
        name + b": " + value for name, value in head.headers if name.lower() not in _NOT_FORWARDED
    )
    if body_length is not None:
        out.append(b"Content-Length: " + str(body_length).encode())
    return b"\r\n".join(out) + b"\r\n\r\n"


def response_head_bytes(head: Head, close: bool) -> bytes:
    """The upstream response head for the client: its own Connection/Keep-Alive dropped (the
    two legs' keep-alive are independent), framing headers kept (the body is relayed as is)."""
    out = [head.start_line]
    out.extend(
        name + b": " + value
        for name, value in head.headers
        if name.lower() not in {b"connection", b"keep-alive"}
    )
    if close:
        out.append(b"Connection: close")
    return b"\r\n".join(out) + b"\r\n\r\n"


def status_of(head: Head) -> int:
    parts = head.start_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise HttpError(f"bad status line {head.start_line[:80]!r}")
    return int(parts[1])


def response_has_body(request_method: bytes, status: int) -> bool:
    return request_method != b"HEAD" and status >= 200 and status not in {204, 304}


async def relay_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head, close: bool
) -> bool:
    """Send the response head and then its body as it arrives. Returns False when the body
    runs to the end of the upstream stream (no framing), so both legs must close after it."""
    framed = head.chunked or head.content_length() is not None
    head_bytes = response_head_bytes(head, close or not framed)
    if head.chunked:
        writer.write(head_bytes)
        while True:
            line = await _read_line(reader)
            size = _chunk_size(line)
            writer.write(line + b"\r\n")
            if size == 0:
                while True:
                    trailer = await _read_line(reader)
                    writer.write(trailer + b"\r\n")
                    if not trailer:
                        break
                await writer.drain()
                return True
            await _copy(reader, writer, size + 2)
    length = head.content_length()
    if length is None:
        writer.write(head_bytes)
        while chunk := await reader.read(_RELAY_CHUNK):
            writer.write(chunk)
            await writer.drain()
        return False
    if length <= _RELAY_CHUNK:
        # One write for head and body: one send() for the common small response.
        writer.write(head_bytes + await _read_exactly(reader, length))
    else:
        writer.write(head_bytes)
        await _copy(reader, writer, length)
    await writer.drain()
    return True


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
    while count:
        chunk = await reader.read(min(count, _RELAY_CHUNK))
        if not chunk:
            raise HttpError("upstream closed inside a response body")
        count -= len(chunk)
        writer.write(chunk)
        await writer.drain()


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise HttpError("connection closed or line too long inside a chunked body") from None


async def _read_exactly(reader: asyncio.StreamReader, count: int) -> bytes:
    try:
        return await reader.readexactly(count)
    except asyncio.IncompleteReadError:
        raise HttpError("connection closed inside a body") from None


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        raise HttpError(f"bad chunk size line {line[:40]!r}") from None
    if size < 0:
        raise HttpError(f"bad chunk size line {line[:40]!r}")
    return size
