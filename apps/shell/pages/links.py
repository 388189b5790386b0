"""Links between the suite's pages, by page key (``"train"``), whichever application draws them."""

from __future__ import annotations

import streamlit as st

__all__ = ["page_link", "set_pages"]

_PAGES: dict[str, st.Page] = {}
"""The page objects of the current script run by key (set by :func:`apps.navigation.build`)."""


def set_pages(pages: dict[str, st.Page]) -> None:
    """Record the page objects that links point to (called when the sidebar is built)."""
    _PAGES.clear()
    _PAGES.update(pages)


def page_link(key: str, label: str | None = None, icon: str | None = None) -> None:
    """A link to the page registered as ``key`` (:mod:`apps.common.pages_registry`).

    Raises:
        KeyError: no page has this key; the message lists the keys there are.
    """
    if key not in _PAGES:
        raise KeyError(f"No page {key!r}; pages: {sorted(_PAGES)}")
    st.page_link(_PAGES[key], label=label, icon=icon)
