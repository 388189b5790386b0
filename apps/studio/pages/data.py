"""Data page: upload or point to a data set, check it, choose the split."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from apps.shell.pages.links import page_link
from apps.studio import datafiles
from apps.studio.errors import StudioError
from apps.studio.pages.widgets import current_data, set_data
from apps.studio.summary import DataSummary, summarize

SOURCES = ["Upload a file", "A file or folder on this machine", "A sample data set"]


def _pick_path() -> tuple[Path | None, dict | None]:
    """The chosen file, and for a sample (or earlier upload) its task, format and columns."""
    source = st.radio("Where is the data?", SOURCES, horizontal=True, key="data_source")
    if source == SOURCES[0]:
        upload = st.file_uploader(
            "CSV, JSONL, CoNLL, SQuAD JSON or parallel text (up to 200 MB; for parallel text "
            "upload both files, e.g. news.en and news.de)",
            key="data_upload",
        )
        if upload is None:
            return None, None
        return _staged(upload), None
    if source == SOURCES[1]:
        typed = st.text_input(
            "Path of a file or folder (for parallel text: the common prefix, e.g. data/train)",
            key="data_path",
        )
        if not typed:
            return None, None
        path = Path(typed).expanduser()
        if path.is_dir():
            files = sorted(p.name for p in path.iterdir() if p.is_file())
            if not files:
                st.error(f"{path} holds no files. Point to a file or a folder with data files.")
                return None, None
            return path / st.selectbox("File in this folder", files, key="data_folder_file"), None
        if not path.exists() and not list(path.parent.glob(path.name + ".*")):
            st.error(
                f"{path} does not exist. Check the path (it is read on the machine running the suite)."
            )
            return None, None
        return path, None
    samples = datafiles.known_data_files()
    labels = [s["label"] for s in samples]
    chosen = st.selectbox("Sample", labels, key="data_sample")
    if not chosen:
        return None, None
    sample = next(s for s in samples if s["label"] == chosen)
    return Path(sample["path"]), sample


def _staged(upload) -> Path | None:
    """The upload written to this session's staging folder (outside LEPTON_HOME), once per
    file: it is stored under LEPTON_HOME, and offered on other pages, only once it reads."""
    staged = st.session_state.get("data_staged")
    if staged and staged["id"] == upload.file_id and Path(staged["path"]).is_file():
        return Path(staged["path"])
    folder = st.session_state.get("data_staging_folder")
    if not folder or not Path(folder).is_dir():
        folder = str(datafiles.staging_folder())
        st.session_state["data_staging_folder"] = folder
    # Earlier refused files go; a file with the same stem stays (news.en waits for news.de).
    stem = Path(upload.name).stem
    for old in Path(folder).iterdir():
        if old.is_file() and old.stem != stem:
            old.unlink(missing_ok=True)
    try:
        path = datafiles.save_upload(upload.name, upload.getvalue(), Path(folder))
    except StudioError as error:
        st.error(str(error))
        st.session_state.pop("data_staged", None)
        return None
    st.session_state["data_staged"] = {"id": upload.file_id, "path": str(path)}
    return path


def _accepted(path: Path, task: str, fmt: str, columns: dict[str, str]) -> Path:
    """Where an upload that has just been read as data is kept (under LEPTON_HOME), stored
    once per way of reading it; other paths come back as they are."""
    folder = st.session_state.get("data_staging_folder")
    staged = st.session_state.get("data_staged")
    if not folder or not staged or path.parent != Path(folder):  # a sample, a local file
        return path
    reading = json.dumps([staged["id"], str(path), task, fmt, columns], sort_keys=True)
    done = st.session_state.get("data_accepted")
    if done and done["reading"] == reading:
        return Path(done["path"])
    choice = datafiles.accept_upload(path, task, fmt, columns)
    st.session_state["data_accepted"] = {"reading": reading, "path": choice["path"]}
    return Path(choice["path"])


def _guess(path: Path, preset: dict | None) -> None:
    """Set task, format and columns from what the file suggests, once per newly chosen file."""
    if st.session_state.get("data_last_path") == str(path):
        return
    st.session_state["data_last_path"] = str(path)
    if preset:
        task, fmt, columns = preset["task"], preset["format"], preset.get("columns") or {}
    else:
        task, fmt = datafiles.guess_format(path)
        columns = datafiles.detect_columns(path, task, fmt)
    st.session_state["data_task"] = task
    st.session_state["data_format"] = fmt
    st.session_state["data_source_col"] = columns.get("source_column", "source")
    st.session_state["data_target_col"] = columns.get("target_column", "target")
    # Parallel text: the chosen file's suffix is the source language (news.en -> en).
    source = path.suffix[1:] if path.suffix else "en"
    st.session_state["data_source_lang"] = source
    st.session_state["data_target_lang"] = "en" if source == "de" else "de"


def _columns(path: Path, task: str, fmt: str, preset: dict | None) -> tuple[Path, dict[str, str]]:
    """The reader's column (or language) settings the user can change, and the path to read."""
    columns: dict[str, str] = {}
    if fmt in ("csv", "jsonl") and task in ("classification", "relation"):
        with st.expander("Columns", expanded=False):
            c3, c4 = st.columns(2)
            columns["text_column"] = c3.text_input("Text column", "text", key="data_text_col")
            columns["label_column"] = c4.text_input("Label column", "label", key="data_label_col")
    if fmt in ("csv", "jsonl") and datafiles.is_pair_task(task):
        with st.expander("Columns", expanded=True):
            c3, c4 = st.columns(2)
            columns["source_column"] = c3.text_input(
                "Source column (the input text)", key="data_source_col"
            )
            columns["target_column"] = c4.text_input(
                "Target column (summary or translation)", key="data_target_col"
            )
    if fmt == "parallel":
        if preset and (preset.get("columns") or {}).get("source_lang"):
            columns = dict(preset["columns"])  # a sample: the path is already the prefix
        elif path.suffix:
            c3, c4 = st.columns(2)
            columns["source_lang"] = c3.text_input("Source language suffix", key="data_source_lang")
            columns["target_lang"] = c4.text_input("Target language suffix", key="data_target_lang")
            path = path.with_suffix("")
    return path, columns


def _summary(summary: DataSummary) -> None:
    figures = list(summary.figures.items())
    cols = st.columns(1 + len(figures))
    cols[0].metric("Records", f"{summary.count:,}")
    for col, (name, value) in zip(cols[1:], figures, strict=True):
        col.metric(name, value)
    for warning in summary.warnings:
        st.warning(warning)
    lengths = pd.DataFrame(
        [{"field": name, **stats} for name, stats in summary.lengths_by_field.items()]
    )
    if len(summary.label_counts) > 1:  # one bar says nothing the figures do not
        left, right = st.columns([3, 2])
        with left:
            st.markdown(f"**{summary.label_name.capitalize()} counts**")
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
                height=max(120, min(60 + 28 * len(counts), 420)),
            )
    else:
        right = st.container()
    with right:
        st.markdown("**Length in words**")
        st.dataframe(lengths, hide_index=True)
    st.markdown("**Preview**")
    st.dataframe(pd.DataFrame(summary.preview), hide_index=True, width="stretch", height=240)


def render() -> None:
    st.title("Data")
    st.caption("Choose a data set, check what it holds, and decide how much to hold out.")
    path, preset = _pick_path()
    if path is None:
        chosen = current_data()
        if chosen:
            st.info(
                f"In use for training: **{Path(chosen['path']).name}** ({chosen['task']}, {chosen['format']})."
            )
        return

    _guess(path, preset)
    tasks = datafiles.task_names()
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", tasks, key="data_task")
    formats = datafiles.formats_for(task)
    if st.session_state.get("data_format") not in formats:
        st.session_state["data_format"] = formats[0]
    fmt = c2.selectbox("Format", formats, key="data_format")
    path, columns = _columns(path, task, fmt, preset)

    try:
        records = datafiles.load_data(path, task, fmt, columns)
    except StudioError as error:
        st.error(str(error))
        st.info(
            "Pick the right task and format above, or fix the file and choose it again. Nothing was changed."
        )
        return
    path = _accepted(path, task, fmt, columns)
    _summary(summarize(records))

    st.subheader("Split")
    s1, s2 = st.columns(2)
    validation = s1.slider(
        "Validation fraction (early stopping, best checkpoint)", 0.0, 0.4, 0.2, 0.05, key="data_val"
    )
    test = s2.slider("Test fraction (scored once at the end)", 0.0, 0.4, 0.1, 0.05, key="data_test")
    count = len(records)
    n_val, n_test = round(count * validation), round(count * test)
    st.caption(
        f"About {count - n_val - n_test} training, {n_val} validation and {n_test} test records "
        "(seeded; stratified by label where there are labels)."
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
        page_link("train", label="Go to Train", icon=":material/arrow_forward:")
