"""Sentence embeddings from a packaged sentence-transformers model, behind the predictor interface."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_EMBED_MODEL", "SentenceEmbedder"]

DEFAULT_EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class EmbedderInfo:
    """What the server needs to know about an embedder (mirrors ``ArtifactInfo``'s fields)."""

    name: str
    base_model: str
    dim: int
    task: str = "embedding"


class SentenceEmbedder:
    """Mean-pooled, unit-length sentence embeddings: ``predict(texts) -> [{"embedding": [...]}]``.

    Wraps ``sentence_transformers.SentenceTransformer`` over the model folder that
    :func:`lepton_nlp.hub.resolve_model` finds (the packaged MiniLM offline); its
    ``modules.json`` pipeline (transformer, mean pooling, normalize) does the work.
    """

    def __init__(
        self, model: str = DEFAULT_EMBED_MODEL, device: str | None = None, batch_size: int = 64
    ):
        from sentence_transformers import SentenceTransformer

        from lepton_nlp.hub import resolve_model

        self.encoder = SentenceTransformer(str(resolve_model(model)), device=device or "cpu")
        self.batch_size = batch_size
        dim = self.encoder.get_sentence_embedding_dimension()
        self.info = EmbedderInfo(name=model.rsplit("/", 1)[-1], base_model=model, dim=int(dim))

    def predict(self, inputs: Iterable[Any]) -> list[dict]:
        texts = [item["text"] if isinstance(item, dict) else item for item in inputs]
        vectors = self.encoder.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return [{"embedding": vector.tolist()} for vector in vectors]
