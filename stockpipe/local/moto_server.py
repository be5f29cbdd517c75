"""moto's server, with writes that check a condition made atomic as they are on AWS.

Why. The fencing (consumer/fencing.py) relies on S3 and DynamoDB checking a write's
condition and applying the write in one step: of two owners that both send
``If-None-Match: *`` for one key, exactly one wins. moto checks the condition, then stores,
as two steps of its request handler, and its server answers each request on its own thread:
another thread's write can land in between. In-process, eight threads racing one
``If-None-Match: *`` PUT had more than one winner on 11 of 60 keys (moto 5.2). So this
server runs every conditional S3 write and every DynamoDB write under one lock: a local
stack honours what the consumer relies on, and a stale owner in a fleet test cannot win by
moto's race instead of losing by the rule. Reads and unconditional S3 writes stay parallel.

Run by ``stockpipe local up`` as ``python -m stockpipe.local.moto_server -H HOST -p PORT``
(the same options as ``moto_server``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

# Every DynamoDB action that changes an item: conditions (and transactions' checks) are
# evaluated against items that only these change, so all of them take the lock.
DYNAMODB_WRITES: Final = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
_S3_WRITE_METHODS: Final = frozenset({"PUT", "POST", "DELETE"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def command(host: str, port: int) -> list[str]:
    """The command line that runs this server on ``host:port``."""
    return [sys.executable, "-m", "stockpipe.local.moto_server", "-H", host, "-p", str(port)]


def is_checked_write(environ: dict[str, Any]) -> bool:
    """Whether a request's condition and its write must happen as one step."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target.startswith("DynamoDB_"):
        return target.partition(".")[2] in DYNAMODB_WRITES
    return environ.get("REQUEST_METHOD") in _S3_WRITE_METHODS and (
        "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ
    )


class AtomicCheckedWrites:
    """WSGI middleware: checked writes one at a time, everything else as it comes."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not is_checked_write(environ):
            return self._app(environ, start_response)
        with self._lock:
            # Drained under the lock: a WSGI app may do its work while its body is iterated.
            return list(self._app(environ, start_response))


def main(argv: Sequence[str] | None = None) -> None:
    # Imported here: the module's pure parts (above) are tested without starting moto.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, required=True, help="port to bind")
    args = parser.parse_args(argv)
    # As moto_server does: moto builds some URLs (SQS queue URLs) from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    run_simple(
        args.host,
        args.port,
        AtomicCheckedWrites(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
