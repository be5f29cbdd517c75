"""``stockpipe local up | down | env``: the local AWS stack on 127.0.0.1."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from core.errors import UsageError
from stockpipe.commands._args import positive_int


def register(commands: Any) -> None:
    local = commands.add_parser("local", help="the local AWS stack on 127.0.0.1")
    actions = local.add_subparsers(dest="action", required=True, parser_class=type(local))
    up = actions.add_parser("up", help="start moto + kinesis-local and create the resources")
    up.add_argument("--shards", type=positive_int, default=2, help="shards of the stream")
    up.set_defaults(handler=run_up)
    actions.add_parser("down", help="stop the local stack").set_defaults(handler=run_down)
    actions.add_parser(
        "env", help='print its environment: eval "$(stockpipe local env)"'
    ).set_defaults(handler=run_env)


def run_up(args: argparse.Namespace) -> int:
    from stockpipe.local.stack import environment, up

    state = up(args.shards)
    print(f"local stack up: AWS (moto) {state.endpoint_url}, Kinesis {state.kinesis_endpoint_url}")
    print('use it from a shell with: eval "$(stockpipe local env)"')
    _ = environment(state)
    return 0


def run_down(args: argparse.Namespace) -> int:
    from stockpipe.local.stack import down

    print("local stack stopped" if down() else "no local stack was running")
    return 0


def run_env(args: argparse.Namespace) -> int:
    from stockpipe.local.stack import environment, read_state

    state = read_state()
    if state is None:
        raise UsageError("no local stack is running; start one with `stockpipe local up`")
    for key, value in environment(state).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0
