"""Exceptions of the trend package: one base class, each carrying what a reader needs."""

from __future__ import annotations


class TrendError(Exception):
    """Base class of every error raised by ``trend``."""
