"""The ``stockpipe`` command. User mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from core.errors import StockpipeError

EXIT_USAGE = 2

# The command groups, in --help order: one module each under stockpipe/commands/.
COMMAND_MODULES = (
    "process",
    "demo",
    "bench",
    "alerts",
    "query",
    "compact",
    "chart",
    "produce",
    "local",
    "consume",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line that names the problem and the fix."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stockpipe", description="Real-time stock-market analytics on AWS.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"stockpipe.commands.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except StockpipeError as exc:  # the one handler: every package's errors share this root
        print(f"stockpipe {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"stockpipe {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
