"""Concurrent turns share model calls (apps/support/batched.py): same results as unbatched.

A tiny classification artifact (conftest's ``tiny_artifact``) and a tiny BERT as sentence
embedder (conftest's ``tiny_model``, mean pooling); nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from apps.support.batched import BatchedEmbedder, BatchedUnderstanding
from apps.support.dialogue import SupportBot

TEXTS = [
    "the kettle boils quickly",
    "sound cuts out whenever I turn my head",
    "my card ending 4821 was charged £20 yesterday",
    "ok",
    "the battery died after two days and I want a refund",
    "shipping took three weeks",
]


def _together(n: int, fn) -> list:
    """``fn(k)`` for k in range(n), started at once on n threads; results or exceptions."""
    start = threading.Barrier(n)

    def call(k: int):
        start.wait()
        try:
            return fn(k)
        except Exception as error:  # the caller's own error is the result under test
            return error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


@pytest.fixture(scope="module")
def tiny_nlu(tiny_artifact):
    from apps.support.sentiment import LexiconSentiment
    from apps.support.understanding import SupportNLU

    pytest.importorskip("vaderSentiment")
    return SupportNLU.from_artifact(
        tiny_artifact, spacy_model=None, sentiment=LexiconSentiment(), backend="torch"
    )


class Counting:
    """Wraps an object's method to count its calls and the items they carried."""

    def __init__(self, inner, method: str):
        self.inner, self.sizes = inner, []
        self._method = getattr(inner, method)
        setattr(self, method, self._call)

    def _call(self, texts, *args, **kwargs):
        self.sizes.append(len(texts))
        return self._method(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_concurrent_understanding_equals_one_at_a_time(tiny_nlu):
    counted = Counting(tiny_nlu, "understand_many")
    batched = BatchedUnderstanding(counted, max_wait_ms=30)
    try:
        now = dt.date(2024, 3, 14)
        results = _together(len(TEXTS), lambda k: batched.understand(TEXTS[k], now))
    finally:
        batched.close()
    assert len(counted.sizes) < len(TEXTS)  # messages shared calls
    for text, got in zip(TEXTS, results, strict=True):
        alone = tiny_nlu.understand(text, now)
        assert got.text == text and got.intent == alone.intent
        assert [r.intent for r in got.ranking] == [r.intent for r in alone.ranking]
        assert [r.confidence for r in got.ranking] == pytest.approx(
            [r.confidence for r in alone.ranking], abs=1e-5
        )
        assert (got.out_of_scope, got.ambiguous) == (alone.out_of_scope, alone.ambiguous)
        assert [e.to_dict() for e in got.entities] == [e.to_dict() for e in alone.entities]
        assert got.sentiment == alone.sentiment


def test_each_message_keeps_its_own_date_and_its_own_error(tiny_nlu):
    batched = BatchedUnderstanding(tiny_nlu, max_wait_ms=30)
    days = [dt.date(2024, 3, 14), dt.date(2025, 1, 2), None, dt.date(2024, 3, 14)]
    try:
        results = _together(
            4,
            lambda k: batched.understand(
                "   " if days[k] is None else "lost it yesterday", days[k]
            ),
        )
    finally:
        batched.close()
    assert isinstance(results[2], ValueError) and "empty" in str(results[2])
    values = [[e.value for e in r.entities if e.label == "DATE"] for r in (results[0], results[1])]
    assert values == [["2024-03-13"], ["2025-01-01"]]
    assert results[3].intent == results[0].intent


def test_the_wrapped_understanding_shows_through_and_a_bot_takes_it(tiny_nlu):
    batched = BatchedUnderstanding(tiny_nlu)
    try:
        assert batched.labels == tiny_nlu.labels and batched.predictor is tiny_nlu.predictor
        assert batched.understand_many([]) == []

        class NoAnswers:
            def find(self, question, intent=None):
                return None

        bot = SupportBot(batched, NoAnswers(), handoff_phrases=[])
        replies = bot.reply("customer", "the kettle boils quickly")
        assert replies and replies[0].custom["understanding"]["text"] == "the kettle boils quickly"
    finally:
        batched.close()


@pytest.fixture(scope="module")
def tiny_embedder(tiny_model):
    from lepton_nlp.embeddings import SentenceEmbedder

    return SentenceEmbedder(tiny_model)


def test_concurrent_embeddings_equal_unbatched_ones(tiny_embedder):
    counted = Counting(tiny_embedder, "encode")
    batched = BatchedEmbedder(counted, max_wait_ms=30)
    try:
        assert (batched.model_name, batched.dim) == (tiny_embedder.model_name, tiny_embedder.dim)
        normalize = [k % 3 != 0 for k in range(len(TEXTS))]
        results = _together(
            len(TEXTS), lambda k: batched.encode([TEXTS[k]], normalize=normalize[k])
        )
        several = batched.encode(TEXTS[:3])
        empty = batched.encode([])
    finally:
        batched.close()
    assert len(counted.sizes) < len(TEXTS) + 1  # texts shared calls
    for k, got in enumerate(results):
        alone = tiny_embedder.encode([TEXTS[k]], normalize=normalize[k])
        assert got.shape == alone.shape == (1, tiny_embedder.dim)
        np.testing.assert_allclose(got, alone, atol=1e-5)
    np.testing.assert_allclose(several, tiny_embedder.encode(TEXTS[:3]), atol=1e-5)
    assert np.allclose(np.linalg.norm(several, axis=1), 1.0, atol=1e-5)
    assert empty.shape == (0, tiny_embedder.dim)
