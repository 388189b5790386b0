"""The suite's pages, in the order the sidebar shows them (each application adds its own here)."""

from __future__ import annotations

import streamlit as st

__all__ = ["PAGES", "build", "page", "run"]

PAGES: dict[str, list[st.Page]] = {}
"""The pages of the current script run, by sidebar section (filled by :func:`build`)."""


def build(default: str = "home") -> dict[str, list[st.Page]]:
    """Page objects by sidebar section; ``default`` (a page key) opens at the root URL."""
    from apps import home
    from apps.studio.pages import compare, data, evaluate, train, try_model

    specs = {
        "Suite": [(home.render, "Home", "home", ":material/home:")],
        "Model Studio": [
            (data.render, "Data", "data", ":material/table:"),
            (train.render, "Train", "train", ":material/model_training:"),
            (evaluate.render, "Evaluate", "evaluate", ":material/fact_check:"),
            (compare.render, "Compare", "compare", ":material/compare:"),
            (try_model.render, "Try", "try", ":material/keyboard:"),
        ],
    }
    PAGES.clear()
    for section, items in specs.items():
        PAGES[section] = [
            st.Page(
                render,
                title=title,
                icon=icon,
                url_path=None if key == default else key,
                default=key == default,
            )
            for render, title, key, icon in items
        ]
    return PAGES


def page(key: str) -> st.Page:
    """The page object for a page key (``"train"``), for links between pages."""
    for group in PAGES.values():
        for item in group:
            if item.title.lower() == key:
                return item
    raise KeyError(f"No page {key!r}; pages: {[p.title for g in PAGES.values() for p in g]}")


KEPT_PREFIXES = ("train_", "data_", "eval_", "try_", "cmp_")
"""Widget keys whose values survive a visit to another page."""


def run(default: str = "home") -> None:
    """Keep the pages' choices across page switches, then show the page the URL names."""
    # Streamlit forgets a widget's value once a run of the app does not draw it; assigning
    # the value on every run, before any page draws, keeps it as ordinary session state.
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith(KEPT_PREFIXES) and not _is_action(key):
            st.session_state[key] = st.session_state[key]
    st.navigation(build(default)).run()


def _is_action(key: str) -> bool:
    # Buttons and uploads cannot be assigned; neither needs to survive a page switch.
    return key.startswith("eval_fit_") or key in (
        "train_start",
        "train_stop",
        "data_use",
        "data_upload",
        "eval_run",
        "try_predict",
        "try_download",
    )
