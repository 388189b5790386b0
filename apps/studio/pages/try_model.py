"""Try page: type an input, see the prediction with its probabilities; download the model."""

from __future__ import annotations

import html

import altair as alt
import pandas as pd
import streamlit as st

from apps.studio import artifacts, inputs, reports
from apps.studio.errors import StudioError
from apps.studio.pages.evaluate import model_choice
from apps.studio.pages.widgets import artifact_zip, get_predictor

MODEL_EXAMPLES = {
    "banking77-intent": "I lost my card yesterday, can you block it and send me a new one?",
    "finance-sentiment": "Operating profit rose 20% and the company raised its full-year guidance.",
}
EXAMPLES = {
    "classification": "Operating profit rose 20% and the company raised its full-year guidance.",
    "ner": "Anna Berg joined Halden Steel in Oslo after ten years at Nordea.",
    "relation": "<e1>Anna Berg</e1> was appointed chief executive of <e2>Halden Steel</e2>.",
    "summarization": (
        "Anna: Are we still meeting at six?\nBen: Yes, at the cafe by the station.\n"
        "Anna: Good, I'll bring the sales figures."
    ),
    "translation": "Sales rose by 5% in the second quarter.",
}
OUTPUT_NAMES = {"summarization": "Summary", "translation": "Translation"}


def _relation_input(model: dict) -> dict | None:
    key = model["path"]
    text = st.text_area(
        "Text, with the head marked `<e1>...</e1>` and the tail `<e2>...</e2>`",
        EXAMPLES["relation"],
        height=100,
        key=f"try_text_{key}",
    )
    st.caption(
        "Or leave the text unmarked and type the two arguments as they appear in it. The "
        "relation is read from the head to the tail."
    )
    c1, c2 = st.columns(2)
    head = c1.text_input("Head (first argument)", key=f"try_head_{key}")
    tail = c2.text_input("Tail (second argument)", key=f"try_tail_{key}")
    head_type = tail_type = ""
    if artifacts.artifact_spec(model["path"]).extra.get("typed"):
        c3, c4 = st.columns(2)
        head_type = c3.text_input(
            "Head type (e.g. PER)",
            key=f"try_head_type_{key}",
            help="This model was trained with argument types; give the same types its data used.",
        )
        tail_type = c4.text_input("Tail type (e.g. ORG)", key=f"try_tail_type_{key}")
    try:
        return inputs.relation_input(text, head, tail, head_type, tail_type)
    except StudioError as error:
        st.warning(str(error))
        return None


def _input(task: str, model: dict):
    if task == "qa":
        context = st.text_area(
            "Context", "Halden Steel opened its new plant in Oulu in March 2024.", key="try_context"
        )
        question = st.text_input(
            "Question", "Where did Halden Steel open its plant?", key="try_question"
        )
        return {"question": question, "context": context} if context and question else None
    if task == "relation":
        return _relation_input(model)
    label = {"summarization": "Text to summarize", "translation": "Text to translate"}
    example = MODEL_EXAMPLES.get(model["name"], EXAMPLES.get(task, ""))
    return (
        st.text_area(
            label.get(task, "Input"),
            example,
            height=160 if task == "summarization" else 100,
            key=f"try_text_{model['path']}",
        )
        or None
    )


def _probabilities(scores: dict[str, float]) -> None:
    frame = pd.DataFrame({"label": list(scores), "probability": list(scores.values())})
    frame = frame.sort_values("probability", ascending=False).head(15)
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
            tooltip=["label", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=min(60 + 30 * len(frame), 500))
    )
    st.altair_chart(chart)


def _show_answer(item: dict, output: dict) -> None:
    if output.get("no_answer") or not output.get("answer"):
        st.warning("The model found no answer in this context.")
        return
    st.metric("Answer", output["answer"])
    st.caption(f"with probability {output['score']:.1%} among the candidate spans")
    span = {"label": "answer", "start": output["start"], "end": output["end"]}
    st.markdown(reports.highlight_entities(item["context"], [span]), unsafe_allow_html=True)


def _show_relation(item: dict, output: dict) -> None:
    st.metric("Relation", output["label"])
    st.caption(
        f"with probability {output['score']:.1%}: {output['subject']['text']} -> "
        f"{output['relation']} -> {output['object']['text']}; all relations below"
    )
    st.markdown(
        reports.highlight_entities(item["text"], reports.relation_spans(output)),
        unsafe_allow_html=True,
    )
    _probabilities(output["scores"])


def _show(task: str, item, output: dict) -> None:
    if "entities" in output:
        st.markdown(
            reports.highlight_entities(output["text"], output["entities"]), unsafe_allow_html=True
        )
        if output["entities"]:
            st.dataframe(pd.DataFrame(output["entities"]), hide_index=True)
        else:
            st.caption("No entities found.")
        return
    if "answer" in output:
        _show_answer(item, output)
        return
    if "generated_text" in output:
        st.markdown(f"**{OUTPUT_NAMES.get(task, 'Output')}**")
        with st.container(border=True):
            text = output["generated_text"]
            if text:
                st.markdown(
                    f'<div style="white-space: pre-wrap">{html.escape(text)}</div>',
                    unsafe_allow_html=True,
                )
            else:
                st.caption("(the model generated nothing for this input)")
        return
    if "scores" in output and isinstance(output["scores"], dict):
        if "head" in output and "tail" in output:
            _show_relation(item, output)
            return
        label = output.get("label") or ", ".join(output.get("labels", [])) or "(none)"
        st.metric("Prediction", label)
        if "score" in output:
            st.caption(f"with probability {output['score']:.1%}; all labels below")
        _probabilities(output["scores"])
        return
    st.json(output)


def render() -> None:
    st.title("Try")
    st.caption("Type or paste an input and see what the model says.")
    model = model_choice("try_model")
    if model is None:
        return
    try:
        item = _input(model["task"], model)
    except StudioError as error:  # the model's folder is gone
        st.error(str(error))
        return
    if st.button("Predict", type="primary", key="try_predict", disabled=item is None):
        st.session_state.pop("try_output", None)
        try:
            with st.spinner("Predicting..."):
                output = inputs.predict_input(get_predictor(model["path"]), item)
            st.session_state["try_output"] = (model["path"], item, output)
        except (StudioError, ValueError) as error:
            st.error(str(error))
    stored = st.session_state.get("try_output")
    # Only the prediction of what is in the boxes now: an edited or cleared input has none.
    if stored and stored[0] == model["path"] and stored[1] == item:
        _show(model["task"], stored[1], stored[2])

    st.divider()
    try:
        archive = artifact_zip(model["path"])
    except Exception as error:  # a deleted or damaged folder: say so, keep the page
        st.warning(f"This model's folder cannot be exported: {error}")
        return
    st.download_button(
        f"Download {model['name']} ({len(archive) / 2**20:.1f} MB zip)",
        archive,
        file_name=f"{model['name']}.zip",
        mime="application/zip",
        key="try_download",
    )
    st.caption(
        "The zip is a complete artifact: `Predictor.from_artifact(folder)` or `lepton-nlp predict folder`."
    )
