"""Try page: type an input, see the prediction with its probabilities; download the model."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps.studio import logic
from apps.studio.pages.evaluate import model_choice
from apps.studio.ui import artifact_zip, get_predictor

MODEL_EXAMPLES = {
    "banking77-intent": "I lost my card yesterday, can you block it and send me a new one?",
    "finance-sentiment": "Operating profit rose 20% and the company raised its full-year guidance.",
}
EXAMPLES = {
    "classification": "Operating profit rose 20% and the company raised its full-year guidance.",
    "ner": "Anna Berg joined Halden Steel in Oslo after ten years at Nordea.",
    "relation": "The <e1>storm</e1> caused a long <e2>flood</e2>.",
    "summarization": "Anna: Are we still meeting at six? Ben: Yes, at the cafe by the station.",
    "translation": "The meeting starts at nine tomorrow.",
}


def _input(task: str, model: dict):
    if task == "qa":
        context = st.text_area(
            "Context", "Halden Steel opened its new plant in Oulu in March 2024.", key="try_context"
        )
        question = st.text_input(
            "Question", "Where did Halden Steel open its plant?", key="try_question"
        )
        return {"question": question, "context": context} if context and question else None
    example = MODEL_EXAMPLES.get(model["name"], EXAMPLES.get(task, ""))
    return st.text_area("Input", example, height=100, key=f"try_text_{model['path']}") or None


def _show(task: str, output: dict) -> None:
    if "entities" in output:
        st.markdown(
            logic.highlight_entities(output["text"], output["entities"]), unsafe_allow_html=True
        )
        if output["entities"]:
            st.dataframe(pd.DataFrame(output["entities"]), hide_index=True)
        else:
            st.caption("No entities found.")
        return
    if "scores" in output and isinstance(output["scores"], dict):
        label = output.get("label") or ", ".join(output.get("labels", [])) or "(none)"
        st.metric("Prediction", label)
        if "score" in output:
            st.caption(f"with probability {output['score']:.1%}; all labels below")
        frame = pd.DataFrame(
            {"label": list(output["scores"]), "probability": list(output["scores"].values())}
        )
        frame = frame.sort_values("probability", ascending=False).head(15)
        chart = (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
                y=alt.Y("label:N", sort="-x", title=None),
                tooltip=["label", alt.Tooltip("probability:Q", format=".3f")],
            )
            .properties(height=min(40 + 26 * len(frame), 460))
        )
        st.altair_chart(chart)
        return
    st.json(output)


def render() -> None:
    st.title("Try")
    st.caption("Type or paste an input and see what the model says.")
    model = model_choice("try_model")
    if model is None:
        return
    item = _input(model["task"], model)
    if st.button("Predict", type="primary", key="try_predict", disabled=item is None):
        try:
            with st.spinner("Predicting..."):
                st.session_state["try_output"] = (
                    model["path"],
                    get_predictor(model["path"]).predict_one(item),
                )
        except (logic.StudioError, ValueError) as error:
            st.error(str(error))
    stored = st.session_state.get("try_output")
    if stored and stored[0] == model["path"]:
        _show(model["task"], stored[1])

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
