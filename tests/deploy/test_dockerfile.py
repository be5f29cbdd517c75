"""consumer/Dockerfile, checked without Docker: what it copies exists and is in the build
context, the KCL jars come from the Makefile's own target (same steps as `make setup`) and land
where consumer.daemon looks for them, and the image runs `stockpipe consume` as a non-root
user on Python 3.11 + a JRE 17."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from dockerfile_parse import DockerfileParser

from stockpipe.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "consumer/Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]

    @property
    def workdir(self) -> str:
        return self.values("WORKDIR")[-1]


def stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE), env_replace=True)
    found: list[Stage] = []
    parents = iter(parser.parent_images)  # FROM images with ARGs substituted
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(image=next(parents), name=name))
        elif instruction != "COMMENT" and found:
            found[-1].instructions.append((instruction, value))
    return found


@pytest.fixture(scope="module")
def build() -> Stage:
    (stage,) = [s for s in stages() if s.name == "build"]
    return stage


@pytest.fixture(scope="module")
def runtime() -> Stage:
    return stages()[-1]


def makefile_variables() -> dict[str, str]:
    """The Makefile's `NAME := value` variables, expanded."""
    variables: dict[str, str] = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Z_]+)\s*[:?]?=\s*(.*)$", line)
        if match:
            value = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables[m.group(1)], match.group(2))
            variables[match.group(1)] = value.strip()
    return variables


def copy_args(value: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(value)
    flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
    return flags, [w for w in words if not w.startswith("--")]


# --- .dockerignore, with Docker's rules -------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    excluded = False
    parts = PurePosixPath(path).parts
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.lstrip("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_dockerignore_rules() -> None:
    for kept in ("pyproject.toml", "consumer/Dockerfile", "trend/handlers.py", "Makefile"):
        assert not ignored(kept), kept
    for dropped in (
        ".venv/bin/python",
        ".git/config",
        ".stockpipe/kcl-jars/x.jar",
        ".stockpipe/local/moto.log",
        "out/rows.jsonl",
        "tests/conftest.py",
        "deploy/cdk.out/manifest.json",
        ".env",
        ".aws/credentials",
        "consumer/__pycache__/x.cpython-311.pyc",
    ):
        assert ignored(dropped), dropped


# --- what the image runs -----------------------------------------------------------------------


def test_entrypoint_is_the_consume_console_script(runtime: Stage) -> None:
    (entrypoint,) = runtime.values("ENTRYPOINT")
    command = json.loads(entrypoint)
    # Logs to the container's stderr (collected by the awslogs driver), not to a file.
    assert command == ["stockpipe", "consume", "--daemon-log", "-"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["stockpipe"] == "stockpipe.cli:main"
    args = build_parser().parse_args(command[1:])
    assert args.command == "consume" and callable(args.handler) and args.daemon_log == "-"
    assert not runtime.values("CMD")


def test_every_copied_path_exists_and_is_in_the_context(build: Stage, runtime: Stage) -> None:
    copied = []
    for stage in (build, runtime):
        for value in stage.values("COPY") + stage.values("ADD"):
            flags, paths = copy_args(value)
            if "from" in flags:
                continue
            copied += paths[:-1]
    assert copied
    for source in copied:
        path = ROOT / source
        assert path.exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        for file in files:
            assert not ignored(str(file.relative_to(ROOT))), file
    # The packages pyproject.toml installs are all copied, and what building them needs.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", "README.md", "Makefile"} <= set(copied)
    assert config["project"]["readme"] in copied


def test_kcl_jars_come_from_the_makefile_target(build: Stage) -> None:
    variables = makefile_variables()
    runs = build.values("RUN")
    text = "\n".join(runs)
    # The Maven and kclpy steps are the Makefile's, not a copy of them.
    assert "mvn " not in text and "pip download" not in text and "pom.xml" not in text
    (make,) = [r for r in runs if re.match(r"make\b", r)]
    argv = shlex.split(make.split("&&")[0])
    assert argv[-1] == variables["KCL_STAMP"] == ".stockpipe/kcl-jars/.fetched"
    # The build stage has the tools that target needs.
    assert re.search(r"apt-get install .*\bmaven\b", text)
    assert re.search(r"apt-get install .*\bopenjdk-17-jdk", text)
    assert re.search(r"apt-get install .*\bmake\b", text)


def test_make_target_runs_the_makefile_steps_against_the_image_venv(
    build: Stage, tmp_path: Path
) -> None:
    """`make -n` with the Dockerfile's exact arguments: the steps are the Makefile's, with the
    image's venv, and the venv is not re-installed (with the dev extra) by make."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    (make,) = [r for r in build.values("RUN") if re.match(r"make\b", r)]
    argv = shlex.split(make.split("&&")[0])
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")  # the KCL pom is there
    printed = subprocess.run(
        [argv[0], "-n", *argv[1:]], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    venv = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))["VENV"]
    assert f"{venv}/bin/python -m pip download" in printed
    assert "amazon-kclpy==" in printed
    assert "-f requirements/kcl/pom.xml dependency:copy-dependencies" in printed
    assert f"-DoutputDirectory={tmp_path}/.stockpipe/kcl-jars" in printed
    assert f"{venv}/bin/python -m pip install --quiet amazon-kclpy==" in printed
    assert ".[dev" not in printed  # the venv itself was installed by the Dockerfile, no dev
    # ...and that venv is the one the Dockerfile created and installed the project into.
    (install,) = [r for r in build.values("RUN") if "-m venv" in r]
    assert f"python -m venv {venv}" in install
    # Only the consumer's extra, pinned by the lock.
    assert re.search(
        rf"{re.escape(venv)}/bin/python -m pip install [^&]*-c requirements/constraints\.txt"
        r"\s+\"\.\[consumer\]\"(\s|$)",
        install,
    ), install
    assert " -e " not in install  # not editable


def test_jars_land_where_the_daemon_looks(build: Stage, runtime: Stage) -> None:
    variables = makefile_variables()
    (install,) = [r for r in build.values("RUN") if "-m venv" in r]
    venv = re.search(r"-m venv (\S+)", install)
    assert venv is not None
    version = re.fullmatch(r"python:(\d+\.\d+)-.*", runtime.image)
    assert version is not None, runtime.image
    # The daemon finds the jars through STOCKPIPE_KCL_JARS_DIR, set in the image.
    env_values = dict(
        re.findall(r"(\w+)=(\S+)", " ".join(runtime.values("ENV")).replace("\\", " "))
    )
    expected = env_values["STOCKPIPE_KCL_JARS_DIR"]
    assert expected.startswith("/") and "site-packages" not in expected
    copies = [copy_args(v) for v in runtime.values("COPY")]
    jar_copies = [(flags, paths) for flags, paths in copies if "kcl-jars" in " ".join(paths)]
    assert jar_copies == [
        ({"from": "build"}, [f"{build.workdir}/{variables['KCL_JARS']}", expected])
    ]
    # The venv comes along whole, at the same path (its scripts name their interpreter).
    assert ({"from": "build"}, [venv.group(1), venv.group(1)]) in copies
    env = " ".join(runtime.values("ENV"))
    assert f"PATH={venv.group(1)}/bin:" in env


def test_python_and_java_versions(build: Stage, runtime: Stage) -> None:
    assert build.image == runtime.image  # the venv's interpreter path is the same in both
    assert re.fullmatch(r"python:3\.11-slim-\w+", runtime.image)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    text = "\n".join(runtime.values("RUN"))
    assert re.search(r"apt-get install .*\bopenjdk-17-jre-headless\b", text)
    assert "maven" not in text and "jdk-headless" not in text.replace("jre-headless", "")


def test_runs_as_a_non_root_user(runtime: Stage) -> None:
    users = runtime.values("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any(f"--uid {user}" in run for run in runtime.values("RUN"))
    # Its working directory is its own (`stockpipe consume` writes .stockpipe/consumer there).
    assert runtime.workdir.startswith("/home/")


def test_no_secrets_in_the_image() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE))
    secretive = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL|AWS_", re.IGNORECASE)
    for item in parser.structure:
        if item["instruction"] in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", item["value"])
            assert not [n for n in names if secretive.search(n)], item["value"]
        if item["instruction"] in ("COPY", "ADD"):
            assert ".aws" not in item["value"] and ".env" not in item["value"]
