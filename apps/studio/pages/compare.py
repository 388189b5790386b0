"""Compare page: every run with its settings and results; a method's effect against its plain
twin; two runs side by side."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps.studio import compare, runs
from apps.studio.errors import StudioError
from apps.studio.pages.widgets import get_store


def _deltas(rows: list[dict], baseline: str, other: str) -> None:
    """The figures both runs have, as a table and a bar chart of the changes."""
    if not rows:
        st.caption("These two runs have no figure in common yet.")
        return
    frame = pd.DataFrame(rows).rename(columns={"baseline": baseline, "run": other})
    frame["better"] = frame["better"].map({True: "better", False: "worse", None: "same"})
    st.dataframe(frame, hide_index=True, width="stretch")
    scores = frame[frame.split != "cost"].assign(figure=lambda f: f.split + " " + f.metric)
    if not scores.empty:
        chart = (
            alt.Chart(scores)
            .mark_bar()
            .encode(
                x=alt.X("change:Q", title=f"change ({other} minus {baseline})"),
                y=alt.Y(
                    "figure:N",
                    title=None,
                    sort=None,
                    axis=alt.Axis(labelOverlap=False, labelLimit=0),
                ),
                color=alt.Color(
                    "better:N",
                    title=None,
                    scale=alt.Scale(
                        domain=["better", "worse", "same"], range=["#2e7d32", "#c62828", "#9e9e9e"]
                    ),
                ),
                tooltip=["figure", alt.Tooltip("change:Q", format="+.4f"), baseline, other],
            )
            .properties(height=min(60 + 30 * len(scores), 500))
        )
        st.altair_chart(chart)


def _effects(store, all_runs) -> None:
    st.subheader("Effect of a method against the plain run")
    with_method = [r for r in all_runs if r.status in compare.FINISHED and compare.methods_of(r)]
    if not with_method:
        st.caption(
            "Train a run with a method (Train page, Method: adversarial training, prompt "
            "learning, a hyper-parameter search, continual learning...) to see here what it "
            "changed against the same settings without it."
        )
        return
    labels = [f"#{r.id} {r.name}" for r in with_method]
    label = st.selectbox("Run with a method", labels, key="cmp_effect_run")
    run = with_method[labels.index(label)]
    for method, plain in compare.effects(run, all_runs):
        st.markdown(f"**{method.label}**: #{run.id} {run.name} against its plain twin")
        if plain is None:
            st.info(
                "No finished plain run with the same settings yet (same task, data, base "
                "model, seed and PEFT settings; only the method's own settings may differ)."
            )
            busy = bool(store.active())
            if st.button(
                f"Train the plain baseline of #{run.id}",
                key=f"cmp_baseline_{run.id}_{method.name}",
                disabled=busy,
                help="Starts the same settings without the method on the Train page's worker."
                + (" A run is training now; wait for it." if busy else ""),
            ):
                try:
                    config, name = compare.baseline_config(run, method)
                    started = runs.start_run(
                        store, config, runs.unique_run_name(store, name), run.task
                    )
                except StudioError as error:
                    st.error(str(error))
                else:
                    st.success(
                        f"Run #{started.id} '{started.name}' started: watch it on the Train "
                        "page; its figures appear here when it finishes."
                    )
            continue
        st.caption(f"Plain twin: #{plain.id} {plain.name}.")
        _deltas(compare.metric_deltas(run, plain), f"#{plain.id} plain", f"#{run.id}")


def render() -> None:
    st.title("Compare")
    st.caption("All studio runs. Click a column header to sort.")
    store = get_store()
    store.reap()
    all_runs = store.list()
    if not all_runs:
        st.info("No runs yet: start one on the Train page.")
        return
    frame = pd.DataFrame(compare.runs_table(all_runs))
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

    _effects(store, all_runs)

    if len(all_runs) < 2:
        st.caption("Train a second run to compare two.")
        return
    st.subheader("Two runs side by side")
    labels = [f"#{r.id} {r.name} ({r.status})" for r in all_runs]
    a1, a2 = st.columns(2)
    first = a1.selectbox("Run A", labels, index=1, key="cmp_a")
    second = a2.selectbox("Run B", labels, index=0, key="cmp_b")
    a, b = all_runs[labels.index(first)], all_runs[labels.index(second)]
    if a.id == b.id:
        st.caption("Pick two different runs.")
        return
    diff = compare.diff_runs(a, b)
    if diff:
        st.dataframe(pd.DataFrame(diff), hide_index=True, width="stretch")
    else:
        st.info("These runs have the same settings and results.")
    if a.metrics and b.metrics:
        st.markdown(f"**Figures of B against A** (#{b.id} minus #{a.id})")
        _deltas(compare.metric_deltas(b, a), f"#{a.id}", f"#{b.id}")
