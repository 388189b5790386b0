"""Tune the FAQ encoder on the FAQ's own questions and answers (``lepton-support tune-faq``).

The bot finds an FAQ entry by embedding the customer's message and searching the entries'
questions and answers (:class:`apps.support.answers.AnswerFinder`). The packaged MiniLM was
trained on general web pairs; this step adapts it to one team's FAQ with sentence-transformers:
``MultipleNegativesRankingLoss`` over the FAQ's own pairs, every other answer of a batch
being a negative (in-batch negatives, Henderson et al. 2017):

- ``question -> answer`` for every entry (identical answer texts are grouped into one);
- with ``pairs="question-answer+question-question"`` also ``question -> question`` for
  questions that share one answer (only FAQs with several questions per answer have any);
- with ``symmetric=True`` the loss also ranks each answer's question above the batch's other
  questions (``directions=("query_to_doc", "doc_to_query")``).

Paraphrases in ``faq.jsonl`` are never trained on: they stay the validation queries that
choose the FAQ threshold (and the tuning settings, ``bench/support_faq_tuning.py``).

The tuned encoder is a folder that loads with ``SentenceTransformer(folder)`` and holds
:data:`TUNING_FILE`: what it was tuned on (file, SHA-256, pairs), the settings, the base model,
the date and the training time. The bot uses it when pointed at it
(``lepton-support chat --faq-encoder DIR``, ``LEPTON_FAQ_ENCODER=DIR`` for the HTTP API and
the page, ``AnswerFinder.from_folder(..., encoder=DIR)``).

    lepton-support tune-faq --faq data/support/faq.jsonl --out runs/faq-encoder
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from apps.support.answers import FaqEntry, load_faq
from lepton_nlp.config import ConfigError, build_dataclass
from lepton_nlp.embeddings import DEFAULT_EMBED_MODEL

__all__ = [
    "PAIR_CHOICES",
    "TUNING_FILE",
    "FaqTuneSettings",
    "TuneResult",
    "read_tuning",
    "training_pairs",
    "tune_faq_encoder",
]

log = logging.getLogger(__name__)

#: What a tuned encoder folder records about how it was made.
TUNING_FILE = "faq_tuning.json"
#: Which pairs the encoder is tuned on (``FaqTuneSettings.pairs``).
PAIR_CHOICES = ("question-answer", "question-answer+question-question")


@dataclass
class FaqTuneSettings:
    """How the FAQ encoder is tuned. The defaults are the settings chosen on the project's
    FAQ paraphrases (``bench/results/support_faq_tuning.json``)."""

    base_model: str = DEFAULT_EMBED_MODEL
    """Encoder to start from: a sentence-transformers name (the packaged MiniLM offline) or
    folder."""
    pairs: str = "question-answer"
    """``question-answer``, or ``question-answer+question-question`` (adds pairs of questions
    that share an answer)."""
    symmetric: bool = True
    """Also rank each answer's question above the batch's other questions."""
    epochs: int = 3
    """Passes over the pairs."""
    learning_rate: float = 1.0e-4
    """Peak learning rate (linear warm-up, then linear decay)."""
    batch_size: int = 32
    """Pairs per step; the batch's other answers are each pair's negatives."""
    warmup_ratio: float = 0.1
    """Share of the steps spent warming the learning rate up."""
    max_seq_length: int = 128
    """Tokens kept of each text while training (answers longer than this are cut for the
    loss only; the saved encoder keeps its base model's length for encoding)."""
    seed: int = 42
    """Seed of the shuffling and dropout."""

    def __post_init__(self) -> None:
        if self.pairs not in PAIR_CHOICES:
            raise ConfigError(
                f"pairs={self.pairs!r} is not valid; choose one of {', '.join(PAIR_CHOICES)}."
            )
        for name in ("epochs", "batch_size", "max_seq_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1.")
        if self.batch_size < 2:
            raise ConfigError(
                f"batch_size={self.batch_size}: in-batch negatives need at least 2 pairs a step."
            )
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be > 0.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio={self.warmup_ratio} must be in [0, 1).")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaqTuneSettings:
        """Settings from a mapping; an unknown key is an error naming the nearest valid one."""
        return build_dataclass(cls, data)


@dataclass
class TuneResult:
    """Where the tuned encoder went and what the tuning did (the :data:`TUNING_FILE` record)."""

    output: Path
    record: dict[str, Any]


def training_pairs(
    entries: Sequence[FaqEntry], pairs: str = "question-answer"
) -> dict[str, list[tuple[str, str]]]:
    """The training pairs of an FAQ, by kind (paraphrases are never used).

    Entries with the same answer text (whitespace stripped) are one answer with several
    questions: each question is paired with it once, and with ``question-question`` the
    questions are paired with each other.

    Returns:
        ``{"question-answer": [(question, answer)...], "question-question": [...]}``.
    """
    if pairs not in PAIR_CHOICES:
        raise ConfigError(f"pairs={pairs!r} is not valid; choose one of {', '.join(PAIR_CHOICES)}.")
    groups: dict[str, list[str]] = {}
    for entry in entries:
        questions = groups.setdefault(entry.answer.strip(), [])
        question = entry.question.strip()
        if question not in questions:
            questions.append(question)
    out: dict[str, list[tuple[str, str]]] = {
        "question-answer": [(q, a) for a, qs in groups.items() for q in qs],
        "question-question": [],
    }
    if pairs == "question-answer+question-question":
        out["question-question"] = [pair for qs in groups.values() for pair in combinations(qs, 2)]
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tune_faq_encoder(
    faq: str | Path | Sequence[FaqEntry],
    output: str | Path,
    settings: FaqTuneSettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    source: str | None = None,
) -> TuneResult:
    """Fine-tune the FAQ encoder on the FAQ's pairs and save it as a self-describing folder.

    Args:
        faq: a ``faq.jsonl`` file (:func:`apps.support.answers.load_faq` checks it) or the
            entries themselves.
        output: the folder to write (replaced only with ``overwrite``).
        settings: how to tune (defaults: :class:`FaqTuneSettings`).
        overwrite: replace ``output`` when it already holds files.
        progress: show the trainer's progress bar (steps, loss).
        source: how to name the training data in the record when ``faq`` is a list of entries.

    Returns:
        The output folder and the record written to :data:`TUNING_FILE`.

    Raises:
        FileNotFoundError: ``faq`` is a path that does not exist.
        ValueError: a bad FAQ line (file and line named), fewer than 2 distinct pairs, or
            ``output`` holds files and ``overwrite`` is off.
    """
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, losses
    from sentence_transformers import __version__ as st_version
    from transformers import __version__ as tf_version

    from lepton_nlp.embeddings import fit_encoder
    from lepton_nlp.hub import resolve_model

    settings = settings or FaqTuneSettings()
    if isinstance(faq, str | Path):
        path = Path(faq)
        if not path.is_file():
            raise FileNotFoundError(
                f"No FAQ file at {path}: give a JSONL file with id, question and answer per line."
            )
        entries = load_faq(path)
        tuned_on: dict[str, Any] = {"faq": str(path), "sha256": _sha256(path)}
    else:
        entries = list(faq)
        tuned_on = {"faq": source or "entries given in code"}
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise ValueError(
            f"{output} already exists and is not empty; choose another --out or pass "
            "--overwrite (overwrite=True) to replace it."
        )
    by_kind = training_pairs(entries, settings.pairs)
    pairs = by_kind["question-answer"] + by_kind["question-question"]
    if len({a for a, _ in pairs}) < 2:
        raise ValueError(
            f"The FAQ gives {len(pairs)} training pair(s); in-batch negatives need at least 2 "
            "entries with different questions and answers."
        )
    tuned_on.update(
        entries=len(entries),
        answers=len({e.answer.strip() for e in entries}),
        pairs={kind: len(v) for kind, v in by_kind.items()},
        not_used="paraphrases (kept as validation queries)",
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    work = staging.with_name(staging.name + "-work")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model = SentenceTransformer(str(resolve_model(settings.base_model)), device="cpu")
        encode_length = model.max_seq_length
        model.max_seq_length = min(
            encode_length or settings.max_seq_length, settings.max_seq_length
        )
        directions = ("query_to_doc", "doc_to_query") if settings.symmetric else ("query_to_doc",)
        loss = losses.MultipleNegativesRankingLoss(model, directions=directions)
        data = Dataset.from_dict(
            {"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]}
        )
        fit = fit_encoder(
            model,
            data,
            loss,
            epochs=settings.epochs,
            batch_size=min(settings.batch_size, len(pairs)),
            learning_rate=settings.learning_rate,
            seed=settings.seed,
            work_dir=work,
            warmup=settings.warmup_ratio,
            no_duplicates=True,  # a text twice in one batch would be its own pair's negative
            progress=progress,
        )
        model.max_seq_length = encode_length
        model.save(str(staging))
        record = {
            "kind": "lepton-support FAQ encoder",
            "base_model": settings.base_model,
            "tuned_on": tuned_on,
            "settings": asdict(settings),
            "loss": "MultipleNegativesRankingLoss (in-batch negatives), directions "
            + "+".join(directions),
            "steps": fit.steps,
            "train_loss": round(fit.train_loss, 5),
            "train_seconds": round(fit.seconds, 1),
            "torch_threads": torch.get_num_threads(),
            "versions": {
                "sentence-transformers": st_version,
                "transformers": tf_version,
                "torch": torch.__version__,
            },
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        (staging / TUNING_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    log.info("FAQ encoder tuned on %d pairs in %.1f s: %s", len(pairs), fit.seconds, output)
    return TuneResult(output=output, record=record)


def read_tuning(folder: str | Path) -> dict[str, Any] | None:
    """The :data:`TUNING_FILE` record of an encoder folder; None for an encoder not tuned here."""
    path = Path(folder) / TUNING_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
