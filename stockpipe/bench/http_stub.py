"""An upstream that answers every request at once with one fixed DynamoDB GetItem answer: the
proxy benchmark puts it behind the proxy to measure the proxy's own cost without moto's
milliseconds of noise. ``python -m stockpipe.bench.http_stub PORT_FILE``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Final

from stockpipe.local.http1 import HttpError, read_body, read_head

BODY: Final = json.dumps({"Item": {"k": {"S": "a"}, "v": {"N": "1"}}}).encode()
ANSWER: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(HttpError, ConnectionError):
        while (head := await read_head(reader)) is not None:
            await read_body(reader, head)
            writer.write(ANSWER)
    writer.close()


async def _serve(port_file: Path) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
