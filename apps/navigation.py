"""The suite's sidebar: Streamlit pages built from the page registry, shown as the URL says."""

from __future__ import annotations

import importlib

import streamlit as st

from apps.common.pages_registry import PAGES as SPECS
from apps.common.pages_registry import sections
from apps.shell.pages import links

__all__ = ["build", "run"]


def build(default: str = "home") -> dict[str, list[st.Page]]:
    """Page objects by sidebar section; ``default`` (a page key) opens at the root URL.

    Each page's module is imported here, by the name the registry gives.
    """
    by_key = {
        spec.key: st.Page(
            importlib.import_module(spec.module).render,
            title=spec.title,
            icon=spec.icon,
            url_path=None if spec.key == default else spec.key,
            default=spec.key == default,
        )
        for spec in SPECS
    }
    links.set_pages(by_key)
    return {section: [by_key[spec.key] for spec in specs] for section, specs in sections().items()}


def run(default: str = "home") -> None:
    """Keep the pages' choices across page switches, then show the page the URL names."""
    kept = tuple(spec.kept_prefix for spec in SPECS if spec.kept_prefix)
    # Streamlit forgets a widget's value once a run of the app does not draw it; assigning
    # the value on every run, before any page draws, keeps it as ordinary session state.
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith(kept) and not _is_action(key):
            st.session_state[key] = st.session_state[key]
    st.navigation(build(default)).run()


def _is_action(key: str) -> bool:
    # Buttons and uploads cannot be assigned; neither needs to survive a page switch.
    return any(
        key.startswith(action) if action.endswith("_") else key == action
        for spec in SPECS
        for action in spec.actions
    )
