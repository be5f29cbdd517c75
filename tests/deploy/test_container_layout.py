"""The consumer image's start command, run without Docker: the files the Dockerfile puts in the
image are laid out in a directory (the project installed non-editable into a site-packages of
its own, the KCL jars where the Dockerfile copies them, an empty home as the working
directory), the container's environment is the synthesized task definition's with its
references resolved to a local stack, and the image's ENTRYPOINT runs the real daemon from that
layout. ECS's stop (SIGTERM through the init process) must end it cleanly within the task's
stop timeout, with every shard checkpointed at its last record."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from consumer.daemon import DEFAULT_KCL_JARS as KCL_JARS
from core.settings import Settings
from deploy.lambda_bundle import copy_project
from deploy.stockpipe_stack import CONSUMER_STOP_TIMEOUT_SECONDS
from tests.consumer.pipeline_support import (
    cli,
    dynamodb_rows,
    expected_outputs,
    input_file,
    local_stack,
    session,
)
from tests.deploy.conftest import Synth
from tests.deploy.test_dockerfile import copy_args, stages

pytestmark = pytest.mark.slow

DEFAULTS = Settings.model_construct()
ROWS_DEADLINE_SECONDS = 240


@dataclass(frozen=True)
class Layout:
    root: Path  # stands for the image's /
    site_packages: Path
    jars: Path
    home: Path
    entrypoint: list[str]


def _image_path(root: Path, absolute: str) -> Path:
    return root / PurePosixPath(absolute).relative_to("/")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """What the runtime stage holds, at the paths the Dockerfile gives."""
    build, runtime = next(s for s in stages() if s.name == "build"), stages()[-1]
    root = tmp_path_factory.mktemp("image")
    # The jars: COPY --from=build <build workdir>/.stockpipe/kcl-jars <site-packages>/...
    (jar_copy,) = [
        paths for flags, paths in map(copy_args, runtime.values("COPY")) if "kcl-jars" in paths[0]
    ]
    jars = _image_path(root, jar_copy[1])
    (install,) = [r for r in build.values("RUN") if "-m venv" in r]
    venv = re.search(r"-m venv (\S+)", install)
    version = re.fullmatch(r"python:(\d+\.\d+)-.*", runtime.image)
    assert venv is not None and version is not None, (install, runtime.image)
    site_packages = _image_path(root, f"{venv.group(1)}/lib/python{version.group(1)}/site-packages")
    site_packages.mkdir(parents=True)
    # The project, installed non-editable (the build stage's `pip install .`), here with
    # --target so this venv's own packages serve as the image venv's dependencies.
    source = copy_project(root / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-compile", "--target", str(site_packages), str(source)],
        check=True,
    )  # fmt: skip
    jars.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-r", str(KCL_JARS), str(jars)], check=True)
    home = _image_path(root, runtime.workdir)
    home.mkdir(parents=True)
    (entrypoint,) = runtime.values("ENTRYPOINT")
    assert build.workdir  # (the build stage is where the jars come from)
    return Layout(root, site_packages, jars, home, json.loads(entrypoint))


def container_environment(synth: Synth) -> dict[str, Any]:
    (task,) = synth.of_type("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def resolve(value: Any, synth: Synth, local: dict[str, str]) -> str:
    """A CloudFormation value of the container's environment, as the local stack names it."""
    if isinstance(value, str):
        return value
    (function, argument), *_ = value.items()
    assert function == "Ref" and not _, f"cannot resolve {value}"
    if argument == "AWS::Region":
        return local["AWS_REGION"]
    resource = synth.resources[argument]
    kind = resource["Type"]
    if kind == "AWS::Kinesis::Stream":
        return local["STOCKPIPE_STREAM_NAME"]
    if kind == "AWS::S3::Bucket":
        return DEFAULTS.bucket
    if kind == "AWS::DynamoDB::Table":
        by_construct = {"RowsTable": DEFAULTS.rows_table, "StateTable": DEFAULTS.state_table}
        (name,) = [n for prefix, n in by_construct.items() if argument.startswith(prefix)]
        return name
    raise AssertionError(f"no local name for {argument} ({kind})")


# What ECS gives a task besides its environment (credentials from the task role, the SDKs'
# regional endpoints): locally, the stack's endpoints and fake keys.
LOCAL_ONLY = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
    "STOCKPIPE_ENDPOINT_URL",
    "STOCKPIPE_KINESIS_ENDPOINT_URL",
)


def shard_tips(env: dict[str, str]) -> dict[str, str]:
    """Each shard's last sequence number, read from the stream itself."""
    kinesis = session(env).client("kinesis", endpoint_url=env["STOCKPIPE_KINESIS_ENDPOINT_URL"])
    stream = env["STOCKPIPE_STREAM_NAME"]
    tips = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        last = None
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if page["Records"]:
                last = page["Records"][-1]["SequenceNumber"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page["NextShardIterator"]
        if last is not None:
            tips[shard["ShardId"]] = last
    return tips


def children(pid: int) -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            yield int(entry.name), [part.decode() for part in cmdline if part]


def test_the_entrypoint_runs_the_laid_out_image_and_stops_cleanly(
    layout: Layout, synth: Synth, tmp_path: Path
) -> None:
    assert layout.entrypoint[:2] == ["stockpipe", "consume"]
    ticks = input_file(tmp_path / "ticks.jsonl")
    expected_rows, _ = expected_outputs(ticks, tmp_path)
    with local_stack(tmp_path / "local") as local:
        cli(["produce", "--source", "file", "--input", str(ticks)], local)

        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(layout.home),
            # The laid-out site-packages first: the image's copy, not this repository's.
            "PYTHONPATH": str(layout.site_packages),
        }
        env |= {k: resolve(v, synth, local) for k, v in container_environment(synth).items()}
        env |= {name: local[name] for name in LOCAL_ONLY}
        # The image's own ENV (consumer/Dockerfile): where the jars are, at the laid-out path.
        image_env = dict(
            re.findall(r"(\w+)=(\S+)", " ".join(stages()[-1].values("ENV")).replace("\\", " "))
        )
        env["STOCKPIPE_KCL_JARS_DIR"] = str(
            _image_path(layout.root, image_env["STOCKPIPE_KCL_JARS_DIR"])
        )
        # The stack's names are the local stack's (resolved above), the KCL application the
        # stack's own.
        assert env["STOCKPIPE_STREAM_NAME"] == local["STOCKPIPE_STREAM_NAME"]
        assert env["STOCKPIPE_APPLICATION_NAME"] == synth.stack.application_name

        which = subprocess.run(
            [sys.executable, "-c", "import stockpipe, consumer; print(stockpipe.__file__);"
             " print(consumer.__file__)"],
            env=env, cwd=layout.home, capture_output=True, text=True, check=True,
        )  # fmt: skip
        for imported in which.stdout.split():
            assert Path(imported).is_relative_to(layout.site_packages), imported

        # The `stockpipe` console script of the image's venv is `stockpipe.cli:main`.
        argv = [
            sys.executable,
            "-c",
            "import sys; from stockpipe.cli import main; sys.exit(main())",
        ]
        stderr_path = tmp_path / "container.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [*argv, *layout.entrypoint[1:]],
                env=env,
                cwd=layout.home,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            try:
                deadline = time.monotonic() + ROWS_DEADLINE_SECONDS
                while len(dynamodb_rows(local)) < len(expected_rows):
                    assert process.poll() is None, stderr_path.read_text()[-3000:]
                    assert time.monotonic() < deadline, "rows did not arrive"
                    time.sleep(2)
                # The daemon this command started runs the laid-out jars.
                (java,) = [cmd for _, cmd in children(process.pid) if cmd and "java" in cmd[0]]
                classpath = java[java.index("-cp") + 1]
                assert classpath == f"{layout.jars}/*"
                # Let the last flush's checkpoint land, then stop as ECS does.
                time.sleep(3)
                stopped_at = time.monotonic()
                process.send_signal(signal.SIGTERM)
                returncode = process.wait(timeout=CONSUMER_STOP_TIMEOUT_SECONDS)
                stop_seconds = time.monotonic() - stopped_at
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            assert process.stdout is not None
            stdout = process.stdout.read()

        assert returncode == 0, stderr_path.read_text()[-3000:]
        assert stop_seconds < CONSUMER_STOP_TIMEOUT_SECONDS
        # The consumer's stdout carries nothing (the KCL protocol runs between the daemon and
        # its children); every stderr line is one JSON object, as CloudWatch will get it.
        assert stdout == b""
        lines = stderr_path.read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert all(isinstance(e, dict) and "message" in e for e in events)
        committed = [e for e in events if e["message"] == "committed"]
        assert sum(e["records"] for e in committed) == len(ticks.read_text().splitlines())

        # Generated, not hand-written: the properties file under the working directory names
        # the stack's stream and application.
        (properties,) = layout.home.glob(".stockpipe/consumer/*.properties")
        text = properties.read_text()
        assert f"streamName = {env['STOCKPIPE_STREAM_NAME']}" in text
        assert f"applicationName = {synth.stack.application_name}" in text
        assert text.startswith("# Written by `stockpipe consume`")

        # Every shard that had records is checkpointed at its last one.
        leases = (
            session(local)
            .client("dynamodb", endpoint_url=local["STOCKPIPE_ENDPOINT_URL"])
            .scan(TableName=synth.stack.application_name)["Items"]
        )
        checkpoints = {
            item["leaseKey"]["S"]: item["checkpoint"]["S"]
            for item in leases
            if item["leaseKey"]["S"].startswith("shardId-")
        }
        tips = shard_tips(local)
        assert tips and {shard: checkpoints.get(shard) for shard in tips} == tips
