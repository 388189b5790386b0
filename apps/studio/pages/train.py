"""Train page: choose task, base model, PEFT method, settings and a training method; watch
the run (or search, or sequence) live; stop it."""

from __future__ import annotations

import math
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from apps.common.paths import shown_path
from apps.studio import datafiles, methods, runconfig, runs
from apps.studio.errors import StudioError
from apps.studio.pages.widgets import data_choices, get_store
from apps.studio.store import RunStore

LOCAL = "A local model folder..."
TASK_NOTES = {
    "qa": "Contexts longer than Max tokens are read in overlapping windows; the overlap and the "
    "longest question follow Max tokens.",
    "relation": "The two arguments are marked in each text; a relation label keeps its direction.",
    "summarization": "Validation writes a summary of every held-out text after each epoch, "
    "which takes a while on a CPU.",
    "translation": "Validation translates every held-out sentence after each epoch, which takes "
    "a while on a CPU.",
}


def _form(store: RunStore, busy: bool) -> None:
    from lepton_nlp.peft_methods import METHODS

    choices = data_choices()
    labels = [c["label"] for c in choices]
    data_label = st.selectbox(
        "Data", labels, key="train_data", help="Choose or upload more on the Data page."
    )
    data = next(c for c in choices if c["label"] == data_label)
    tasks = datafiles.task_names()
    c1, c2, c3 = st.columns(3)
    task = c1.selectbox("Task", tasks, index=tasks.index(data["task"]), key="train_task")
    models = [*runconfig.base_models(task), LOCAL]
    base = c2.selectbox("Base model", models, key=f"train_base_{task}")
    if base == LOCAL:
        base = c2.text_input("Model folder", key="train_base_path", placeholder="/path/to/model")
    defaults = runconfig.defaults_for(task, base)
    # Widgets start from the chosen model's defaults: their keys change with the model only
    # where it has defaults of its own.
    slot = f"{task}_{base}" if runconfig.own_defaults(task, base) else task
    # Soft prompts are offered as a training method (prompt learning), below.
    peft_methods = [m for m in METHODS if m not in ("prefix", *methods.SOFT_PROMPTS)]
    method = c3.selectbox(
        "PEFT method",
        peft_methods,
        index=peft_methods.index(defaults["method"]),
        key=f"train_method_{slot}",
        help="Soft prompts (prompt tuning, P-tuning) are under Method: Prompt learning.",
    )

    c4, c5, c6, c7, c8 = st.columns(5)
    epochs = c4.number_input(
        "Epochs", 0.1, 100.0, float(defaults["epochs"]), 1.0, key=f"train_epochs_{slot}"
    )
    batch = c5.number_input(
        "Batch size", 1, 512, int(defaults["batch_size"]), key=f"train_batch_{slot}"
    )
    lr = c6.number_input(
        "Learning rate",
        runconfig.LEARNING_RATE_MIN,
        1.0,
        float(defaults["learning_rate"]),
        step=runconfig.LEARNING_RATE_STEP,
        format="%.2e",
        key=f"train_lr_{slot}",
        help="Type any value (e.g. 2e-4 or 0.0002); it is used as typed. The arrows step by "
        f"{runconfig.LEARNING_RATE_STEP:.0e}. LoRA usually wants 1e-4 to 1e-3, full fine-tuning "
        "1e-5 to 1e-4.",
    )
    max_length = c7.number_input(
        "Max tokens", 8, 4096, int(defaults["max_length"]), key=f"train_len_{slot}"
    )
    r = c8.number_input(
        "LoRA rank r",
        1,
        256,
        16,
        key="train_r",
        disabled=method in ("full", "ia3", "prompt", "ptuning", "ln_tuning"),
    )
    if (task, base) in runconfig.MODEL_NOTES:
        st.info(runconfig.MODEL_NOTES[task, base])
    task_options = {}
    if task == "classification":
        poolings = list(runconfig.POOLINGS)
        task_options["pooling"] = st.selectbox(
            "Sentence vector the classifier reads",
            poolings,
            index=poolings.index(runconfig.default_pooling(base)),
            format_func=runconfig.POOLINGS.get,
            key=f"train_pooling_{base}",
            help="Sentence-transformers models (all-MiniLM-L6-v2) were trained to mean their "
            "tokens, so that is their default; other models start from the first token.",
        )
    if task == "qa":
        try:
            unanswerable = datafiles.unanswerable_questions(
                data["path"], data["format"], data.get("columns")
            )
        except StudioError:
            unanswerable = 0  # a file gone since the Data page read it: the run says why
        task_options["allow_no_answer"] = st.checkbox(
            'Questions can have no answer: the model may say "no answer" (SQuAD 2.0)',
            value=unanswerable > 0,
            key=f"train_no_answer_{data['path']}",
            help=f"{unanswerable} question(s) in this data have no answer. Off: the model "
            "always picks a span of the context.",
        )
    chosen, values = _method_area(store, task, choices)
    stem = f"{Path(data['path']).stem}-{method}"
    suggested = runs.unique_run_name(
        store, stem if chosen.name == methods.PLAIN else f"{stem}-{chosen.name}"
    )
    name = st.text_input(
        "Run name",
        suggested,
        # Keyed by the suggestion: once a run takes the name, the box offers the next free one.
        key=f"train_name_{method}_{suggested}",
        help="Each run has its own name; a name already taken is refused.",
    )
    validation = data.get("validation_size", 0.2)
    test = data.get("test_size", 0.1)
    st.caption(
        f"Held out: {validation:.0%} validation, {test:.0%} test (change it on the Data page)."
        + (f" {TASK_NOTES[task]}" if task in TASK_NOTES else "")
    )

    if st.button("Start training", type="primary", disabled=busy or not base, key="train_start"):
        try:
            config = runconfig.build_config(
                task=task,
                data_path=data["path"],
                fmt=data["format"],
                base_model=base,
                method=method,
                epochs=epochs,
                batch_size=batch,
                learning_rate=lr,
                max_length=max_length,
                r=r,
                validation_size=validation,
                test_size=test,
                columns=data.get("columns"),
                name=name,
                task_options=task_options,
                training_method=chosen.name,
                method_values=values,
            )
            run = runs.start_run(store, config, name, task)
        except StudioError as error:
            st.error(str(error))
            return
        st.session_state["train_last_run"] = run.id
        st.rerun()


def _field(method: methods.Method, field: methods.Field, store: RunStore, choices: list[dict]):
    """One input of a method's form; returns its value as the registry takes it."""
    key = f"train_opt_{method.name}_{field.name}"
    if field.kind == "choice":
        return st.selectbox(
            field.label,
            list(field.choices),
            index=list(field.choices).index(field.default),
            key=key,
            help=field.help or None,
        )
    if field.kind == "multichoice":
        return st.multiselect(
            field.label,
            list(field.choices),
            default=field.default,
            key=key,
            help=field.help or None,
        )
    if field.kind == "bool":
        return st.checkbox(field.label, value=field.default, key=key, help=field.help or None)
    if field.kind in ("int", "float"):
        number = int if field.kind == "int" else float
        # Rates (1e-2 and below) in scientific notation, the arrows a tenth of their order.
        small = field.kind == "float" and 0 < abs(field.default) <= 0.01
        return st.number_input(
            field.label,
            number(field.low),
            number(field.high),
            number(field.default),
            step=10 ** math.floor(math.log10(abs(field.default))) / 10 if small else None,
            format="%.2e" if small else None,
            key=key,
            help=field.help or None,
        )
    if field.kind == "run":
        models = runs.finished_models(store)
        if not models:
            st.info("No finished run yet: train one first, then start from it.")
            return None
        label = st.selectbox(field.label, list(models), key=key, help=field.help or None)
        return models[label]
    # datasets: the classification data sets the Data page knows, in the order picked
    offered = {c["label"]: c for c in choices if c["task"] == "classification"}
    picked = st.multiselect(
        field.label,
        list(offered),
        default=list(offered)[:1],
        key=key,
        help=field.help or None,
    )
    return [offered[label] for label in picked]


def _method_area(store: RunStore, task: str, choices: list[dict]):
    """The "Method" choice and its settings; returns (method, values)."""
    st.markdown("**Method**")
    # Every method, whatever the task (a choice kept across pages must stay an option); one
    # that does not apply says so here and is refused at start.
    offered = methods.methods()
    labels = [m.label for m in offered]
    label = st.selectbox(
        "Training method",
        labels,
        key="train_training_method",
        help="Each is compared with its plain twin (the same settings without it) on the "
        "Compare page.",
    )
    chosen = offered[labels.index(label)]
    st.caption(chosen.summary + (f" See {chosen.docs}." if chosen.docs else ""))
    if not chosen.applies_to(task):
        st.warning(f"{chosen.label} applies to {', '.join(chosen.tasks or ())} runs only.")
    values = {}
    if chosen.fields:
        columns = st.columns(min(len(chosen.fields), 4))
        for i, field in enumerate(chosen.fields):
            with columns[i % len(columns)]:
                values[field.name] = _field(chosen, field, store, choices)
    return chosen, values


def _chart(frame: pd.DataFrame, title: str) -> alt.LayerChart:
    """Lines per series, with dots on the validation values (one per epoch) and on any
    series too short for a line: a single evaluation is one dot, which a line would not show."""
    counts = frame.groupby("series")["value"].transform("size")
    dotted = frame[frame.series.str.startswith("validation") | (counts < 3)]

    def encoded(data: pd.DataFrame) -> alt.Chart:
        return alt.Chart(data).encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "series:N", title=None, legend=alt.Legend(orient="bottom", columns=2, labelLimit=0)
            ),
            tooltip=["series", "step", alt.Tooltip("value:Q", format=".4f")],
        )

    lines = encoded(frame).mark_line()
    dots = encoded(dotted).mark_point(filled=True, size=70, opacity=1)
    return alt.layer(lines, dots).properties(height=260)


def _curves(history: list[dict]) -> None:
    rows = runs.loss_curves(history)
    if not rows:
        st.caption("Curves appear after the first logged step.")
        return
    frame = pd.DataFrame(rows)
    losses = frame[frame.series.str.endswith("loss")]
    scores = frame[~frame.series.str.endswith("loss")]
    left, right = st.columns(2)
    with left:
        st.markdown("**Loss** (training, and validation after each epoch)")
        st.altair_chart(_chart(losses, "loss"))
    with right:
        st.markdown("**Validation metrics** (after each epoch)")
        if scores.empty:
            st.caption("Shown after the first evaluation (end of epoch 1).")
        else:
            st.altair_chart(_chart(scores, "score"))
    note = runs.evaluation_note(history)
    if note:
        st.caption(note)


@st.fragment(run_every=2)
def _live(run_id: int) -> None:
    store = get_store()
    store.reap()
    run = store.get(run_id)
    if run is None:
        return
    if not run.active:
        st.rerun()
    job = runs.job_of(run)
    kind = {
        "train": "Training run",
        "hpo": "Search",
        "continual": "Continual sequence",
        "fewshot": "Few-shot run",
    }[job]
    st.subheader(f"{kind} #{run.id}: {run.name}")
    st.progress(min(max(run.progress, 0.0), 1.0), text=runs.progress_text(run, job))
    stop = {
        "train": "Stop (keep the best checkpoint)",
        "hpo": "Stop (keep the finished trials)",
        "continual": "Stop (keeps nothing)",
        "fewshot": "Stop (keeps nothing)",
    }[job]
    if st.button(stop, key="train_stop", disabled=run.status == "stopping"):
        store.request_stop(run.id)
        st.rerun(scope="fragment")
    if job == "hpo":
        _leaderboard(run)
    elif job == "train":
        _curves(run.history)
    st.caption("Training runs in a separate process: you can leave this page or reload it.")


def _result(run) -> None:
    st.subheader(f"Last run #{run.id}: {run.name}")
    if run.status == "failed":
        st.error(f"The run failed. {run.error}")
        st.info(
            "Check the data and settings, then start again. Runs and models saved before are "
            "untouched."
        )
        log = Path(run.log_path) if run.log_path else None
        if log and log.is_file():
            with st.expander("Worker log (last lines)"):
                st.code("\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        return
    job = runs.job_of(run)
    if run.status == "stopped":
        st.warning(
            run.error
            or (
                "Stopped on request; the best checkpoint so far was evaluated and saved."
                if job == "train"
                else "Stopped on request; the finished trials and the best model so far are kept."
            )
        )
    else:
        st.success(f"Finished in {run.metrics.get('train', {}).get('train_seconds', '?')} s.")
    if job == "hpo":
        _leaderboard(run)
    elif job == "continual":
        _sequence_result(run)
    elif job == "fewshot":
        _fewshot_result(run)
    if job != "train":
        st.caption(
            "See what the method changed against the plain run on the Compare page."
            + (
                f" {'Best model' if job == 'hpo' else 'Model folder'}: "
                f"`{shown_path(run.artifact_path)}`."
                if run.artifact_path
                else ""
            )
        )
        return
    metrics = run.metrics
    table = [
        {
            "split": split,
            **{
                k: round(v, 4)
                for k, v in (metrics.get(split) or {}).items()
                if isinstance(v, float)
            },
        }
        for split in ("validation", "test")
        if metrics.get(split)
    ]
    if table:
        st.dataframe(pd.DataFrame(table), hide_index=True)
    _curves(run.history)
    st.caption(
        f"Model folder: `{shown_path(run.artifact_path)}`. Evaluate it, compare it or "
        "try it from the sidebar."
    )


def _leaderboard(run) -> None:
    summary = runs.hpo_summary(run)
    if not summary:
        st.caption("The leaderboard appears after the first trial.")
        return
    metric = summary["metric"]
    if summary.get("best_value") is not None:
        line = (
            f"Best so far: trial {summary['best_trial']}, validation {metric} "
            f"{summary['best_value']:.4f}"
        )
        if summary.get("baseline_value") is not None:
            line += f" (trial 0, the settings as given: {summary['baseline_value']:.4f})"
        st.markdown(line + ".")
    st.dataframe(pd.DataFrame(runs.leaderboard_table(summary)), hide_index=True)
    st.caption(
        "Validation figures only: the search never scores the test split. * the settings as "
        "given (trial 0)."
        + (
            f" Best config: `{shown_path(summary['best_config'])}`."
            if summary.get("best_config")
            else ""
        )
    )


def _fewshot_result(run) -> None:
    fewshot = run.metrics.get("fewshot") or {}
    if fewshot:
        st.markdown(
            f"**{fewshot.get('method')}** from {fewshot.get('examples')} examples "
            f"({fewshot.get('shots')} per label, sample seed {fewshot.get('seed')}), scored on "
            + ", ".join(f"{n} {split}" for split, n in (fewshot.get("eval_records") or {}).items())
            + " texts."
        )
    rows = [
        {
            "split": split,
            **{k: round(v, 4) for k, v in run.metrics[split].items() if isinstance(v, float)},
        }
        for split in ("validation", "test")
        if run.metrics.get(split)
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def _sequence_result(run) -> None:
    figures = {
        split: run.metrics.get(split) for split in ("validation", "test") if run.metrics.get(split)
    }
    if figures:
        st.dataframe(
            pd.DataFrame([{"split": split, **values} for split, values in figures.items()]),
            hide_index=True,
        )
    table = runs.continual_table(run, "test")
    if table:
        st.markdown("**Test accuracy of each task after each step** (the forgetting matrix)")
        st.dataframe(pd.DataFrame(table), hide_index=True)


def render() -> None:
    st.title("Train")
    store = get_store()
    active = store.active()
    finished = [r for r in store.list() if not r.active]
    if active:
        _live(active[0].id)
    elif finished:
        # The outcome of the last run first: what a person comes back to this page for.
        _result(finished[0])
    with st.expander("New run", expanded=not active):
        if active:
            st.info(
                f"Run #{active[0].id} is training; one run at a time keeps this machine responsive."
            )
        _form(store, busy=bool(active))
