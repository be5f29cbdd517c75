"""``stockpipe local up --latency-ms / --faults``: the proxy as part of the local stack - started
in front of moto, in the environment ``local env`` prints (Kinesis left direct), used by the
real daemon and its children, stopped by ``local down``; bad flags are one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stockpipe.main_job import local_pipeline
from tests.local_servers import RunningProxy, client

STOCKPIPE = [sys.executable, "-m", "stockpipe"]


def _stats(env: dict[str, str]) -> dict[str, Any]:
    url = f"{env['STOCKPIPE_LOCAL_PROXY_URL']}/__proxy__/stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_local_up_with_latency_and_faults(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "name": "no-puts",
                        "fault": "throttle",
                        "service": "dynamodb",
                        "operation": "PutItem",
                    }
                ]
            }
        )
    )
    with local_pipeline(
        1, STOCKPIPE_LOCAL_LATENCY_MS="40", STOCKPIPE_LOCAL_FAULTS=str(faults)
    ) as env:
        state = json.loads((Path(env["STOCKPIPE_LOCAL_DIR"]) / "stack.json").read_text())
        proxy_url = f"http://127.0.0.1:{state['proxy_port']}"
        assert env["STOCKPIPE_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"] == proxy_url
        assert env["STOCKPIPE_LOCAL_PROXY_URL"] == proxy_url
        assert env["STOCKPIPE_ALERTS_QUEUE_URL"].startswith(proxy_url + "/")
        kinesis = f"http://127.0.0.1:{state['kinesis_port']}"  # never proxied (h2c)
        assert env["STOCKPIPE_KINESIS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_KINESIS"] == kinesis

        dynamodb = client("dynamodb", env["STOCKPIPE_ENDPOINT_URL"])
        for _ in range(5):
            started = time.perf_counter()
            tables = dynamodb.list_tables()["TableNames"]
            assert time.perf_counter() - started >= 0.040
        assert "stockpipe-rows" in tables  # created by `up`, straight on moto
        with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException):
            dynamodb.put_item(
                TableName="stockpipe-rows", Item={"symbol": {"S": "X"}, "ts": {"S": "t"}}
            )
        stats = _stats(env)
        assert stats["faults_by_rule"] == {"no-puts": 1}
        assert stats["by_operation"]["dynamodb.ListTables"] == 5

        # `up` again without proxy flags: the stack stays, the proxy goes (off by default).
        env_without = {
            k: v
            for k, v in env.items()
            if not k.startswith("STOCKPIPE_LOCAL_") or k == "STOCKPIPE_LOCAL_DIR"
        }
        subprocess.run(
            [*STOCKPIPE, "local", "up", "--shards", "1"],
            env=env_without,
            check=True,
            capture_output=True,
        )
        again = json.loads((Path(env["STOCKPIPE_LOCAL_DIR"]) / "stack.json").read_text())
        assert (again["moto_pid"], again["proxy_pid"]) == (state["moto_pid"], None)
        assert not _alive(state["proxy_pid"])
        printed = subprocess.run(
            [*STOCKPIPE, "local", "env"],
            env=env_without,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert f"STOCKPIPE_ENDPOINT_URL=http://127.0.0.1:{state['moto_port']}\n" in printed

        subprocess.run(
            [*STOCKPIPE, "local", "up", "--shards", "1", "--latency-ms", "1"],
            env=env_without,
            check=True,
            capture_output=True,
        )
        restarted = json.loads((Path(env["STOCKPIPE_LOCAL_DIR"]) / "stack.json").read_text())
        assert restarted["proxy_pid"] is not None
    assert not _alive(restarted["proxy_pid"])  # `local down` stopped it


@pytest.mark.slow
def test_the_daemon_and_its_children_go_through_the_proxy(tmp_path: Path) -> None:
    """The daemon's lease-table client takes its DynamoDB endpoint from STOCKPIPE_ENDPOINT_URL
    (consumer/daemon.py), as the Python children do: both show in the proxy's counts."""
    with local_pipeline(1, STOCKPIPE_LOCAL_LATENCY_MS="2", STOCKPIPE_FLUSH_SECONDS="2") as env:
        produce = ["produce", "--source", "synthetic", "--symbols", "5", "--duration", "1"]
        subprocess.run([*STOCKPIPE, *produce, "--rate", "200", "--seed", "7"], env=env, check=True)
        consume = ["consume", "--until-idle", "5", "--workdir", str(tmp_path / "consumer")]
        subprocess.run([*STOCKPIPE, *consume], env=env, check=True)
        operations = _stats(env)["by_operation"]
    # Only the daemon creates tables (the stack's own are created straight on moto): its
    # lease and coordinator tables.
    assert operations.get("dynamodb.CreateTable", 0) >= 1
    assert operations.get("dynamodb.BatchWriteItem", 0) >= 1  # the children's row sink
    assert operations.get("s3.PutObject", 0) >= 1  # the children's lake sink


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--latency-ms", "abc"], "--latency-ms"),
        (["--latency-ms", "5", "--latency-jitter-ms", "9"], "jitter"),
        (["--latency-ms", "5", "--latency-p99-ms", "2"], "p99"),
        (["--faults", "/nonexistent/f.json"], "f.json"),
        (["--proxy-seed", "1.5"], "--proxy-seed"),
    ],
)
def test_bad_proxy_flags_of_local_up(tmp_path: Path, args: list[str], named: str) -> None:
    env = {**os.environ, "STOCKPIPE_LOCAL_DIR": str(tmp_path / "local")}
    done = subprocess.run(
        [*STOCKPIPE, "local", "up", *args], env=env, check=False, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "local" / "stack.json").exists()  # nothing was started


def test_local_proxy_commands_drive_the_running_proxy(
    proxy: RunningProxy, table: str, tmp_path: Path
) -> None:
    """``stockpipe local proxy ...`` finds the proxy through the stack's state file (written
    here by hand, pointing at the module's proxy, so no whole stack is needed)."""
    local = tmp_path / "local"
    local.mkdir()
    port = int(proxy.url.rsplit(":", 1)[1])
    (local / "stack.json").write_text(
        json.dumps(
            {
                "moto_port": 1,
                "kinesis_port": 1,
                "kinesis_tls_port": 1,
                "moto_pid": 0,
                "kinesis_pid": 0,
                "shards": 1,
                "proxy_port": port,
                "proxy_pid": None,
                "proxy_argv": None,
            }
        )
    )
    env = {**os.environ, "STOCKPIPE_LOCAL_DIR": str(local)}

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [*STOCKPIPE, "local", "proxy", *args],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        return done.returncode, (json.loads(done.stdout) if done.returncode == 0 else done.stderr)

    schedule = tmp_path / "faults.json"
    schedule.write_text(json.dumps([{"name": "f", "fault": "500", "enabled": False}]))
    assert cli("faults", "--load", str(schedule))[1]["rules"][0]["name"] == "f"
    assert cli("enable", "f")[1]["rules"][0]["enabled"] is True
    dynamodb = client("dynamodb", proxy.url)
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName=table, Key={"k": {"S": "a"}})
    assert cli("disable", "f")[1]["rules"][0]["enabled"] is False
    dynamodb.get_item(TableName=table, Key={"k": {"S": "a"}})
    assert cli("stats")[1]["faults_by_rule"] == {"f": 1}
    assert cli("latency", "--latency-ms", "3", "--latency-p99-ms", "9")[1]["p99_ms"] == 9
    assert cli("latency")[1]["shape"] == "lognormal, median 3 ms, p99 9 ms"
    code, error = cli("enable", "nothing")
    assert code == 2 and len(error.strip().splitlines()) == 1 and "'nothing'" in error


def test_proxy_settings_from_the_environment(tmp_path: Path) -> None:
    """``STOCKPIPE_LOCAL_*`` stand in for the flags (how local_pipeline asks for a proxy): a
    bad one is refused like the flag, an empty one means unset."""
    from stockpipe.cli import build_parser
    from stockpipe.local.proxy_options import options_from

    env = {**os.environ, "STOCKPIPE_LOCAL_DIR": str(tmp_path), "STOCKPIPE_LOCAL_LATENCY_MS": "x"}
    done = subprocess.run(
        [*STOCKPIPE, "local", "up"], env=env, check=False, capture_output=True, text=True
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--latency-ms" in done.stderr and "'x'" in done.stderr

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STOCKPIPE_LOCAL_LATENCY_MS", "20")
        patch.setenv("STOCKPIPE_LOCAL_LATENCY_P99_MS", "80")
        patch.setenv("STOCKPIPE_LOCAL_FAULTS", "")
        options = options_from(build_parser().parse_args(["local", "up"]))
    assert (options.latency.median_ms, options.latency.p99_ms, options.faults) == (20, 80, None)
