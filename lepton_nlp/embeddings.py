"""Sentence embeddings: texts -> vectors from a sentence-transformers model, resolved offline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lepton_nlp.hub import resolve_model

__all__ = ["DEFAULT_EMBED_MODEL", "SentenceEmbedder"]

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
