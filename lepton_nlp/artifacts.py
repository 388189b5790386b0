"""A self-describing model folder: run config, labels, adapter or weights, metrics, model card.

Layout::

    lepton_artifact.json   what this is: task, base model, PEFT method, labels (written last)
    config.yaml            the run config that produced it
    labels.json            label names in id order
    metrics.json           validation/test metrics, training figures, the int8 backend check
    quantization.json      int8 activation ranges from calibration (encoder tasks)
    adapter/ or model/     peft adapter (with the task head) or full weights
    base/                  the starting weights the adapter was trained on, when the run
                           started from another run's (``model.init_from``, docs/transfer.md)
    tokenizer/             the tokenizer used in training
    logs/                  TensorBoard event files
    README.md              model card

An artifact is staged in a sibling temporary folder and renamed into place, so a crash
never leaves a half-written folder that loads.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lepton_nlp import __version__
from lepton_nlp.errors import ArtifactError
from lepton_nlp.security import check_artifact_files
from lepton_nlp.tasks.base import TaskSpec

__all__ = [
    "ARTIFACT_FILE",
    "BASE_DIR",
    "RANGES_FILE",
    "ArtifactError",
    "ArtifactInfo",
    "base_weights",
    "check_output_dir",
    "is_artifact",
    "read_artifact",
    "read_ranges",
    "record_backend_check",
    "write_artifact",
]

ARTIFACT_FILE = "lepton_artifact.json"
RANGES_FILE = "quantization.json"
FORMAT = "lepton-nlp-artifact"
FORMAT_VERSION = 1
#: Folder of an artifact's own starting weights (a run with ``model.init_from`` and an adapter).
BASE_DIR = "base"


@dataclass
class ArtifactInfo:
    """What ``lepton_artifact.json`` says about an artifact folder."""

    path: Path
    task: str
    task_version: str
    base_model: str
    peft_method: str
    spec: TaskSpec
    created: str
    lepton_nlp_version: str
    metrics: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def weights_dir(self) -> Path:
        return self.path / ("model" if self.peft_method == "full" else "adapter")

    @property
    def own_base(self) -> Path | None:
        """The artifact's own starting weights (``base/``), under its adapter, or None when
        the adapter sits on the named base model itself."""
        base = self.path / BASE_DIR
        return base if self.peft_method != "full" and base.is_dir() else None


def base_weights(info: ArtifactInfo, base_model: str | None = None) -> str:
    """The folder (or hub id) of the weights an artifact's adapter goes on.

    ``base_model`` (a caller's override) first, then the artifact's own ``base/`` (a run
    that started from another run's weights), else its base model's name, resolved.
    """
    from lepton_nlp.hub import resolve_model

    if base_model:
        return resolve_model(base_model)
    if info.own_base is not None:
        return str(info.own_base)
    return resolve_model(info.base_model)


def is_artifact(path: str | Path) -> bool:
    return (Path(path) / ARTIFACT_FILE).is_file()


def check_output_dir(path: str | Path, overwrite: bool) -> None:
    """Refuse to train into a folder holding an artifact (or anything else) unless told to overwrite."""
    path = Path(path)
    if not path.exists():
        return
    if is_artifact(path):
        if overwrite:
            return
        info = read_artifact(path)
        raise ArtifactError(
            f"{path} already holds an artifact ({info.task}, {info.peft_method} on {info.base_model}, "
            f"created {info.created}). Choose another training.output_dir, or pass "
            "training.overwrite=true to replace it once the new run has finished."
        )
    if path.is_file() or any(path.iterdir()):
        raise ArtifactError(
            f"{path} exists and is not an artifact folder; choose another training.output_dir "
            "(nothing there was touched)."
        )


def read_artifact(path: str | Path) -> ArtifactInfo:
    """Read an artifact's description, after checking that nothing in the folder could run
    code when loaded (:func:`lepton_nlp.security.check_artifact_files`: no pickles, no code,
    no ``auto_map``, no symlink leading out).

    Raises:
        ArtifactError: the folder is missing, incomplete, not an artifact, or holds files
            that could run code.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"Artifact folder {path} does not exist.")
    marker = path / ARTIFACT_FILE
    if not marker.is_file():
        raise ArtifactError(
            f"{path} is not a lepton-nlp artifact (no {ARTIFACT_FILE}); point to a folder written "
            "by `lepton-nlp train`."
        )
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ArtifactError(f"{marker} is not JSON ({error}); the artifact is damaged.") from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{marker} does not hold a JSON object; the artifact is damaged.")
    version = meta.get("format_version", 0)
    if meta.get("format") != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{marker} is format {meta.get('format')}/{meta.get('format_version')}; this lepton-nlp "
            f"({__version__}) reads {FORMAT}/{FORMAT_VERSION}. Upgrade lepton-nlp."
        )
    try:
        info = ArtifactInfo(
            path=path,
            task=str(meta["task"]),
            task_version=str(meta["task_version"]),
            base_model=str(meta["base_model"]),
            peft_method=str(meta["peft_method"]),
            spec=TaskSpec(**meta["spec"]),
            created=str(meta["created"]),
            lepton_nlp_version=str(meta["lepton_nlp_version"]),
            name=str(meta.get("name", path.name)),
        )
    except (KeyError, TypeError) as error:
        raise ArtifactError(
            f"{marker} lacks a field or has one of the wrong kind ({type(error).__name__}: "
            f"{error}); the artifact is damaged or was not written by lepton-nlp."
        ) from None
    # Before anything is loaded from it: an artifact from elsewhere must not run code.
    check_artifact_files(path)
    if not info.weights_dir.is_dir():
        raise ArtifactError(
            f"{path} lacks its weights folder {info.weights_dir.name}/; the artifact is damaged."
        )
    metrics_file = path / "metrics.json"
    if metrics_file.is_file():
        info.metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    return info


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(config: dict, spec: TaskSpec, metrics: dict, data_sizes: dict[str, int]) -> str:
    """A README.md describing the model: data, licence, metrics, intended use, how to load."""
    model, peft, training, data = (
        config["model"],
        config["peft"],
        config["training"],
        config["data"],
    )
    lines = [
        f"# {config.get('name') or 'lepton-nlp model'}",
        "",
        config.get("description") or f"A {config['task']} model fine-tuned with lepton-nlp.",
        "",
        "| | |",
        "|---|---|",
        f"| task | `{config['task']}` |",
        f"| base model | `{model['name']}` |",
        *(
            [
                f"| starting weights | `{model['init_from']}` (model.init_from: transfer from "
                "another run; the adapter sits on them, kept in `base/`) |"
            ]
            if model.get("init_from")
            else []
        ),
        f"| fine-tuning | `{peft['method']}`"
        + (f" (r={peft['r']}, alpha={peft['alpha']})" if "lora" in peft["method"] else "")
        + " |",
        f"| labels | {', '.join(f'`{label}`' for label in spec.labels)} |",
        f"| max length | {spec.max_length} tokens |",
        *(
            ["| task options | " + ", ".join(f"{k}={v}" for k, v in spec.options.items()) + " |"]
            if spec.options
            else []
        ),
        f"| training data | `{data.get('train')}` ({data['format']}), licence: {config.get('license', 'unknown')} |",
        "| examples | "
        + ", ".join(f"{k} {v}" for k, v in data_sizes.items())
        + (
            " (the final fit: training and validation records together, settings chosen on "
            "validation beforehand; no checkpoint chosen, the last step kept)"
            if data.get("train_on_validation")
            else ""
        )
        + " |",
        "",
        "## Metrics",
        "",
    ]
    for split in ("validation", "test"):
        scores = metrics.get(split)
        if scores:
            shown = {k: v for k, v in scores.items() if not k.startswith("f1_")}
            lines += [f"**{split}**: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()), ""]
    train = metrics.get("train", {})
    if train:
        lines += [
            "## Training",
            "",
            ", ".join(f"{k} {_fmt(v)}" for k, v in train.items()),
            "",
            f"Epochs up to {training['epochs']}, batch size {training['batch_size']}, learning rate "
            f"{training['learning_rate']}, scheduler {training['scheduler']}, seed {training['seed']}"
            + (
                f", adversarial training {training['adversarial']} (epsilon "
                f"{training.get('adversarial_epsilon')})."
                if training.get("adversarial", "none") != "none"
                else "."
            ),
            "",
        ]
    lines += backend_section(metrics.get("backends"))
    lines += [
        "## Intended use and limits",
        "",
        "Scores the kind of text it was trained on. Metrics above come from the held-out data "
        "named in `config.yaml`; text from another domain or period will score lower. Check the "
        "training data's licence before commercial use.",
        "",
        "## Use",
        "",
        "```python",
        # Formatted as ruff formats it: a model card committed to a repository passes lint.
        "from lepton_nlp.inference import Predictor",
        "",
        'predictor = Predictor.from_artifact("path/to/this/folder")',
        'predictor.predict(["some text"])',
        "```",
        "",
        "or `lepton-nlp predict path/to/this/folder --input texts.jsonl`.",
        "",
    ]
    return "\n".join(lines)


_BACKENDS_HEADING = "## Inference backends"


def backend_section(check: dict | None) -> list[str]:
    """Model-card lines on the int8 backend check (none when the artifact has no check)."""
    if not check:
        return []

    def scores(name: str) -> str:
        return ", ".join(f"{k} {_fmt(v)}" for k, v in check[name].items())

    verdict = (
        "`backend=auto` (the default) runs int8 on CPUs"
        if check["cpu_default"] == "torch-int8"
        else "`backend=auto` (the default) stays fp32: int8 lost more than "
        f"{check['tolerance_points']} points"
    )
    return [
        _BACKENDS_HEADING,
        "",
        f"int8 against fp32 on {check['examples']} {check['checked_on']} records (int8 "
        f"activation ranges calibrated on {check['calibration_examples']} training records): "
        f"fp32 {scores('torch')}; int8 {scores('torch-int8')}; loss "
        f"{check['int8_loss_points']} points (tolerance {check['tolerance_points']}), "
        f"same answer on {100 * check['label_agreement']:.1f}% of records. {verdict}. "
        f"Items/s during the check ({check['machine']}): fp32 "
        f"{check['items_per_second']['torch']}, int8 {check['items_per_second']['torch-int8']}.",
        "",
    ]


def read_ranges(path: str | Path) -> dict[str, list[float]] | None:
    """The calibrated int8 activation ranges an artifact holds (``quantization.json``), or None."""
    file = Path(path) / RANGES_FILE
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))["ranges"]


def record_metrics(path: str | Path, figures: dict) -> None:
    """Add ``figures`` (top-level keys, e.g. ``validation`` and ``test`` scored after the
    artifact was written) to an artifact's ``metrics.json``, replaced atomically."""
    path = Path(path)
    read_artifact(path)  # refuses anything that is not an artifact
    metrics_file = path / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    metrics.update(figures)
    _replace_file(path, "metrics.json", json.dumps(metrics, indent=2))


def _replace_file(folder: Path, name: str, text: str) -> None:
    """Write ``folder/name`` atomically: a reader sees the old file or the new one."""
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / name)


def record_backend_check(path: str | Path, quantization: dict, check: dict) -> None:
    """Add the int8 calibration and backend check to an artifact (weights are not touched).

    ``quantization.json`` and ``metrics.json`` are replaced atomically; the model card's
    section on backends is rewritten.
    """
    path = Path(path)
    read_artifact(path)  # refuses anything that is not an artifact

    metrics_file = path / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    metrics["backends"] = check
    _replace_file(path, RANGES_FILE, json.dumps(quantization, indent=1))
    _replace_file(path, "metrics.json", json.dumps(metrics, indent=2))
    card = path / "README.md"
    if card.is_file():
        lines = card.read_text(encoding="utf-8").split("\n")
        if _BACKENDS_HEADING in lines:  # drop the earlier check's section
            start = lines.index(_BACKENDS_HEADING)
            end = next(
                (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
            )
            del lines[start:end]
        at = next(
            (i for i, line in enumerate(lines) if line == "## Intended use and limits"), len(lines)
        )
        lines[at:at] = backend_section(check)
        _replace_file(path, "README.md", "\n".join(lines))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(final: Path) -> None:
    """Tidy what a writer killed part-way left beside ``final``.

    Its staging folder (``.NAME.tmp-PID``) goes. An artifact it had moved aside to replace
    (``.NAME.old-PID``) goes back to ``final`` when nothing took its place, else goes too.
    Folders of writers still running are left alone.
    """
    if not final.parent.is_dir():
        return
    for kind in ("tmp", "old"):
        for leftover in sorted(final.parent.glob(f".{final.name}.{kind}-*")):
            pid = leftover.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            if kind == "old" and not final.exists() and is_artifact(leftover):
                os.replace(leftover, final)
            else:
                shutil.rmtree(leftover, ignore_errors=True)


def write_artifact(
    path: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    task: Any,
    config: dict,
    spec: TaskSpec,
    metrics: dict,
    data_sizes: dict[str, int],
    overwrite: bool = False,
    logs_dir: str | Path | None = None,
    extra_files: Iterable[Path] = (),
    base_dir: str | Path | None = None,
) -> Path:
    """Write an artifact atomically: stage it beside ``path``, then rename it into place.

    ``extra_files`` are copied into it as they are (an export keeps ``quantization.json``).
    ``base_dir``: the starting weights an adapter was trained on, when they are not the
    named base model's (``model.init_from``); copied to ``base/``.
    """
    final = Path(path)
    _recover(final)
    check_output_dir(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        method = config["peft"]["method"]
        for adapter_config in getattr(model, "peft_config", {}).values():
            # Name the base model as the config does, not by this machine's resolved folder.
            adapter_config.base_model_name_or_path = config["model"]["name"]
        model.save_pretrained(staging / ("model" if method == "full" else "adapter"))
        # peft writes an empty model-card template naming this machine's paths; ours is README.md.
        (staging / "adapter" / "README.md").unlink(missing_ok=True)
        tokenizer.save_pretrained(staging / "tokenizer")
        (staging / "config.yaml").write_text(
            yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
        )
        (staging / "labels.json").write_text(json.dumps(spec.labels, indent=1), encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        (staging / "README.md").write_text(
            model_card(config, spec, metrics, data_sizes), encoding="utf-8"
        )
        if logs_dir and Path(logs_dir).is_dir():
            shutil.copytree(logs_dir, staging / "logs")
        for file in extra_files:
            shutil.copy2(file, staging / Path(file).name)
        if base_dir is not None and method != "full":
            shutil.copytree(base_dir, staging / BASE_DIR)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": config.get("name") or final.name,
            "task": task.name,
            "task_version": task.version,
            "base_model": config["model"]["name"],
            "peft_method": method,
            "spec": spec.__dict__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "lepton_nlp_version": __version__,
        }
        if config["model"].get("init_from"):
            meta["init_from"] = config["model"]["init_from"]
        # The marker goes last: a folder without it is never taken for an artifact.
        (staging / ARTIFACT_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if final.exists():
            retired = final.parent / f".{final.name}.old-{os.getpid()}"
            os.replace(final, retired)
            try:
                os.replace(staging, final)
            except BaseException:
                os.replace(retired, final)  # put the old artifact back where it was
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
