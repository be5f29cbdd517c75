"""The proxy as a detached process of the local stack: started by ``stockpipe local up`` with
latency or fault flags, stopped by ``local down``. Its JSON log is ``proxy.log`` in the stack's
directory; it binds a free port itself and reports it in ``proxy.port`` (no race between
choosing a port and binding it)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import StockpipeError
from stockpipe.local.faults import load_schedule_file
from stockpipe.local.proxy_options import ProxyOptions


@dataclass(frozen=True)
class ProxyProcess:
    pid: int
    port: int


def check_options(options: ProxyOptions) -> ProxyOptions:
    """Options with the fault file made absolute and checked, before anything starts (a bad
    file is a one-line UsageError naming it, not a proxy that dies in the background)."""
    if options.faults is None:
        return options
    faults = options.faults.resolve()
    load_schedule_file(faults, 0.0, options.seed)
    return ProxyOptions(options.latency, faults, options.seed)


def start(
    upstream: str, options: ProxyOptions, directory: Path, timeout: float = 30.0
) -> ProxyProcess:
    port_file, log = directory / "proxy.port", directory / "proxy.log"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stockpipe.local.proxy",
            "--upstream",
            upstream,
            "--port-file",
            str(port_file),
            *options.argv(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not port_file.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process.pid)
            raise StockpipeError(f"the latency/fault proxy did not start; see {log}")
        time.sleep(0.05)
    return ProxyProcess(process.pid, int(json.loads(port_file.read_text())["port"]))


def stop(pid: int, timeout: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        # Our own child when started by this process: reap it, or it lingers as a zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
