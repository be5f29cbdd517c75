"""Local servers for tests: the real proxy process (``python -m stockpipe.local.proxy``) in
front of moto in server mode, driven through its control endpoint, and boto3 clients for them.
The ``moto_endpoint`` fixture is in tests/conftest.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
PROXY = [sys.executable, "-m", "stockpipe.local.proxy"]


@dataclass
class RunningProxy:
    url: str
    upstream: str
    log: Path
    process: subprocess.Popen[bytes]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/__proxy__/{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_faults(self, rules: list[dict[str, Any]], seed: int = 0) -> None:
        self.control("PUT", "faults", {"seed": seed, "rules": rules})

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))


def client(service: str, endpoint: str, **config: Any) -> Any:
    """A boto3 client on ``endpoint``; retries off unless asked, so each call is one request."""
    retries = config.pop("retries", {"total_max_attempts": 1})
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client(service, endpoint_url=endpoint, config=Config(retries=retries, **config))


def start_proxy(upstream: str, log: Path, *args: str) -> RunningProxy:
    port_file = log.with_suffix(".port")
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [*PROXY, "--upstream", upstream, "--port-file", str(port_file), *args],
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 20
    while not port_file.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"proxy did not start: {log.read_text()}")
        time.sleep(0.02)
    port = json.loads(port_file.read_text())["port"]
    return RunningProxy(f"http://127.0.0.1:{port}", upstream, log, process)


def stop_proxy(proxy: RunningProxy) -> None:
    proxy.process.terminate()
    proxy.process.wait(timeout=10)
