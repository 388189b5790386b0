"""Home page of the suite: what it can do, which models are ready, where the data is kept."""

from __future__ import annotations

import streamlit as st

from apps.common.catalog import SHIPPED_MODELS, model_catalog
from apps.common.database import database_url, shown_database
from apps.common.paths import data_home, shown_path
from apps.shell.pages.links import page_link
from apps.studio.pages.widgets import get_store


def render() -> None:
    st.title("lepton-nlp suite")
    st.write(
        "Fine-tune small transformer models on your own labelled text, offline on this "
        "machine, and put them to work. Everything here runs locally; nothing is downloaded."
    )
    cols = st.columns(5)
    steps = [
        (
            "data",
            "Data",
            "Upload a CSV, JSONL, CoNLL, SQuAD or parallel-text file; check labels and lengths.",
        ),
        ("train", "Train", "Pick task, base model and PEFT method; watch loss and metrics live."),
        ("evaluate", "Evaluate", "Metrics, confusion matrix, per-label F1 and the worst errors."),
        ("compare", "Compare", "All runs side by side: settings, scores, time, parameters."),
        ("try", "Try", "Type a sentence, see the prediction; download the model."),
    ]
    for col, (key, title, text) in zip(cols, steps, strict=True):
        with col.container(border=True):
            page_link(key, label=f"**{title}**")
            st.caption(text)

    st.subheader("Models ready to use")
    try:
        store = get_store()
        models = model_catalog(store)
    except Exception as error:  # the page must still say where things are
        st.error(f"The run database could not be opened: {error}")
        models = model_catalog(None)
    if models:
        st.dataframe(
            [
                {k: m[k] for k in ("name", "task", "method", "labels", "metrics", "source")}
                for m in models
            ],
            hide_index=True,
            width="stretch",
        )
        st.caption(
            "Metrics come from each model's card (test split where there is one). "
            "A model is loaded once per process, the first time a page uses it."
        )
    else:
        st.info("No models yet: train one on the Train page.")

    st.subheader("Where the data is kept")
    st.markdown(
        f"- Runs database: {shown_database(database_url())} (set `LEPTON_DB_URL` for "
        "PostgreSQL)\n"
        f"- Uploads and run artifacts: `{shown_path(data_home())}` (set `LEPTON_HOME` to "
        "move them)\n"
        f"- Shipped models: `{shown_path(SHIPPED_MODELS)}` in the project folder"
    )
