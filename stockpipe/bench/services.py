"""The local services the sink benchmarks run against, each in its own process on 127.0.0.1:
moto server (DynamoDB, S3), the latency proxy in front of it (``stockpipe.local.proxy``, a
fixed delay per request: an AWS-like round trip), and optionally ministack's Kinesis.

Why ministack for Kinesis here, not kinesis-local: kinesis-local (kinesis-mock) slows sharply
as a stream grows (about 11 s per 500-record PutRecords at 45,000 records in the stream), so
a run at 1,000 ticks/s for minutes cannot use it; ministack's Kinesis stays at milliseconds a
call and speaks h2c + CBOR, as the KCL daemon needs. It pins its own botocore, so it lives in
a venv of its own (``make ministack``: ``.stockpipe/ministack-venv``). Its resharding is not
faithful; these benchmarks never reshard.

Each process is started in a session of its own and stopped by its pid (SIGTERM, then
SIGKILL), never by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config

from core.aws import RETRY_CONFIG
from core.errors import StockpipeError

HOST: Final = "127.0.0.1"
REGION: Final = "us-east-1"
PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
MINISTACK: Final = PROJECT_ROOT / ".stockpipe/ministack-venv/bin/ministack"


class BenchSetupError(StockpipeError):
    pass


@dataclass(frozen=True)
class Services:
    backend_url: str  # the backend itself: set-up and read-backs that should not pay the latency
    proxy_url: str  # moto behind the proxy: what the code under test uses
    kinesis_url: str | None
    latency_ms: float
    logs: Path
    backend: str  # "moto", or "null" (stockpipe.bench.null_aws: round trips only)

    def client(self, service: str, *, direct: bool = False, config: Config = RETRY_CONFIG) -> Any:
        endpoint = self.backend_url if direct else self.proxy_url
        if service == "kinesis":
            assert self.kinesis_url is not None
            endpoint = self.kinesis_url
        session: Any = aws_session()  # one method for every service: no per-service overloads
        return session.client(service, endpoint_url=endpoint, config=config)

    def resource(self) -> Any:
        """A DynamoDB resource through the proxy (plain values; not for sharing across threads)."""
        return aws_session().resource("dynamodb", endpoint_url=self.proxy_url, config=RETRY_CONFIG)

    def resource_client(self) -> Any:
        """A resource's client through the proxy, as the state store takes it."""
        return self.resource().meta.client

    def environment(self) -> dict[str, str]:
        """What a child process (the daemon, the producer) needs to use these services."""
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": self.proxy_url,
            "STOCKPIPE_REGION": REGION,
            "STOCKPIPE_ENDPOINT_URL": self.proxy_url,
            "STOCKPIPE_AWS_ACCESS_KEY_ID": "testing",
            "STOCKPIPE_AWS_SECRET_ACCESS_KEY": "testing",
        }
        if self.kinesis_url is not None:
            env["AWS_ENDPOINT_URL_KINESIS"] = self.kinesis_url
            env["STOCKPIPE_KINESIS_ENDPOINT_URL"] = self.kinesis_url
        return env


def aws_session() -> boto3.session.Session:
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, name: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchSetupError(f"{name} exited at start (code {process.returncode}); see {log}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchSetupError(f"{name} did not listen on {HOST}:{port} within 60 s; see {log}")


@contextmanager
def _process(
    name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's own session (it and its children), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@contextmanager
def services(
    latency_ms: float, logs: Path, *, backend: str = "moto", kinesis: bool = False
) -> Iterator[Services]:
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if backend == "moto":
            port = free_port()
            log = logs / "moto.log"
            moto = stack.enter_context(
                _process(
                    "moto",
                    [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                    log,
                )
            )
            _wait_for_port(port, "moto server", log, moto)
        else:
            port = _port_of(
                stack,
                "null AWS endpoint",
                [sys.executable, "-m", "stockpipe.bench.null_aws"],
                logs / "null-aws",
            )
        backend_url = f"http://{HOST}:{port}"
        proxy_port = _port_of(
            stack,
            "latency proxy",
            [
                sys.executable,
                "-m",
                "stockpipe.local.proxy",
                "--upstream",
                backend_url,
                "--latency-ms",
                f"{latency_ms:g}",
            ],
            logs / "proxy",
        )
        kinesis_url = None
        if kinesis:
            kinesis_url = stack.enter_context(_ministack(logs))
        yield Services(
            backend_url, f"http://{HOST}:{proxy_port}", kinesis_url, latency_ms, logs, backend
        )


def _port_of(stack: ExitStack, name: str, argv: list[str], stem: Path) -> int:
    """Starts a server that writes ``{"port": N}`` to ``--port-file`` once it listens."""
    port_file = stem.with_suffix(".port")
    port_file.unlink(missing_ok=True)
    log = stem.with_suffix(".log")
    process = stack.enter_context(_process(name, [*argv, "--port-file", str(port_file)], log))
    deadline = time.monotonic() + 30
    while not port_file.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchSetupError(f"the {name} did not start; see {log}")
        time.sleep(0.05)
    return int(json.loads(port_file.read_text())["port"])


@contextmanager
def _ministack(logs: Path) -> Iterator[str]:
    if not MINISTACK.is_file():
        raise BenchSetupError(f"ministack is not installed ({MINISTACK}); run `make ministack`")
    port = free_port()
    log = logs / "ministack.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TMPDIR": str(logs),
        "BIND_HOST": HOST,  # its default is every interface
        "GATEWAY_PORT": str(port),
        "MINISTACK_HOST": HOST,
        "SERVICES": "kinesis",
        "LOG_LEVEL": "WARNING",
    }
    with _process("ministack", [str(MINISTACK)], log, env) as process:
        _wait_for_port(port, "ministack", log, process)
        yield f"http://{HOST}:{port}"
