"""Exceptions of the command line: one base class for mistakes a user can fix."""

from __future__ import annotations


class StockpipeError(Exception):
    """Base class of errors the CLI reports as one line (no traceback), exit code 2."""


class UsageError(StockpipeError):
    """A bad argument or setting: the message names it and says how to fix it."""
