"""The studio's error for what a user can fix."""

from __future__ import annotations

__all__ = ["StudioError"]


class StudioError(ValueError):
    """Something the user can fix; the message says what happened and what to do."""
