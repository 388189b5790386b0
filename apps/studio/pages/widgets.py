"""Streamlit pieces the studio's pages share: the cached run store and predictors, the chosen
data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from apps.common.database import StoreError, database_url
from apps.common.paths import shown_path
from apps.studio import artifacts, datafiles
from apps.studio.errors import StudioError
from apps.studio.store import RunStore

__all__ = ["artifact_zip", "current_data", "data_choices", "get_predictor", "get_store", "set_data"]

DATA_KEY = "studio_data"


@st.cache_resource(show_spinner=False)
def _store(url: str) -> RunStore:
    return RunStore(url)


def get_store() -> RunStore:
    """The run store of this process (one per database URL).

    A database that cannot be opened stops the page with the store's plain message (what is
    wrong, the URL with its password hidden, what to change) instead of a traceback.
    """
    try:
        return _store(database_url())
    except StoreError as error:
        st.error(str(error))
        st.stop()


@st.cache_resource(show_spinner="Loading the model (once per process)...", max_entries=6)
def _predictor(path: str, stamp: float) -> Any:
    from lepton_nlp.inference import Predictor

    # backend auto, as `lepton-nlp eval` and `predict`: one path, one number.
    return Predictor.from_artifact(path, backend="auto")


def get_predictor(path: str | Path) -> Any:
    """A loaded predictor for an artifact folder; reloaded only when the artifact changes.

    Raises:
        StudioError: the folder is gone or is not a complete artifact.
    """
    from lepton_nlp.artifacts import ArtifactError

    marker = Path(path) / "lepton_artifact.json"
    if not marker.is_file():
        raise StudioError(
            f"The model folder {shown_path(path)} is missing or incomplete (it may have been deleted or "
            "moved). Choose another model, or train it again on the Train page; the run's "
            "record and metrics are kept."
        )
    try:
        return _predictor(str(path), marker.stat().st_mtime)
    except (ArtifactError, OSError) as error:
        raise StudioError(f"The model in {shown_path(path)} cannot be loaded: {error}") from None


@st.cache_data(show_spinner=False, max_entries=4)
def _zip(path: str, stamp: float) -> bytes:
    return artifacts.artifact_zip(path)


def artifact_zip(path: str | Path) -> bytes:
    """The artifact as a zip, built once per artifact version."""
    marker = Path(path) / "lepton_artifact.json"
    return _zip(str(path), marker.stat().st_mtime if marker.is_file() else 0.0)


def current_data() -> dict | None:
    """The data set chosen on the Data page in this browser session, if any."""
    return st.session_state.get(DATA_KEY)


def set_data(choice: dict) -> None:
    st.session_state[DATA_KEY] = choice


def data_choices() -> list[dict]:
    """Data sets the Train and Evaluate pages offer: the chosen one, uploads and the samples."""
    choices = []
    chosen = current_data()
    if chosen:
        choices.append(chosen)
    for item in datafiles.known_data_files():
        if not chosen or item["path"] != chosen["path"]:
            choices.append(item)
    return choices
