"""Exceptions of the consumer package: one base class, each carrying what a reader needs."""

from __future__ import annotations


class ConsumerError(Exception):
    """Base class of every error raised by ``consumer``."""
