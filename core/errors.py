"""The one error root. Every package's base error subclasses ``StockpipeError`` (quix-streams'
``exceptions/base.py`` pattern), carries the context a reader needs in its message, and the CLI
catches the root once: one line on stderr, no traceback, ``exit_code``."""

from __future__ import annotations

from typing import ClassVar


class StockpipeError(Exception):
    """Base class of every error this project raises on purpose.

    ``exit_code`` is what ``stockpipe`` exits with when one reaches it: 2 for a mistake the
    user can fix (the default), 1 where the command ran and failed (a package may override)."""

    exit_code: ClassVar[int] = 2


class UsageError(StockpipeError):
    """A bad argument or setting: the message names it and says how to fix it."""
