"""A reverse proxy on 127.0.0.1 in front of moto: AWS-like latency and fault injection for the
local stack (``stockpipe local up --latency-ms N --faults FILE``).

Every client connection gets its own keep-alive connection to moto, opened on its first
request, so the proxy adds no queueing: N overlapped SDK calls are N upstream calls. Per
request: read the head and the whole body, wait the drawn latency, decide on a fault (the
first active, matching rule whose draw hits), then either answer with the fault or forward
and stream moto's answer back.

Control endpoint, on the same port under ``/__proxy__/`` (no AWS request path starts with
it: S3 bucket names cannot contain ``_``; the JSON and query APIs post to ``/``; SQS queue
paths start with an account number):

- ``GET  /__proxy__/stats``: requests, by service, faults by kind and by rule;
- ``POST /__proxy__/stats/reset``: zero them;
- ``GET  /__proxy__/faults``: the schedule, each rule with ``active`` now;
- ``PUT  /__proxy__/faults``: replace it (body as a fault file; windows count from now);
- ``POST /__proxy__/faults/NAME/enable`` (or ``/disable``): toggle one rule;
- ``GET|PUT /__proxy__/latency``: ``{"latency_ms": N, "jitter_ms": J, "p99_ms": P}``;
- ``GET  /__proxy__/health``.

Run: ``python -m stockpipe.local.proxy --upstream http://127.0.0.1:PORT [--port N]
[--port-file F] [--latency-ms N ...] [--faults FILE.json] [--seed S]``; logs are JSON on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

from core.errors import StockpipeError, UsageError
from stockpipe.local.aws_request import AwsRequest, classify
from stockpipe.local.faults import (
    Rule,
    Schedule,
    error_response,
    load_schedule_file,
    parse_schedule,
)
from stockpipe.local.http1 import (
    MAX_HEAD_BYTES,
    Head,
    HttpError,
    read_body,
    read_head,
    relay_body,
    request_head_bytes,
    response_has_body,
    response_head_bytes,
    status_of,
)
from stockpipe.local.latency import Latency
from stockpipe.local.proxy_options import ProxyOptions, add_arguments, options_from

CONTROL_PREFIX: Final = b"/__proxy__/"
LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost"})
_SMALL_BODY: Final = 1 << 16
log = logging.getLogger("stockpipe.proxy")


class UpstreamError(Exception):
    """moto did not answer: the client gets a 502 and the connection closes."""


@dataclass
class Stats:
    connections: int = 0
    requests: int = 0
    forwarded: int = 0
    upstream_errors: int = 0
    by_service: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)  # "dynamodb.GetItem"
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    faults_by_rule: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "requests": self.requests,
            "forwarded": self.forwarded,
            "upstream_errors": self.upstream_errors,
            "by_service": dict(self.by_service),
            "by_operation": dict(self.by_operation),
            "faults_total": sum(self.faults_by_kind.values()),
            "faults_by_kind": dict(self.faults_by_kind),
            "faults_by_rule": dict(self.faults_by_rule),
        }

    def log_fields(self) -> dict[str, int]:
        """Flat, so a log query can use each count as a field."""
        counts = self.as_json()
        flat = {k: v for k, v in counts.items() if isinstance(v, int)}
        for group, prefix in (
            ("by_service", "service"),
            ("faults_by_kind", "fault"),
            ("faults_by_rule", "rule"),
        ):
            flat |= {f"{prefix}.{name}": n for name, n in counts[group].items()}
        return flat


class Proxy:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        latency: Latency,
        schedule: Schedule,
        seed: int,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.schedule = schedule
        self.stats = Stats()
        self._seed = seed
        self._set_latency(latency)

    def _set_latency(self, latency: Latency) -> None:
        self.latency = latency
        self._delay: Callable[[], float] = latency.sampler(random.Random(self._seed))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = _Upstream(*self.upstream)
        try:
            await self._serve(reader, writer, upstream)
        except HttpError as exc:
            log.warning("bad request from client", extra={"fields": {"error": str(exc)}})
            with contextlib.suppress(OSError):
                writer.write(_json_response(400, {"error": str(exc)}, close=True))
        except UpstreamError as exc:
            self.stats.upstream_errors += 1
            log.warning("upstream failed", extra={"fields": {"error": str(exc)}})
            with contextlib.suppress(OSError):
                writer.write(_json_response(502, {"error": str(exc)}, close=True))
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # Shutdown while a request is held or delayed. This task is a leaf nobody awaits;
            # ending it normally keeps Python 3.11's stream callback from logging an error.
            pass
        finally:
            upstream.close()
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: _Upstream
    ) -> None:
        loop = asyncio.get_running_loop()
        while (head := await read_head(reader)) is not None:
            method, target, version = _request_line(head)
            close = head.wants_close(version)
            if head.fields.get(b"expect", b"").lower() == b"100-continue":
                # We read the body ourselves (and strip Expect upstream), so moto never has to
                # send an interim response through us.
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await read_body(reader, head)
            if target.startswith(CONTROL_PREFIX):
                writer.write(self._control(method, target, body, close))
                await writer.drain()
                if close:
                    return
                continue
            if upstream.requests == 0:
                self.stats.connections += 1  # connections that carried AWS requests
            upstream.requests += 1
            self.stats.requests += 1
            request = classify(method, target, head.fields, body)
            self.stats.by_service[request.service] += 1
            self.stats.by_operation[f"{request.service}.{request.operation}"] += 1
            if not self.latency.off:
                await asyncio.sleep(self._delay())
            rule = self.schedule.decide(request, loop.time())
            if rule is not None:
                self._count(rule, request)
                if rule.fault == "reset":
                    _reset(writer)
                    return
                if rule.fault == "timeout":
                    await asyncio.sleep(rule.hold_seconds)
                    return  # closed (FIN) by handle()
                json_protocol = b"x-amz-target" in head.fields
                writer.write(
                    error_response(rule.fault, request, json_protocol, head_only=method == b"HEAD")
                )
                await writer.drain()
                if close:
                    return
                continue
            framed = head.chunked or head.content_length() is not None
            head_bytes = request_head_bytes(head.start_line, head, len(body) if framed else None)
            keep = await upstream.forward(head_bytes, body, method, writer, close)
            self.stats.forwarded += 1
            if close or not keep:
                return

    def _count(self, rule: Rule, request: AwsRequest) -> None:
        self.stats.faults_by_kind[rule.fault] += 1
        self.stats.faults_by_rule[rule.name] += 1
        log.info(
            "fault injected",
            extra={
                "fields": {
                    "rule": rule.name,
                    "fault": rule.fault,
                    "service": request.service,
                    "operation": request.operation,
                    "injected": rule.injected,
                    "faults_total": sum(self.stats.faults_by_kind.values()),
                }
            },
        )

    # ---- control endpoint ------------------------------------------------------------------

    def _control(self, method: bytes, target: bytes, body: bytes, close: bool) -> bytes:
        path = target.partition(b"?")[0][len(CONTROL_PREFIX) :].decode("latin-1").strip("/")
        try:
            status, answer = self._control_answer(method, path, body)
        except (StockpipeError, ValueError) as exc:
            status, answer = 400, {"error": str(exc)}
        return _json_response(status, answer, close)

    def _control_answer(self, method: bytes, path: str, body: bytes) -> tuple[int, Any]:
        now = asyncio.get_running_loop().time()
        parts = path.split("/")
        if (method, path) == (b"GET", "health"):
            return 200, {"ok": True}
        if (method, path) == (b"GET", "stats"):
            return 200, self.stats.as_json()
        if (method, path) == (b"POST", "stats/reset"):
            self.stats = Stats()
            return 200, self.stats.as_json()
        if (method, path) == (b"GET", "faults"):
            return 200, self._schedule_json(now)
        if (method, path) == (b"PUT", "faults"):
            self.schedule = parse_schedule(json.loads(body or b"{}"), now, default_seed=self._seed)
            log.info(
                "fault schedule replaced", extra={"fields": {"rules": len(self.schedule.rules)}}
            )
            return 200, self._schedule_json(now)
        if (
            method == b"POST"
            and len(parts) == 3
            and parts[0] == "faults"
            and parts[2] in {"enable", "disable"}
        ):
            rule = self.schedule.rule(parts[1])
            if rule is None:
                return 404, {"error": f"no fault rule named {parts[1]!r}"}
            rule.enabled = parts[2] == "enable"
            log.info(
                "fault rule toggled", extra={"fields": {"rule": rule.name, "enabled": rule.enabled}}
            )
            return 200, self._schedule_json(now)
        if (method, path) == (b"GET", "latency"):
            return 200, self.latency.as_json()
        if (method, path) == (b"PUT", "latency"):
            self._set_latency(Latency.from_json(json.loads(body or b"{}")))
            log.info("latency changed", extra={"fields": {"latency": self.latency.describe()}})
            return 200, self.latency.as_json()
        return 404, {"error": f"no control action {method.decode()} /__proxy__/{path}"}

    def _schedule_json(self, now: float) -> dict[str, Any]:
        elapsed = now - self.schedule.loaded_at
        return {
            "seed": self.schedule.seed,
            "elapsed_seconds": round(elapsed, 3),
            "rules": [r.describe() | {"active": r.active(elapsed)} for r in self.schedule.rules],
        }


class _Upstream:
    """One keep-alive connection to moto, owned by one client connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.requests = 0  # AWS requests seen on the client connection this serves
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def forward(
        self,
        head_bytes: bytes,
        body: bytes,
        method: bytes,
        client: asyncio.StreamWriter,
        close_client: bool,
    ) -> bool:
        """Send one request, relay its response to ``client``. False: the client connection
        must close after it (its body ran to the end of the upstream stream)."""
        head = await self._send(head_bytes, body)
        assert self.reader is not None
        status = status_of(head)
        while 100 <= status < 200:  # interim answers are ours to give, not moto's
            head = await self._read_head()
            status = status_of(head)
        version = head.start_line.split(b" ", 1)[0]
        if response_has_body(method, status):
            framed = await relay_body(self.reader, client, head, close_client)
        else:
            client.write(response_head_bytes(head, close_client))
            await client.drain()
            framed = True
        if not framed or head.wants_close(version):
            self.close()
        return framed

    async def _send(self, head_bytes: bytes, body: bytes) -> Head:
        # A kept-alive connection moto has closed meanwhile fails on first use; such a request
        # never reached moto, so sending it again on a new connection is safe. Once.
        for attempt in range(2):
            reused = self.writer is not None
            if self.writer is None:
                await self._connect()
            assert self.writer is not None
            try:
                if len(body) <= _SMALL_BODY:
                    self.writer.write(head_bytes + body)
                else:
                    self.writer.write(head_bytes)
                    self.writer.write(body)
                await self.writer.drain()
                return await self._read_head()
            except (ConnectionError, UpstreamError):
                self.close()
                if not reused or attempt:
                    raise UpstreamError("moto closed the connection without answering") from None
        raise AssertionError("unreachable")

    async def _read_head(self) -> Head:
        assert self.reader is not None
        head = await read_head(self.reader)
        if head is None:
            raise UpstreamError("moto closed the connection without answering")
        return head

    async def _connect(self) -> None:
        try:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD_BYTES
            )
        except OSError as exc:
            raise UpstreamError(
                f"cannot connect to moto at {self.host}:{self.port}: {exc}"
            ) from None

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.writer.close()
        self.reader = self.writer = None


def _request_line(head: Head) -> tuple[bytes, bytes, bytes]:
    parts = head.start_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HttpError(f"bad request line {head.start_line[:80]!r}")
    return parts[0], parts[1], parts[2]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a dropped connection looks to a client: SO_LINGER on with a
    zero timeout makes close() discard the connection instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _json_response(status: int, answer: Any, close: bool) -> bytes:
    body = json.dumps(answer, sort_keys=True).encode()
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 502: b"Bad Gateway"}[status]
    lines = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"Content-Type: application/json",
        b"Content-Length: " + str(len(body)).encode(),
    ]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join([*lines, b"", body])


# ---- the process ---------------------------------------------------------------------------


def parse_upstream(url: str) -> tuple[str, int]:
    """``http://127.0.0.1:PORT`` only: the proxy never forwards beyond this machine."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or not port:
        raise UsageError(f"--upstream {url!r} must be http://127.0.0.1:PORT (a local endpoint)")
    return "127.0.0.1", port


async def serve(
    proxy: Proxy, port: int, port_file: Path | None, stop: asyncio.Event | None = None
) -> None:
    server = await asyncio.start_server(
        proxy.handle, "127.0.0.1", port, limit=MAX_HEAD_BYTES, backlog=512
    )
    bound = int(server.sockets[0].getsockname()[1])
    if port_file is not None:
        # Written whole, then renamed: a reader never sees half a file.
        partial = port_file.with_suffix(".partial")
        partial.write_text(json.dumps({"port": bound, "pid": os.getpid()}))
        partial.replace(port_file)
    log.info(
        "proxy listening",
        extra={
            "fields": {
                "url": f"http://127.0.0.1:{bound}",
                "upstream": "http://{}:{}".format(*proxy.upstream),
                "latency": proxy.latency.describe(),
                "fault_rules": len(proxy.schedule.rules),
            }
        },
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    log.info("proxy stopped", extra={"fields": proxy.stats.log_fields()})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m stockpipe.local.proxy",
        description="Reverse proxy on 127.0.0.1 in front of moto: latency and fault injection.",
    )
    parser.add_argument("--upstream", required=True, help="moto's endpoint, http://127.0.0.1:PORT")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--port-file", type=Path, help="write {port, pid} here once listening")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from core.logs import configure

    args = build_parser().parse_args(argv)
    try:
        host, port = parse_upstream(args.upstream)
        options: ProxyOptions = options_from(args)
        loop_time = 0.0  # replaced below: windows count from the moment the proxy serves
        schedule = (
            load_schedule_file(options.faults, loop_time, default_seed=options.seed)
            if options.faults is not None
            else Schedule([], options.seed)
        )
        if not 0 <= args.port < 65536:
            raise UsageError(f"--port {args.port} is not a port number (0..65535)")
    except StockpipeError as exc:
        sys.stderr.write(f"proxy: error: {exc}\n")
        return 2
    configure()

    async def run() -> None:
        schedule.loaded_at = asyncio.get_running_loop().time()
        await serve(
            Proxy(host, port, options.latency, schedule, options.seed), args.port, args.port_file
        )

    try:
        asyncio.run(run())
    except OSError as exc:
        sys.stderr.write(f"proxy: error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
