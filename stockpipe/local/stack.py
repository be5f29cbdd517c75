"""``stockpipe local up | down | env``: start, stop and describe the local stack.

The processes run detached; their ports and pids live in ``STATE_FILE`` so that ``env`` and
``down`` (and other shells) find them. Nothing binds or connects beyond 127.0.0.1 except
kinesis-mock, which listens on every interface (it has no bind option); we only ever connect
to it on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from core.errors import StockpipeError
from stockpipe.local import moto_server, proxy_process
from stockpipe.local.names import FAKE_KEY_ID, FAKE_SECRET, LOCAL_HOST, REGION, alerts_topic_name
from stockpipe.local.proxy_options import ProxyOptions

PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
KINESIS_MOCK_MAIN: Final = PROJECT_ROOT / ".stockpipe/node/node_modules/kinesis-local/main.js"


class LocalStackError(StockpipeError):
    pass


def local_dir() -> Path:
    return Path(os.environ.get("STOCKPIPE_LOCAL_DIR", PROJECT_ROOT / ".stockpipe/local"))


@dataclass
class StackState:
    moto_port: int
    kinesis_port: int
    kinesis_tls_port: int
    moto_pid: int
    kinesis_pid: int
    shards: int
    # The latency/fault proxy in front of moto (stockpipe/local/proxy.py), when asked for.
    proxy_port: int | None = None
    proxy_pid: int | None = None
    proxy_argv: list[str] | None = None  # its options, to tell whether a new `up` changes them

    @property
    def moto_endpoint_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.moto_port}"

    @property
    def proxy_url(self) -> str | None:
        return None if self.proxy_port is None else f"http://{LOCAL_HOST}:{self.proxy_port}"

    @property
    def endpoint_url(self) -> str:
        """What clients use for DynamoDB, S3, SNS and SQS: the proxy when it runs, else moto.
        Kinesis is never proxied (see ``kinesis_endpoint_url``)."""
        return self.proxy_url or self.moto_endpoint_url

    @property
    def kinesis_endpoint_url(self) -> str:
        # Straight to kinesis-mock: the daemon's Kinesis client speaks HTTP/2 with prior
        # knowledge (h2c), which this HTTP/1.1 proxy does not.
        return f"http://{LOCAL_HOST}:{self.kinesis_port}"


def _state_file() -> Path:
    return local_dir() / "stack.json"


def read_state() -> StackState | None:
    path = _state_file()
    if not path.is_file():
        return None
    return StackState(**json.loads(path.read_text()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, name: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOCAL_HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise LocalStackError(f"{name} did not start on port {port} within {timeout:.0f} s; see {log}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def environment(state: StackState) -> dict[str, str]:
    """What a shell (boto3, the AWS CLI, stockpipe) needs to use the local stack."""
    from core.settings import Settings

    settings = Settings()
    return {
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        # No credential or region look-ups at the instance-metadata address.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": state.endpoint_url,
        "AWS_ENDPOINT_URL_KINESIS": state.kinesis_endpoint_url,
        "STOCKPIPE_REGION": REGION,
        "STOCKPIPE_ENDPOINT_URL": state.endpoint_url,
        "STOCKPIPE_KINESIS_ENDPOINT_URL": state.kinesis_endpoint_url,
        "STOCKPIPE_ALERTS_TOPIC_ARN": (
            f"arn:aws:sns:{REGION}:123456789012:{alerts_topic_name(settings.stream_name)}"
        ),
        "STOCKPIPE_ALERTS_QUEUE_URL": (
            f"{state.endpoint_url}/123456789012/{settings.stream_name}-alerts-tail"
        ),
        "STOCKPIPE_LOCAL_DIR": str(local_dir()),
    } | ({"STOCKPIPE_LOCAL_PROXY_URL": state.proxy_url} if state.proxy_url else {})


def up(shards: int, proxy: ProxyOptions | None = None) -> StackState:
    """Start the stack, or keep the running one; either way the proxy then runs exactly as
    ``proxy`` asks (started, restarted with new options, or stopped: off by default)."""
    existing = read_state()
    if existing is not None and _alive(existing.moto_pid) and _alive(existing.kinesis_pid):
        return _reconcile_proxy(existing, proxy)
    if existing is not None and existing.proxy_pid is not None:
        proxy_process.stop(existing.proxy_pid)  # a proxy left in front of a dead moto
    if not KINESIS_MOCK_MAIN.is_file():
        raise LocalStackError(
            f"kinesis-local is not installed ({KINESIS_MOCK_MAIN}); run `make setup` first"
        )
    directory = local_dir()
    directory.mkdir(parents=True, exist_ok=True)
    moto_port, kinesis_port, tls_port = _free_port(), _free_port(), _free_port()
    moto_log, kinesis_log = directory / "moto.log", directory / "kinesis.log"
    moto = subprocess.Popen(
        # moto_server, with conditional writes made atomic.
        moto_server.command(LOCAL_HOST, moto_port),
        stdout=moto_log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    kinesis = subprocess.Popen(
        ["node", str(KINESIS_MOCK_MAIN)],
        env={
            **os.environ,
            "KINESIS_MOCK_PLAIN_PORT": str(kinesis_port),
            "KINESIS_MOCK_TLS_PORT": str(tls_port),
            "KINESIS_MOCK_CERT_PATH": str(KINESIS_MOCK_MAIN.parent / "server.json"),
            "CREATE_STREAM_DURATION": "0ms",
            "DELETE_STREAM_DURATION": "0ms",
            "UPDATE_SHARD_COUNT_DURATION": "0ms",
            "LOG_LEVEL": "WARN",
        },
        stdout=kinesis_log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    state = StackState(moto_port, kinesis_port, tls_port, moto.pid, kinesis.pid, shards)
    _state_file().write_text(json.dumps(asdict(state)))
    try:
        _wait_for_port(moto_port, "moto", moto_log)
        _wait_for_port(kinesis_port, "kinesis-local", kinesis_log)
        from stockpipe.local.resources import create_resources

        create_resources(state.moto_endpoint_url, state.kinesis_endpoint_url, state.shards)
        return _reconcile_proxy(state, proxy)
    except BaseException:
        down()
        raise


def _reconcile_proxy(state: StackState, options: ProxyOptions | None) -> StackState:
    wanted = options.argv() if options is not None and options.wanted else None
    running = state.proxy_pid is not None and _alive(state.proxy_pid)
    if running and state.proxy_argv == wanted:
        return state
    if state.proxy_pid is not None:
        proxy_process.stop(state.proxy_pid)
    state.proxy_pid = state.proxy_port = state.proxy_argv = None
    if options is not None and wanted is not None:
        started = proxy_process.start(state.moto_endpoint_url, options, local_dir())
        state.proxy_pid, state.proxy_port, state.proxy_argv = started.pid, started.port, wanted
    _state_file().write_text(json.dumps(asdict(state)))
    return state


def down() -> bool:
    state = read_state()
    if state is None:
        return False
    if state.proxy_pid is not None:
        proxy_process.stop(state.proxy_pid)
    for pid in (state.moto_pid, state.kinesis_pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            continue
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        _alive(p) for p in (state.moto_pid, state.kinesis_pid)
    ):
        time.sleep(0.1)
    for pid in (state.moto_pid, state.kinesis_pid):
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    return True
