"""The sentence embedder (:mod:`lepton_nlp.embeddings`) behind the predictor interface the API serves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lepton_nlp.embeddings import DEFAULT_EMBED_MODEL, SentenceEmbedder

__all__ = ["DEFAULT_EMBED_MODEL", "EmbedderInfo", "EmbeddingPredictor"]


@dataclass
class EmbedderInfo:
    """What the server needs to know about an embedder (mirrors ``ArtifactInfo``'s fields)."""

    name: str
    base_model: str
    dim: int
    task: str = "embedding"


class EmbeddingPredictor:
    """Sentence embeddings as ``/v1/embed`` serves them: ``predict(texts) -> [{"embedding": [...]}]``.

    The vectors are what the model's own pipeline returns (the packaged MiniLM's ends in a
    normalize step, so they have unit length).
    """

    def __init__(self, embedder: SentenceEmbedder):
        self.embedder = embedder
        model = embedder.model_name
        self.info = EmbedderInfo(name=model.rsplit("/", 1)[-1], base_model=model, dim=embedder.dim)

    def predict(self, inputs: Iterable[Any]) -> list[dict]:
        texts = [item["text"] if isinstance(item, dict) else item for item in inputs]
        vectors = self.embedder.encode(texts, normalize=False)
        return [{"embedding": vector.tolist()} for vector in vectors]
