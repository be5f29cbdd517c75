"""Argument types shared by the commands: each failure names the value and the fix."""

from __future__ import annotations

import argparse
from pathlib import Path


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value!r} is not a readable file; pass an existing file")
    return path


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def output_path(value: str) -> Path:
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a directory; pass a file path")
    if path.parent != Path() and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"directory {str(path.parent)!r} does not exist; create it or choose another path"
        )
    return path


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(value: str) -> float:
    """Seconds from ``30``, ``30s``, ``500ms``, ``2m`` or ``1.5h``."""
    text = value.strip().lower()
    unit = next((u for u in ("ms", "s", "m", "h") if text.endswith(u)), "")
    try:
        seconds = float(text[: len(text) - len(unit)]) * _DURATION_UNITS.get(unit, 1.0)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a positive duration; write e.g. 30s, 500ms, 2m or 1.5h"
        )
    return seconds


def symbol_list(value: str) -> list[str]:
    """``AAPL,MSFT,BRK-B``: comma-separated Yahoo symbols, each checked against the contract."""
    from core.contracts.tick import is_valid_symbol

    symbols = list(dict.fromkeys(s.strip().upper() for s in value.split(",") if s.strip()))
    bad = [s for s in symbols if not is_valid_symbol(s)]
    if not symbols or bad:
        raise argparse.ArgumentTypeError(
            f"{', '.join(bad) or repr(value)} is not a valid Yahoo symbol list; "
            "write e.g. AAPL,MSFT,BRK-B,^GSPC"
        )
    return symbols
