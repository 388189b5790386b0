"""Sentence embeddings: texts -> vectors from a sentence-transformers model, resolved offline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lepton_nlp.hub import resolve_model

__all__ = ["DEFAULT_EMBED_MODEL", "EncoderFit", "SentenceEmbedder", "fit_encoder"]

DEFAULT_EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class SentenceEmbedder:
    """Batched sentence embeddings, for serving (``/v1/embed``), retrieval and recommendation.

    Wraps ``sentence_transformers.SentenceTransformer`` over the folder that
    :func:`lepton_nlp.hub.resolve_model` finds for ``model`` (the packaged MiniLM offline, a
    local folder, or a hub id); the model's ``modules.json`` pipeline (transformer, pooling,
    and for MiniLM a final normalize) does the work.

    Args:
        model: a model name (resolved as a run config's ``model.name``) or folder.
        device: ``cpu`` (the default), ``cuda``...
        batch_size: texts encoded per forward pass.

    Raises:
        ModelNotFoundError: the name is neither a folder, a packaged model, nor on the hub.
    """

    def __init__(
        self, model: str = DEFAULT_EMBED_MODEL, device: str | None = None, batch_size: int = 64
    ):
        from lepton_nlp.hf_imports import import_hf

        import_hf()
        from sentence_transformers import SentenceTransformer

        self.model_name = model
        self.encoder = SentenceTransformer(str(resolve_model(model)), device=device or "cpu")
        self.batch_size = batch_size
        self.dim = int(self.encoder.get_embedding_dimension())

    def encode(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """Embed ``texts`` in batches of ``batch_size``.

        Args:
            texts: the texts, in order.
            normalize: scale every vector to unit length (dot product = cosine similarity);
                False keeps what the model's own pipeline returns.

        Returns:
            A float32 array of shape ``(len(texts), dim)``.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
            normalize_embeddings=normalize,
        )


@dataclass
class EncoderFit:
    """What :func:`fit_encoder` did."""

    steps: int
    train_loss: float
    seconds: float


def fit_encoder(
    model: Any,
    data: Any,
    loss: Any,
    *,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    seed: int,
    work_dir: str | Path,
    warmup: float = 0.1,
    no_duplicates: bool = False,
    progress: bool = False,
    logging_steps: int = 10,
) -> EncoderFit:
    """Fine-tune a ``SentenceTransformer`` in place with the sentence-transformers Trainer:
    the one way the project trains a sentence encoder (domain adaptation, SetFit, the support
    bot's FAQ encoder).

    Args:
        model: the ``SentenceTransformer``.
        data: a ``datasets.Dataset`` with the columns ``loss`` reads, in its order.
        loss: a ``sentence_transformers.losses`` loss over ``model``.
        epochs, batch_size, learning_rate, seed: the Trainer's.
        work_dir: the Trainer's scratch folder (nothing is saved there: no checkpoints).
        warmup: warm-up steps, as a share of all steps when below 1.
        no_duplicates: batches never hold one text twice (a text twice in a batch would be
            its own pair's in-batch negative).
        progress: the Trainer's progress bar; without it its logs are not printed either
            (stdout belongs to the caller, e.g. a command's JSON).
        logging_steps: how often the Trainer logs the loss.
    """
    import torch
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=warmup,
        seed=seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES if no_duplicates else BatchSamplers.BATCH_SAMPLER,
        save_strategy="no",
        report_to="none",
        logging_steps=logging_steps,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    trainer.remove_callback(PrinterCallback)
    began = time.perf_counter()
    result = trainer.train()
    return EncoderFit(
        steps=int(trainer.state.global_step),
        train_loss=float(result.training_loss),
        seconds=time.perf_counter() - began,
    )
