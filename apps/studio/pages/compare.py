"""Compare page: every run with its settings and results; two runs side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from apps.studio import compare
from apps.studio.pages.widgets import get_store


def render() -> None:
    st.title("Compare")
    st.caption("All studio runs. Click a column header to sort.")
    store = get_store()
    store.reap()
    runs = store.list()
    if not runs:
        st.info("No runs yet: start one on the Train page.")
        return
    frame = pd.DataFrame(compare.runs_table(runs))
    c1, c2, c3 = st.columns(3)
    tasks = c1.multiselect("Task", sorted(frame.task.unique()), key="cmp_task")
    statuses = c2.multiselect("Status", sorted(frame.status.unique()), key="cmp_status")
    text = c3.text_input("Name contains", key="cmp_text")
    shown = frame
    if tasks:
        shown = shown[shown.task.isin(tasks)]
    if statuses:
        shown = shown[shown.status.isin(statuses)]
    if text:
        shown = shown[shown.name.str.contains(text, case=False, regex=False)]
    shown = shown.dropna(axis=1, how="all")
    st.dataframe(shown, hide_index=True, width="stretch")

    if len(runs) < 2:
        st.caption("Train a second run to compare two.")
        return
    st.subheader("Two runs side by side")
    labels = [f"#{r.id} {r.name} ({r.status})" for r in runs]
    a1, a2 = st.columns(2)
    first = a1.selectbox("Run A", labels, index=1, key="cmp_a")
    second = a2.selectbox("Run B", labels, index=0, key="cmp_b")
    a, b = runs[labels.index(first)], runs[labels.index(second)]
    if a.id == b.id:
        st.caption("Pick two different runs.")
        return
    diff = compare.diff_runs(a, b)
    if diff:
        st.dataframe(pd.DataFrame(diff), hide_index=True, width="stretch")
    else:
        st.info("These runs have the same settings and results.")
