"""The bot as the HTTP API serves it (batched, ONNX intent) answers as the plain bot does."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apps.support.dialogue import INTENT_MODEL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

MESSAGES = [
    "My card was stolen yesterday in London",
    "How long does it take for a card to be delivered?",
    "I want a refund of £25 from Amazon",
    "What's the weather going to be like in Paris tomorrow?",
    "Why is my transfer still pending?",
    "the card ending 4821",
]


def test_served_understanding_and_answers_equal_the_plain_ones():
    import faiss
    import torch

    from apps.support.answers import AnswerFinder
    from apps.support.batched import batched_parts
    from apps.support.understanding import SupportNLU
    from lepton_nlp.embeddings import SentenceEmbedder

    threads, faiss_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    plain = SupportNLU.from_artifact(ROOT / INTENT_MODEL, backend="torch")
    served, embedder = batched_parts(ROOT / INTENT_MODEL)
    try:
        if not torch.cuda.is_available():
            assert served.predictor.backend == "onnx"
        with ThreadPoolExecutor(len(MESSAGES)) as pool:
            got = list(pool.map(served.understand, MESSAGES))
        for text, understanding in zip(MESSAGES, got, strict=True):
            alone = plain.understand(text)
            assert understanding.intent == alone.intent, text
            assert understanding.confidence == pytest.approx(alone.confidence, abs=1e-4)
            assert (understanding.out_of_scope, understanding.ambiguous) == (
                alone.out_of_scope,
                alone.ambiguous,
            )
            assert [e.to_dict() for e in understanding.entities] == [
                e.to_dict() for e in alone.entities
            ]
        folder = ROOT / "data" / "support"
        reference = AnswerFinder.from_folder(folder, policy_qa=None, embedder=SentenceEmbedder())
        batched = AnswerFinder.from_folder(folder, policy_qa=None, embedder=embedder)
        with ThreadPoolExecutor(len(MESSAGES)) as pool:
            answers = list(pool.map(batched.find, MESSAGES))
        for text, answer in zip(MESSAGES, answers, strict=True):
            expected = reference.find(text)
            assert (answer and answer.source) == (expected and expected.source), text
    finally:
        served.close()
        embedder.close()
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(faiss_threads)
