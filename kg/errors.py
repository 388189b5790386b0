"""The one error type of the knowledge-graph package."""

from __future__ import annotations

__all__ = ["KgError"]


class KgError(ValueError):
    """Bad input to `kg`: the message says what was received and how to fix it."""
