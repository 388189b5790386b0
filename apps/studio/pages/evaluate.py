"""Evaluate page: the task's metrics, confusion matrix or per-label F1, and the worst errors."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps.studio import logic
from apps.studio.ui import data_choices, get_predictor, get_store

OWN_SPLIT = "The run's own test split"


def model_choice(key: str) -> dict | None:
    """A selectbox over the models ready to use; returns the chosen catalogue entry."""
    store = get_store()
    for run in logic.missing_artifacts(store):
        st.warning(
            f"The model folder of run #{run.id} '{run.name}' was deleted or moved "
            f"({run.artifact_path}); its record and metrics are kept (Compare). Train it again "
            "to use it."
        )
    models = logic.model_catalog(store)
    if not models:
        st.info("No models yet: train one on the Train page.")
        return None
    labels = [f"{m['name']} ({m['task']}, {m['source']})" for m in models]
    chosen = st.selectbox("Model", labels, key=key)
    return models[labels.index(chosen)]


def _records(model: dict) -> tuple[str, list[dict]] | None:
    run = None
    if model["source"].startswith("studio run #"):
        run = get_store().get(int(model["source"].split("#")[1]))
    files = [c for c in data_choices() if c["task"] == model["task"]]
    options = ([OWN_SPLIT] if run else []) + [c["label"] for c in files]
    if not options:
        st.info(f"No {model['task']} data to evaluate on: upload some on the Data page.")
        return None
    source = st.selectbox("Evaluate on", options, key=f"eval_data_{model['path']}")
    if source == OWN_SPLIT:
        records = logic.run_records(run.config_yaml, "test") or logic.run_records(
            run.config_yaml, "validation"
        )
        return source, records
    choice = next(c for c in files if c["label"] == source)
    return source, logic.load_data(
        choice["path"], model["task"], choice["format"], choice.get("columns")
    )


def _confusion(report: logic.EvalReport) -> None:
    rows = [
        {"true": t, "predicted": p, "count": report.confusion[i][j]}
        for i, t in enumerate(report.labels)
        for j, p in enumerate(report.labels)
    ]
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=report.labels), y=alt.Y("true:N", sort=report.labels)
    )
    heat = base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")))
    text = base.mark_text().encode(text="count:Q")
    size = min(60 * len(report.labels) + 80, 600)
    st.altair_chart((heat + text).properties(width=size, height=size))


def render() -> None:
    st.title("Evaluate")
    st.caption("Score a model on labelled data and read its mistakes.")
    model = model_choice("eval_model")
    if model is None:
        return
    try:
        picked = _records(model)
    except logic.StudioError as error:
        st.error(str(error))
        return
    if picked is None:
        return
    source, records = picked
    key = (model["path"], source, len(records))
    if st.button("Evaluate", type="primary", key="eval_run"):
        try:
            with st.spinner(f"Predicting {len(records)} records..."):
                st.session_state["eval_report"] = (
                    key,
                    logic.evaluate_artifact(get_predictor(model["path"]), records),
                )
        except (logic.StudioError, ValueError) as error:
            st.error(str(error))
            return
    stored = st.session_state.get("eval_report")
    if not stored or stored[0] != key:
        st.caption(f"{len(records)} records ready. Press Evaluate.")
        return
    report = stored[1]
    headline = logic.headline_metrics(model["task"], report.metrics)
    cols = st.columns(max(len(headline), 1) + 1)
    cols[0].metric("Records", len(records))
    for col, name in zip(cols[1:], headline, strict=False):
        col.metric(name, logic.format_metric(name, report.metrics[name]))
    if METRIC_NOTES.get(model["task"]):
        st.caption(METRIC_NOTES[model["task"]])
    left, right = st.columns(2)
    if report.confusion:
        with left:
            st.markdown("**Confusion matrix** (rows: true label)")
            _confusion(report)
    if report.per_label:
        with right if report.confusion else left:
            st.markdown("**F1 per label**")
            frame = pd.DataFrame(
                {"label": list(report.per_label), "F1": list(report.per_label.values())}
            )
            st.bar_chart(
                frame, x="label", y="F1", horizontal=True, height=min(60 + 28 * len(frame), 420)
            )
    _errors(model["task"], report)


METRIC_NOTES = {
    "qa": "Exact match and F1 as in SQuAD (lower case, no punctuation or articles; the best "
    "over the gold answers), as fractions.",
    "relation": "macro_f1 is SemEval-2010 Task 8's official score: the F1 of each relation "
    "(right type and direction), averaged without 'Other'.",
    "summarization": "ROUGE F-measures (0-1), each example scored against its best reference.",
    "translation": "BLEU and chrF on a 0-100 scale (sacrebleu), all references used.",
}

ERROR_NOTES = {
    "classification": "Wrong predictions, the most confident first.",
    "relation": "Wrong relations, the most confident first; `<e1>` marks the head, `<e2>` the tail.",
    "qa": "Questions answered wrongly, the lowest F1 first (then the most confident).",
    "summarization": "The summaries with the lowest ROUGE-L against their reference.",
    "translation": "The translations with the lowest chrF against their reference.",
}


def _errors(task: str, report: logic.EvalReport) -> None:
    st.subheader("Worst errors")
    if not report.errors:
        st.success("No errors on these records.")
        return
    if "entities" in report.errors[0]:
        st.caption(
            "Highlighted: the entities the model found. Below each sentence: what the data says."
        )
        for error in report.errors:
            st.markdown(
                logic.highlight_entities(error["text"], error["entities"]), unsafe_allow_html=True
            )
            st.caption(f"expected: {error['gold'] or 'no entities'}")
        return
    if ERROR_NOTES.get(task):
        st.caption(ERROR_NOTES[task])
    frame = pd.DataFrame(report.errors)
    config = {}
    if "context" in frame.columns:
        config["context"] = st.column_config.TextColumn("context", width="large")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config)
