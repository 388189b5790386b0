"""Evaluate page: the task's metrics, confusion matrix or per-label F1, and the worst errors."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps.common.catalog import model_catalog
from apps.common.paths import shown_path
from apps.studio import artifacts, datafiles, reports, runs
from apps.studio.errors import StudioError
from apps.studio.pages.widgets import current_data, data_choices, get_predictor, get_store

OWN_SPLIT = "The run's own test split"


def _labels(model: dict) -> str:
    return f"{model['name']} ({model['task']}, {model['source']})"


def model_choice(key: str, default: int = 0) -> dict | None:
    """A selectbox over the models ready to use (``default``: the index it starts on);
    returns the chosen catalogue entry."""
    store = get_store()
    for run in runs.missing_artifacts(store):
        st.warning(
            f"The model folder of run #{run.id} '{run.name}' was deleted or moved "
            f"({shown_path(run.artifact_path)}); its record and metrics are kept "
            "(Compare). Train it again to use it."
        )
    models = model_catalog(store)
    if not models:
        st.info("No models yet: train one on the Train page.")
        return None
    labels = [_labels(m) for m in models]
    chosen = st.selectbox("Model", labels, index=min(default, len(labels) - 1), key=key)
    return models[labels.index(chosen)]


def _run_of(model: dict):
    if model["source"].startswith("studio run #"):
        return get_store().get(int(model["source"].split("#")[1]))
    return None


def _fits(model: dict, choice: dict) -> bool:
    try:
        labels = datafiles.data_labels(choice)
        return not artifacts.unknown_labels(artifacts.artifact_spec(model["path"]).labels, labels)
    except StudioError:
        return False


def _default_pair(models: list[dict], files: list[dict]) -> tuple[int, dict[str, str]]:
    """The model to start on and, per model, the data to start on: a pair whose labels fit.

    The data chosen on the Data page comes first, then the newest studio run (its own test
    split fits it), then the other models in catalogue order."""
    start: int | None = None
    first_data: dict[str, str] = {}
    chosen = current_data()
    for index, model in enumerate(models):
        if _run_of(model) is not None:
            first_data[model["path"]] = OWN_SPLIT
            start = index if start is None else start
            continue
        for choice in files:
            if choice["task"] == model["task"] and _fits(model, choice):
                first_data[model["path"]] = choice["label"]
                if chosen and choice["path"] == chosen["path"]:
                    return index, first_data  # a model for the data the user chose
                start = index if start is None else start
                break
    return start or 0, first_data


def _records(model: dict, first: str | None) -> tuple[dict | None, list[dict]] | None:
    """The data to evaluate on, chosen on the page: (its data choice, or None for a run's
    own split; its records)."""
    run = _run_of(model)
    files = [c for c in data_choices() if c["task"] == model["task"]]
    options = ([OWN_SPLIT] if run else []) + [c["label"] for c in files]
    if not options:
        st.info(f"No {model['task']} data to evaluate on: upload some on the Data page.")
        return None
    index = options.index(first) if first in options else 0
    source = st.selectbox("Evaluate on", options, index=index, key=f"eval_data_{model['path']}")
    if source == OWN_SPLIT:
        records = runs.run_records(run.config_yaml, "test") or runs.run_records(
            run.config_yaml, "validation"
        )
        return None, records
    choice = next(c for c in files if c["label"] == source)
    return choice, datafiles.load_data(
        choice["path"], model["task"], choice["format"], choice.get("columns")
    )


def _use_model(label: str) -> None:
    st.session_state["eval_model"] = label


def _mismatch(model: dict, choice: dict, records: list[dict]) -> bool:
    """Say in one line when the model does not know the data's labels, and offer the models
    that do; True when it does not."""
    labels = datafiles.record_labels(records)
    models = model_catalog(get_store())
    fitting = artifacts.fitting_models(models, model["task"], labels)
    line = artifacts.label_mismatch(model, choice["label"], labels, fitting)
    if line is None:
        return False
    st.warning(line)
    others = [m for m in fitting if m["path"] != model["path"]]
    if others:
        cols = st.columns(min(len(others), 4))
        for i, other in enumerate(others[:4]):
            cols[i].button(
                f"Use {other['name']}",
                key=f"eval_fit_{i}",
                on_click=_use_model,
                args=(_labels(other),),
            )
    return True


def _confusion(report: reports.EvalReport) -> None:
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
    models = model_catalog(get_store())
    files = data_choices()
    start, first_data = _default_pair(models, files)
    model = model_choice("eval_model", start)
    if model is None:
        return
    try:
        picked = _records(model, first_data.get(model["path"]))
    except StudioError as error:
        st.error(str(error))
        return
    if picked is None:
        return
    choice, records = picked
    try:
        mismatched = choice is not None and _mismatch(model, choice, records)
    except StudioError as error:  # the model's folder is gone
        st.error(str(error))
        return
    source = choice["label"] if choice else OWN_SPLIT
    key = (model["path"], source, len(records))
    if st.button("Evaluate", type="primary", key="eval_run", disabled=mismatched):
        try:
            with st.spinner(f"Predicting {len(records)} records..."):
                st.session_state["eval_report"] = (
                    key,
                    reports.evaluate_artifact(get_predictor(model["path"]), records),
                )
        except (StudioError, ValueError) as error:
            st.error(str(error))
            return
    stored = st.session_state.get("eval_report")
    if mismatched or not stored or stored[0] != key:
        if not mismatched:
            st.caption(f"{len(records)} records ready. Press Evaluate.")
        return
    report = stored[1]
    headline = reports.headline_metrics(model["task"], report.metrics)
    cols = st.columns(max(len(headline), 1) + 1)
    cols[0].metric("Records", len(records))
    for col, name in zip(cols[1:], headline, strict=False):
        col.metric(name, reports.format_metric(name, report.metrics[name]))
    st.caption(
        f"Predicted with backend {report.backend} (`Predictor.from_artifact`, backend auto), "
        "scored as `lepton-nlp eval` scores: the same reader, predictor and metrics."
        + (f" {METRIC_NOTES[model['task']]}" if METRIC_NOTES.get(model["task"]) else "")
    )
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


def _errors(task: str, report: reports.EvalReport) -> None:
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
                reports.highlight_entities(error["text"], error["entities"]), unsafe_allow_html=True
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
