"""What the studio pages compute: data checks and statistics, run configs, evaluation, comparison.

No streamlit here: the same functions serve the pages, the tests and any script.
"""

from __future__ import annotations

import html
import io
import json
import statistics
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from apps.studio.store import Run, RunStore, data_home

__all__ = [
    "BASE_MODELS",
    "FORMATS_BY_TASK",
    "MAX_UPLOAD_MB",
    "TASK_DEFAULTS",
    "DataSummary",
    "EvalReport",
    "StudioError",
    "artifact_zip",
    "build_config",
    "diff_runs",
    "evaluate_artifact",
    "guess_format",
    "highlight_entities",
    "known_data_files",
    "load_data",
    "missing_artifacts",
    "model_catalog",
    "run_records",
    "runs_table",
    "save_upload",
    "start_run",
    "summarize",
]

MAX_UPLOAD_MB = 200
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODELS = ROOT / "data" / "models"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
BASE_MODELS = {
    "classification": [MINILM],
    "ner": [MINILM],
    "qa": [MINILM],
    "relation": [MINILM],
    "summarization": [SMOLLM],
    "translation": [SMOLLM],
}
"""Base models offered per task (all available offline); any local model folder also works."""

FORMATS_BY_TASK = {
    "classification": ["csv", "jsonl"],
    "ner": ["conll", "jsonl"],
    "qa": ["squad", "jsonl"],
    "relation": ["jsonl", "semeval"],
    "summarization": ["jsonl", "csv"],
    "translation": ["parallel", "jsonl", "csv"],
}

TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4, "max_length": 128},
    "ner": {"epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "max_length": 128},
    "qa": {"epochs": 2, "batch_size": 16, "learning_rate": 5e-4, "max_length": 384},
    "relation": {"epochs": 5, "batch_size": 16, "learning_rate": 5e-4, "max_length": 128},
    "summarization": {"epochs": 1, "batch_size": 4, "learning_rate": 2e-4, "max_length": 512},
    "translation": {"epochs": 1, "batch_size": 4, "learning_rate": 2e-4, "max_length": 256},
}
"""Sensible starting points per task (LoRA r=16 on the offline base models)."""

_EXTENSIONS = {
    ".csv": ("classification", "csv"),
    ".tsv": ("classification", "csv"),
    ".jsonl": ("classification", "jsonl"),
    ".conll": ("ner", "conll"),
    ".iob": ("ner", "conll"),
    ".json": ("qa", "squad"),
}


class StudioError(ValueError):
    """Something the user can fix; the message says what happened and what to do."""


SAMPLES = [
    (
        "finance sentiment sample (300 sentences)",
        ROOT / "data/samples/finance_sentiment.csv",
        "classification",
        "csv",
    ),
    ("finance NER sample (120 sentences)", ROOT / "data/samples/finance_ner.conll", "ner", "conll"),
]


def known_data_files() -> list[dict]:
    """The studio's uploads (newest first) and the project's samples, as data choices."""
    choices = []
    uploads = data_home() / "uploads"
    if uploads.is_dir():
        for path in sorted(uploads.iterdir(), key=lambda p: -p.stat().st_mtime):
            if path.is_file():
                task, fmt = guess_format(path.name)
                choices.append(
                    {
                        "label": f"upload: {path.name}",
                        "path": str(path),
                        "task": task,
                        "format": fmt,
                    }
                )
    for label, path, task, fmt in SAMPLES:
        if path.is_file():
            choices.append({"label": label, "path": str(path), "task": task, "format": fmt})
    return choices


def guess_format(filename: str) -> tuple[str, str]:
    """(task, data format) that a file name suggests; the user can change both."""
    suffix = Path(filename).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    return "translation", "parallel"


def save_upload(filename: str, content: bytes, folder: Path | None = None) -> Path:
    """Check an uploaded file and keep it under the studio's uploads folder.

    Raises:
        StudioError: the file is empty, too large, or not text.
    """
    name = Path(filename).name or "upload"
    size_mb = len(content) / 2**20
    if not content.strip():
        raise StudioError(f"{name} is empty. Choose a file with at least a few labelled examples.")
    if size_mb > MAX_UPLOAD_MB:
        raise StudioError(
            f"{name} is {size_mb:.0f} MB; uploads are limited to {MAX_UPLOAD_MB} MB. Put the file "
            "on this machine and enter its folder or path under 'A file or folder on this machine'."
        )
    head = content[:65536]
    if b"\x00" in head:
        raise StudioError(
            f"{name} is not a text file (it holds binary data). Upload CSV, JSONL, CoNLL, "
            "SQuAD JSON or plain text."
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the 64 KB boundary
            raise StudioError(
                f"{name} is not UTF-8 text (byte {error.start}). Save it as UTF-8 and upload again."
            ) from None
    folder = folder or data_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _data_config(fmt: str, columns: dict[str, str] | None = None):
    from lepton_nlp.config import DataConfig

    return DataConfig(format=fmt, **(columns or {}))


def load_data(path: str | Path, task: str, fmt: str, columns: dict[str, str] | None = None):
    """Read a data file (or a parallel-text prefix) into records with the core's readers.

    Raises:
        StudioError: the file cannot be read as ``fmt`` for ``task``; the message says why.
    """
    from lepton_nlp.config import ConfigError
    from lepton_nlp.data import DataError, load_records
    from lepton_nlp.tasks import get_task

    path = Path(path).expanduser()
    if fmt != "parallel" and not path.exists():
        raise StudioError(f"{path} does not exist. Check the path, or upload the file instead.")
    adapter = get_task(task)
    try:
        records = load_records(
            _data_config(fmt, columns),
            path,
            adapter.record_kind,
            getattr(adapter, "read_records", None),
        )
    except (DataError, ConfigError, KeyError, ValueError, OSError) as error:
        raise StudioError(
            f"{path.name} could not be read as {fmt} data for {task}: {error}"
        ) from None
    if not records:
        raise StudioError(f"{path.name} holds no records; check the format and the columns.")
    return records


def _record_text(record: dict) -> str:
    for key in ("text", "source", "question"):
        if key in record:
            return str(record[key])
    if "tokens" in record:
        return " ".join(record["tokens"])
    return json.dumps(record, ensure_ascii=False)[:200]


def _label_of(record: dict) -> str | None:
    if "label" in record:
        label = record["label"]
        return "|".join(map(str, label)) if isinstance(label, list) else str(label)
    return None


@dataclass
class DataSummary:
    """What a data set holds: size, label counts, lengths and a preview."""

    count: int
    label_counts: dict[str, int]
    label_name: str
    lengths: dict[str, float]
    preview: list[dict]
    warnings: list[str] = field(default_factory=list)


def summarize(records: list[dict], preview_rows: int = 20) -> DataSummary:
    """Counts of labels (entity types for NER), length statistics in words, and a preview."""
    labels: Counter = Counter()
    label_name = "label"
    if records and "tags" in records[0]:
        label_name = "entity type"
        for r in records:
            labels.update(t[2:] for t in r["tags"] if t.startswith("B-"))
    elif records and "answers" in records[0]:
        label_name = "answer"
        for r in records:
            has = bool(r["answers"].get("text"))
            labels["has an answer" if has else "no answer"] += 1
    else:
        labels.update(lab for r in records if (lab := _label_of(r)) is not None)
    lengths = [len(_record_text(r).split()) for r in records] or [0]
    preview = []
    for r in records[:preview_rows]:
        row = {k: v for k, v in r.items() if k not in ("tokens", "tags")}
        if "tokens" in r:
            row["text"] = " ".join(r["tokens"])
            row["entities"] = ", ".join(f"{t[2:]}" for t in r["tags"] if t.startswith("B-"))
        preview.append(
            {
                k: v if isinstance(v, str | int | float) else json.dumps(v, ensure_ascii=False)
                for k, v in row.items()
            }
        )
    warnings = []
    if labels and len(labels) == 1 and label_name == "label":
        warnings.append("Only one label: a classifier needs at least two.")
    rare = [k for k, v in labels.items() if v < 2]
    if rare and label_name == "label":
        warnings.append(
            f"{len(rare)} label(s) have a single example ({', '.join(sorted(rare)[:5])}); "
            "they stay in training and cannot be validated."
        )
    return DataSummary(
        count=len(records),
        label_counts=dict(labels.most_common()),
        label_name=label_name,
        lengths={
            "min": min(lengths),
            "mean": round(statistics.fmean(lengths), 1),
            "median": statistics.median(lengths),
            "max": max(lengths),
        },
        preview=preview,
        warnings=warnings,
    )


def build_config(
    *,
    task: str,
    data_path: str | Path,
    fmt: str,
    base_model: str,
    method: str,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    r: int = 16,
    validation_size: float = 0.2,
    test_size: float = 0.0,
    columns: dict[str, str] | None = None,
    name: str = "studio-run",
    output_dir: str | Path = "runs/studio",
    early_stopping: bool = True,
) -> str:
    """A validated run config, as YAML, for the choices made on the Train page.

    Raises:
        StudioError: the choices do not make a valid config (the core's message says why).
    """
    from lepton_nlp.config import ConfigError, config_to_dict, load_config

    tree = {
        "task": task,
        "name": name,
        "data": {
            "format": fmt,
            "train": str(data_path),
            "validation_size": validation_size,
            "test_size": test_size,
            **(columns or {}),
        },
        "model": {"name": base_model, "max_length": int(max_length)},
        "peft": {"method": method, "r": int(r)},
        "training": {
            "output_dir": str(output_dir),
            "epochs": float(epochs),
            "batch_size": int(batch_size),
            "learning_rate": float(learning_rate),
            "progress": False,
            "logging_steps": 1,
            "early_stopping_patience": 3 if validation_size > 0 and early_stopping else None,
            "eval_strategy": "epoch" if validation_size > 0 else "no",
        },
    }
    try:
        config = load_config(tree)
    except (ConfigError, ValueError, KeyError) as error:
        raise StudioError(f"These settings do not make a valid run: {error}") from None
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def start_run(store: RunStore, config_yaml: str, name: str, task: str) -> Run:
    """Record a run and start its worker process.

    Raises:
        StudioError: another run is still training (two at once would share the same CPU
            cores and both crawl); the message names it.
    """
    from apps.studio.worker import spawn_worker

    busy = store.active()
    if busy:
        other = busy[0]
        raise StudioError(
            f"Run #{other.id} '{other.name}' is still training ({other.status}). Wait for it to "
            "finish, or stop it, then start this one."
        )
    run = store.create(name=name, task=task, config_yaml=config_yaml)
    folder = data_home() / "runs" / f"run-{run.id}"
    config = yaml.safe_load(config_yaml)
    config["training"]["output_dir"] = str(folder / "artifact")
    log_path = folder / "worker.log"
    store.update(
        run.id, config_yaml=yaml.safe_dump(config, sort_keys=False), log_path=str(log_path)
    )
    pid = spawn_worker(run.id, log_path)
    return store.update(run.id, pid=pid)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating..."
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def loss_curves(history: list[dict]) -> list[dict]:
    """Rows ``{step, series, value}`` for training loss, validation loss and validation metrics."""
    rows = []
    for entry in history:
        for key, value in entry.items():
            if key == "loss" or (
                key.startswith("eval_") and not key.endswith(("_runtime", "_per_second"))
            ):
                if key in ("eval_epoch", "eval_samples_per_second"):
                    continue
                rows.append({"step": entry.get("step", 0), "series": key, "value": float(value)})
    return rows


def run_records(config_yaml: str, split: str = "test") -> list[dict]:
    """The records of one split of a run, re-created from its config (same seed, same split)."""
    from lepton_nlp.config import load_config
    from lepton_nlp.data import load_splits
    from lepton_nlp.tasks import get_task

    config = load_config(yaml.safe_load(config_yaml))
    task = get_task(config.task)
    return load_splits(config.data, task.record_kind, getattr(task, "read_records", None))[split]


@dataclass
class EvalReport:
    """Metrics of an artifact on labelled records, with what a person needs to read them."""

    metrics: dict[str, float]
    labels: list[str]
    confusion: list[list[int]] | None
    per_label: dict[str, float]
    errors: list[dict]


def evaluate_artifact(predictor: Any, records: list[dict], worst: int = 10) -> EvalReport:
    """Predict ``records`` with ``predictor`` and score them: metrics, confusion, worst errors."""
    if not records:
        raise StudioError(
            "There are no labelled records to evaluate on; choose another split or file."
        )
    predictor.task.check_records(records, predictor.spec, "evaluation")
    predictions = predictor.predict(records)
    metrics = predictor.task.evaluate_predictions(predictions, records, predictor.spec)
    labels = list(predictor.spec.labels)
    per_label = {k[3:]: v for k, v in metrics.items() if k.startswith("f1_")}
    confusion = None
    errors: list[dict] = []
    if predictions and "label" in predictions[0] and "label" in records[0]:
        from sklearn.metrics import confusion_matrix

        refs = [str(r["label"]) for r in records]
        preds = [str(p["label"]) for p in predictions]
        confusion = confusion_matrix(refs, preds, labels=labels).tolist()
        for r, p in zip(records, predictions, strict=True):
            if str(p["label"]) != str(r["label"]):
                errors.append(
                    {
                        "text": r.get("text", ""),
                        "true": str(r["label"]),
                        "predicted": str(p["label"]),
                        "confidence": round(float(p["score"]), 3),
                    }
                )
        errors.sort(key=lambda e: -e["confidence"])
    elif predictions and "tags" in predictions[0]:
        per_label = {
            k.split("_", 1)[1]: v
            for k, v in metrics.items()
            if k.startswith("f1_") or (k.endswith("_f1") and k != "f1")
        } or per_label
        for r, p in zip(records, predictions, strict=True):
            wrong = sum(a != b for a, b in zip(r["tags"], p["tags"], strict=False))
            if wrong:
                text = p.get("text") or " ".join(r["tags"])
                gold = _entities_from_tags(r["tokens"], r["tags"])
                errors.append(
                    {
                        "text": text,
                        "wrong tags": wrong,
                        "gold": ", ".join(f"{e['text']} ({e['label']})" for e in gold),
                        "predicted": ", ".join(
                            f"{e['text']} ({e['label']})" for e in p["entities"]
                        ),
                        "entities": p["entities"],
                    }
                )
        errors.sort(key=lambda e: -e["wrong tags"])
    return EvalReport(
        metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        labels=labels,
        confusion=confusion,
        per_label=per_label,
        errors=errors[:worst],
    )


def _entities_from_tags(tokens: list[str], tags: list[str]) -> list[dict]:
    entities, current = [], None
    for token, tag in zip(tokens, tags, strict=True):
        if tag.startswith("B-") or (
            tag.startswith("I-") and (current is None or current["label"] != tag[2:])
        ):
            current = {"label": tag[2:], "words": [token]}
            entities.append(current)
        elif tag.startswith("I-") and current is not None:
            current["words"].append(token)
        else:
            current = None
    return [{"label": e["label"], "text": " ".join(e["words"])} for e in entities]


_COLOURS = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc"]


_FIXED = {"PER": _COLOURS[0], "ORG": _COLOURS[1], "LOC": _COLOURS[2], "MISC": _COLOURS[4]}


def _entity_colour(label: str) -> str:
    # The same type has the same colour in every sentence (and every session).
    return _FIXED.get(label) or _COLOURS[sum(map(ord, label)) % len(_COLOURS)]


def highlight_entities(text: str, entities: list[dict]) -> str:
    """HTML of ``text`` with each entity span marked and labelled (text is escaped)."""
    colour = {t: _entity_colour(t) for t in {e["label"] for e in entities}}
    out, last = [], 0
    for e in sorted(entities, key=lambda e: e["start"]):
        if e["start"] < last:
            continue
        out.append(html.escape(text[last : e["start"]]))
        out.append(
            f'<mark style="background:{colour[e["label"]]};padding:0 4px;border-radius:4px">'
            f"{html.escape(text[e['start'] : e['end']])} <b style='font-size:0.75em'>{html.escape(e['label'])}</b></mark>"
        )
        last = e["end"]
    out.append(html.escape(text[last:]))
    return "".join(out)


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


_TABLE_CONFIG = {
    "model.name": "base model",
    "peft.method": "method",
    "peft.r": "r",
    "training.epochs": "epochs",
    "training.learning_rate": "learning rate",
    "training.batch_size": "batch",
}


def runs_table(runs: list[Run]) -> list[dict]:
    """One row per run: config, status, metrics, time and trainable parameters."""
    rows = []
    for run in runs:
        config = _flat(yaml.safe_load(run.config_yaml) or {})
        metrics = run.metrics
        row: dict[str, Any] = {
            "id": run.id,
            "name": run.name,
            "task": run.task,
            "status": run.status,
        }
        for split in ("validation", "test"):
            for key, value in (metrics.get(split) or {}).items():
                if key != "examples" and not key.startswith("f1_"):
                    row[f"{split} {key}"] = round(float(value), 4)
        row.update({label: config.get(key) for key, label in _TABLE_CONFIG.items()})
        if "/" in str(row.get("base model")) and Path(str(row["base model"])).is_dir():
            row["base model"] = Path(str(row["base model"])).name  # a local folder: its name
        train = metrics.get("train") or {}
        row["train seconds"] = train.get("train_seconds")
        row["trainable params"] = train.get("trainable_parameters")
        if run.artifact_path and not Path(run.artifact_path, "lepton_artifact.json").is_file():
            row["status"] = f"{run.status} (model folder deleted)"
        row["created"] = run.created.strftime("%Y-%m-%d %H:%M") if run.created else ""
        rows.append(row)
    return rows


def diff_runs(a: Run, b: Run) -> list[dict]:
    """Settings and results that differ between two runs (``name``, ``run A``, ``run B``)."""
    flat_a = _flat(yaml.safe_load(a.config_yaml) or {})
    flat_b = _flat(yaml.safe_load(b.config_yaml) or {})
    flat_a.update(_flat({k: v for k, v in a.metrics.items() if k != "history"}, "metrics."))
    flat_b.update(_flat({k: v for k, v in b.metrics.items() if k != "history"}, "metrics."))
    rows = []
    # Settings first, then results.
    for key in sorted(set(flat_a) | set(flat_b), key=lambda k: (k.startswith("metrics."), k)):
        if key in ("training.output_dir", "name") or key.endswith(
            ("train_seconds", "samples_per_second", "peak_memory_mb")
        ):
            continue
        va, vb = flat_a.get(key), flat_b.get(key)
        if va != vb:
            rows.append(
                {"setting": key, f"#{a.id} {a.name}": _show(va), f"#{b.id} {b.name}": _show(vb)}
            )
    return rows


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def model_catalog(store: RunStore | None = None, shipped: Path = SHIPPED_MODELS) -> list[dict]:
    """Models ready to use: the shipped ones and the studio's finished runs (name, task, metrics)."""
    from lepton_nlp.artifacts import ArtifactError, read_artifact

    folders: list[tuple[str, Path]] = []
    if store is not None:  # the newest studio runs first, then the shipped models
        folders += [
            (f"studio run #{r.id}", Path(r.artifact_path))
            for r in store.list()
            if r.artifact_path and r.status in ("completed", "stopped")
        ]
    if shipped.is_dir():
        folders += [("shipped", p) for p in sorted(shipped.iterdir()) if p.is_dir()]
    models = []
    for source, folder in folders:
        try:
            info = read_artifact(folder)
        except (ArtifactError, OSError, KeyError, ValueError):
            continue
        test = info.metrics.get("test") or info.metrics.get("validation") or {}
        headline = {
            k: round(float(v), 3)
            for k, v in test.items()
            if k in ("accuracy", "macro_f1", "f1", "exact_match", "rougeL", "bleu")
        }
        models.append(
            {
                "name": info.name or folder.name,
                "task": info.task,
                "method": info.peft_method,
                "base model": info.base_model,
                "labels": len(info.spec.labels),
                "metrics": ", ".join(f"{k} {v}" for k, v in headline.items()) or "-",
                "source": source,
                "path": str(folder),
            }
        )
    return models


def missing_artifacts(store: RunStore) -> list[Run]:
    """Finished runs whose model folder has been deleted or moved since."""
    return [
        r
        for r in store.list()
        if r.status in ("completed", "stopped")
        and r.artifact_path
        and not Path(r.artifact_path, "lepton_artifact.json").is_file()
    ]


def artifact_zip(path: str | Path) -> bytes:
    """The artifact folder as a zip (for download), without TensorBoard logs."""
    from lepton_nlp.artifacts import read_artifact

    info = read_artifact(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(info.path.rglob("*")):
            if file.is_file() and "logs" not in file.relative_to(info.path).parts:
                archive.write(file, Path(info.path.name) / file.relative_to(info.path))
    return buffer.getvalue()
