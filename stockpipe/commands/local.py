"""``stockpipe local up | down | env``: the local AWS stack on 127.0.0.1."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from core.errors import UsageError
from stockpipe.commands._args import existing_file, positive_int
from stockpipe.local.proxy_options import add_arguments, non_negative_ms, options_from


def register(commands: Any) -> None:
    local = commands.add_parser("local", help="the local AWS stack on 127.0.0.1")
    actions = local.add_subparsers(dest="action", required=True, parser_class=type(local))
    up = actions.add_parser("up", help="start moto + kinesis-local and create the resources")
    up.add_argument("--shards", type=positive_int, default=2, help="shards of the stream")
    add_arguments(up, env_defaults=True, seed_flag="--proxy-seed")
    up.set_defaults(handler=run_up)
    actions.add_parser("down", help="stop the local stack").set_defaults(handler=run_down)
    proxy = actions.add_parser(
        "proxy", help="the running latency/fault proxy: counts, faults, latency (no restart)"
    )
    proxy_actions = proxy.add_subparsers(
        dest="proxy_action", required=True, parser_class=type(local)
    )
    proxy_actions.add_parser("stats", help="requests and injected faults, as JSON")
    faults = proxy_actions.add_parser("faults", help="print the fault schedule, or load a new one")
    faults.add_argument(
        "--load", type=existing_file, metavar="FILE.json", help="windows count from now"
    )
    for toggle in ("enable", "disable"):
        proxy_actions.add_parser(toggle, help=f"{toggle} one fault rule").add_argument("name")
    latency = proxy_actions.add_parser(
        "latency", help="print the latency, or set it with the flags"
    )
    latency.add_argument("--latency-ms", type=non_negative_ms)
    latency.add_argument("--latency-jitter-ms", type=non_negative_ms, default=0.0)
    latency.add_argument("--latency-p99-ms", type=non_negative_ms)
    proxy.set_defaults(handler=run_proxy)
    actions.add_parser(
        "env", help='print its environment: eval "$(stockpipe local env)"'
    ).set_defaults(handler=run_env)


def run_up(args: argparse.Namespace) -> int:
    from stockpipe.local.proxy_process import check_options
    from stockpipe.local.stack import environment, up

    options = check_options(options_from(args))  # a bad flag or fault file: one line, exit 2
    state = up(args.shards, options)
    print(
        f"local stack up: AWS (moto) {state.moto_endpoint_url}, "
        f"Kinesis {state.kinesis_endpoint_url}"
    )
    if state.proxy_url is not None:
        print(
            f"proxy {state.proxy_url} in front of moto (latency {options.latency.describe()}, "
            f"faults {options.faults or 'none'}); control: {state.proxy_url}/__proxy__/stats"
        )
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


def run_proxy(args: argparse.Namespace) -> int:
    import json

    from stockpipe.local.latency import Latency
    from stockpipe.local.proxy_control import call
    from stockpipe.local.stack import read_state

    state = read_state()
    if state is None or state.proxy_url is None:
        raise UsageError(
            "no proxy is running; start one with `stockpipe local up --latency-ms N` "
            "or `--faults FILE.json`"
        )
    url, action = state.proxy_url, args.proxy_action
    if action == "stats":
        answer = call(url, "GET", "stats")
    elif action == "faults" and args.load is not None:
        from stockpipe.local.faults import load_schedule_file

        load_schedule_file(args.load, 0.0)  # a bad file: one line naming it, before the PUT
        answer = call(url, "PUT", "faults", json.loads(args.load.read_text(encoding="utf-8")))
    elif action == "faults":
        answer = call(url, "GET", "faults")
    elif action in {"enable", "disable"}:
        answer = call(url, "POST", f"faults/{args.name}/{action}")
    elif args.latency_ms is None:
        answer = call(url, "GET", "latency")
    else:
        latency = Latency(args.latency_ms, args.latency_jitter_ms, args.latency_p99_ms)
        answer = call(url, "PUT", "latency", latency.as_json())
    print(json.dumps(answer, indent=2, sort_keys=True, ensure_ascii=False))
    return 0
