"""User profiles from a file: an id, stated interests, any other attributes (age, region...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.recommender.errors import RecommenderError
from apps.recommender.interactions import USER_COLUMNS
from apps.recommender.tables import pick, read_rows

__all__ = ["load_users"]


def load_users(path: str | Path) -> dict[str, dict[str, Any]]:
    """User id -> ``{"interests": [...], **attributes}`` from CSV/JSONL/JSON/Parquet; interests
    may be a list or a string split on ``|`` or ``;``.

    Raises:
        RecommenderError: a row without a user id, or a user given twice.
    """
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(read_rows(path), 1):
        user = pick(row, USER_COLUMNS)
        if user is None:
            raise RecommenderError(f"{path}, row {n} has no user id (column user or user_id).")
        user = str(user).strip()
        if user in out:
            raise RecommenderError(
                f"{path}: user {user!r} appears twice (rows {out[user]['_row']} and {n})."
            )
        interests = row.get("interests") or []
        if isinstance(interests, str):
            sep = "|" if "|" in interests else ";"
            interests = [i.strip() for i in interests.split(sep) if i.strip()]
        attributes = {k: v for k, v in row.items() if k not in (*USER_COLUMNS, "interests")}
        out[user] = {"interests": list(interests), **attributes, "_row": n}
    for profile in out.values():
        profile.pop("_row")
    return out
