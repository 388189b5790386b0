"""Cross-domain transfer: start a run from another run's weights, or adapt an encoder to
unlabelled target-domain text first.

Two steps, each usable alone (docs/transfer.md):

- intermediate-task transfer (``model.init_from``): a run starts from a trained
  artifact's encoder instead of the bare base model. A LoRA-family adapter is merged into
  the encoder first; the artifact's task head comes along when the new run has the same
  task, labels and task options, else the new run gets a new head. :func:`prepare_init`
  writes those starting weights to a folder the run loads like any base model, and the
  new artifact keeps them (``base/``) so it stays self-contained.
- unsupervised domain adaptation (``lepton-nlp adapt``): continued training of the encoder
  on unlabelled target-domain text. all-MiniLM-L6-v2 ships without a masked-LM head, so the
  methods are ones that need none, through sentence-transformers (:func:`adapt_encoder`):
  TSDAE (Wang et al. 2021), a denoising auto-encoder whose decoder, tied to the encoder,
  rebuilds each text from the pooled vector of the text with most words deleted; and
  unsupervised SimCSE (Gao et al. 2021), each text its own positive under two dropout masks. The folder it writes is a sentence-transformers model and a
  transformers encoder, usable as ``model.init_from``.

    lepton-nlp adapt configs/transfer_bank_faqs.yaml --unlabelled questions.txt
    lepton-nlp train configs/transfer_bank_faqs.yaml model.init_from=runs/bank-faqs-adapted
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lepton_nlp.config import ENCODER_TASKS, check_init_task
from lepton_nlp.errors import ArtifactError, ConfigError, DataError

__all__ = [
    "ENCODER_TASKS",
    "INIT_FILE",
    "AdaptResult",
    "InitSource",
    "adapt_encoder",
    "check_architecture",
    "check_init_task",
    "delete_words",
    "init_dir",
    "prepare_init",
    "read_unlabelled",
]

log = logging.getLogger(__name__)

#: Tasks whose model is an encoder with a task head: the ones ``model.init_from`` serves.
#: What the starting-weights folder records about where its weights came from.
INIT_FILE = "init.json"
#: Config fields that make two checkpoints the same architecture (vocabulary aside: a
#: relation model's tokenizer adds its marker tokens).
_ARCHITECTURE_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def init_dir(config: Any) -> Path:
    """Where a run with ``model.init_from`` writes its starting weights (beside the artifact;
    one folder per process of a distributed run)."""
    out = Path(config.training.output_dir)
    rank = int(os.environ.get("RANK", "0"))
    return out.with_name(out.name + ".init" + (f"-{rank}" if rank else ""))


@dataclass
class InitSource:
    """The starting weights of a run with ``model.init_from``."""

    path: Path
    """Folder the run loads as its base model (encoder, with the head when kept, and tokenizer)."""
    source: str
    """``model.init_from`` as the config gives it."""
    kind: str
    """artifact | encoder."""
    kept_head: bool
    """The source's task head came along (same task, labels and task options)."""
    details: dict[str, Any]
    """What ``init.json`` records: the source's name, task, labels, PEFT method."""


def _config_of(folder: str | Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(folder))


def _describe(config: Any) -> str:
    return ", ".join(f"{k} {getattr(config, k, None)}" for k in _ARCHITECTURE_KEYS)


def check_architecture(source: str | Path, model_name: str, what: str) -> None:
    """Refuse starting weights whose architecture is not ``model.name``'s.

    Args:
        source: folder of the starting weights' config.
        model_name: ``model.name`` of the run.
        what: how the message names the source.

    Raises:
        ConfigError: the two configs differ in type or size.
    """
    from lepton_nlp.hub import resolve_model

    mine, theirs = _config_of(resolve_model(model_name)), _config_of(source)
    different = [
        k for k in _ARCHITECTURE_KEYS if getattr(mine, k, None) != getattr(theirs, k, None)
    ]
    if different:
        raise ConfigError(
            f"model.init_from={what} is a different base architecture from model.name="
            f"{model_name}: {_describe(theirs)} against {_describe(mine)} (differing: "
            f"{', '.join(different)}). Set model.name to the model the source was trained on, "
            "or start from an artifact of this model."
        )


def _source_path(init_from: str) -> Path:
    from lepton_nlp.data.readers import expand_path

    path = Path(expand_path(init_from)).expanduser()
    if not path.exists():
        raise ArtifactError(
            f"model.init_from={init_from}: no such folder. Give the folder of an artifact "
            "(written by `lepton-nlp train`) or of an encoder (written by `lepton-nlp adapt`)."
        )
    if not path.is_dir():
        raise ArtifactError(
            f"model.init_from={init_from} is a file; give an artifact or encoder folder."
        )
    return path


def prepare_init(
    config: Any, task: Any, spec: Any, dest: str | Path | None = None, keep_head: bool = True
) -> InitSource:
    """Write the starting weights of a run with ``model.init_from`` to ``dest``.

    An artifact gives its encoder (its LoRA-family adapter merged in), and its task head
    when the run's task, labels and task options are the artifact's; an encoder folder
    (``lepton-nlp adapt``, or any transformers checkpoint of the same architecture) gives
    its encoder.

    Args:
        config: the run config (``model.init_from`` set).
        task: the run's task.
        spec: the run's task spec (its labels decide whether the head is kept).
        dest: the folder to write (default :func:`init_dir`); replaced if present.
        keep_head: False writes the encoder alone, whatever the labels.

    Raises:
        ArtifactError: the folder is missing, damaged, or holds an adapter that cannot be
            merged (soft prompts).
        ConfigError: a different base architecture, or a source task without an encoder.
    """
    from lepton_nlp.artifacts import is_artifact

    init_from = config.model.init_from
    check_init_task(config.task, task)
    source = _source_path(init_from)
    dest = Path(dest) if dest is not None else init_dir(config)
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_artifact(source):
        init = _from_artifact(source, config, task, spec, dest, keep_head)
    elif (source / "config.json").is_file():
        init = _from_encoder(source, config, dest)
    else:
        raise ArtifactError(
            f"model.init_from={init_from} is neither a lepton-nlp artifact (no "
            "lepton_artifact.json) nor a model folder (no config.json). Give the folder of an "
            "artifact (written by `lepton-nlp train`) or of an encoder (`lepton-nlp adapt`)."
        )
    (dest / INIT_FILE).write_text(
        json.dumps(
            {
                "init_from": init_from,
                "kind": init.kind,
                "kept_head": init.kept_head,
                **init.details,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return init


def _from_artifact(
    source: Path, config: Any, task: Any, spec: Any, dest: Path, keep_head: bool
) -> InitSource:
    from transformers import AutoTokenizer

    from lepton_nlp.artifacts import base_weights, read_artifact
    from lepton_nlp.peft_methods import METHODS
    from lepton_nlp.tasks import get_task

    info = read_artifact(source)
    if info.task not in ENCODER_TASKS:
        raise ConfigError(
            f"model.init_from={config.model.init_from} is a {info.task} artifact, whose model "
            f"has no encoder with a task head to start from; give an artifact of "
            f"{', '.join(ENCODER_TASKS)}."
        )
    if info.base_model != config.model.name:
        base_folder = info.weights_dir if info.peft_method == "full" else base_weights(info)
        check_architecture(base_folder, config.model.name, config.model.init_from)
    source_task = get_task(info.task_version)
    if info.peft_method == "full":
        model = source_task.load_model(str(info.weights_dir), info.spec)
    else:
        if not METHODS[info.peft_method].mergeable:
            raise ArtifactError(
                f"model.init_from={config.model.init_from} holds a {info.peft_method} adapter, "
                "which adds virtual tokens and cannot be merged into the encoder's weights; "
                "start from a LoRA-family or fully fine-tuned artifact."
            )
        from peft import PeftModel

        base = source_task.load_model(base_weights(info), info.spec)
        model = PeftModel.from_pretrained(base, str(info.weights_dir)).merge_and_unload()
    kept_head = (
        keep_head
        and info.task == task.name
        and list(info.spec.labels) == list(spec.labels)
        and bool(info.spec.multi_label) == bool(spec.multi_label)
        and info.spec.options == spec.options
    )
    if kept_head:
        model.save_pretrained(dest)
    else:
        encoder = getattr(model, model.base_model_prefix, None)
        if encoder is None:
            raise ConfigError(
                f"{type(model).__name__} in {source} has no encoder attribute "
                f"{model.base_model_prefix!r} to start from."
            )
        encoder.save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(info.path / "tokenizer")).save_pretrained(dest)
    log.info(
        "Starting from %s (%s, %s%s)",
        source,
        info.task,
        info.peft_method,
        ", its head kept" if kept_head else ", a new head",
    )
    return InitSource(
        path=dest,
        source=config.model.init_from,
        kind="artifact",
        kept_head=kept_head,
        details={
            "name": info.name,
            "task": info.task,
            "peft_method": info.peft_method,
            "base_model": info.base_model,
            "labels": len(info.spec.labels),
        },
    )


def _from_encoder(source: Path, config: Any, dest: Path) -> InitSource:
    from transformers import AutoModel, AutoTokenizer

    check_architecture(source, config.model.name, config.model.init_from)
    # The bare encoder only: a checkpoint with a head of another label set would not load
    # into the run's model class.
    AutoModel.from_pretrained(str(source)).save_pretrained(dest)
    has_tokenizer = any(
        (source / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")
    )
    if has_tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    else:
        from lepton_nlp.hub import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.model.name))
    tokenizer.save_pretrained(dest)
    details: dict[str, Any] = {"base_model": config.model.name}
    adapted = source / "adapt.json"
    if adapted.is_file():
        details["adapt"] = json.loads(adapted.read_text(encoding="utf-8"))
    return InitSource(
        path=dest, source=config.model.init_from, kind="encoder", kept_head=False, details=details
    )


# --- unsupervised adaptation ------------------------------------------------------------------


def read_unlabelled(path: str | Path, text_column: str = "text") -> list[str]:
    """Texts of a .txt (one a line), .csv or .jsonl file, blank ones and repeats dropped.

    Raises:
        FileNotFoundError: no such file.
        DataError: the file holds no text, or lacks ``text_column``.
    """
    from lepton_nlp.data.readers import expand_path, read_csv, read_jsonl, read_text

    path = Path(expand_path(str(path)))
    if not path.is_file():
        raise FileNotFoundError(f"Unlabelled text file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        texts = [r["text"] for r in read_csv(path, text_column, None)]
    elif suffix in (".jsonl", ".ndjson"):
        texts = [r["text"] for r in read_jsonl(path, text_column, None)]
    else:
        texts = read_text(path, "utf-8").splitlines()
    seen: dict[str, None] = {}
    for text in texts:
        text = str(text).strip()
        if text:
            seen.setdefault(text, None)
    if len(seen) < 2:
        raise DataError(
            f"{path} holds {len(seen)} distinct text(s); adaptation needs many (hundreds or "
            "more) texts of the target domain, one a line (.txt) or in a text column (.csv, "
            ".jsonl)."
        )
    return list(seen)


def delete_words(text: str, ratio: float, rng: random.Random) -> str:
    """TSDAE's noise: ``text`` with each word deleted with probability ``ratio`` (one word
    kept at least)."""
    words = text.split()
    if not words:
        return text
    kept = [w for w in words if rng.random() >= ratio]
    return " ".join(kept) if kept else rng.choice(words)


@dataclass
class AdaptResult:
    """Where the adapted encoder went and what the adaptation did."""

    output: Path
    summary: dict[str, Any]


def adapt_encoder(config: Any, unlabelled: str | Path | None = None) -> AdaptResult:
    """Continue training the run's encoder on unlabelled texts (``adapt.method``).

    Starts from ``model.init_from`` when the config sets it (transfer, then adapt), else
    from ``model.name``. Writes a folder that loads as a sentence-transformers model and as
    a transformers encoder (``model.init_from`` of a later run), with ``adapt.json``.

    Args:
        config: the run config; its ``adapt`` section (defaults when absent) says how.
        unlabelled: the texts' file (overrides ``adapt.unlabelled``).

    Raises:
        ConfigError: no text file given, or ``adapt.output_dir`` holds something and
            ``adapt.overwrite`` is off.
    """
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, losses, models

    from lepton_nlp.config import AdaptConfig
    from lepton_nlp.embeddings import fit_encoder
    from lepton_nlp.hub import resolve_model
    from lepton_nlp.tasks import get_task

    settings = config.adapt or AdaptConfig()
    file = unlabelled or settings.unlabelled
    if not file:
        raise ConfigError(
            "Adaptation needs unlabelled target-domain text: pass --unlabelled FILE or set "
            "adapt.unlabelled."
        )
    output = Path(settings.output_dir or f"{config.training.output_dir}-adapted")
    if output.exists() and any(output.iterdir()) and not settings.overwrite:
        raise ConfigError(
            f"{output} already holds files; choose another adapt.output_dir or pass "
            "adapt.overwrite=true to replace it."
        )
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    texts = read_unlabelled(file, settings.text_column)
    if settings.max_samples and len(texts) > settings.max_samples:
        texts = random.Random(settings.seed).sample(texts, settings.max_samples)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    start_dir = staging.with_name(staging.name + "-init")
    try:
        if config.model.init_from:
            # Transfer, then adapt: the source's encoder (its adapter merged in), no head.
            task = get_task(config.task)
            start = str(prepare_init(config, task, None, start_dir, keep_head=False).path)
        else:
            start = resolve_model(config.model.name)
        transformer = models.Transformer(start, max_seq_length=config.model.max_length)
        pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
        model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
        if settings.method == "tsdae":
            # The decoder is built from the encoder's own folder and shares its weights.
            model.transformers_model.config._name_or_path = start
            loss = losses.DenoisingAutoEncoderLoss(model, tie_encoder_decoder=True)
            rng = random.Random(settings.seed)
            noisy = [delete_words(text, settings.deletion_ratio, rng) for text in texts]
            data = Dataset.from_dict({"noisy": noisy, "text": texts})
        else:
            loss = losses.MultipleNegativesRankingLoss(model, scale=1.0 / settings.temperature)
            # Unsupervised SimCSE: a text and itself, encoded under two dropout masks, are
            # the positive pair; the other texts of the batch are the negatives.
            data = Dataset.from_dict({"anchor": texts, "positive": texts})
        fit = fit_encoder(
            model,
            data,
            loss,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            seed=settings.seed,
            work_dir=staging.with_name(staging.name + "-work"),
            no_duplicates=settings.method == "simcse",
            progress=config.training.progress,
        )
        model.save(str(staging))
        summary = {
            "method": settings.method,
            "started_from": config.model.init_from or config.model.name,
            "base_model": config.model.name,
            "unlabelled": str(file),
            "texts": len(texts),
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            **(
                {"temperature": settings.temperature}
                if settings.method == "simcse"
                else {"deletion_ratio": settings.deletion_ratio}
            ),
            "seed": settings.seed,
            "steps": fit.steps,
            "train_loss": round(fit.train_loss, 5),
            "train_seconds": round(fit.seconds, 1),
        }
        (staging / "adapt.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(staging.with_name(staging.name + "-work"), ignore_errors=True)
        shutil.rmtree(start_dir, ignore_errors=True)
    return AdaptResult(output=output, summary=summary)
