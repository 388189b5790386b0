"""The recommender's own error: input that cannot be used as given, said with how to fix it."""

from __future__ import annotations

__all__ = ["RecommenderError"]


class RecommenderError(ValueError):
    """A catalogue, event, user or model that cannot be used as given; the message says why."""
