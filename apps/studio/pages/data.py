"""Data page: upload or point to a data set, check it, choose the split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from apps.navigation import page
from apps.studio import logic
from apps.studio.ui import current_data, set_data

SOURCES = ["Upload a file", "A file or folder on this machine", "A sample data set"]


def _pick_path() -> Path | None:
    source = st.radio("Where is the data?", SOURCES, horizontal=True, key="data_source")
    if source == SOURCES[0]:
        upload = st.file_uploader(
            "CSV, JSONL, CoNLL, SQuAD JSON or parallel text (up to 200 MB)", key="data_upload"
        )
        if upload is None:
            return None
        try:
            return logic.save_upload(upload.name, upload.getvalue())
        except logic.StudioError as error:
            st.error(str(error))
            return None
    if source == SOURCES[1]:
        typed = st.text_input(
            "Path of a file or folder (for parallel text: the common prefix, e.g. data/train)",
            key="data_path",
        )
        if not typed:
            return None
        path = Path(typed).expanduser()
        if path.is_dir():
            files = sorted(p.name for p in path.iterdir() if p.is_file())
            if not files:
                st.error(f"{path} holds no files. Point to a file or a folder with data files.")
                return None
            return path / st.selectbox("File in this folder", files, key="data_folder_file")
        if not path.exists() and not list(path.parent.glob(path.name + ".*")):
            st.error(
                f"{path} does not exist. Check the path (it is read on the machine running the suite)."
            )
            return None
        return path
    samples = logic.known_data_files()
    labels = [s["label"] for s in samples]
    chosen = st.selectbox("Sample", labels, key="data_sample")
    return Path(next(s["path"] for s in samples if s["label"] == chosen)) if chosen else None


def render() -> None:
    st.title("Data")
    st.caption("Choose a data set, check what it holds, and decide how much to hold out.")
    path = _pick_path()
    if path is None:
        chosen = current_data()
        if chosen:
            st.info(
                f"In use for training: **{Path(chosen['path']).name}** ({chosen['task']}, {chosen['format']})."
            )
        return

    guessed_task, guessed_format = logic.guess_format(path.name)
    tasks = list(logic.FORMATS_BY_TASK)
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", tasks, index=tasks.index(guessed_task), key="data_task")
    formats = logic.FORMATS_BY_TASK[task]
    fmt = c2.selectbox(
        "Format",
        formats,
        index=formats.index(guessed_format) if guessed_format in formats else 0,
        key="data_format",
    )
    columns: dict[str, str] = {}
    if fmt in ("csv", "jsonl") and task == "classification":
        with st.expander("Columns", expanded=False):
            c3, c4 = st.columns(2)
            columns["text_column"] = c3.text_input("Text column", "text", key="data_text_col")
            columns["label_column"] = c4.text_input("Label column", "label", key="data_label_col")
    if fmt == "parallel" and path.suffix:
        columns["source_lang"] = path.suffix[1:]
        columns["target_lang"] = st.text_input(
            "Target language suffix", "de", key="data_target_lang"
        )
        path = path.with_suffix("")

    try:
        records = logic.load_data(path, task, fmt, columns)
    except logic.StudioError as error:
        st.error(str(error))
        st.info(
            "Pick the right task and format above, or fix the file and choose it again. Nothing was changed."
        )
        return
    summary = logic.summarize(records)

    m1, m2, m3 = st.columns(3)
    m1.metric("Records", f"{summary.count:,}")
    m2.metric(f"{summary.label_name.capitalize()}s", len(summary.label_counts))
    m3.metric("Median length (words)", summary.lengths["median"])
    for warning in summary.warnings:
        st.warning(warning)
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{summary.label_name.capitalize()} counts**")
        if summary.label_counts:
            counts = pd.DataFrame(
                {
                    summary.label_name: list(summary.label_counts),
                    "count": list(summary.label_counts.values()),
                }
            )
            st.bar_chart(
                counts,
                x=summary.label_name,
                y="count",
                horizontal=True,
                height=min(60 + 28 * len(counts), 420),
            )
    with right:
        st.markdown("**Length in words**")
        st.dataframe(pd.DataFrame([summary.lengths]), hide_index=True)
    st.markdown("**Preview**")
    st.dataframe(pd.DataFrame(summary.preview), hide_index=True, width="stretch", height=240)

    st.subheader("Split")
    s1, s2 = st.columns(2)
    validation = s1.slider(
        "Validation fraction (early stopping, best checkpoint)", 0.0, 0.4, 0.2, 0.05, key="data_val"
    )
    test = s2.slider("Test fraction (scored once at the end)", 0.0, 0.4, 0.1, 0.05, key="data_test")
    n_val, n_test = round(summary.count * validation), round(summary.count * test)
    st.caption(
        f"About {summary.count - n_val - n_test} training, {n_val} validation and {n_test} test records (seeded, stratified)."
    )
    if st.button("Use this data set for training", type="primary", key="data_use"):
        set_data(
            {
                "label": f"chosen: {path.name}",
                "path": str(path),
                "task": task,
                "format": fmt,
                "columns": columns,
                "validation_size": validation,
                "test_size": test,
            }
        )
        st.success(f"{path.name} will be used on the Train page.")
        st.page_link(page("train"), label="Go to Train", icon=":material/arrow_forward:")
