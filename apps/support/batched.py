"""Concurrent turns share model calls: the bot's understanding and FAQ embedder, micro-batched.

The HTTP API answers each message on a thread of its own. Alone, every turn would run the
intent model, spaCy and the FAQ embedder for its one message, all turns at once on the same
cores (each model call starting its own threads). Behind the core's
:class:`lepton_nlp.serve.batching.BlockingBatcher`, the messages that arrive together go
through :meth:`SupportNLU.understand_many` and one ``encode`` call instead: one forward pass
of each model for the lot, each model on one thread of its own, never two calls at once.
The results are those of the unbatched objects (the batch outputs agree to float rounding;
``tests/unit/test_support_batched.py`` checks it).

``build_support_bot(batching=True)`` (what the HTTP API builds) uses them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lepton_nlp.serve.batching import BlockingBatcher

__all__ = [
    "MAX_BATCH",
    "MAX_WAIT_MS",
    "BatchedEmbedder",
    "BatchedUnderstanding",
    "batched_parts",
    "intent_serving_options",
]

#: Most messages in one batch.
MAX_BATCH = 16
#: Longest a message waits for others before its batch runs (under load none waits: the
#: messages that arrive while a batch runs form the next one).
MAX_WAIT_MS = 2.0


def intent_serving_options() -> dict[str, Any]:
    """``Predictor.from_artifact`` options for the intent model of a batching bot.

    On a CPU: ONNX Runtime in fp32 (the same predictions as eager torch, to float rounding,
    in about half the CPU time for the few short messages of a turn, where eager torch
    spends most of its time in Python between operators), and half of torch's threads for
    each of the bot's two model threads (understanding, FAQ embedder), so that the two, and
    the turns' own work, run side by side instead of contending for the same cores
    (``threads`` sets torch's count too). On a GPU: the defaults.
    """
    import torch

    if torch.cuda.is_available():
        return {}
    return {"backend": "onnx", "threads": max(1, torch.get_num_threads() // 2)}


class BatchedUnderstanding:
    """A :class:`~apps.support.understanding.SupportNLU` whose ``understand`` calls, from any
    threads, are answered by shared ``understand_many`` calls.

    Anything else (``predictor``, ``calibration``, ``labels``...) is the wrapped NLU's.

    Args:
        nlu: the ``SupportNLU`` (anything with ``understand_many(texts, now)``).
        max_batch_size: most messages per call.
        max_wait_ms: longest the first message of a batch waits for others.
    """

    def __init__(self, nlu: Any, max_batch_size: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS):
        self.nlu = nlu
        self._batcher = BlockingBatcher(
            "support-nlu", self._understand, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms
        )

    def __getattr__(self, name: str) -> Any:
        if name == "nlu":  # not set yet (unpickling, or a failed __init__)
            raise AttributeError(name)
        return getattr(self.nlu, name)

    def _understand(self, items: list[tuple[str, dt.date | dt.datetime | None]]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        groups: dict[Any, list[int]] = {}
        for i, (_, now) in enumerate(items):
            groups.setdefault(now, []).append(i)
        for now, indices in groups.items():
            found = self.nlu.understand_many([items[i][0] for i in indices], now)
            for i, understanding in zip(indices, found, strict=True):
                out[i] = understanding
        return out

    def understand(self, text: str, now: dt.date | dt.datetime | None = None) -> Any:
        """``SupportNLU.understand``, batched with the other threads' messages.

        Raises:
            ValueError: the message is empty, only whitespace or not a string.
        """
        return self._batcher.predict([(text, now)])[0]

    def understand_many(
        self, texts: list[str], now: dt.date | dt.datetime | None = None
    ) -> list[Any]:
        """``SupportNLU.understand_many``, batched with the other threads' messages."""
        return self._batcher.predict([(text, now) for text in texts])

    def close(self) -> None:
        """Stop the batcher's threads (a later call starts them again)."""
        self._batcher.close()


class BatchedEmbedder:
    """A sentence embedder (``lepton_nlp.embeddings.SentenceEmbedder``) whose ``encode``
    calls, from any threads, are answered by shared ``encode`` calls.

    ``model_name`` and ``dim`` are the wrapped embedder's.

    Args:
        embedder: anything with ``encode(texts, normalize=True) -> array``.
        max_batch_size: most texts per call (a larger request runs alone).
        max_wait_ms: longest the first text of a batch waits for others.
    """

    def __init__(
        self, embedder: Any, max_batch_size: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS
    ):
        self.embedder = embedder
        self.model_name = getattr(embedder, "model_name", type(embedder).__name__)
        self.dim = getattr(embedder, "dim", None)
        self._batcher = BlockingBatcher(
            "support-embed", self._encode, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms
        )

    def _encode(self, items: list[tuple[str, bool]]) -> list[np.ndarray]:
        out: list[Any] = [None] * len(items)
        for normalize in (True, False):
            indices = [i for i, (_, n) in enumerate(items) if n is normalize]
            if indices:
                vectors = self.embedder.encode([items[i][0] for i in indices], normalize=normalize)
                for i, vector in zip(indices, np.asarray(vectors), strict=True):
                    out[i] = vector
        return out

    def encode(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors, as the wrapped embedder gives them."""
        texts = list(texts)
        if not texts:
            return np.asarray(self.embedder.encode([], normalize=normalize))
        return np.stack(self._batcher.predict([(t, bool(normalize)) for t in texts]))

    def close(self) -> None:
        """Stop the batcher's threads (a later call starts them again)."""
        self._batcher.close()


def batched_parts(
    intent_model: str | Path, embedder: Any = None
) -> tuple[BatchedUnderstanding, BatchedEmbedder]:
    """The understanding (``SupportNLU`` on ``intent_model`` with
    :func:`intent_serving_options`) and the FAQ embedder (``embedder``, default the packaged
    MiniLM) of a bot serving concurrent turns, each behind its batcher. Sets faiss's
    threads to one for the whole process (searches run side by side instead)."""
    from apps.support.understanding import SupportNLU

    nlu = SupportNLU.from_artifact(intent_model, **intent_serving_options())
    # The FAQ search runs on the turns' own threads, several at once; faiss's OpenMP team
    # over every core for one query against a few hundred vectors cost 3x the CPU time of
    # one thread here, and tens of milliseconds a search once the cores were busy.
    import faiss

    faiss.omp_set_num_threads(1)
    if embedder is None:
        from lepton_nlp.embeddings import SentenceEmbedder

        embedder = SentenceEmbedder()
    # The models are hundreds of thousands of long-lived Python objects: out of the
    # collector's way, a full collection no longer stops every turn for a second.
    import gc

    gc.collect()
    gc.freeze()
    return BatchedUnderstanding(nlu), BatchedEmbedder(embedder)
